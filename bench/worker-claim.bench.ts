// `node --import tsx bench/worker-claim.bench.ts` (or `npm run bench worker-claim`): the cost of one
// claim with a backlog of retries that are not yet due, for the claim function of 202611280021
// (skeldir_claim_events: one index in processed_at order, next_attempt_at only filtered) and the
// one of 202611280313 (skeldir_claim_due_events: two partial indexes, both parts range scans),
// measured in the same run on the same tables.
//
// Shape A (the review's): BENCH_CLAIM_PROCESSED processed events (default 1,000,000), 50,000
// pending retries due in an hour, 100 due events. Shape B: 200,000 pending events of which all but
// 100 wait for a retry, nothing processed. For each: a claim of 100 (the worker's batch) and an
// idle poll (nothing due: the 100 are taken out first), each run in a transaction rolled back,
// median of BENCH_CLAIM_RUNS (default 30) runs, plus the rows the plan read and threw away
// (EXPLAIN ANALYZE). Wall-clock on whatever else the machine is doing: noisy when it is busy.
import type pg from 'pg';
import { createTestDatabase, stopTestServer, superClient } from '../src/testing/db.js';
import { insertTenants } from '../src/worker/test-fixtures.js';

const PROCESSED = Number(process.env.BENCH_CLAIM_PROCESSED ?? 1_000_000);
const RUNS = Number(process.env.BENCH_CLAIM_RUNS ?? 30);
const FUNCTIONS = ['skeldir_claim_events', 'skeldir_claim_due_events'] as const;

const db = await createTestDatabase('head');
const su = await superClient(db);
const app = db.appPool({ max: 1 });
const [tenant] = (await insertTenants(su, 1)) as [string];

/** Inserts n events of the tenant (as the superuser: fixtures, not the system under test). */
async function insert(n: number, status: 'processed' | 'pending', nextAttempt: string | null, retryCount: number): Promise<void> {
  for (let from = 0; from < n; from += 100_000) {
    await su.query(
      `INSERT INTO attribution_events (tenant_id, event_type, channel, session_id, event_timestamp, occurred_at, revenue_cents,
         idempotency_key, raw_payload, processing_status, processed_at, next_attempt_at, retry_count)
       SELECT $1::uuid, 'touchpoint', 'email', gen_random_uuid(), now(), now(), 0, $1::text || ':ext:' || gen_random_uuid(), '{}',
              $2::text, CASE WHEN $2::text = 'processed' THEN now() END, ${nextAttempt ?? 'NULL'}, $3
         FROM generate_series(1, $4)`,
      [tenant, status, retryCount, Math.min(100_000, n - from)],
    );
  }
}

async function median(fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** One claim as the worker makes it (application role, its own transaction), rolled back. */
async function claim(client: pg.PoolClient, fn: string, limit: number): Promise<number> {
  await client.query('BEGIN');
  try {
    return (await client.query(`SELECT id FROM ${fn}($1)`, [limit])).rowCount ?? 0;
  } finally {
    await client.query('ROLLBACK');
  }
}

/** Rows read and discarded by filters, and the scan nodes, from EXPLAIN ANALYZE of the function's body as its owner. */
async function plan(fn: string, limit: number): Promise<{ removed: number; nodes: string }> {
  const f = (await su.query<{ prosrc: string; config: string[] }>(`SELECT prosrc, proconfig AS config FROM pg_proc WHERE proname = $1`, [fn])).rows[0]!;
  await su.query('BEGIN');
  try {
    await su.query('SET LOCAL ROLE skeldir_system');
    for (const s of f.config) {
      const [name, value] = s.split(/=(.*)/s) as [string, string];
      await su.query('SELECT set_config($1, $2, true)', [name, value]);
    }
    await su.query(`PREPARE p(integer) AS ${f.prosrc}`);
    const text = (await su.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE p(${limit})`)).rows.map((r) => r['QUERY PLAN']).join('\n');
    const removed = [...text.matchAll(/Rows Removed by Filter: (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    const nodes = [...text.matchAll(/(?:^|->\s+)(Seq Scan|Index Scan using \w+|Incremental Sort|Sort|Bitmap \w+ Scan)/gm)].map((m) => m[1]).join(', ');
    return { removed, nodes };
  } finally {
    await su.query('ROLLBACK');
    await su.query('DEALLOCATE ALL');
  }
}

async function measure(shape: string): Promise<void> {
  await su.query('VACUUM ANALYZE attribution_events');
  const client = await app.connect();
  try {
    for (const [what, idle] of [['claim of 100', false], ['idle poll (nothing due)', true]] as const) {
      // The idle case: the 100 due events are set aside (processed) for the runs, then put back.
      if (idle) await su.query(`UPDATE attribution_events SET processing_status = 'processed' WHERE processing_status = 'pending' AND next_attempt_at IS NULL`);
      try {
        const row: string[] = [];
        for (const fn of FUNCTIONS) {
          const claimed = await claim(client, fn, 100);
          const ms = await median(() => claim(client, fn, 100));
          const p = await plan(fn, 100);
          row.push(`  ${fn.padEnd(25)} ${ms.toFixed(3).padStart(9)} ms  claimed ${String(claimed).padStart(3)}  rows removed by filter ${p.removed}; ${p.nodes}`);
        }
        console.log(`${shape}, ${what}:\n${row.join('\n')}`);
      } finally {
        if (idle) await su.query(`UPDATE attribution_events SET processing_status = 'pending' WHERE processing_status = 'processed' AND processed_at IS NULL`);
      }
    }
  } finally {
    client.release();
  }
}

try {
  console.log(`claim cost with a retry backlog; median of ${RUNS} runs each (application role, rolled back)`);
  await insert(PROCESSED, 'processed', null, 0);
  await insert(50_000, 'pending', `now() + interval '1 hour'`, 1);
  await insert(100, 'pending', null, 0);
  await measure(`A: ${PROCESSED.toLocaleString('en')} processed + 50,000 waiting + 100 due`);
  await su.query('TRUNCATE attribution_events CASCADE');
  await insert(199_900, 'pending', `now() + interval '1 hour'`, 1);
  await insert(100, 'pending', null, 0);
  await measure('B: 200,000 pending, 199,900 of them waiting + 100 due');
} finally {
  await app.end();
  await su.end();
  await db.drop();
  await stopTestServer();
}
