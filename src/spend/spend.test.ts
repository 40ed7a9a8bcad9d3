import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../config.js';
import { buildApp, type App } from '../http/app.js';
import { importFxRates, parseFxCsv } from '../money/fx.js';
import { createTenant } from '../tenants/tenants.js';
import { ROOT, runCli } from '../testing/cli.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { decodeSpendFile, parseSpendFile } from './csv.js';
import { SpendError } from './errors.js';

const example = (name: string) => readFileSync(join(ROOT, 'examples', name));
const dir = mkdtempSync(join(tmpdir(), 'skeldir-spend-'));
const file = (name: string, content: string | Buffer) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};

function badLines(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof SpendError, String(error));
    assert.equal(error.code, 'spend_file_invalid');
    return (error.options.details?.errors as string[]) ?? [];
  }
  assert.fail('the file was accepted');
}

describe('parsing the exports', () => {
  test('the Google Ads campaign report: title and total lines skipped, thousands separators, -- for none', () => {
    const r = parseSpendFile(decodeSpendFile(example('google-ads-campaign-report.csv')), { platform: 'google_ads' });
    assert.equal(r.format, 'google_ads');
    assert.equal(r.rows.length, 9);
    assert.deepEqual(r.skipped.map((s) => s.line), [1, 2, 13, 14, 15]);
    const [first, second, pmax] = r.rows.map((x) => x.row);
    assert.deepEqual([first!.day, first!.campaign_id, first!.spend_cents, first!.impressions, first!.clicks, first!.currency], ['2026-01-01', '17234567801', 123456n, 12345n, 678n, 'USD']);
    assert.equal(second!.campaign_name, 'Shoes, Running - Search');
    assert.deepEqual([pmax!.spend_cents, pmax!.impressions, pmax!.clicks], [0n, null, null]);
  });

  test('"CSV for Excel" (UTF-16 with BOM, tab-separated), Google dates written out, CRLF and quoted newlines', () => {
    const text = [
      'Ad group report',
      'All time',
      'Day\tCampaign\tCampaign ID\tAd group\tAd group ID\tCurrency code\tCost\tImpressions\tClicks',
      'Jan 5, 2026\t"Brand\nSearch"\t111\tExact\t900\tJPY\t"12,345"\t10\t1',
      'January 6, 2026\tBrand\t111\tExact\t900\tJPY\t12000\t--\t0',
    ].join('\r\n');
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    const r = parseSpendFile(decodeSpendFile(utf16), { platform: 'google_ads' });
    assert.deepEqual(
      r.rows.map((x) => [x.line, x.row.day, x.row.campaign_name, x.row.ad_group_id, x.row.spend_cents]),
      [[5, '2026-01-05', 'Brand Search', '900', 12345n], [6, '2026-01-06', 'Brand', '900', 12000n]],
    );
  });

  test('the Meta Ads Manager export: the currency from the header, ad sets as ad groups, a day per row', () => {
    const r = parseSpendFile(decodeSpendFile(example('meta-ads-export.csv')), { platform: 'meta_ads' });
    assert.equal(r.format, 'meta_ads');
    assert.deepEqual(r.rows.map((x) => [x.row.day, x.row.currency, x.row.spend_cents, x.row.ad_group_id]).slice(0, 2), [
      ['2026-01-01', 'EUR', 21248n, '120210000000000201'],
      ['2026-01-01', 'EUR', 9810n, '120210000000000202'],
    ]);
    const weekly = '"Reporting starts","Reporting ends","Campaign name","Campaign ID","Amount spent (USD)"\n"2026-01-01","2026-01-07","A","1","10"\n';
    assert.match(badLines(() => parseSpendFile(weekly, { platform: 'meta_ads' }))[0]!, /line 2: .*2026-01-01 to 2026-01-07.*daily breakdown/);
  });

  test('a file with bad lines names every one of them', () => {
    const text = [
      'Campaign report',
      'Day,Campaign,Campaign ID,Currency code,Cost,Impressions,Clicks',
      '2026-01-01,A,1,USD,10.00,1,1',
      '2026-02-30,A,1,USD,10.00,1,1',
      '2026-01-02,A,,USD,10.00,1,1',
      '2026-01-03,A,1,USD,-5.00,1,1',
      '2026-01-04,A,1,USD,"1.234,56",1,1',
      '2026-01-05,A,1,USD,1.005,1,1',
      '2026-01-06,A,1,XXX,1.00,1,1',
      '2026-01-07,A,1,USD,1.00,1.5,1',
      '2026-01-01,A,1,USD,3.00,1,1',
      '2026-01-08,A,1,USD,1.00,1,1,extra',
    ].join('\n');
    const lines = badLines(() => parseSpendFile(text, { platform: 'google_ads' }));
    assert.deepEqual(lines.map((l) => Number(/^line (\d+)/.exec(l)![1])), [4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.match(lines.find((l) => l.startsWith('line 11'))!, /same campaign and day as line 3/);
    assert.match(lines.find((l) => l.startsWith('line 8'))!, /finer than the currency's minor unit/);
  });

  test('the generic CSV: documented columns only, --platform and --currency fill in, a disagreeing platform is a bad line', () => {
    const r = parseSpendFile(decodeSpendFile(example('generic-spend.csv')), { platform: 'tiktok_ads' });
    assert.deepEqual(r.rows.map((x) => [x.row.channel, x.row.spend_cents, x.row.clicks]), [[null, 15000n, 350n], [null, 16250n, 371n], ['tiktok_paid', 7525n, null]]);
    assert.match(badLines(() => parseSpendFile('day,campaign_id,spend,costt\n2026-01-01,1,1,1\n', { platform: 'other', currency: 'USD' }))[0]!, /unknown column costt/);
    assert.match(badLines(() => parseSpendFile('day,platform,campaign_id,spend\n2026-01-01,meta_ads,1,1\n', { platform: 'other', currency: 'USD' }))[0]!, /line 2: platform "meta_ads" is not --platform other/);
    assert.deepEqual(parseSpendFile('day,campaign_id,spend\n2026-01-01,1,2.5\n', { platform: 'other', currency: 'KWD' }).rows[0]!.row.spend_cents, 2500n);
    assert.match(badLines(() => parseSpendFile('day,campaign_id,spend\n2026-01-01,1,2.5\n', { platform: 'other' }))[0]!, /currency/);
    assert.throws(() => parseSpendFile('just,some\nthing,else\n', { platform: 'other' }), /no header line/);
  });
});

let db: TestDatabase;
let app: App;
let tenant: string;
let key: string;
let otherKey: string;
const env = () => ({ DATABASE_URL: db.url });
const call = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown, k = key) =>
  app.inject({ method, url: `/api/v1${url}`, headers: { authorization: `Bearer ${k}` }, ...(payload !== undefined ? { payload: payload as object } : {}) });

async function stored(t = tenant) {
  const su = await superClient(db);
  try {
    return (
      await su.query<{ day: string; platform: string; campaign_id: string; ad_group_id: string; channel_code: string; spend_cents: string; currency: string; source: string }>(
        `SELECT day::text, platform, campaign_id, ad_group_id, channel_code, spend_cents::text, currency, source FROM ad_spend WHERE tenant_id = $1 ORDER BY platform, day, campaign_id, ad_group_id`,
        [t],
      )
    ).rows;
  } finally {
    await su.end();
  }
}

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ tenant_id: tenant, api_key: key } = await createTenant(owner, { name: 'Spend', email: 'ops@spend.example' }));
  ({ api_key: otherKey } = await createTenant(owner, { name: 'Other', email: 'ops@other.example' }));
  await importFxRates(owner, parseFxCsv('2026-01-01,EUR,USD,1.1\n2026-01-02,EUR,USD,1.2\n'), 'test-rates');
  await owner.end();
  app = await buildApp({ db, config: loadConfig({}), logger: false });
});
after(async () => {
  await app?.close();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('skeldir spend import', () => {
  test('a Google Ads report: imported with its channels; re-importing changes nothing; a changed export replaces its days', async () => {
    await call('POST', '/channels/rules', { name: 'pmax', channel: 'google_display_paid', conditions: [{ field: 'ad_platform', op: 'equals', value: 'google_ads' }, { field: 'campaign', op: 'prefix', value: 'pmax' }] });
    const path = join(ROOT, 'examples', 'google-ads-campaign-report.csv');
    const r = await runCli(['spend', 'import', path, '--tenant', tenant, '--platform', 'google_ads', '--account', '123-456-7890'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual([summary.format, summary.rows, summary.created, summary.updated, summary.unchanged, summary.deleted, summary.skipped_lines], ['google_ads', 9, 9, 0, 0, 0, 5]);
    assert.deepEqual(summary.by_channel, { google_search_paid: 6, google_display_paid: 3 });
    assert.match(r.stderr, /spend rows written: 9\/9 done/);
    const again = JSON.parse((await runCli(['spend', 'import', path, '--tenant', tenant, '--platform', 'google_ads', '--account', '123-456-7890'], { env: env() })).stdout);
    assert.deepEqual([again.created, again.updated, again.unchanged, again.deleted], [0, 0, 9, 0]);
    assert.equal((await stored()).length, 9);
    // The next export: day 2 without the PMax campaign, Brand's cost of day 3 corrected.
    const text = readFileSync(path, 'utf8').split('\r\n').filter((l) => !l.startsWith('2026-01-02,PMax')).map((l) => l.replace('"1,250.40"', '"1,260.40"')).join('\r\n');
    const changed = JSON.parse((await runCli(['spend', 'import', file('next.csv', text), '--tenant', tenant, '--platform', 'google_ads', '--account', '123-456-7890'], { env: env() })).stdout);
    assert.deepEqual([changed.created, changed.updated, changed.unchanged, changed.deleted], [0, 1, 7, 1]);
    const rows = await stored();
    assert.equal(rows.length, 8);
    assert.equal(rows.find((x) => x.day === '2026-01-03' && x.campaign_id === '17234567801')!.spend_cents, '126040');
    assert.ok(rows.every((x) => x.source === 'google_ads_csv'));
  });

  test('a bad file imports nothing and names every bad line; bad flags exit 2', async () => {
    const before = await stored();
    const bad = file('bad.csv', 'Day,Campaign,Campaign ID,Currency code,Cost\n2026-01-04,A,1,USD,1.00\n2026-13-01,A,2,USD,1.00\n2026-01-04,B,3,USD,abc\n');
    const r = await runCli(['spend', 'import', bad, '--tenant', tenant, '--platform', 'google_ads'], { env: env() });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /2 bad line\(s\); nothing was imported/);
    assert.match(r.stderr, /line 3: day: 2026-13-01 is not a calendar date/);
    assert.match(r.stderr, /line 4: Cost "abc" is not a number/);
    const unknownChannel = file('chan.csv', 'day,campaign_id,spend,channel\n2026-01-04,9,1.00,nope\n2026-01-05,9,1.00,email\n');
    const c = await runCli(['spend', 'import', unknownChannel, '--tenant', tenant, '--platform', 'other', '--currency', 'USD'], { env: env() });
    assert.equal(c.code, 2);
    assert.match(c.stderr, /line 2: channel: the tenant has no channel nope/);
    assert.deepEqual(await stored(), before);
    for (const args of [
      ['--platform', 'myspace'],
      ['--platform', 'meta_ads'],
      ['--platform', 'google_ads', '--currency', 'usd'],
      ['--platform', 'google_ads', '--format', 'excel'],
    ]) {
      const x = await runCli(['spend', 'import', join(ROOT, 'examples', 'google-ads-campaign-report.csv'), '--tenant', tenant, ...args], { env: env() });
      assert.equal(x.code, 2, `${args.join(' ')}: ${x.stderr}`);
    }
    const missing = await runCli(['spend', 'import', join(dir, 'nope.csv'), '--tenant', tenant, '--platform', 'other'], { env: env() });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read/);
  });

  test('the Meta export and a generic file: platform default channels; spend converted at its day\'s rate, days without one listed', async () => {
    const meta = await runCli(['spend', 'import', join(ROOT, 'examples', 'meta-ads-export.csv'), '--tenant', tenant, '--platform', 'meta_ads'], { env: env() });
    assert.equal(meta.code, 0, meta.stderr);
    assert.deepEqual(JSON.parse(meta.stdout).by_channel, { facebook_paid: 5 });
    const generic = await runCli(['spend', 'import', join(ROOT, 'examples', 'generic-spend.csv'), '--tenant', tenant, '--platform', 'tiktok_ads'], { env: env() });
    assert.equal(generic.code, 0, generic.stderr);
    assert.deepEqual(JSON.parse(generic.stdout).by_channel, { tiktok_paid: 3 });
    // One EUR row on a day before any EUR rate.
    const early = await call('POST', '/spend', { rows: [{ day: '2025-12-31', platform: 'meta_ads', campaign_id: '120210000000000101', currency: 'EUR', spend_cents: 5000 }] });
    assert.equal(early.json().results[0].status, 201, early.body);

    const s = await call('GET', '/spend/summary?from=2025-12-01&to=2026-02-01&group_by=platform');
    assert.equal(s.statusCode, 200, s.body);
    const body = s.json();
    // Meta: day 1 (212.48 + 98.10) × 1.1, day 2 (205.00 + 101.35) × 1.2, day 3 (0) at day 2's rate.
    const metaCents = Math.round(31058 * 1.1) + Math.round(30635 * 1.2);
    const line = (p: string) => body.lines.find((l: { key: { platform: string } }) => l.key.platform === p);
    assert.equal(line('meta_ads').spend_cents, metaCents);
    assert.equal(line('meta_ads').unconverted_rows, 1);
    assert.equal(line('google_ads').spend_cents, 123456 + 31020 + 0 + 119800 + 29575 + 126040 + 30100 + 9235);
    assert.deepEqual(body.fx_gaps, [{ currency: 'EUR', day: '2025-12-31', spend_cents: 5000, rows: 1 }]);
    assert.equal(body.total_spend_cents, body.lines.reduce((a: number, l: { spend_cents: number }) => a + l.spend_cents, 0));
    // The same sums independently in SQL (rates of the test: 1.1 from 2026-01-01, 1.2 from 2026-01-02).
    const su = await superClient(db);
    try {
      const { rows } = await su.query<{ cents: string }>(
        `SELECT sum(CASE WHEN currency = 'USD' THEN c WHEN d = '2026-01-01' THEN round(c * 1.1) ELSE round(c * 1.2) END)::text AS cents
           FROM (SELECT day AS d, currency, sum(spend_cents) AS c FROM ad_spend WHERE tenant_id = $1 AND day >= '2026-01-01' GROUP BY day, currency) x`,
        [tenant],
      );
      assert.equal(body.total_spend_cents, Number(rows[0]!.cents));
    } finally {
      await su.end();
    }
    const byDay = (await call('GET', '/spend/summary?from=2026-01-01&to=2026-01-02&group_by=day')).json();
    assert.deepEqual(byDay.lines.map((l: { key: { day: string } }) => l.key.day), ['2026-01-01']);
    assert.equal((await call('GET', '/spend/summary?from=2026-01-01&to=2026-02-01', undefined, otherKey)).json().lines.length, 0);
    assert.equal((await call('GET', '/spend/summary?from=2026-02-01&to=2026-01-01')).json().code, 'spend_query_invalid');
  });
});

describe('the spend API', () => {
  test('POST /spend: per-row results, not atomic, idempotent', async () => {
    const rows = [
      { day: '2026-03-01', platform: 'other', campaign_id: 'podcast-q1', campaign_name: 'Podcast Q1', currency: 'USD', spend_cents: 50000, channel: 'referral' },
      { day: '2026-03-01', platform: 'other', campaign_id: 'podcast-q1', ad_group_id: 'ep-12', currency: 'USD', spend_cents: 10000 },
      { day: '2026-03-31', platform: 'other', campaign_id: 'x', currency: 'usd', spend_cents: 1 },
      { day: '2026-03-01', platform: 'other', campaign_id: 'y', currency: 'USD', spend_cents: 1, channel: 'nope' },
      { day: '2026-02-30', platform: 'other', campaign_id: 'z', currency: 'USD', spend_cents: 1 },
      { day: '2026-03-01', platform: 'other', campaign_id: 'w', currency: 'USD', spend_cents: -1 },
      { day: '2026-03-01', platform: 'other', campaign_id: 'v', currency: 'XAU', spend_cents: 1 },
    ];
    const res = await call('POST', '/spend', { rows });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(body.results.map((r: { status: number }) => r.status), [201, 201, 400, 422, 400, 400, 422]);
    assert.deepEqual(body.results.map((r: { problem?: { field: string } }) => r.problem?.field ?? null), [
      null, null, 'body/rows/2/currency', 'body/rows/3/channel', 'body/rows/4/day', 'body/rows/5/spend_cents', 'body/rows/6/currency',
    ]);
    assert.deepEqual([body.created, body.failed], [2, 5]);
    assert.deepEqual(body.results.slice(0, 2).map((r: { channel: string }) => r.channel), ['referral', 'unknown']);
    const again = (await call('POST', '/spend', { rows: rows.slice(0, 2) })).json();
    assert.deepEqual(again.results.map((r: { status: number; outcome: string }) => [r.status, r.outcome]), [[200, 'unchanged'], [200, 'unchanged']]);
    assert.deepEqual(again.results.map((r: { id: string }) => r.id), body.results.slice(0, 2).map((r: { id: string }) => r.id));
    const updated = (await call('POST', '/spend', { rows: [{ ...rows[0], spend_cents: 60000 }] })).json();
    assert.deepEqual([updated.results[0].status, updated.results[0].outcome], [200, 'updated']);
    assert.equal((await call('POST', '/spend', { rows: [] })).statusCode, 400);
    assert.equal((await call('POST', '/spend', { rows: Array.from({ length: 5001 }, () => rows[0]) })).statusCode, 400);
  });

  test('GET /spend pages by keyset with filters; DELETE removes a platform\'s period', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await call('GET', `/spend?platform=google_ads&from=2026-01-01&to=2026-01-04&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(res.statusCode, 200, res.body);
      for (const r of res.json().rows) seen.push(`${r.day} ${r.campaign_id}`);
      cursor = res.json().next_cursor;
    } while (cursor);
    assert.equal(seen.length, 8);
    assert.deepEqual(seen.map((x) => x.slice(0, 10)), seen.map((x) => x.slice(0, 10)).sort(), 'in day order');
    assert.equal(new Set(seen).size, 8);
    const one = (await call('GET', '/spend?campaign_id=podcast-q1')).json().rows;
    assert.deepEqual(one.map((r: { ad_group_id: string; spend_cents: number }) => [r.ad_group_id, r.spend_cents]).sort(), [['', 60000], ['ep-12', 10000]]);
    assert.equal((await call('GET', '/spend?cursor=bm9wZQ')).json().code, 'spend_cursor_invalid');
    assert.equal((await call('GET', '/spend?from=2026-02-31')).json().code, 'validation_failed');
    assert.equal((await call('GET', '/spend?from=1999-12-31')).json().code, 'spend_query_invalid');
    assert.equal((await call('GET', '/spend', undefined, otherKey)).json().rows.length, 0);
    assert.equal((await call('DELETE', '/spend?platform=google_ads&from=2026-01-01&to=2026-01-02', undefined, otherKey)).json().deleted, 0);
    const del = await call('DELETE', '/spend?platform=google_ads&from=2026-01-01&to=2026-01-02');
    assert.deepEqual(del.json(), { deleted: 3 });
    assert.equal((await stored()).filter((r) => r.platform === 'google_ads').length, 5);
    assert.equal((await call('DELETE', '/spend?platform=google_ads&from=2026-01-02&to=2026-01-01')).statusCode, 400);
  });

  test('a channel with spend cannot be deleted', async () => {
    await call('POST', '/channels', { code: 'podcast', display_name: 'Podcasts' });
    await call('POST', '/spend', { rows: [{ day: '2026-03-02', platform: 'other', campaign_id: 'p', currency: 'USD', spend_cents: 1, channel: 'podcast' }] });
    const res = await call('DELETE', '/channels/podcast');
    assert.equal(res.statusCode, 409);
    assert.equal(res.json().referenced_by, 'ad_spend');
  });

  test('the reporting time zone is a tenant setting (CLI); GET /tenant shows it', async () => {
    assert.equal((await call('GET', '/tenant')).json().reporting_time_zone, 'UTC');
    const set = await runCli(['tenant', 'time-zone', tenant, '--set', 'Europe/Berlin'], { env: env() });
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(JSON.parse(set.stdout), { tenant_id: tenant, reporting_time_zone: 'Europe/Berlin' });
    assert.equal((await call('GET', '/tenant')).json().reporting_time_zone, 'Europe/Berlin');
    const bad = await runCli(['tenant', 'time-zone', tenant, '--set', 'Mars/Olympus_Mons'], { env: env() });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not an IANA time zone/);
    await runCli(['tenant', 'time-zone', tenant, '--set', 'UTC'], { env: env() });
  });
});
