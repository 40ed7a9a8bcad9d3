import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import { attributeConversion } from '../attribution/entry.js';
import { loadConfig } from '../config.js';
import { withTenant } from '../db/tenant-context.js';
import { buildApp, type App } from '../http/app.js';
import { createTenant } from '../tenants/tenants.js';
import { runCli, ROOT } from '../testing/cli.js';
import { createTestDatabase, type TestDatabase } from '../testing/db.js';
import { DATASET_NAMES, DATASETS, type DatasetName } from './datasets.js';
import { csvField, encoderFor } from './encode.js';
import { exportChunks } from './stream.js';
import { PERFORMANCE_GROUPS } from '../performance/report.js';
import { PERFORMANCE_ALL_KEY_COLUMNS, PERFORMANCE_KEY_COLUMNS, PERFORMANCE_VALUE_COLUMNS } from './performance.js';

let db: TestDatabase;
let app: App;
let appPool: pg.Pool;
let tenantA: string;
let keyA: string;
let tenantB: string;
let keyB: string;
const dir = mkdtempSync(join(tmpdir(), 'skeldir-exports-'));

/** RFC 4180 reader for the tests (a quoted empty field is '', an empty one null, as the encoder writes them). */
function parseCsv(text: string): (string | null)[][] {
  const rows: (string | null)[][] = [];
  let row: (string | null)[] = [];
  let i = 0;
  while (i < text.length) {
    let value: string | null;
    if (text[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        assert.ok(q >= 0, 'unterminated quote');
        v += text.slice(i, q);
        if (text[q + 1] === '"') {
          v += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      value = v;
    } else {
      const m = /[,\r]/.exec(text.slice(i));
      const end = m ? i + m.index : text.length;
      value = end === i ? null : text.slice(i, end);
      i = end;
    }
    row.push(value);
    if (text[i] === ',') i++;
    else {
      assert.equal(text.slice(i, i + 2), '\r\n', `line ends CRLF at ${i}`);
      i += 2;
      rows.push(row);
      row = [];
    }
  }
  return rows;
}

// What the API accepts in a text field (no control characters, not empty) …
const TRICKY = ['a,b', 'say "hi"', '=1+2', 'ünï ✓', 'in ner', 'end"', '"'];
// … and what only SQL can store (an event inserted below): line breaks and the empty string.
const RAW = ['two\nlines', 'crlf\r\nend', ''];

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ tenant_id: tenantA, api_key: keyA } = await createTenant(owner, { name: 'Alpha', email: 'ops@alpha.example' }));
  ({ tenant_id: tenantB, api_key: keyB } = await createTenant(owner, { name: 'Beta', email: 'ops@beta.example' }));
  await owner.end();
  app = await buildApp({ db, config: loadConfig({}), logger: false });
  appPool = db.appPool({ max: 2 });

  // Through the API as a client sends them: 30 sessions of a touchpoint and a conversion for A, with awkward strings.
  const events = [];
  for (let i = 0; i < 30; i++) {
    const session = randomUUID();
    const day = String(1 + (i % 28)).padStart(2, '0');
    events.push({ idempotency_key: `t-${i}`, event_type: 'touchpoint', event_timestamp: `2026-03-${day}T10:00:00.123456Z`, session_id: session, utm_source: 'google', utm_medium: 'cpc', user_id: i % 3 ? TRICKY[i % TRICKY.length] : undefined, campaign_id: TRICKY[(i + 3) % TRICKY.length] });
    events.push({ idempotency_key: `c-${i}`, event_type: 'conversion', event_timestamp: `2026-03-${day}T12:00:00Z`, session_id: session, channel: 'email', conversion_value_cents: 1000 + i, currency: i % 2 ? 'EUR' : 'JPY', order_id: `o,${i}` });
  }
  for (const [key, batch] of [[keyA, events], [keyB, [{ ...events[1]!, idempotency_key: 'b-only', order_id: 'tenant-b-secret' }]]] as const) {
    const res = await app.inject({ method: 'POST', url: '/api/v1/events/batch', headers: { authorization: `Bearer ${key}` }, payload: { events: batch } });
    assert.equal(res.statusCode, 200, res.body);
    assert.ok(res.json().results.every((r: { status: number }) => r.status === 201), res.body);
  }
  await withTenant(appPool, tenantA, (c) =>
    c.query(
      `INSERT INTO attribution_events (tenant_id, idempotency_key, event_type, event_timestamp, occurred_at, session_id, channel, campaign_id, user_id, order_id, raw_payload)
       VALUES ($1::uuid, $1::text || ':ext:raw', 'touchpoint', '2026-03-15T00:00:00Z', '2026-03-15T00:00:00Z', gen_random_uuid(), 'direct', $2, $3, $4, $5)`,
      [tenantA, RAW[0], RAW[2], RAW[1], { raw: RAW }],
    ),
  );
  // Spend through the API: ten days of two campaigns for A (awkward names, a day with many ad rows), one row for B.
  const spendA = [];
  for (let d = 1; d <= 10; d++) {
    for (const [i, campaign] of ['brand', 'shoes,"red"'].entries()) {
      spendA.push({ day: `2026-03-${String(d).padStart(2, '0')}`, platform: i ? 'meta_ads' : 'google_ads', campaign_id: `cmp-${i}`, campaign_name: campaign, currency: i ? 'EUR' : 'USD', spend_cents: 1000 * d + i, ...(i ? { impressions: 100 * d, clicks: d } : {}) });
    }
  }
  for (let ad = 0; ad < 12; ad++) spendA.push({ day: '2026-03-05', platform: 'google_ads', campaign_id: 'cmp-0', ad_group_id: 'g', ad_id: `ad-${ad}`, currency: 'USD', spend_cents: ad });
  for (const [key, rows] of [[keyA, spendA], [keyB, [{ day: '2026-03-03', platform: 'google_ads', campaign_id: 'tenant-b-secret', currency: 'USD', spend_cents: 7 }]]] as const) {
    const res = await app.inject({ method: 'POST', url: '/api/v1/spend', headers: { authorization: `Bearer ${key}` }, payload: { rows } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().failed, 0, res.body);
  }
  // Allocations as the worker writes them; a ledger row with metadata per tenant.
  for (const t of [tenantA, tenantB]) {
    await withTenant(appPool, t, async (c) => {
      const { rows } = await c.query<{ id: string }>(`SELECT id FROM attribution_events WHERE tenant_id = $1 AND event_type = 'conversion'`, [t]);
      for (const r of rows) await attributeConversion(c, t, r.id);
      await c.query(`UPDATE attribution_events SET processing_status = 'processed', processed_at = now() WHERE tenant_id = $1`, [t]);
      for (let i = 0; i < 3; i++) {
        await c.query(
          `INSERT INTO revenue_ledger (tenant_id, transaction_id, order_id, state, amount_cents, currency, revenue_cents, verification_source, verification_timestamp, metadata)
           VALUES ($1, $2, $3, 'captured', $4, 'USD', $4, 'stripe', now(), $5)`,
          [t, `${t}:stripe:ch_${i}`, t === tenantB ? 'tenant-b-secret' : `o,${i}`, 500 + i, { note: 'x,"y"\n', fx: { rate: '1' } }],
        );
      }
    });
  }
});
after(async () => {
  await app?.close();
  await appPool?.end();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const get = (url: string, key = keyA) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });

