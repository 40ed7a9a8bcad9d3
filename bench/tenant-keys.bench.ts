// `node --import tsx bench/tenant-keys.bench.ts` (or `npm run bench tenant-keys`): what a unique
// index on (tenant_id, idempotency_key) next to the document's UNIQUE (idempotency_key) would cost
// ingestion on plain PostgreSQL (the measurement that kept it out of revision 202612030600: on
// Citus, `skeldir citus distribute` swaps one for the other instead). The ingestion's statement shape (a 100-row INSERT … ON CONFLICT DO NOTHING as the
// application role, tenant context set, row-level security on) into a table that already holds
// BENCH_KEYS_BASE events (default 200,000), with the index and without it (dropped in the same
// database), alternated BENCH_KEYS_ROUNDS times (default 4) so drift hits both alike. Prints rows/s
// of each and the ratio. Noisy on a shared machine: compare the ratio.
import { randomUUID } from 'node:crypto';
import { withTenant } from '../src/db/tenant-context.js';
import { createTestDatabase, stopTestServer, superClient } from '../src/testing/db.js';
import { insertTenants } from '../src/worker/test-fixtures.js';

const BASE = Number(process.env.BENCH_KEYS_BASE ?? 200_000);
const ROUNDS = Number(process.env.BENCH_KEYS_ROUNDS ?? 4);
const PER_ROUND = Number(process.env.BENCH_KEYS_ROWS ?? 20_000);
const BATCH = 100;

const db = await createTestDatabase('head');
const su = await superClient(db);
const app = db.appPool({ max: 1 });
try {
  const [tenant] = (await insertTenants(su, 1)) as [string];
  await su.query(
    `INSERT INTO attribution_events (tenant_id, event_type, channel, session_id, event_timestamp, occurred_at, revenue_cents, idempotency_key, raw_payload)
     SELECT $1::uuid, 'touchpoint', 'email', gen_random_uuid(), now(), now(), 0, $1::text || ':ext:' || gen_random_uuid(), '{}' FROM generate_series(1, $2)`,
    [tenant, BASE],
  );
  await su.query('VACUUM ANALYZE attribution_events');

  // The ingestion's own statement (ON CONFLICT DO NOTHING without a target: either unique index decides).
  async function ingest(): Promise<number> {
    const t0 = process.hrtime.bigint();
    for (let done = 0; done < PER_ROUND; done += BATCH) {
      const keys = Array.from({ length: BATCH }, () => `${tenant}:ext:${randomUUID()}`);
      await withTenant(app, tenant, (c) =>
        c.query(
          `INSERT INTO attribution_events (tenant_id, idempotency_key, event_type, event_timestamp, occurred_at, session_id, channel, raw_payload, revenue_cents, processing_status, processed_at)
           SELECT $1::uuid, k, 'touchpoint', now(), now(), gen_random_uuid(), 'email', '{"k": 1}', 0, 'pending', NULL FROM unnest($2::text[]) k
           ON CONFLICT DO NOTHING`,
          [tenant, keys],
        ));
    }
    return PER_ROUND / (Number(process.hrtime.bigint() - t0) / 1e9);
  }

  const withIndex: number[] = [];
  const without: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    without.push(await ingest());
    await su.query(`CREATE UNIQUE INDEX idx_bench_tenant_idempotency ON attribution_events (tenant_id, idempotency_key)`);
    withIndex.push(await ingest());
    await su.query('DROP INDEX idx_bench_tenant_idempotency');
  }

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const a = median(withIndex);
  const b = median(without);
  console.log(`base ${BASE} events, ${ROUNDS} rounds of ${PER_ROUND} rows in ${BATCH}-row statements`);
  console.log(`with UNIQUE (tenant_id, idempotency_key) too:       ${Math.round(a)} rows/s (rounds: ${withIndex.map(Math.round).join(', ')})`);
  console.log(`without it (document's index only):                ${Math.round(b)} rows/s (rounds: ${without.map(Math.round).join(', ')})`);
  console.log(`ratio with/without: ${(a / b).toFixed(3)} (cost ${((1 - a / b) * 100).toFixed(1)} %)`);
} finally {
  await app.end();
  await su.end();
  await db.drop();
  await stopTestServer();
}
