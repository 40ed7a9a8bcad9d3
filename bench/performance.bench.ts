// `npm run bench -- performance`: the performance report (GET /api/v1/performance, src/performance) over
// BENCH_PERF_CONVERSIONS conversions (default 1,000,000, a year of one tenant: ~2,740 a day) with two linear
// allocations each, a ledger row per order (a tenth refunded) and BENCH_PERF_SPEND spend rows (default 100,000: 274
// campaigns a day), then the spend import next to PostgreSQL's COPY of the same rows in the same run.
//
// - report: performanceReport as the API runs it (application role, tenant context), for a 30-day period (~82,000
//   conversions, what a dashboard asks; best of 3) and for the whole year (all 1,000,000; once), each grouping; then the
//   EXPLAIN of the report's statement, checked for a sequential scan of attribution_events.
// - import: the generic CSV of BENCH_PERF_IMPORT rows (default = BENCH_PERF_SPEND) parsed and imported with
//   importSpend (every line checked, channel rules applied, one transaction: `skeldir spend import` minus reading
//   the file) into an empty tenant, next to `COPY ad_spend FROM STDIN (FORMAT csv)` of the same rows (already in
//   the table's columns: the server's own loader, the ceiling) into another empty tenant, as the superuser
//   (PostgreSQL refuses COPY FROM into a table with row-level security for the application role).
// BENCH_PERF_ONLY=import skips the seed and the report and runs only the import part (develop with e.g.
// BENCH_PERF_ONLY=import BENCH_PERF_IMPORT=50000).
// Seeding is plain SQL as the superuser with triggers off (session_replication_role = replica: the ledger's
// state-machine triggers would make the seed, not the bench, the slow part).
import { randomUUID } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { from as copyFrom } from 'pg-copy-streams';
import { seedDefaultChannels } from '../src/channels/store.js';
import { withTenant } from '../src/db/tenant-context.js';
import { PERFORMANCE_GROUPS, PERFORMANCE_SQL, performanceReport } from '../src/performance/report.js';
import { parseSpendFile } from '../src/spend/csv.js';
import { importSpend } from '../src/spend/import.js';
import { createTestDatabase, superClient } from '../src/testing/db.js';
import { withTriggersOff } from '../src/testing/triggers-off.js';
import { insertTenants } from '../src/worker/test-fixtures.js';

const CONVERSIONS = Number(process.env.BENCH_PERF_CONVERSIONS ?? 1_000_000);
const SPEND = Number(process.env.BENCH_PERF_SPEND ?? 100_000);
const IMPORT = Number(process.env.BENCH_PERF_IMPORT ?? SPEND);
const ONLY_IMPORT = process.env.BENCH_PERF_ONLY === 'import';
const DAYS = 365;
const CAMPAIGNS = Math.ceil(SPEND / DAYS);

const db = await createTestDatabase('head');
const su = await superClient(db);
const [tenant, other, importer, copier] = (await insertTenants(su, 4)) as [string, string, string, string];
for (const t of [tenant, other, importer, copier]) await seedDefaultChannels(su, t);
const line = (what: string, value: string) => console.log(`${what.padEnd(72)} ${value}`);

async function seed(t: string, conversions: number, spendRows: number): Promise<void> {
  await withTriggersOff(su, () => seedRows(t, conversions, spendRows));
}