/** The dataset's rows as the database holds them, for comparison (owner side, in the tenant's context). */
async function expected(dataset: DatasetName, tenant = tenantA): Promise<number> {
  const table = { events: 'attribution_events', allocations: 'attribution_allocations', ledger: 'revenue_ledger', spend: 'ad_spend' }[dataset];
  return withTenant(appPool, tenant, async (c) => Number((await c.query(`SELECT count(*) AS n FROM ${table} WHERE tenant_id = $1`, [tenant])).rows[0].n));
}

describe('exports over HTTP', () => {
  test('NDJSON: every row of the tenant, one object per line, columns as documented, values typed', async () => {
    for (const dataset of DATASET_NAMES) {
      const res = await get(`/api/v1/exports/${dataset}`);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.headers['content-type'], 'application/x-ndjson; charset=utf-8');
      assert.match(String(res.headers['content-disposition']), new RegExp(`^attachment; filename="skeldir-${dataset}\\.ndjson"$`));
      const lines = res.body.split('\n');
      assert.equal(lines.pop(), '', 'ends with a newline');
      const rows = lines.map((l) => JSON.parse(l));
      assert.equal(rows.length, await expected(dataset), dataset);
      assert.ok(rows.length > 0);
      for (const r of rows) assert.deepEqual(Object.keys(r), DATASETS[dataset].columns.map((c) => c.name));
      // (period, id) order
      const keyCol = { events: 'event_timestamp', allocations: 'conversion_time', ledger: 'recorded_at', spend: 'day' }[dataset];
      for (let i = 1; i < rows.length; i++) assert.ok(`${rows[i - 1][keyCol]}|${rows[i - 1].id}` < `${rows[i][keyCol]}|${rows[i].id}`, 'sorted, no duplicates');
    }
    const events = (await get('/api/v1/exports/events')).body.trim().split('\n').map((l) => JSON.parse(l));
    const c0 = events.find((e) => e.idempotency_key === 'c-0');
    assert.equal(c0.event_timestamp, '2026-03-01T12:00:00.000000Z');
    assert.equal(c0.conversion_value_cents, 1000);
    assert.equal(c0.currency, 'JPY');
    assert.equal(c0.order_id, 'o,0');
    assert.equal(c0.raw_payload.order_id, 'o,0', 'raw_payload is the JSON document, not a string');
    const t0 = events.find((e) => e.idempotency_key === 't-0');
    assert.equal(t0.event_timestamp, '2026-03-01T10:00:00.123456Z', 'microseconds are exact');
    assert.equal(t0.channel, 'google_search_paid');
    const allocation = (await get('/api/v1/exports/allocations')).body.split('\n')[0]!;
    const a = JSON.parse(allocation);
    assert.equal(typeof a.allocated_revenue_cents, 'number');
    assert.equal(typeof a.allocation_ratio, 'number');
    assert.equal(typeof a.verified, 'boolean');
    assert.ok(['JPY', 'EUR'].includes(a.currency));
    const ledgerRows = (await get('/api/v1/exports/ledger')).body.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(ledgerRows.map((l) => l.transaction_id).sort(), ['ch_0', 'ch_1', 'ch_2'], 'the provider ids, without the tenant scope');
    const ledger = ledgerRows[0];
    assert.deepEqual(ledger.metadata, { note: 'x,"y"\n', fx: { rate: '1' } });
  });

  test('CSV: RFC 4180 with a header; commas, quotes, line breaks and empty strings survive; NULL is an empty field', async () => {
    const res = await get('/api/v1/exports/events?format=csv');
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/csv; charset=utf-8; header=present');
    const [header, ...rows] = parseCsv(res.body);
    assert.deepEqual(header, DATASETS.events.columns.map((c) => c.name));
    const nd = (await get('/api/v1/exports/events')).body.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(rows.length, nd.length);
    const col = (name: string) => header!.indexOf(name);
    for (let i = 0; i < rows.length; i++) {
      assert.equal(rows[i]![col('id')], nd[i].id);
      assert.equal(rows[i]![col('campaign_id')], nd[i].campaign_id, 'strings exact, null as empty field');
      assert.equal(rows[i]![col('user_id')], nd[i].user_id);
      assert.deepEqual(JSON.parse(rows[i]![col('raw_payload')]!), nd[i].raw_payload);
    }
    const values = new Set(rows.flatMap((r) => [r[col('campaign_id')], r[col('user_id')], r[col('order_id')]]));
    for (const s of [...TRICKY, ...RAW]) assert.ok(values.has(s), JSON.stringify(s));
    assert.ok(values.has(null));
  });

  test('from / to select on the period column: from inclusive, to exclusive; a date means midnight UTC', async () => {
    const rows = (url: string) => get(url).then((r) => (r.body.trim() === '' ? [] : r.body.trim().split('\n').map((l) => JSON.parse(l))));
    const march1 = await rows('/api/v1/exports/events?from=2026-03-01T12:00:00Z&to=2026-03-02');
    assert.deepEqual(march1.map((e) => e.idempotency_key).sort(), ['c-0', 'c-28'].sort());
    const allocations = await rows('/api/v1/exports/allocations?from=2026-03-01&to=2026-03-01T12:00:00.001Z');
    assert.ok(allocations.length > 0, JSON.stringify(allocations));
    assert.ok(allocations.every((a) => a.conversion_time === '2026-03-01T12:00:00.000000Z'));
    assert.equal((await rows('/api/v1/exports/events?from=2030-01-01')).length, 0);
    const empty = await get('/api/v1/exports/events?from=2030-01-01&format=csv');
    assert.equal(empty.statusCode, 200);
    assert.equal(empty.body, DATASETS.events.columns.map((c) => c.name).join(',') + '\r\n', 'an empty CSV export is its header');
  });

  test('spend: the rows as imported, days as YYYY-MM-DD, whole-day periods, numbers typed', async () => {
    const rows = (url: string) => get(url).then((r) => {
      assert.equal(r.statusCode, 200, r.body);
      return r.body.trim() === '' ? [] : r.body.trim().split('\n').map((l) => JSON.parse(l));
    });
    const all = await rows('/api/v1/exports/spend');
    assert.equal(all.length, 32);
    const listed = await get('/api/v1/spend?from=2026-03-01&to=2026-04-01&limit=1000');
    assert.equal(listed.statusCode, 200, listed.body);
    const byId = new Map<string, Record<string, unknown>>(listed.json().rows.map((r: { id: string }) => [r.id, r]));
    for (const r of all) {
      const api = byId.get(r.id)!;
      assert.ok(api, r.id);
      for (const k of ['day', 'platform', 'account_id', 'campaign_id', 'campaign_name', 'ad_group_id', 'ad_id', 'channel', 'currency', 'spend_cents', 'impressions', 'clicks', 'source', 'import_id']) {
        assert.deepEqual(r[k], api[k], `${k} as GET /spend gives it`);
      }
      assert.match(r.imported_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    }
    const meta = all.find((r) => r.campaign_name === 'shoes,"red"' && r.day === '2026-03-04');
    assert.deepEqual([meta.spend_cents, meta.impressions, meta.clicks, meta.currency], [4001, 400, 4, 'EUR']);
    assert.equal(all.find((r) => r.campaign_id === 'cmp-0' && r.ad_id === '' && r.day === '2026-03-04').impressions, null);
    // from inclusive, to exclusive, in days; midnight UTC is the same day
    const days = await rows('/api/v1/exports/spend?from=2026-03-04&to=2026-03-06T00:00:00Z');
    assert.deepEqual([...new Set(days.map((r) => r.day))], ['2026-03-04', '2026-03-05']);
    assert.equal(days.length, 2 + 14);
    const csv = parseCsv((await get('/api/v1/exports/spend?format=csv&from=2026-03-10')).body);
    assert.deepEqual(csv[0], DATASETS.spend.columns.map((c) => c.name));
    assert.equal(csv.length, 3);
    assert.ok(csv.slice(1).some((r) => r[csv[0]!.indexOf('campaign_name')] === 'shoes,"red"'));
    for (const [q, field] of [['from=2026-03-04T12:00:00Z', 'from'], ['to=2026-03-05T00:00:00.000001Z', 'to']] as const) {
      const res = await get(`/api/v1/exports/spend?${q}`);
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json().code, 'export_period_invalid');
      assert.equal(res.json().field, field);
      assert.match(res.json().detail, /whole day/);
    }
  });

  test('bad input is a 400 problem naming the field', async () => {
    for (const [url, status, code, field] of [
      ['/api/v1/exports/events?from=2026-02-30', 400, 'export_period_invalid', 'from'],
      ['/api/v1/exports/events?to=0000-01-01', 400, 'export_period_invalid', 'to'],
      ['/api/v1/exports/events?from=2026-03-02&to=2026-03-01', 400, 'export_period_invalid', 'to'],
      ['/api/v1/exports/events?from=2026-12-31T23:59:60Z', 400, 'export_period_invalid', 'from'],
      ['/api/v1/exports/events?format=xlsx', 400, 'validation_failed', 'querystring/format'],
      ['/api/v1/exports/sessions', 400, 'validation_failed', 'params/dataset'],
      ['/api/v1/exports/events?limit=5', 400, 'validation_failed', 'querystring/limit'],
    ] as const) {
      const res = await get(url);
      assert.equal(res.statusCode, status, `${url}: ${res.body}`);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      assert.equal(res.json().code, code, url);
      assert.equal(res.json().field, field, url);
    }
    assert.equal((await app.inject({ method: 'GET', url: '/api/v1/exports/events' })).statusCode, 401);
  });

  test('isolation: each tenant exports only its own rows', async () => {
    for (const dataset of DATASET_NAMES) {
      const a = (await get(`/api/v1/exports/${dataset}`)).body;
      const b = (await get(`/api/v1/exports/${dataset}`, keyB)).body;
      assert.doesNotMatch(a, /tenant-b-secret|b-only/, dataset);
      assert.equal(b.trim().split('\n').length, await expected(dataset, tenantB), dataset);
      assert.doesNotMatch(b, new RegExp(tenantA), dataset);
      assert.doesNotMatch(a, new RegExp(tenantB), dataset);
    }
  });

  test('the OpenAPI document lists the route, its datasets and formats', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const op = doc.paths['/api/v1/exports/{dataset}'].get;
    assert.deepEqual(Object.keys(op.responses['200'].content).sort(), ['application/x-ndjson', 'text/csv']);
    assert.ok(op.responses['400']);
    for (const name of DATASET_NAMES) assert.match(op.description, new RegExp(`${name}: `));
  });
});

