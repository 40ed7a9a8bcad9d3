// `node --import tsx bench/worker.bench.ts` (or `npm run bench worker`): the worker's throughput.
//
// 1. Events processed per second by 1, 2 and 4 workers over a mixed stream (touchpoints, and
//    conversions attributed with the tenant's models), from the first claim to an empty queue.
// 2. The queue mechanics alone: claim + complete of no-op jobs (touchpoints: marking them
//    processed is all their processing) by Skeldir's batch transaction, next to pg-boss 10
//    doing fetch + complete of the same number of no-op jobs, same batch size, same number of
//    concurrent loops, same database, same run. The ratio is Skeldir / pg-boss.
//
// Its own embedded PostgreSQL (or TEST_DATABASE_URL). Sizes: BENCH_EVENTS (mixed stream,
// default 6000), BENCH_JOBS (no-op jobs, default 30000). Figures are wall-clock on whatever else
// the machine is doing at the time: run it on a quiet machine to compare runs.
import PgBoss from 'pg-boss';
import type pg from 'pg';
import { createTestDatabase, stopTestServer, superClient } from '../src/testing/db.js';
import { processBatch } from '../src/worker/batch.js';
import { DEFAULT_WORKER_OPTIONS } from '../src/worker/options.js';
import { countByStatus, insertPendingEvents, insertTenants, journeys } from '../src/worker/test-fixtures.js';
import { Worker } from '../src/worker/worker.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 6000);
const JOBS = Number(process.env.BENCH_JOBS ?? 30000);
const BATCH = 100;

const db = await createTestDatabase('head');
const su = await superClient(db);
const app = db.appPool({ max: 4 });
const tenants = await insertTenants(su, 4);
// A distributed database (TEST_DATABASE_URL + SKELDIR_TEST_CITUS_WORKERS): the claim goes tenant by tenant, as the Worker does.
const perTenantClaim = (await su.query<{ ok: boolean }>(`SELECT to_regprocedure('skeldir_due_tenants(integer)') IS NOT NULL AS ok`)).rows[0]!.ok;
if (perTenantClaim) console.log('distributed database (Citus): per-tenant claim');

async function reset(): Promise<void> {
  await su.query('TRUNCATE attribution_events, attribution_allocations, worker_throughput, worker_instances CASCADE');
}

async function load(events: number, conversionRate: number): Promise<number> {
  let conversions = 0;
  for (const [i, t] of tenants.entries()) {
    const batch = journeys({ events: Math.floor(events / tenants.length), touches: 4, conversionRate, seed: 500 + i });
    conversions += batch.filter((e) => e.type === 'conversion').length;
    await insertPendingEvents(app, t, batch);
  }
  await su.query('VACUUM ANALYZE attribution_events');
  return conversions;
}

const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);

try {
  console.log(`worker throughput: ${EVENTS} events per run (4 touchpoints per session, 20% of sessions convert), batch ${BATCH}`);
  console.log('workers  conversions  seconds  events/s');
  for (const n of [1, 2, 4]) {
    await reset();
    const conversions = await load(EVENTS, 0.2);
    const workers = Array.from({ length: n }, () => new Worker(db, { ...DEFAULT_WORKER_OPTIONS, concurrency: 1, batchSize: BATCH, pollMs: 20 }));
    const t0 = performance.now();
    await Promise.all(workers.map((w) => w.start()));
    while ((await countByStatus(su)).pending > 0) await new Promise((r) => setTimeout(r, 20));
    const ms = performance.now() - t0;
    await Promise.all(workers.map((w) => w.stop()));
    const { processed } = await countByStatus(su);
    if (processed !== EVENTS - (EVENTS % tenants.length)) throw new Error(`expected every event processed, got ${processed}`);
    console.log(`${String(n).padStart(7)}  ${String(conversions).padStart(11)}  ${(ms / 1000).toFixed(1).padStart(7)}  ${String(rate(processed, ms)).padStart(8)}`);
  }

  console.log(`\nqueue mechanics: claim + complete of ${JOBS} no-op jobs, batch ${BATCH}`);
  console.log('loops  skeldir jobs/s  pg-boss jobs/s  ratio');
  const boss = new PgBoss({ connectionString: db.url, max: 8, supervise: false, schedule: false });
  boss.on('error', (e) => console.error('pg-boss:', e.message));
  await boss.start();
  await boss.createQueue('bench');
  for (const loops of [1, 4]) {
    // Skeldir: the worker's own batch transaction (claim through the SECURITY DEFINER function,
    // tenant context, mark processed, counters, commit) over touchpoints.
    await reset();
    await load(JOBS, 0);
    const clients: pg.PoolClient[] = [];
    for (let i = 0; i < loops; i++) clients.push(await app.connect());
    let t0 = performance.now();
    await Promise.all(
      clients.map(async (c, slot) => {
        const s = { ...DEFAULT_WORKER_OPTIONS, batchSize: BATCH, instanceId: '00000000-0000-0000-0000-00000000000b', slot, perTenantClaim };
        while ((await processBatch(c, s)).claimed > 0);
      }),
    );
    const skeldirMs = performance.now() - t0;
    for (const c of clients) c.release();
    const done = (await countByStatus(su)).processed;

    // pg-boss: fetch (UPDATE … FOR UPDATE SKIP LOCKED … RETURNING) + complete, the same jobs count.
    await su.query(`DELETE FROM pgboss.job WHERE name = 'bench'`);
    for (let i = 0; i < done; i += 5000) {
      await boss.insert(Array.from({ length: Math.min(5000, done - i) }, (_, k) => ({ name: 'bench', data: { n: i + k } })));
    }
    await su.query('VACUUM ANALYZE pgboss.job');
    let bossDone = 0;
    t0 = performance.now();
    await Promise.all(
      Array.from({ length: loops }, async () => {
        for (;;) {
          const jobs = await boss.fetch('bench', { batchSize: BATCH });
          if (jobs.length === 0) return;
          await boss.complete('bench', jobs.map((j) => j.id));
          bossDone += jobs.length;
        }
      }),
    );
    const bossMs = performance.now() - t0;
    if (bossDone !== done) throw new Error(`pg-boss completed ${bossDone} of ${done}`);
    const ours = rate(done, skeldirMs);
    const theirs = rate(bossDone, bossMs);
    console.log(`${String(loops).padStart(5)}  ${String(ours).padStart(14)}  ${String(theirs).padStart(14)}  ${(ours / theirs).toFixed(2).padStart(5)}`);
  }
  await boss.stop({ graceful: false, wait: true });
} finally {
  await app.end();
  await su.end();
  await db.drop();
  await stopTestServer();
}