async function seedRows(t: string, conversions: number, spendRows: number): Promise<void> {
  const step = (DAYS * 86_400) / conversions;
  for (let from = 0; from < conversions; from += 50_000) {
    const n = Math.min(50_000, conversions - from);
    await su.query(
      `WITH ev AS (
         INSERT INTO attribution_events (tenant_id, event_type, channel, session_id, event_timestamp, occurred_at, revenue_cents,
           conversion_value_cents, currency, idempotency_key, raw_payload, processing_status, processed_at, order_id)
         SELECT $1::uuid, 'conversion', 'direct', gen_random_uuid(), ts, ts, 0, 6000, 'USD', $1::text || ':ext:' || g, '{}', 'processed', ts, $1::text || ':o' || g
           FROM (SELECT g, timestamptz '2026-01-01' + (g * $4::float8) * interval '1 second' AS ts FROM generate_series($2::int, $2::int + $3::int - 1) g) s
         RETURNING id, event_timestamp, order_id),
       led AS (
         INSERT INTO revenue_ledger (tenant_id, transaction_id, order_id, state, amount_cents, captured_cents, refunded_cents, chargeback_cents,
           currency, revenue_cents, verification_source, verification_timestamp, metadata)
         SELECT $1::uuid, 'stripe:' || ev.order_id, ev.order_id, CASE WHEN right(ev.order_id, 1) = '7' THEN 'refunded' ELSE 'captured' END, 6000, 6000,
                CASE WHEN right(ev.order_id, 1) = '7' THEN 1200 ELSE 0 END, 0, 'USD', 6000, 'stripe', ev.event_timestamp + interval '1 hour', '{}'
           FROM ev RETURNING 1)
       INSERT INTO attribution_allocations (tenant_id, event_id, channel_code, campaign_id, allocated_revenue_cents, allocation_ratio, model_version,
         model_type, confidence_score, created_at, model_metadata)
       SELECT $1::uuid, ev.id, c.channel, c.channel || '-' || (abs(hashtext(ev.id::text)) % ${CAMPAIGNS / 2 | 0}), 3000, 0.5, 'linear/2', 'linear', 0.8, ev.event_timestamp, '{}'
         FROM ev CROSS JOIN (VALUES ('google_search_paid'), ('facebook_paid')) c(channel)`,
      [t, from, n, step],
    );
  }
  await su.query(
    `INSERT INTO ad_spend (tenant_id, day, platform, campaign_id, campaign_name, channel_code, currency, spend_cents, clicks, source, import_id, imported_at)
     SELECT $1::uuid, date '2026-01-01' + d, CASE WHEN c % 2 = 0 THEN 'google_ads' ELSE 'meta_ads' END,
            CASE WHEN c % 2 = 0 THEN 'google_search_paid' ELSE 'facebook_paid' END || '-' || (c / 2),
            'Campaign ' || c, CASE WHEN c % 2 = 0 THEN 'google_search_paid' ELSE 'facebook_paid' END, 'USD', 1000 + (c * 37 + d) % 5000, 10, 'api', gen_random_uuid(), now()
       FROM generate_series(0, ${DAYS - 1}) d CROSS JOIN generate_series(0, ${CAMPAIGNS - 1}) c
      LIMIT $2`,
    [t, spendRows],
  );
}