describe('keyset pages', () => {
  test('pages of 7 rows give the same rows as one page, each once, even with many rows at one instant', async () => {
    // Allocations of one conversion share its time: keyset ties are broken by id.
    for (const dataset of DATASET_NAMES) {
      for (const format of ['csv', 'ndjson'] as const) {
        let whole = '';
        for await (const c of exportChunks(appPool, { tenantId: tenantA, dataset, format })) whole += c;
        let paged = '';
        const stats = { rows: 0 };
        for await (const c of exportChunks(appPool, { tenantId: tenantA, dataset, format, pageSize: 7 }, stats)) paged += c;
        assert.equal(paged, whole, `${dataset} ${format}`);
        assert.equal(stats.rows, await expected(dataset));
      }
    }
  });

  test('each page can read one range of the (tenant_id, period, id) index, never sorting the whole table', async () => {
    // On these few rows the planner would rather sort them all; enable_sort = off asks whether the index plan
    // exists (an Incremental Sort of the rows sharing one event_timestamp is allowed: that index has no id).
    const { pageSql } = await import('./datasets.js');
    for (const dataset of DATASET_NAMES) {
      const plan = await withTenant(appPool, tenantA, async (c) => {
        await c.query('SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off');
        return (await c.query(`EXPLAIN (FORMAT JSON) ${pageSql(DATASETS[dataset])}`.replace(/\$1/g, `'${tenantA}'::uuid`).replace(/\$2|\$4/g, `'-infinity'`).replace(/\$3/g, `'infinity'`).replace(/\$5::uuid/g, `'00000000-0000-0000-0000-000000000000'::uuid`).replace(/\$6/g, '5000'))).rows[0]['QUERY PLAN'];
      });
      const text = JSON.stringify(plan);
      const index = { events: 'idx_events_tenant_timestamp', allocations: 'idx_allocations_tenant_created', ledger: 'idx_revenue_ledger_tenant_created', spend: 'idx_ad_spend_tenant_day' }[dataset];
      assert.ok(text.includes(index), `${dataset} uses ${index}: ${text}`);
      assert.ok(!/"Node Type":"Sort"/.test(text), `${dataset}: no full sort`);
    }
  });
});

