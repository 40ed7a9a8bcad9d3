// Benchmark: a full forensic run (24 gates, 51 tests) on a database at head holding
// 1,000,000 events (plus 100,000 ledger rows, 100,000 allocations, 10,000 dead events).
// Goal (issue 3): well under 5 s, because no probe may scan a big table. Besides the wall
// time of each run, it reads pg_stat_user_tables before and after the runs and prints the
// sequential scans and rows read sequentially on the big tables: they must stay ~0.
// Run: node --import tsx bench/forensics.bench.ts   (BENCH_EVENTS, BENCH_RUNS to change sizes)
import type pg from 'pg';
import { runForensics } from '../src/forensics/runner.js';
import { createTestDatabase, stopTestServer, superClient } from '../src/testing/db.js';
import { withTriggersOff } from '../src/testing/triggers-off.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const LEDGER = Number(process.env.BENCH_LEDGER ?? 100_000);
const ALLOCATIONS = Number(process.env.BENCH_ALLOCATIONS ?? 100_000);
const DEAD = Number(process.env.BENCH_DEAD ?? 10_000);
const TENANTS = Number(process.env.BENCH_TENANTS ?? 20);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const CEILING_MS = 5000;
const BIG = ['attribution_events', 'revenue_ledger', 'attribution_allocations', 'dead_events', 'revenue_state_transitions'];

/** Seeded as the superuser with triggers off (withTriggersOff: SET LOCAL session_replication_role = replica, on every node): bulk data, consistent by construction. */
async function seed(client: pg.Client): Promise<void> {
  await withTriggersOff(client, () => seedRows(client));
  await client.query('VACUUM ANALYZE');
}

async function seedRows(client: pg.Client): Promise<void> {
  const t = (g: string) => `md5('t' || (${g} % ${TENANTS} + 1))::uuid`;
  await client.query(`INSERT INTO tenants (id, name, api_key_hash, notification_email)
    SELECT md5('t' || g)::uuid, 'tenant ' || g, encode(sha256(('k' || g)::bytea), 'hex'), 'ops' || g || '@example.com'
      FROM generate_series(1, ${TENANTS}) g`);
  await client.query(`INSERT INTO attribution_events (id, tenant_id, occurred_at, event_timestamp, raw_payload, revenue_cents,
        idempotency_key, event_type, channel, session_id, conversion_value_cents, currency, processing_status, processed_at)
    SELECT md5('e' || g)::uuid, ${t('g')}, ts, ts, jsonb_build_object('n', g), 0,
           ${t('g')}::text || ':ext:bench-' || g, CASE WHEN g % 5 = 0 THEN 'conversion' ELSE 'touchpoint' END,
           (ARRAY['email', 'direct', 'organic', 'facebook_paid', 'google_search_paid'])[g % 5 + 1],
           md5('s' || (g / 7))::uuid, CASE WHEN g % 5 = 0 THEN (g % 1000) * 100 END, 'USD',
           CASE WHEN g % 100 = 0 THEN 'pending' ELSE 'processed' END, CASE WHEN g % 100 = 0 THEN NULL ELSE ts END
      FROM generate_series(1, ${EVENTS}) g, LATERAL (SELECT timestamptz '2025-01-01' + (g % 500000) * interval '1 minute' AS ts) x`);
  await client.query(`INSERT INTO revenue_ledger (id, tenant_id, revenue_cents, is_verified, transaction_id, state, amount_cents, currency,
        verification_source, verification_timestamp)
    SELECT md5('l' || g)::uuid, ${t('g')}, g % 100000, g % 3 <> 0, ${t('g')}::text || ':stripe:ch_' || g,
           CASE WHEN g % 3 = 0 THEN 'authorized' ELSE 'captured' END, g % 100000, 'USD', 'stripe', now()
      FROM generate_series(1, ${LEDGER}) g`);
  await client.query(`INSERT INTO revenue_state_transitions (tenant_id, ledger_id, from_state, to_state)
    SELECT ${t('g')}, md5('l' || g)::uuid, NULL, 'authorized' FROM generate_series(1, ${LEDGER}) g`);
  await client.query(`INSERT INTO attribution_allocations (tenant_id, event_id, channel_code, allocated_revenue_cents, allocation_ratio, model_type, confidence_score)
    SELECT ${t('g * 5')}, md5('e' || (g * 5))::uuid, 'email', g % 1000, 1, 'last_touch', 1
      FROM generate_series(1, ${ALLOCATIONS}) g WHERE g * 5 <= ${EVENTS}`);
  await client.query(`INSERT INTO dead_events (tenant_id, source, error_code, error_detail, raw_payload, event_type, error_type, error_message)
    SELECT ${t('g')}, 'worker', 'timeout', jsonb_build_object('message', 'boom ' || g), '{}', 'conversion', 'transient', 'boom ' || g
      FROM generate_series(1, ${DEAD}) g`);
}

async function scanStats(client: pg.Client): Promise<Map<string, { scans: number; rows: number }>> {
  await client.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await client.query<{ relname: string; seq_scan: string; seq_tup_read: string }>(
    `SELECT relname, seq_scan, seq_tup_read FROM pg_stat_user_tables WHERE schemaname = 'public' AND relname = ANY($1)`,
    [BIG],
  );
  return new Map(rows.map((r) => [r.relname, { scans: Number(r.seq_scan), rows: Number(r.seq_tup_read) }]));
}

const db = await createTestDatabase('head');
const client = await superClient(db);
try {
  const t0 = Date.now();
  await seed(client);
  const counts = (await client.query(`SELECT (SELECT count(*) FROM attribution_events)::int AS events, (SELECT count(*) FROM revenue_ledger)::int AS ledger`)).rows[0];
  console.log(`seeded ${counts.events} events, ${counts.ledger} ledger rows, ${ALLOCATIONS} allocations, ${DEAD} dead events in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  // Backends flush their statistics when idle for a second or when they end (the run closes its
  // connections): wait before each reading so the seeding's own counts land before the baseline.
  await new Promise((r) => setTimeout(r, 1500));
  const before = await scanStats(client);
  const times: number[] = [];
  let last;
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    last = await runForensics(db);
    times.push(performance.now() - start);
    if (last.summary.verdict !== 'PASS') throw new Error(`run ${i + 1} did not pass: ${last.summary.line}`);
  }
  await new Promise((r) => setTimeout(r, 1500));
  const after = await scanStats(client);

  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  console.log(`full run (${last!.summary.line}), ${RUNS} runs: min ${times[0]!.toFixed(0)} ms, median ${median.toFixed(0)} ms, max ${times[times.length - 1]!.toFixed(0)} ms`);
  console.log(`median / 5 s ceiling: ${(median / CEILING_MS).toFixed(3)}`);
  const tests = last!.phases.flatMap((p) => p.gates.flatMap((g) => g.tests));
  const probeMs = tests.reduce((s, t) => s + t.durationMs, 0);
  console.log(`last run: ${probeMs.toFixed(0)} ms inside the 51 tests; slowest: ${[...tests].sort((a, b) => b.durationMs - a.durationMs).slice(0, 5).map((t) => `${t.id} ${t.durationMs.toFixed(1)} ms`).join(', ')}`);
  for (const table of BIG) {
    const b = before.get(table)!;
    const a = after.get(table)!;
    console.log(`${table}: ${a.scans - b.scans} sequential scans, ${a.rows - b.rows} rows read sequentially over ${RUNS} runs`);
  }
} finally {
  await client.end();
  await db.drop();
  await stopTestServer();
}