let t0 = performance.now();
const app = db.appPool({ max: 2 });
if (!ONLY_IMPORT) {
  await seed(tenant, CONVERSIONS, SPEND);
  await seed(other, Math.ceil(CONVERSIONS / 10), Math.ceil(SPEND / 10));
  for (const t of ['attribution_events', 'attribution_allocations', 'revenue_ledger', 'ad_spend']) await su.query(`VACUUM ANALYZE ${t}`);
  line(`seeded ${CONVERSIONS.toLocaleString('en')} conversions, ${SPEND.toLocaleString('en')} spend rows (+ a tenth for another tenant)`, `${((performance.now() - t0) / 1000).toFixed(1)} s`);

  async function timeReport(from: string, to: string, groupBy: (typeof PERFORMANCE_GROUPS)[number], repeats: number) {
    let best = Infinity;
    let lines = 0;
    let conversions = 0;
    for (let i = 0; i < repeats; i++) {
      const s = performance.now();
      const r = await withTenant(app, tenant, (c) => performanceReport(c, tenant, { from, to, model: 'linear', groupBy }));
      best = Math.min(best, performance.now() - s);
      lines = r.lines.length;
      conversions = r.totals.conversions;
    }
    return { ms: best, lines, conversions };
  }
  for (const [label, from, to] of [['30 days', '2026-03-01', '2026-03-31'], ['the whole year', '2026-01-01', '2027-01-01']] as const) {
    for (const g of PERFORMANCE_GROUPS) {
      const r = await timeReport(from, to, g, label === '30 days' ? 3 : 1);
      line(`performance report, ${label}, group_by=${g} (${r.conversions.toLocaleString('en')} conversions, ${r.lines} lines)`, `${(r.ms / 1000).toFixed(3)} s (target < 1 s: ${(r.ms / 1000).toFixed(2)}× it)`);
    }
  }
  // The plan of the report's statement for the 30-day period, as the application role.
  const plan = await withTenant(app, tenant, async (c) => {
    await c.query(`SET LOCAL work_mem = '64MB'`);
    const r = await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${PERFORMANCE_SQL.channel}`, [tenant, '2026-03-01T00:00:00Z', '2026-03-31T00:00:00Z', 'linear', 'UTC']);
    return r.rows.map((x) => x['QUERY PLAN']);
  });
  console.log('EXPLAIN of the report statement (group_by=channel, 30 days):');
  for (const p of plan) console.log(`  ${p}`);
  const seq = plan.filter((p) => /Seq Scan on attribution_events/.test(p));
  line('sequential scans of attribution_events in the plan', seq.length === 0 ? '0 (index scans only)' : `${seq.length}: ${seq.join('; ')}`);

}

// Spend import vs COPY of the same rows.
const header = 'day,platform,account_id,campaign_id,campaign_name,channel,currency,spend,impressions,clicks';
const rows: string[] = [];
for (let i = 0; i < IMPORT; i++) {
  const d = new Date(Date.UTC(2026, 0, 1) + (i % DAYS) * 86_400_000).toISOString().slice(0, 10);
  const c = Math.floor(i / DAYS);
  rows.push(`${d},google_ads,123-456-7890,${9_000_000 + c},Campaign ${c},google_search_paid,USD,${(10 + (i % 997) / 100).toFixed(2)},${1000 + (i % 50)},${10 + (i % 7)}`);
}
const csv = `${header}\n${rows.join('\n')}\n`;
t0 = performance.now();
const parsed = parseSpendFile(csv, { platform: 'google_ads', format: 'generic' });
const parseS = (performance.now() - t0) / 1000;
const summary = await importSpend(app, importer, { format: parsed.format, rows: parsed.rows, sourceFile: 'bench.csv' });
const importS = (performance.now() - t0) / 1000;
if (summary.created !== IMPORT) throw new Error(`imported ${summary.created} of ${IMPORT}`);
// The same rows as the table's columns, for COPY.
const importId = randomUUID();
const now = new Date().toISOString();
const copyCsv = rows
  .map((r) => {
    const [day, platform, account, campaign, name, channel, currency, spend, impressions, clicks] = r.split(',');
    return [copier, day, platform, account, campaign, name, '""', '""', '', channel, currency, Math.round(Number(spend) * 100), impressions, clicks, 'generic_csv', 'bench.csv', importId, now].join(',');
  })
  .join('\n') + '\n';
t0 = performance.now();
{
  const c = su;
  const stream = c.query(
    copyFrom(`COPY ad_spend (tenant_id, day, platform, account_id, campaign_id, campaign_name, ad_group_id, ad_id, ad_name, channel_code, currency, spend_cents, impressions, clicks, source, source_file, import_id, imported_at) FROM STDIN (FORMAT csv)`),
  );
  await pipeline(Readable.from([copyCsv]), stream);
}
const copyS = (performance.now() - t0) / 1000;
const n = (await su.query<{ n: number }>(`SELECT count(*)::int AS n FROM ad_spend WHERE tenant_id = $1`, [copier])).rows[0]!.n;
if (n !== IMPORT) throw new Error(`COPY wrote ${n} of ${IMPORT}`);
line(`spend import (generic CSV parsed + importSpend), ${IMPORT.toLocaleString('en')} rows`, `${importS.toFixed(2)} s (${Math.round(IMPORT / importS).toLocaleString('en')} rows/s)`);
line(`  of which parsing the CSV (parseSpendFile)`, `${parseS.toFixed(2)} s`);
line(`COPY ad_spend FROM STDIN of the same rows (superuser: COPY FROM refuses RLS)`, `${copyS.toFixed(2)} s (${Math.round(IMPORT / copyS).toLocaleString('en')} rows/s)`);
line('import throughput / COPY throughput', `${(copyS / importS).toFixed(2)}× (target ≥ 0.5×)`);

await app.end();
await su.end();
await db.drop();