describe('encoders', () => {
  test('CSV fields round-trip any string (property)', () => {
    const cols = [{ name: 'a', kind: 'string' as const, sql: '', description: '' }, { name: 'b', kind: 'string' as const, sql: '', description: '' }];
    const enc = encoderFor('csv', cols);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.option(fc.string({ unit: 'grapheme' })), fc.option(fc.string())), { maxLength: 20 }), (rows) => {
        const text = enc.header + rows.map((r) => enc.line(r)).join('');
        assert.deepEqual(parseCsv(text).slice(1), rows.map(([a, b]) => [a, b]));
      }),
    );
    assert.equal(csvField('"'), '""""');
  });

  test('NDJSON lines parse back to the values, raw kinds inlined', () => {
    const cols = (['string', 'integer', 'boolean', 'json', 'timestamp'] as const).map((kind, i) => ({ name: `c${i}`, kind, sql: '', description: '' }));
    const enc = encoderFor('ndjson', cols);
    fc.assert(
      fc.property(fc.option(fc.string()), fc.option(fc.integer()), fc.option(fc.boolean()), fc.option(fc.jsonValue()), (s, n, b, j) => {
        const line = enc.line([s, n === null ? null : String(n), b === null ? null : String(b), j === null ? null : JSON.stringify(j), '2026-01-01T00:00:00.000000Z']);
        assert.ok(line.endsWith('}\n') && !line.slice(0, -1).includes('\n'));
        assert.deepEqual(JSON.parse(line), { c0: s, c1: n, c2: b, c3: j === null ? null : JSON.parse(JSON.stringify(j)), c4: '2026-01-01T00:00:00.000000Z' });
      }),
    );
  });
});

