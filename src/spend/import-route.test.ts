import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../config.js';
import { buildApp, type App } from '../http/app.js';
import { createTenant } from '../tenants/tenants.js';
import { createTestDatabase, type TestDatabase } from '../testing/db.js';

// POST /api/v1/spend/import: the CLI's file import over HTTP (the web app's Settings → Spend import).
const examples = join(import.meta.dirname, '..', '..', 'examples');
const googleReport = readFileSync(join(examples, 'google-ads-campaign-report.csv'));
const metaExport = readFileSync(join(examples, 'meta-ads-export.csv'));

let db: TestDatabase;
let app: App;
let key: string;
let otherKey: string;

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ api_key: key } = await createTenant(owner, { name: 'Spender', email: 'ops@spender.example' }));
  ({ api_key: otherKey } = await createTenant(owner, { name: 'Other', email: 'ops@other.example' }));
  await owner.end();
  app = await buildApp({ db, config: loadConfig({}), logger: false });
});
after(async () => {
  await app?.close();
  await db?.drop();
});

const post = (payload: unknown, apiKey = key) => app.inject({ method: 'POST', url: '/api/v1/spend/import', payload: payload as object, headers: { authorization: `Bearer ${apiKey}` } });
const rows = async (apiKey = key) =>
  (await app.inject({ method: 'GET', url: '/api/v1/spend?from=2026-01-01&to=2026-02-01&limit=1000', headers: { authorization: `Bearer ${apiKey}` } })).json().rows as {
    day: string;
    campaign_id: string;
    spend_cents: number;
    source: string;
    source_file: string | null;
  }[];

describe('POST /api/v1/spend/import', () => {
  test('a Google Ads report is imported as the CLI imports it: totals and dashes skipped, every day stored, the file name kept', async () => {
    const res = await post({ platform: 'google_ads', file_name: 'google-ads-campaign-report.csv', content_base64: googleReport.toString('base64') });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.format, 'google_ads');
    assert.equal(body.created, body.rows);
    assert.ok(body.skipped_lines >= 2, 'the title lines');
    const stored = await rows();
    assert.equal(stored.length, body.rows);
    const brand = stored.find((r) => r.day === '2026-01-01' && r.campaign_id === '17234567801')!;
    assert.equal(brand.spend_cents, 123456);
    assert.equal(brand.source, 'google_ads_csv');
    assert.equal(brand.source_file, 'google-ads-campaign-report.csv');
    // The same file again changes nothing.
    const again = (await post({ platform: 'google_ads', content_base64: googleReport.toString('base64') })).json();
    assert.deepEqual([again.created, again.updated, again.deleted], [0, 0, 0]);
    assert.deepEqual(await rows(otherKey), [], "another tenant's spend is not touched");
  });

  test('a UTF-16 "CSV for Excel" export is read', async () => {
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(metaExport.toString('utf8').replace(/^\uFEFF/, ''), 'utf16le')]);
    const res = await post({ platform: 'meta_ads', content_base64: utf16.toString('base64') }, otherKey);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().format, 'meta_ads');
    assert.ok((await rows(otherKey)).length > 0);
  });

  test('a file with a bad line imports nothing and names the line; a file of another platform and an empty file are refused', async () => {
    const before = await rows();
    const bad = googleReport.toString('utf8').replace('"1,198.00"', 'lots');
    const res = await post({ platform: 'google_ads', content_base64: Buffer.from(bad).toString('base64') });
    assert.equal(res.statusCode, 422);
    assert.equal(res.json().code, 'spend_file_invalid');
    assert.match(res.json().detail, /line 7/);
    assert.deepEqual(await rows(), before);
    const wrong = await post({ platform: 'tiktok_ads', content_base64: googleReport.toString('base64') });
    assert.equal(wrong.statusCode, 422);
    assert.match(wrong.json().detail, /Google Ads report, not platform tiktok_ads/);
    const notBase64 = await post({ platform: 'google_ads', content_base64: 'not base64!' });
    assert.equal(notBase64.statusCode, 400);
    const unknown = await post({ platform: 'google_ads', content_base64: 'QQ==', extra: 1 });
    assert.equal(unknown.statusCode, 400);
  });
});