describe('skeldir export', () => {
  const env = () => ({ DATABASE_URL: db.url });

  test('writes the same bytes as the API, to stdout or --out, and says how many rows', async () => {
    const api = (await get('/api/v1/exports/allocations?format=csv&from=2026-03-02')).body;
    const r = await runCli(['export', 'allocations', '--tenant', tenantA, '--format', 'csv', '--from', '2026-03-02'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, api);
    assert.match(r.stderr, new RegExp(`exported ${parseCsv(api).length - 1} allocations rows`));
    const out = join(dir, 'ledger.ndjson');
    const f = await runCli(['export', 'ledger', '--tenant', tenantB, '--out', out], { env: env() });
    assert.equal(f.code, 0, f.stderr);
    assert.equal(f.stdout, '');
    assert.equal(readFileSync(out, 'utf8'), (await get('/api/v1/exports/ledger', keyB)).body);
    const spend = await runCli(['export', 'spend', '--tenant', tenantA, '--format', 'csv', '--from', '2026-03-05', '--to', '2026-03-06'], { env: env() });
    assert.equal(spend.code, 0, spend.stderr);
    assert.equal(spend.stdout, (await get('/api/v1/exports/spend?format=csv&from=2026-03-05&to=2026-03-06')).body);
    assert.match(spend.stderr, /exported 14 spend rows/);
  });

  test('bad input exits 2 with a message and writes nothing', async () => {
    const out = join(dir, 'never.csv');
    for (const args of [
      ['export', 'sessions', '--tenant', tenantA],
      ['export', 'events', '--tenant', tenantA, '--format', 'xlsx'],
      ['export', 'events', '--tenant', 'acme'],
      ['export', 'events', '--tenant', randomUUID(), '--out', out],
      ['export', 'events', '--tenant', tenantA, '--from', '2026-13-01', '--out', out],
      ['export', 'events', '--tenant', tenantA, '--from', '2026-03-02', '--to', '2026-03-01', '--out', out],
      ['export', 'events'],
      ['export', 'spend', '--tenant', tenantA, '--from', '2026-03-02T06:00:00Z', '--out', out],
    ]) {
      const r = await runCli(args, { env: env() });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /skeldir: |error: /);
      assert.equal(r.stdout, '');
      assert.ok(!existsSync(out), 'no file written');
    }
  });
});

describe('performance export', () => {
  const period = 'from=2026-03-01&to=2026-04-01';
  /** A report line as the export documents it: the key's fields, then the values (written here, not with the export's own code). */
  const expectedRow = (l: any, currency: string) => ({
    ...l.key,
    currency,
    spend_cents: l.spend_cents,
    spend_rows: l.spend_rows,
    conversions: l.conversions,
    credited_conversions: l.credited_conversions,
    attributed_cents: l.attributed_cents,
    verified_cents: l.verified_cents,
    captured_cents: l.captured_cents,
    refunded_cents: l.refunded_cents,
    chargeback_cents: l.chargeback_cents,
    roas_claimed: l.roas.claimed,
    roas_verified: l.roas.verified,
    total_lower_cents: l.total_interval?.lower_cents ?? null,
    total_upper_cents: l.total_interval?.upper_cents ?? null,
    interval_method: l.total_interval?.method ?? null,
    roas_lower: l.roas_interval?.lower ?? null,
    roas_upper: l.roas_interval?.upper ?? null,
    cpa_cents: l.cpa_cents,
    refund_rate: l.refund_rate,
    chargeback_rate: l.chargeback_rate,
    unconverted_buckets: l.unconverted_buckets,
  });
  const report = async (query: string, key = keyA) => {
    const res = await get(`/api/v1/performance?${query}`, key);
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };

  test('NDJSON and CSV rows equal GET /api/v1/performance\'s lines for the same parameters, every grouping', async () => {
    let withMoney = 0;
    for (const groupBy of PERFORMANCE_GROUPS) {
      for (const model of ['last_touch', 'linear']) {
        const query = `${period}&model=${model}&group_by=${groupBy}`;
        const r = await report(query);
        assert.ok(r.lines.length > 0, query);
        const expected = r.lines.map((l: any) => expectedRow(l, r.currency));
        const names = Object.keys(expected[0]);

        const nd = await get(`/api/v1/exports/performance?${query}`);
        assert.equal(nd.statusCode, 200, nd.body);
        assert.match(String(nd.headers['content-type']), /^application\/x-ndjson/);
        const objects = nd.body.trim().split('\n').map((l) => JSON.parse(l));
        assert.deepEqual(objects, expected, query);
        for (const o of objects) assert.deepEqual(Object.keys(o), names, 'keys in column order');

        const csv = await get(`/api/v1/exports/performance?${query}&format=csv`);
        assert.equal(csv.statusCode, 200, csv.body);
        assert.match(String(csv.headers['content-type']), /^text\/csv/);
        const [header, ...rows] = parseCsv(csv.body);
        assert.deepEqual(header, names);
        assert.deepEqual(rows, expected.map((e: Record<string, unknown>) => names.map((n) => (e[n] === null ? null : String(e[n])))), query);
        withMoney += expected.filter((e: any) => e.spend_cents > 0 || e.attributed_cents > 0).length;
      }
    }
    assert.ok(withMoney > 0, 'the fixture has spend and revenue to compare');
    // Integers stay integers in CSV (no decimals, no exponent).
    const csv = (await get(`/api/v1/exports/performance?${period}&format=csv&group_by=campaign`)).body;
    assert.match(csv, /,USD,\d+,\d+,/);
  });

  test('bad parameters are a 400 problem naming the field, as GET /api/v1/performance\'s', async () => {
    for (const [query, code, field] of [
      ['to=2026-04-01', 'validation_failed', 'querystring/from'],
      ['from=2026-03-01', 'validation_failed', 'querystring/to'],
      ['from=2026-03-01T06:00:00Z&to=2026-04-01', 'validation_failed', 'querystring/from'],
      ['from=2026-02-30&to=2026-04-01', 'performance_query_invalid', 'from'],
      ['from=2026-04-01&to=2026-03-01', 'performance_query_invalid', 'to'],
      ['from=2000-01-01&to=2026-03-01', 'performance_query_invalid', 'to'],
      [`${period}&model=nope`, 'performance_query_invalid', 'model'],
      [`${period}&group_by=week`, 'performance_query_invalid', 'group_by'],
      [`${period}&format=xlsx`, 'validation_failed', 'querystring/format'],
      [`${period}&limit=5`, 'validation_failed', 'querystring/limit'],
    ] as const) {
      const res = await get(`/api/v1/exports/performance?${query}`);
      assert.equal(res.statusCode, 400, `${query}: ${res.body}`);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      assert.equal(res.json().code, code, query);
      assert.equal(res.json().field, field, query);
    }
    assert.equal((await app.inject({ method: 'GET', url: `/api/v1/exports/performance?${period}` })).statusCode, 401);
  });

  test('isolation: another tenant sees only its own lines', async () => {
    const a = (await get(`/api/v1/exports/performance?${period}&group_by=campaign`)).body;
    const b = (await get(`/api/v1/exports/performance?${period}&group_by=campaign`, keyB)).body;
    assert.match(b, /tenant-b-secret/, 'B sees its own campaign');
    assert.doesNotMatch(a, /tenant-b-secret/);
    assert.doesNotMatch(b, /cmp-0|cmp-1|shoes/);
    const r = await report(`${period}&group_by=campaign`, keyB);
    assert.deepEqual(b.trim().split('\n').map((l) => JSON.parse(l)), r.lines.map((l: any) => expectedRow(l, r.currency)));
  });

  test('the OpenAPI document lists the route, its formats and columns', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const op = doc.paths['/api/v1/exports/performance'].get;
    assert.deepEqual(Object.keys(op.responses['200'].content).sort(), ['application/x-ndjson', 'text/csv']);
    assert.ok(op.responses['400']);
    for (const c of PERFORMANCE_VALUE_COLUMNS) assert.match(op.description, new RegExp(`\\b${c.name}\\b`));
  });

  test('skeldir export performance writes the API\'s bytes; bad parameters exit 2 and write nothing', async () => {
    const env = { DATABASE_URL: db.url };
    const api = (await get(`/api/v1/exports/performance?${period}&format=csv&group_by=campaign&model=linear`)).body;
    const r = await runCli(['export', 'performance', '--tenant', tenantA, '--from', '2026-03-01', '--to', '2026-04-01', '--format', 'csv', '--group-by', 'campaign', '--model', 'linear'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, api);
    assert.match(r.stderr, new RegExp(`exported ${parseCsv(api).length - 1} performance rows`));
    const out = join(dir, 'performance.ndjson');
    const f = await runCli(['export', 'performance', '--tenant', tenantB, '--from', '2026-03-01', '--to', '2026-04-01', '--out', out], { env });
    assert.equal(f.code, 0, f.stderr);
    assert.equal(readFileSync(out, 'utf8'), (await get(`/api/v1/exports/performance?${period}`, keyB)).body);
    rmSync(out);

    const never = join(dir, 'never-performance.csv');
    for (const args of [
      ['export', 'performance', '--tenant', tenantA, '--to', '2026-04-01', '--out', never],
      ['export', 'performance', '--tenant', tenantA, '--from', '2026-04-01', '--to', '2026-03-01', '--out', never],
      ['export', 'performance', '--tenant', tenantA, '--from', '2026-03-01', '--to', '2026-04-01', '--group-by', 'week', '--out', never],
      ['export', 'performance', '--tenant', tenantA, '--from', '2026-03-01', '--to', '2026-04-01', '--model', 'nope', '--out', never],
      ['export', 'performance', '--tenant', randomUUID(), '--from', '2026-03-01', '--to', '2026-04-01', '--out', never],
      ['export', 'events', '--tenant', tenantA, '--group-by', 'day', '--out', never],
    ]) {
      const res = await runCli(args, { env });
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, /skeldir: /);
      assert.equal(res.stdout, '');
      assert.ok(!existsSync(never), 'no file written');
    }
  });
});

test('docs/exports.md documents every column of the performance export, in order', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'exports.md'), 'utf8');
  const section = doc.split(/^### /m).find((s) => s.startsWith('`performance`'));
  assert.ok(section, 'docs/exports.md has a section ### `performance`');
  const listed = [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual(listed, [...PERFORMANCE_ALL_KEY_COLUMNS, ...PERFORMANCE_VALUE_COLUMNS.map((c) => c.name)]);
  for (const g of PERFORMANCE_GROUPS) for (const c of PERFORMANCE_KEY_COLUMNS[g]) assert.ok(PERFORMANCE_ALL_KEY_COLUMNS.includes(c.name), c.name);
});

test('docs/exports.md documents every column of every dataset, in order', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'exports.md'), 'utf8');
  for (const name of DATASET_NAMES) {
    const section = doc.split(/^### /m).find((s) => s.startsWith(`\`${name}\``));
    assert.ok(section, `docs/exports.md has a section ### \`${name}\``);
    const listed = [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual(listed, DATASETS[name].columns.map((c) => c.name), name);
  }
});
