import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import pg from 'pg';
import { isConnectionError } from '../db/errors.js';
import { clientConfig } from '../db/pool.js';
import { loadConfig } from '../config.js';
import { buildApp } from '../http/app.js';
import { withTenant } from '../db/tenant-context.js';
import { runCli, spawnCli } from '../testing/cli.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import type { FailureReport } from './batch.js';
import { retryCeilingMs, retryDelayMs } from './backoff.js';
import { truncate } from './classify.js';
import { DEFAULT_WORKER_OPTIONS, workerOptions, type WorkerOptions } from './options.js';
import { assertProcessedExactlyOnce, insertPendingEvents, insertTenants, installAudit, journeys } from './test-fixtures.js';
import { Worker } from './worker.js';
import { processBatch } from './batch.js';
import { CLAIM_TENANT_SETTINGS, CLAIM_TENANT_SQL, claimTenantEvents, dueTenants } from './queue.js';
import { withLocalSettings } from '../db/local-settings.js';
import { INSTANT_TEXT } from '../db/timestamps.js';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`# fast-check seed ${seed} (FC_SEED=${seed} to replay)`);

let db: TestDatabase;
let su: pg.Client;
let app: pg.Pool;
let tenantA: string;
let tenantB: string;
/** A distributed database (npm run test:citus): the worker claims tenant by tenant there. */
let citus = false;

before(async () => {
  db = await createTestDatabase('head');
  su = await superClient(db);
  citus = (await su.query(`SELECT 1 FROM pg_extension WHERE extname = 'citus'`)).rows.length > 0;
  await installAudit(su);
  [tenantA, tenantB] = await insertTenants(su, 2) as [string, string];
  app = db.appPool({ max: 4 });
});
after(async () => {
  await app?.end();
  await su?.end();
  await db?.drop();
});

const FAST: WorkerOptions = { ...DEFAULT_WORKER_OPTIONS, concurrency: 2, batchSize: 50, pollMs: 50, retryBaseMs: 200, retryMaxMs: 5_000 };

/**
 * What the worker has done so far, by its own counters (written in its batch transactions, folded
 * totals kept): every event processed, failed attempt and dead-lettering adds to it. A test of the
 * whole Citus suite shares two cores with the other files, so a wait is bounded by progress, not by
 * the clock: while the worker keeps moving it may take as long as it needs.
 */
const WORK_DONE = `SELECT coalesce(sum(processed + failed + dead_lettered), 0)::text AS n FROM worker_throughput`;

/**
 * Polls the database until `sql` returns true. Bounded: it fails when `progress` (WORK_DONE unless
 * given) has not changed for `stallMs`, rather than hang; a wait with no progress measure of its own
 * (a statement to start, say) is thus bounded by `stallMs` outright.
 */
async function until(sql: string, params: unknown[] = [], stallMs = 60_000, progress = WORK_DONE): Promise<void> {
  let seen: string | undefined;
  let deadline = Date.now() + stallMs;
  for (;;) {
    const { rows } = await su.query<{ ok: boolean }>(sql, params);
    if (rows[0]?.ok) return;
    const now = (await su.query<{ n: string }>(progress)).rows[0]?.n;
    if (now !== seen) {
      seen = now;
      deadline = Date.now() + stallMs;
    } else if (Date.now() > deadline) {
      throw new Error(`no progress for ${stallMs / 1000} s (${progress}: ${now}) waiting for: ${sql}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Statements run after the test, whether it passed or not (a trigger left behind would fail the tests after it). */
function cleanUp(t: { after(fn: () => Promise<void>): void }, ...statements: string[]): void {
  t.after(async () => {
    for (const sql of statements) await su.query(sql);
  });
}

async function withWorker<T>(options: Partial<WorkerOptions>, fn: (w: Worker) => Promise<T>): Promise<T> {
  const w = new Worker(db, { ...FAST, ...options });
  await w.start();
  try {
    return await fn(w);
  } finally {
    await w.stop();
  }
}

/**
 * A sequence the test's triggers count with. On Citus the triggers fire on the shards, so it is
 * created on every worker too (each counts its own shards' firings; the events concerned are one
 * tenant's, on one worker): Citus does not propagate a sequence no distributed table uses.
 */
async function sequence(name: string): Promise<void> {
  for (const sql of [`CREATE SEQUENCE ${name}`, `GRANT USAGE ON SEQUENCE ${name} TO skeldir_app`]) {
    await su.query(sql);
    if (citus) await su.query(`SELECT run_command_on_workers($1)`, [sql]);
  }
}

/** nextval of such a sequence: the largest over the nodes on Citus. */
async function nextval(name: string): Promise<number> {
  if (!citus) return (await su.query(`SELECT nextval('${name}')::int AS n`)).rows[0].n;
  const { rows } = await su.query(`SELECT max(result::int) AS n FROM run_command_on_workers($1)`, [`SELECT nextval('${name}')`]);
  return rows[0].n;
}

const queueEmpty = `SELECT NOT EXISTS (SELECT 1 FROM attribution_events WHERE processing_status = 'pending') AS ok`;

describe('options and backoff', () => {
  test('options come from the environment, flags override it, bad values are refused naming their source', () => {
    const o = workerOptions({ SKELDIR_WORKER_BATCH_SIZE: '25', SKELDIR_WORKER_MAX_RETRIES: '7' }, { batchSize: '40', concurrency: '3' });
    assert.equal(o.batchSize, 40);
    assert.equal(o.maxRetries, 7);
    assert.equal(o.concurrency, 3);
    assert.equal(o.pollMs, DEFAULT_WORKER_OPTIONS.pollMs);
    assert.equal(workerOptions({}).maxRetries, 5, 'default max retries');
    for (const [env, flags, source] of [
      [{ SKELDIR_WORKER_BATCH_SIZE: '0' }, {}, 'SKELDIR_WORKER_BATCH_SIZE'],
      [{}, { concurrency: '2.5' }, '--concurrency'],
      [{}, { maxRetries: '-1' }, '--max-retries'],
      [{ SKELDIR_WORKER_POLL_MS: 'soon' }, {}, 'SKELDIR_WORKER_POLL_MS'],
    ] as const) {
      assert.throws(() => workerOptions(env, flags), (e: { code?: string; message: string }) => e.code === 'worker_option_invalid' && e.message.includes(source));
    }
    assert.throws(() => workerOptions({}, { retryBaseMs: '5000', retryMaxMs: '1000' }), /below the base delay/);
  });

  test('metrics configuration: closed by default, a token or SKELDIR_METRICS_PUBLIC=1 (not both), bad values refused', () => {
    assert.deepEqual([loadConfig({}).metricsToken, loadConfig({}).metricsPublic], [undefined, false]);
    assert.equal(loadConfig({ SKELDIR_METRICS_PUBLIC: '1' }).metricsPublic, true);
    assert.equal(loadConfig({ SKELDIR_METRICS_PUBLIC: '0' }).metricsPublic, false);
    assert.equal(loadConfig({ SKELDIR_METRICS_TOKEN: 'a'.repeat(16) }).metricsToken, 'a'.repeat(16));
    assert.throws(() => loadConfig({ SKELDIR_METRICS_PUBLIC: 'yes' }), /SKELDIR_METRICS_PUBLIC must be 1/);
    assert.throws(() => loadConfig({ SKELDIR_METRICS_TOKEN: 'short' }), /SKELDIR_METRICS_TOKEN must be at least 16/);
    assert.throws(() => loadConfig({ SKELDIR_METRICS_TOKEN: 'sixteen chars with spaces' }), /without spaces/);
    assert.throws(() => loadConfig({ SKELDIR_METRICS_TOKEN: 'a'.repeat(16), SKELDIR_METRICS_PUBLIC: '1' }), /contradict/);
  });

  test('retry delays: equal jitter within [ceiling/2, ceiling], ceilings doubling to the cap, delays growing until it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 40, maxLength: 40 }),
        (base, capFactor, randoms) => {
          const max = base * capFactor;
          let previous = 0;
          for (let n = 1; n <= 40; n++) {
            const ceiling = retryCeilingMs(n, base, max);
            assert.equal(ceiling, Math.min(max, base * 2 ** (n - 1)));
            const d = retryDelayMs(n, base, max, () => randoms[n - 1]!);
            assert.ok(d >= Math.floor(ceiling / 2) && d <= ceiling, `delay ${d} within [${ceiling / 2}, ${ceiling}]`);
            if (base * 2 ** (n - 1) <= max) assert.ok(d >= previous, `delay ${n} (${d}) >= delay ${n - 1} (${previous})`);
            previous = d;
          }
        },
      ),
      { seed },
    );
  });
});

describe('the claim', () => {
  /** EXPLAIN of the claim function's own body, run as its owner with its own settings (ANALYZE runs it: rolled back). */
  async function claimPlan(limit: number, analyze: boolean): Promise<{ plan: string; src: string }> {
    const fn = (await su.query<{ prosrc: string; config: string[] }>(`SELECT prosrc, proconfig AS config FROM pg_proc WHERE proname = 'skeldir_claim_due_events'`)).rows[0]!;
    await su.query('BEGIN');
    try {
      await su.query('SET LOCAL ROLE skeldir_system');
      for (const setting of fn.config) {
        const [name, value] = setting.split(/=(.*)/s) as [string, string];
        await su.query(`SELECT set_config($1, $2, true)`, [name, value]);
      }
      await su.query(`PREPARE claim_plan(integer) AS ${fn.prosrc}`);
      const rows = (await su.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${analyze ? '(ANALYZE, COSTS OFF, TIMING OFF)' : ''} EXECUTE claim_plan(${limit})`)).rows;
      return { plan: rows.map((r) => r['QUERY PLAN']).join('\n'), src: fn.prosrc };
    } finally {
      await su.query('ROLLBACK');
      await su.query('DEALLOCATE ALL'); // prepared statements outlive the transaction
    }
  }

  /**
   * Citus: EXPLAIN of the worker's per-tenant claim (CLAIM_TENANT_SQL, the values in place of its
   * parameters), as the application role in the tenant's context with the claim's planner
   * settings (CLAIM_TENANT_SETTINGS), as the worker runs it.
   */
  async function tenantClaimPlan(tenantId: string, limit: number, analyze: boolean): Promise<string> {
    const sql = CLAIM_TENANT_SQL.replaceAll('$1::uuid', `'${tenantId}'::uuid`).replaceAll('$2::integer', String(limit)).replaceAll('$3::uuid[]', `'{}'::uuid[]`).replaceAll('$4::timestamptz', 'now()');
    return withTenant(app, tenantId, async (c) => {
      const rows = await withLocalSettings(c, CLAIM_TENANT_SETTINGS, async () =>
        (await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${analyze ? '(ANALYZE, COSTS OFF, TIMING OFF)' : ''} ${sql}`)).rows);
      if (analyze) await c.query('ROLLBACK; BEGIN'); // its locks go with it
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    });
  }

  test('locks due pending events through the partial indexes (EXPLAIN of the function body)', async (t) => {
    cleanUp(t, 'DELETE FROM attribution_events; DELETE FROM test_processed_log');
    // A realistic table: most rows processed, a few pending; statistics up to date.
    await insertPendingEvents(app, tenantA, journeys({ events: 3000, touches: 5, conversionRate: 0, seed: 3 }));
    await su.query(`UPDATE attribution_events SET processing_status = 'processed'`);
    await insertPendingEvents(app, tenantA, journeys({ events: 20, touches: 5, conversionRate: 0, seed: 4 }));
    await su.query('ANALYZE attribution_events');
    if (citus) {
      // The function's body is one statement over all tenants, which Citus refuses (FOR UPDATE
      // across shards): the worker claims per tenant there. The same checks on that statement,
      // plus the routing: one task, the tenant's shard.
      const plan = await tenantClaimPlan(tenantA, 100, false);
      assert.match(plan, /Task Count: 1\b/, plan);
      assert.match(plan, /LockRows/, plan);
      assert.match(plan, /Index Scan using idx_events_claim_retry_tenant_\d+ on attribution_events_\d+/, plan);
      assert.match(plan, /Index Scan using idx_events_claim_new_tenant_\d+ on attribution_events_\d+/, plan);
      assert.doesNotMatch(plan, /Seq Scan|Sort|Bitmap/, plan);
      assert.equal(CLAIM_TENANT_SQL.match(/FOR UPDATE SKIP LOCKED/g)?.length, 2);
      return;
    }
    const { plan, src } = await claimPlan(100, false);
    assert.match(plan, /LockRows/, plan);
    assert.match(plan, /Index Scan using idx_events_claim_retry on attribution_events/, plan);
    assert.match(plan, /Index Scan using idx_events_claim_new on attribution_events/, plan);
    assert.doesNotMatch(plan, /Seq Scan|Sort|Bitmap/, plan);
    assert.equal(src.match(/FOR UPDATE SKIP LOCKED/g)?.length, 2);
  });

  test('with a backlog of retries not yet due, the claim reads only what it locks (EXPLAIN ANALYZE: nothing removed by a filter)', async (t) => {
    cleanUp(t, 'DELETE FROM attribution_events; DELETE FROM test_processed_log');
    // The review's shape, scaled down: processed rows, 3,000 retries waiting, 30 due retries, 30 new.
    await insertPendingEvents(app, tenantA, journeys({ events: 3000, touches: 5, conversionRate: 0, seed: 5 }));
    await su.query(`UPDATE attribution_events SET processing_status = 'processed'`);
    const waiting = await insertPendingEvents(app, tenantB, journeys({ events: 3000, touches: 5, conversionRate: 0, seed: 6 }));
    await su.query(`UPDATE attribution_events SET retry_count = 1, next_attempt_at = now() + interval '1 hour' WHERE id = ANY($1)`, [waiting]);
    const due = await insertPendingEvents(app, tenantB, journeys({ events: 30, touches: 5, conversionRate: 0, seed: 7 }));
    await su.query(`UPDATE attribution_events SET retry_count = 2, next_attempt_at = now() - interval '1 minute' WHERE id = ANY($1)`, [due]);
    const fresh = await insertPendingEvents(app, tenantA, journeys({ events: 30, touches: 5, conversionRate: 0, seed: 8 }));
    await su.query('ANALYZE attribution_events');
    if (citus) {
      // Per tenant (see above): B has the waiting and the due retries, A the new events.
      for (const [tenant, expected] of [[tenantB, 30], [tenantA, 30]] as const) {
        for (const limit of [100, 10]) {
          const plan = await tenantClaimPlan(tenant, limit, true);
          assert.match(plan, /Task Count: 1\b/, plan);
          assert.doesNotMatch(plan, /Seq Scan|Sort|Bitmap/, plan);
          const removed = [...plan.matchAll(/Rows Removed by Filter: (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
          assert.equal(removed, 0, `no row read and thrown away:\n${plan}`);
          const locked = Number(/Limit \(actual rows=(\d+)/.exec(plan)?.[1]);
          assert.equal(locked, Math.min(limit, expected), plan);
        }
      }
      const tenants = await withTenant(app, tenantA, async (c) => (await dueTenants(c, 10)).tenants);
      assert.deepEqual(new Set(tenants), new Set([tenantA, tenantB]), 'both tenants have due work');
      const claimB = await withTenant(app, tenantB, async (c) => (await claimTenantEvents(c, tenantB, 100, [], new Date())).map((e) => e.id));
      assert.deepEqual(new Set(claimB), new Set(due), 'the due retries, no waiting one');
      const claimA = await withTenant(app, tenantA, async (c) => (await claimTenantEvents(c, tenantA, 100, fresh.slice(0, 5), new Date())).map((e) => e.id));
      assert.deepEqual(new Set(claimA), new Set(fresh.slice(5)), 'the new events, the ones set aside left out');
      return;
    }
    for (const limit of [100, 10]) {
      const { plan } = await claimPlan(limit, true);
      assert.doesNotMatch(plan, /Seq Scan|Sort|Bitmap/, plan);
      const removed = [...plan.matchAll(/Rows Removed by Filter: (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
      assert.equal(removed, 0, `no row read and thrown away:\n${plan}`);
      const locked = Number(/^Limit \(actual rows=(\d+)/m.exec(plan)?.[1]);
      assert.equal(locked, Math.min(limit, 60), plan);
    }
    // Due retries first (in due order), then the new events; no waiting retry.
    const claimed = await withTenant(app, tenantA, async (c) => (await c.query<{ id: string }>('SELECT id FROM skeldir_claim_due_events(100)')).rows.map((r) => r.id));
    assert.deepEqual(new Set(claimed.slice(0, 30)), new Set(due));
    assert.deepEqual(new Set(claimed.slice(30)), new Set(fresh));
  });

  test('the per-tenant claim runs with the claim function\'s planner settings, and only the claim does', async (t) => {
    if (!citus) {
      // One server: the function carries them itself; the per-tenant claim (Citus) must use the same.
      const config = (await su.query<{ config: string[] }>(`SELECT proconfig AS config FROM pg_proc WHERE proname = 'skeldir_claim_due_events'`)).rows[0]!.config;
      const planner = Object.fromEntries(config.map((c) => c.split('=') as [string, string]).filter(([n]) => n !== 'search_path'));
      assert.deepEqual(planner, { ...CLAIM_TENANT_SETTINGS });
      return;
    }
    // A batch of the worker (processBatch, per tenant as on Citus) over two tenants' events, the
    // settings read on its connection just before each claim and each marking processed.
    cleanUp(t, 'DELETE FROM attribution_events; DELETE FROM test_processed_log; DELETE FROM test_allocation_log', 'DELETE FROM worker_throughput');
    await insertPendingEvents(app, tenantA, journeys({ events: 3, touches: 3, conversionRate: 0, seed: 9 }));
    await insertPendingEvents(app, tenantB, journeys({ events: 3, touches: 3, conversionRate: 0, seed: 10 }));
    const client = await app.connect();
    const query = client.query.bind(client) as (text: string, values?: unknown[]) => Promise<pg.QueryResult>;
    const seen: [string, string][] = [];
    const names = Object.keys(CLAIM_TENANT_SETTINGS);
    (client as unknown as { query: typeof query }).query = async (text, values) => {
      const kind = text === CLAIM_TENANT_SQL ? 'claim' : /SET processing_status = 'processed'/.test(text) ? 'processed' : undefined;
      if (kind) seen.push([kind, (await query(`SELECT array_to_string(array_agg(current_setting(n) ORDER BY n), ',') AS s FROM unnest($1::text[]) n`, [names])).rows[0].s]);
      return query(text, values);
    };
    try {
      const r = await processBatch(client, { ...FAST, statementTimeoutMs: 30_000, instanceId: randomUUID(), slot: 0, perTenantClaim: true });
      assert.equal(r.claimed, 6);
    } finally {
      (client as unknown as { query: typeof query }).query = query;
      client.release();
    }
    assert.deepEqual(seen.filter(([k]) => k === 'claim').map(([, v]) => v), ['off,off,off', 'off,off,off'], 'each tenant\'s claim with sorts and bitmap scans off');
    assert.deepEqual(seen.filter(([k]) => k === 'processed').map(([, v]) => v), ['on,on,on', 'on,on,on'], 'the processing after it with the session\'s settings');
  });

  test('the system role sees and locks pending rows only, reads only the claim columns, and can change nothing', async (t) => {
    cleanUp(t, 'DELETE FROM attribution_events; DELETE FROM test_processed_log');
    const [pending] = await insertPendingEvents(app, tenantA, [{ type: 'touchpoint', channel: 'email', session: randomUUID(), at: new Date() }]);
    const [done] = await insertPendingEvents(app, tenantB, [{ type: 'touchpoint', channel: 'email', session: randomUUID(), at: new Date() }]);
    await su.query(`UPDATE attribution_events SET processing_status = 'processed' WHERE id = $1`, [done]);
    const fn = (await su.query<{ owner: string; definer: boolean; acl: string }>(
      `SELECT pg_get_userbyid(proowner) AS owner, prosecdef AS definer, array_to_string(proacl, ',') AS acl FROM pg_proc WHERE proname = 'skeldir_claim_due_events'`,
    )).rows[0]!;
    assert.equal(fn.owner, 'skeldir_system');
    assert.equal(fn.definer, true);
    assert.doesNotMatch(fn.acl, /(^|,)=X/, 'PUBLIC may not execute it');
    if (citus) {
      const due = (await su.query<{ owner: string; definer: boolean; acl: string }>(
        `SELECT pg_get_userbyid(proowner) AS owner, prosecdef AS definer, array_to_string(proacl, ',') AS acl FROM pg_proc WHERE proname = 'skeldir_due_tenants'`,
      )).rows[0]!;
      assert.deepEqual([due.owner, due.definer], ['skeldir_system', true], 'the per-tenant claim\'s tenant list: as the system role');
      assert.doesNotMatch(due.acl, /(^|,)=X/, 'PUBLIC may not execute it');
      assert.match(due.acl, /skeldir_app=X/);
      // The one-statement claim is refused with a reason (a worker of an older release).
      await assert.rejects(withTenant(app, tenantA, (c) => c.query('SELECT * FROM skeldir_claim_due_events(1)')), /on Citus the worker claims per tenant/);
    }
    await su.query('BEGIN');
    try {
      await su.query('SET LOCAL ROLE skeldir_system');
      const seen = (await su.query<{ id: string }>('SELECT id FROM attribution_events')).rows.map((r) => r.id);
      assert.deepEqual(seen, [pending], 'only the pending row, of any tenant');
      const refused = async (sql: string, why: RegExp) => {
        await su.query('SAVEPOINT s');
        await assert.rejects(su.query(sql), why, sql);
        await su.query('ROLLBACK TO SAVEPOINT s');
      };
      await refused('SELECT raw_payload FROM attribution_events', /permission denied/);
      await refused(`UPDATE attribution_events SET processing_status = 'processed'`, /row-level security/);
      await refused(`UPDATE attribution_events SET retry_count = 9`, /permission denied/);
      await refused(`DELETE FROM attribution_events`, /permission denied/);
      await refused(`INSERT INTO dead_events (tenant_id, source, error_code, error_detail, raw_payload, event_type, error_type, error_message)
        VALUES ('${tenantA}', 'x', 'x', '{}', '{}', 'x', 'x', 'x')`, /permission denied/);
      // On Citus with the tenant named: FOR UPDATE across shards is refused there.
      const locked = (await su.query<{ id: string }>(`SELECT id FROM attribution_events ${citus ? `WHERE tenant_id = '${tenantA}'` : ''} FOR UPDATE SKIP LOCKED`)).rows.map((r) => r.id);
      assert.deepEqual(locked, [pending], 'it may lock the pending row');
    } finally {
      await su.query('ROLLBACK');
    }
    // The application role without a tenant context sees nothing, even pending rows.
    assert.equal((await app.query('SELECT count(*)::int AS n FROM attribution_events')).rows[0].n, 0);
    // The owner is a member of the system role (it hands functions to it), yet the system policies
    // do not widen its view: in tenant B's context it sees B's rows only, none of A's pending ones.
    const owner = db.ownerPool({ max: 1 });
    try {
      await su.query(`INSERT INTO dead_events (tenant_id, source, event_type, error_type, error_code, error_message, error_detail, raw_payload)
        VALUES ($1, 'worker', 'x', 'x', 'x', 'x', '{}', '{}')`, [tenantA]);
      const seen = await withTenant(owner, tenantB, async (c) => ({
        events: (await c.query('SELECT id FROM attribution_events')).rows.map((r) => r.id),
        dead: (await c.query('SELECT count(*)::int AS n FROM dead_events')).rows[0].n,
      }));
      assert.deepEqual(seen, { events: [done], dead: 0 });
      assert.equal((await owner.query('SELECT count(*)::int AS n FROM attribution_events')).rows[0].n, 0, 'no context, no rows');
    } finally {
      await owner.end();
      await su.query('DELETE FROM dead_events');
    }
  });
});

describe('processing', () => {
  test('touchpoints and conversions of several tenants: processed once each, allocations committed with them', async () => {
    await insertPendingEvents(app, tenantA, journeys({ events: 600, touches: 4, conversionRate: 0.3, seed: 11 }));
    await insertPendingEvents(app, tenantB, journeys({ events: 400, touches: 3, conversionRate: 0.3, seed: 12 }));
    const batches: number[] = [];
    await withWorker({}, async (w) => {
      w.on('batch', (b) => batches.push(b.claimed));
      await until(queueEmpty);
    });
    const { models, conversions } = await assertProcessedExactlyOnce(su, 1000);
    assert.ok(conversions > 50, `${conversions} conversions`);
    assert.ok(models.length > 0, 'the attribution engine wrote its models');
    assert.ok(Math.max(...batches) <= FAST.batchSize, 'batches of at most batchSize');
    const nullTimes = (await su.query(`SELECT count(*)::int AS n FROM attribution_events WHERE processed_at IS NULL OR retry_count <> 0`)).rows[0].n;
    assert.equal(nullTimes, 0, 'processed_at set, no retries counted');
    const counted = (await su.query(`SELECT sum(processed)::int AS n FROM worker_throughput`)).rows[0].n;
    assert.equal(counted, 1000, 'the throughput counters match, exactly');
  });

  test('a conversion without a value is a permanent data error: dead-lettered at once with every field', async () => {
    const session = randomUUID();
    const [id] = await insertPendingEvents(app, tenantA, [{ type: 'conversion', channel: 'email', session, at: new Date('2026-10-01T00:00:00Z'), value: null }]);
    const failures: FailureReport[] = [];
    await withWorker({}, async (w) => {
      w.on('failure', (f) => failures.push(f));
      await until(queueEmpty);
    });
    assert.equal(failures.length, 1, 'one attempt only');
    assert.equal(failures[0]!.outcome, 'dead');
    const dead = await withTenant(app, tenantA, async (c) => (await c.query(`SELECT * FROM dead_events WHERE event_id = $1`, [id])).rows);
    assert.equal(dead.length, 1);
    const d = dead[0]!;
    const event = await withTenant(app, tenantA, async (c) => (await c.query(`SELECT * FROM attribution_events WHERE id = $1`, [id])).rows[0]);
    assert.equal(d.tenant_id, tenantA);
    assert.equal(d.source, 'worker');
    assert.equal(d.event_type, 'conversion');
    assert.equal(d.error_type, 'data');
    assert.equal(d.error_code, 'attribution_conversion_without_value');
    assert.match(d.error_message, /no conversion_value_cents/);
    assert.match(d.error_traceback, /AttributionError/);
    assert.equal(d.error_detail.code, 'attribution_conversion_without_value');
    assert.equal(d.error_detail.attempts, 1);
    assert.equal(d.retry_count, 1);
    assert.deepEqual(d.raw_payload, event.raw_payload);
    assert.equal(d.remediation_status, 'pending');
    assert.equal(d.resolved_at, null);
    assert.equal(event.processing_status, 'failed');
    assert.equal(event.retry_count, 1);
    assert.equal(event.last_error_type, 'data');
    assert.equal((await su.query(`SELECT count(*)::int AS n FROM attribution_allocations WHERE event_id = $1`, [id])).rows[0].n, 0, 'no allocations');
  });

  test('an unknown event type is a validation error, dead-lettered at once', async () => {
    const [id] = await insertPendingEvents(app, tenantB, [{ type: 'pageview', channel: 'email', session: randomUUID(), at: new Date() }]);
    await withWorker({}, () => until(queueEmpty));
    const d = await withTenant(app, tenantB, async (c) => (await c.query(`SELECT * FROM dead_events WHERE event_id = $1`, [id])).rows[0]);
    assert.equal(d.error_type, 'validation');
    assert.equal(d.error_code, 'event_type_unknown');
    assert.equal(d.event_type, 'pageview');
    assert.equal(d.retry_count, 1);
  });

  test('a poison event retries with growing delays, dies after the last retry, and `dlq retry` after the fix resolves it', async (t) => {
    const events = journeys({ events: 30, touches: 5, conversionRate: 0, seed: 21 });
    const ids = await insertPendingEvents(app, tenantA, events);
    const poison = ids[7]!;
    // A fault in the database for this one event (a bug a deploy will fix): the bulk update of its
    // batch fails, the worker isolates it, the 29 others are processed.
    await su.query(`CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'poisoned event %', NEW.id USING DETAIL = 'the poison detail', HINT = 'drop the trigger'; END $$`);
    await su.query(`CREATE TRIGGER trg_test_poison BEFORE UPDATE OF processing_status ON attribution_events
      FOR EACH ROW WHEN (NEW.id = '${poison}' AND NEW.processing_status = 'processed') EXECUTE FUNCTION test_poison()`);
    cleanUp(t, 'DROP TRIGGER IF EXISTS trg_test_poison ON attribution_events', 'DELETE FROM attribution_events; DELETE FROM test_processed_log; DELETE FROM test_allocation_log');
    const failures: FailureReport[] = [];
    const maxRetries = 3;
    const options = { maxRetries, retryBaseMs: 300, retryMaxMs: 60_000 };
    await withWorker(options, async (w) => {
      w.on('failure', (f) => f.eventId === poison && failures.push(f));
      await until(`SELECT processing_status = 'failed' AS ok FROM attribution_events WHERE id = $1`, [poison]);
    });
    assert.deepEqual(failures.map((f) => [f.attempt, f.outcome]), [[1, 'retry'], [2, 'retry'], [3, 'retry'], [4, 'dead']]);
    for (let i = 0; i < failures.length; i++) {
      const f = failures[i]!;
      assert.equal(f.failure.type, 'internal');
      assert.equal(f.failure.code, 'sqlstate_P0001');
      if (f.outcome === 'retry') {
        const ceiling = retryCeilingMs(f.attempt, options.retryBaseMs, options.retryMaxMs);
        assert.ok(f.delayMs! >= ceiling / 2 && f.delayMs! <= ceiling, `delay ${f.delayMs} within [${ceiling / 2}, ${ceiling}]`);
        if (i > 0) assert.ok(f.delayMs! >= failures[i - 1]!.delayMs!, 'delays grow');
        // By the database's clock: the next attempt was not claimed before it was due.
        assert.ok(failures[i + 1]!.claimedAt.getTime() >= f.nextAttemptAt!.getTime(), `attempt ${f.attempt + 1} claimed after its due time`);
      }
    }
    const statuses = (await su.query(`SELECT processing_status AS s, count(*)::int AS n FROM attribution_events WHERE id = ANY($1) GROUP BY 1 ORDER BY 1`, [ids])).rows;
    assert.deepEqual(statuses, [{ s: 'failed', n: 1 }, { s: 'processed', n: 29 }], 'the others were processed');
    const d = await withTenant(app, tenantA, async (c) => (await c.query(`SELECT * FROM dead_events WHERE event_id = $1`, [poison])).rows[0]);
    assert.equal(d.error_type, 'internal');
    assert.equal(d.error_code, 'sqlstate_P0001');
    assert.match(d.error_message, /poisoned event/);
    // node-postgres's stack, then what PostgreSQL said about where the error arose.
    // (Citus adds the shard's node to the context: "while executing command on <host:port>".)
    assert.match(d.error_traceback, /^error: poisoned event[\s\S]*\nDETAIL: the poison detail\nHINT: drop the trigger\nCONTEXT: PL\/pgSQL function test_poison\(\) line \d+ at RAISE(\nwhile executing command on [\d.]+:\d+)?$/);
    assert.equal(d.retry_count, maxRetries + 1);
    assert.equal(d.event_type, 'touchpoint');
    assert.equal(d.remediation_status, 'pending');
    // A retry before the fix fails again: the same dead event is reopened (pending), not duplicated.
    let r = await runCli(['dlq', 'retry', d.id, '--tenant', tenantA, '--notes', 'trying once more'], { env: { DATABASE_URL: db.url } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pending -> in_progress; event .* re-queued/);
    await withWorker(options, () => until(`SELECT remediation_status = 'pending' AS ok FROM dead_events WHERE id = $1`, [d.id]));
    let after = (await su.query(`SELECT * FROM dead_events WHERE event_id = $1`, [poison])).rows;
    assert.equal(after.length, 1, 'one dead event per event');
    assert.equal(after[0].retry_count, maxRetries + 2, 'one more attempt counted');
    assert.match(after[0].remediation_notes, /cli: retry: trying once more\n.*worker: failed again/);

    // The fix, then a retry: processed and resolved.
    await su.query('DROP TRIGGER trg_test_poison ON attribution_events');
    r = await runCli(['dlq', 'retry', d.id, '--tenant', tenantA, '--notes', 'trigger removed'], { env: { DATABASE_URL: db.url } });
    assert.equal(r.code, 0, r.stderr);
    await withWorker(options, () => until(`SELECT remediation_status = 'resolved' AS ok FROM dead_events WHERE id = $1`, [d.id]));
    // Joined on tenant_id too: Citus joins distributed tables on their distribution column.
    after = (await su.query(`SELECT d.*, e.processing_status AS event_status, e.retry_count AS event_retries
      FROM dead_events d JOIN attribution_events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id WHERE d.id = $1`, [d.id])).rows;
    assert.equal(after[0].event_status, 'processed');
    assert.ok(after[0].resolved_at instanceof Date);
    assert.ok(after[0].last_retry_at instanceof Date);
    assert.equal(after[0].retry_count, maxRetries + 3, 'retry_count counts the retry');
    assert.match(after[0].remediation_notes, /cli: retry: trigger removed\n.*worker: retry succeeded/);
  });

  test('an event retried from the dead-letter queue gets exactly one more attempt, even with retries left', async (t) => {
    // Dead at once (permanent: no value) with retry_count 1 of maxRetries 5.
    const [id] = await insertPendingEvents(app, tenantA, [{ type: 'conversion', channel: 'email', session: randomUUID(), at: new Date('2026-10-01T00:00:00Z'), value: null }]);
    const failures: FailureReport[] = [];
    const options = { maxRetries: 5, retryBaseMs: 200 };
    await withWorker(options, async (w) => {
      w.on('failure', (f) => f.eventId === id && failures.push(f));
      await until(`SELECT processing_status = 'failed' AS ok FROM attribution_events WHERE id = $1`, [id]);
    });
    const dead = (await su.query(`SELECT id, retry_count FROM dead_events WHERE event_id = $1`, [id])).rows[0];
    // "Fixed" the value, but a (non-permanent) fault remains: the retry fails with attempts 2 <= 5.
    await su.query(`UPDATE attribution_events SET conversion_value_cents = 700 WHERE id = $1`, [id]);
    await su.query(`CREATE FUNCTION test_still_broken() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'still broken'; END $$`);
    await su.query(`CREATE TRIGGER trg_test_still_broken BEFORE UPDATE OF processing_status ON attribution_events
      FOR EACH ROW WHEN (NEW.id = '${id}' AND NEW.processing_status = 'processed') EXECUTE FUNCTION test_still_broken()`);
    cleanUp(t, 'DROP TRIGGER IF EXISTS trg_test_still_broken ON attribution_events', 'DELETE FROM attribution_events; DELETE FROM test_processed_log');
    const r = await runCli(['dlq', 'retry', dead.id, '--tenant', tenantA], { env: { DATABASE_URL: db.url } });
    assert.equal(r.code, 0, r.stderr);
    await withWorker(options, async (w) => {
      w.on('failure', (f) => f.eventId === id && failures.push(f));
      await until(`SELECT remediation_status = 'pending' AS ok FROM dead_events WHERE id = $1`, [dead.id]);
    });
    assert.deepEqual(failures.map((f) => [f.attempt, f.outcome, f.failure.type]), [[1, 'dead', 'data'], [2, 'dead', 'internal']], 'no backoff round after the retry');
    const after = (await su.query(`SELECT d.remediation_status, d.error_message, d.remediation_notes, e.processing_status, e.retry_count, e.next_attempt_at
      FROM dead_events d JOIN attribution_events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id WHERE d.id = $1`, [dead.id])).rows[0];
    assert.equal(after.processing_status, 'failed');
    assert.equal(after.retry_count, 2);
    assert.equal(after.next_attempt_at, null);
    assert.match(after.error_message, /still broken/);
    assert.match(after.remediation_notes, /worker: failed again \(the one attempt of a retry from the dead-letter queue\)/);
  });

  test('transient errors are repeated in place and burn no retry; a lost connection rolls the batch back and it is redone', async (t) => {
    // One DDL statement per query: Citus forwards DDL as the query string, and a worker refuses two commands in one.
    cleanUp(t, 'DROP TRIGGER IF EXISTS trg_test_flaky ON attribution_events', 'DROP TRIGGER IF EXISTS trg_test_kill ON attribution_events', 'DELETE FROM attribution_events; DELETE FROM test_processed_log; DELETE FROM test_allocation_log');
    const ids = await insertPendingEvents(app, tenantB, journeys({ events: 40, touches: 4, conversionRate: 0.25, seed: 31 }));
    // Two serialization failures, then success (a sequence ignores rollbacks).
    await sequence('test_flaky_seq');
    await su.query(`CREATE FUNCTION test_flaky() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF nextval('test_flaky_seq') <= 2 THEN RAISE EXCEPTION 'could not serialize' USING ERRCODE = '40001'; END IF; RETURN NEW; END $$`);
    await su.query(`CREATE TRIGGER trg_test_flaky BEFORE UPDATE OF processing_status ON attribution_events
      FOR EACH ROW WHEN (NEW.id = '${ids[9]}' AND NEW.processing_status = 'processed') EXECUTE FUNCTION test_flaky()`);
    // Once, the connection of the worker processing event 20 is killed mid-batch.
    await sequence('test_kill_seq');
    await su.query(`CREATE FUNCTION test_kill() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
      BEGIN IF nextval('test_kill_seq') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN NEW; END $$`);
    await su.query(`GRANT EXECUTE ON FUNCTION test_kill() TO skeldir_app`);
    await su.query(`CREATE TRIGGER trg_test_kill BEFORE UPDATE OF processing_status ON attribution_events
      FOR EACH ROW WHEN (NEW.id = '${ids[20]}' AND NEW.processing_status = 'processed') EXECUTE FUNCTION test_kill()`);
    const failures: FailureReport[] = [];
    let lost = 0;
    await withWorker({ concurrency: 1 }, async (w) => {
      w.on('failure', (f) => failures.push(f));
      w.on('connection-lost', () => lost++);
      await until(queueEmpty);
    });
    assert.deepEqual(failures, [], 'no attempt failed');
    assert.equal(lost, 1, 'the connection was lost once');
    assert.ok((await nextval('test_flaky_seq')) >= 4, 'failed twice, then passed');
    const rows = (await su.query(`SELECT count(*) FILTER (WHERE processing_status = 'processed' AND retry_count = 0)::int AS ok FROM attribution_events`)).rows[0];
    assert.equal(rows.ok, 40, 'all processed, none with a retry counted');
    await assertProcessedExactlyOnce(su, 40);
  });

  test('NOTIFY skeldir_events wakes an idle worker (polling is an hour away)', async (t) => {
    cleanUp(t, 'DELETE FROM attribution_events; DELETE FROM test_processed_log');
    await withWorker({ pollMs: 3_600_000, concurrency: 1 }, async (w) => {
      const idle = once(w, 'idle');
      await idle; // it has looked once and found nothing
      const [id] = await withTenant(app, tenantA, async (c) => {
        const r = await c.query(
          `INSERT INTO attribution_events (tenant_id, event_type, channel, session_id, event_timestamp, occurred_at, revenue_cents, idempotency_key, raw_payload)
           VALUES ($1::uuid, 'touchpoint', 'email', gen_random_uuid(), now(), now(), 0, $1::text || ':ext:notify-test', '{}') RETURNING id`,
          [tenantA],
        );
        await c.query(`SELECT pg_notify('skeldir_events', $1)`, [tenantA]);
        return [r.rows[0].id as string];
      });
      await until(`SELECT processing_status = 'processed' AS ok FROM attribution_events WHERE id = $1`, [id]);
    });
  });
});

describe('one bad event blocks nothing', () => {
  test('error texts are cut by code point, lone surrogates and NUL replaced: always storable text (property)', () => {
    const unit = fc.oneof(fc.constantFrom('a', '\u0000', '\ud83d', '\ude00', '😀', 'é', '\uFFFF'), fc.string({ unit: 'binary', maxLength: 3 }));
    fc.assert(
      fc.property(fc.array(unit, { maxLength: 60 }), fc.integer({ min: 2, max: 40 }), (parts, max) => {
        const s = parts.join('');
        const t = truncate(s, max);
        const points = Array.from(t);
        assert.ok(points.length <= max, `${points.length} code points > ${max}`);
        assert.ok(!/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]|\u0000/.test(t), JSON.stringify(t));
        assert.equal(Buffer.from(t, 'utf8').toString('utf8'), t, 'survives UTF-8');
        if (Array.from(s).length <= max) assert.equal(points.length, Array.from(s).length, 'short texts keep every code point');
        else assert.equal(points[points.length - 1], '…');
      }),
      { seed },
    );
    assert.equal(truncate('a'.repeat(3998) + '😀b', 4000), 'a'.repeat(3998) + '😀b');
    assert.equal(truncate('a'.repeat(3998) + '😀bc', 4000), 'a'.repeat(3998) + '😀…', 'the cut falls after the pair');
    assert.equal(truncate('a'.repeat(3998) + 'b😀c', 4000), 'a'.repeat(3998) + 'b…', 'or before it, never inside');
  });

  test("the review's trigger: a 4,000-code-point message with a surrogate pair at the cut is stored whole, the queue goes on", async (t) => {
    cleanUp(t, 'DROP TRIGGER IF EXISTS trg_test_long_error ON attribution_events', 'DELETE FROM attribution_events; DELETE FROM test_processed_log');
    const ids = await insertPendingEvents(app, tenantA, journeys({ events: 30, touches: 5, conversionRate: 0, seed: 61 }));
    const poison = ids[0]!;
    await su.query(`UPDATE attribution_events SET processed_at = now() - interval '1 hour' WHERE id = $1`, [poison]); // head of the queue
    await su.query(`CREATE FUNCTION test_long_error() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION '%', repeat('a', 3998) || '😀' || 'b'; END $$`);
    await su.query(`CREATE TRIGGER trg_test_long_error BEFORE UPDATE OF processing_status ON attribution_events
      FOR EACH ROW WHEN (NEW.id = '${poison}' AND NEW.processing_status = 'processed') EXECUTE FUNCTION test_long_error()`);
    const batchErrors: unknown[] = [];
    await withWorker({ maxRetries: 0, batchSize: 10 }, async (w) => {
      w.on('batch-error', ({ error }) => batchErrors.push(error));
      await until(queueEmpty);
    });
    assert.deepEqual(batchErrors, [], 'no batch failed');
    const d = (await su.query(`SELECT error_message, error_detail FROM dead_events WHERE event_id = $1`, [poison])).rows[0];
    assert.equal(d.error_message, 'a'.repeat(3998) + '😀b');
    assert.equal(d.error_detail.message, 'a'.repeat(3998) + '😀b');
    const statuses = (await su.query(`SELECT processing_status AS s, count(*)::int AS n FROM attribution_events GROUP BY 1 ORDER BY 1`)).rows;
    assert.deepEqual(statuses, [{ s: 'failed', n: 1 }, { s: 'processed', n: 29 }]);
  });

  test('a failure record the database refuses is written again in minimal form (no traceback, ASCII message)', async (t) => {
    cleanUp(t, 'DROP TRIGGER IF EXISTS trg_test_refuse_trace ON dead_events', 'DELETE FROM attribution_events; DELETE FROM test_processed_log');
    const [id] = await insertPendingEvents(app, tenantB, [{ type: 'pageview', channel: 'email', session: randomUUID(), at: new Date() }]);
    await su.query(`CREATE FUNCTION test_refuse_trace() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'no tracebacks here'; END $$`);
    await su.query(`CREATE TRIGGER trg_test_refuse_trace BEFORE INSERT ON dead_events
      FOR EACH ROW WHEN (NEW.error_traceback IS NOT NULL) EXECUTE FUNCTION test_refuse_trace()`);
    await withWorker({}, () => until(queueEmpty));
    await su.query(`DROP TRIGGER trg_test_refuse_trace ON dead_events`);
    const d = (await su.query(`SELECT * FROM dead_events WHERE event_id = $1`, [id])).rows[0];
    assert.equal(d.error_type, 'validation');
    assert.equal(d.error_code, 'event_type_unknown');
    assert.equal(d.error_traceback, null);
    assert.match(d.error_message, /^event type "pageview" is neither touchpoint nor conversion \[the full failure could not be recorded: P0001: no tracebacks here\]$/);
    assert.equal(d.retry_count, 1);
  });

  test('events whose batch fails as a whole (failure unrecordable; a COMMIT refused) are set aside, the rest is processed, they are tried again later', async (t) => {
    // One DDL statement per query (Citus).
    cleanUp(t, 'DROP TRIGGER IF EXISTS trg_test_frozen ON attribution_events', 'DROP TRIGGER IF EXISTS trg_test_deferred ON attribution_events',
      'DELETE FROM attribution_allocations; DELETE FROM attribution_events; DELETE FROM test_processed_log; DELETE FROM test_allocation_log');
    const ids = await insertPendingEvents(app, tenantA, journeys({ events: 60, touches: 5, conversionRate: 0.2, seed: 62 }));
    const [a, b] = [ids[0]!, ids[1]!];
    // Both at the head of the queue: every first claim gets them.
    await su.query(`UPDATE attribution_events SET processed_at = now() - interval '2 hours' WHERE id = $1`, [a]);
    await su.query(`UPDATE attribution_events SET processed_at = now() - interval '1 hour' WHERE id = $1`, [b]);
    // a: every change of the row fails, so neither processing nor recording the failure can succeed.
    await su.query(`CREATE FUNCTION test_frozen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'row frozen'; END $$`);
    await su.query(`CREATE TRIGGER trg_test_frozen BEFORE UPDATE ON attribution_events FOR EACH ROW WHEN (NEW.id = '${a}') EXECUTE FUNCTION test_frozen()`);
    // b: its change fails only at COMMIT (a deferred constraint trigger): the batch cannot tell which event broke it.
    await su.query(`CREATE CONSTRAINT TRIGGER trg_test_deferred AFTER UPDATE ON attribution_events DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW WHEN (NEW.id = '${b}') EXECUTE FUNCTION test_frozen()`);
    const setAside: string[] = [];
    let batchErrors = 0;
    const options = { batchSize: 10, retryBaseMs: 200, retryMaxMs: 1_000 };
    await withWorker(options, async (w) => {
      w.on('set-aside', (e) => setAside.push(e.eventId));
      w.on('batch-error', () => batchErrors++);
      await until(`SELECT count(*) FILTER (WHERE processing_status = 'processed') = 58 AS ok FROM attribution_events`);
      assert.ok(batchErrors >= 2, `${batchErrors} batch errors`);
      assert.deepEqual([...new Set(setAside)].sort(), [a, b].sort(), 'exactly the two bad events were set aside');
      const left = (await su.query(`SELECT id, processing_status, retry_count FROM attribution_events WHERE processing_status <> 'processed' ORDER BY id`)).rows;
      assert.deepEqual(left, [a, b].sort().map((id) => ({ id, processing_status: 'pending', retry_count: 0 })), 'left pending, untouched');
      // Once the database is fixed, the same worker processes them when their time aside (1 s here) is over.
      await su.query(`DROP TRIGGER trg_test_frozen ON attribution_events`);
      await su.query(`DROP TRIGGER trg_test_deferred ON attribution_events`);
      await until(queueEmpty);
    });
    await assertProcessedExactlyOnce(su, 60);
  });
});

describe('observability', () => {
  test('worker --status and /metrics show depth, oldest age, counters and rates, and no tenant data', async (t) => {
    cleanUp(t, 'DELETE FROM attribution_events; DELETE FROM test_processed_log');
    await insertPendingEvents(app, tenantA, journeys({ events: 3, touches: 3, conversionRate: 0, seed: 41 }));
    await su.query(`UPDATE attribution_events SET created_at = now() - interval '90 seconds'`);
    await insertPendingEvents(app, tenantB, journeys({ events: 2, touches: 2, conversionRate: 0, seed: 42 }));
    await su.query(`UPDATE attribution_events SET retry_count = 1, next_attempt_at = now() + interval '1 hour' WHERE tenant_id = $1`, [tenantB]);

    const json = await runCli(['worker', '--status', '--json'], { env: { DATABASE_URL: db.url } });
    assert.equal(json.code, 0, json.stderr);
    const s = JSON.parse(json.stdout);
    assert.equal(s.queue.pending, 5);
    assert.match(s.measured_at, INSTANT_TEXT, 'one timestamp precision: microseconds');
    assert.match(s.queue.oldest_pending_at, INSTANT_TEXT);
    assert.equal(s.queue.due, 3);
    assert.equal(s.queue.retrying, 2);
    assert.ok(s.queue.oldest_pending_age_seconds >= 90, `oldest ${s.queue.oldest_pending_age_seconds} s`);
    assert.ok(s.totals.processed >= 1000, 'processed totals of the earlier tests');
    assert.ok(s.totals.dead_lettered >= 3);
    // snake_case names throughout, like every JSON Skeldir prints.
    const names: string[] = [];
    const walk = (v: unknown) => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) (names.push(k), walk(x));
    };
    walk(s);
    assert.deepEqual(names.filter((k) => !/^[a-z0-9_]+$/.test(k)), [], 'no camelCase name');
    assert.ok('one_minute' in s.rates && 'window_seconds' in s.rates.one_minute);
    assert.ok(s.totals.failed >= 3);
    assert.ok(s.dead.pending >= 2);
    const text = await runCli(['worker', '--status'], { env: { DATABASE_URL: db.url } });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^queue: 5 pending \(3 due now, 2 waiting for a retry; 2 failed before\)$/m);
    assert.match(text.stdout, /^oldest pending: \d+\.\d (s|min) old \(arrived \d{4}-\d\d-\d\dT/m);
    assert.match(text.stdout, /^workers alive: 0$/m);

    // Closed by default: a 401 problem that says what to set.
    const closed = await buildApp({ db, config: loadConfig({}), logger: false });
    try {
      const res = await closed.inject({ method: 'GET', url: '/metrics' });
      assert.equal(res.statusCode, 401, res.body);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      assert.equal(res.json().code, 'unauthorized');
      assert.match(res.json().detail, /set SKELDIR_METRICS_TOKEN .*Authorization: Bearer <token>, or set SKELDIR_METRICS_PUBLIC=1/);
      assert.ok(!res.body.includes('skeldir_queue'), 'no figure leaks');
      assert.equal((await closed.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer anything-at-all-here' } })).statusCode, 401);
    } finally {
      await closed.close();
    }

    const server = await buildApp({ db, config: loadConfig({ SKELDIR_METRICS_PUBLIC: '1' }), logger: false });
    try {
      const res = await server.inject({ method: 'GET', url: '/metrics' });
      assert.equal(res.statusCode, 200, res.body);
      assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      const body = res.body;
      assert.match(body, /^# TYPE skeldir_queue_pending_events gauge\nskeldir_queue_pending_events 5$/m);
      assert.match(body, /^skeldir_queue_due_events 3$/m);
      const age = Number(/^skeldir_queue_oldest_pending_age_seconds ([\d.]+)$/m.exec(body)?.[1]);
      assert.ok(age >= 90, `oldest pending age ${age} s`);
      assert.match(body, /^# TYPE skeldir_worker_events_processed_total counter\nskeldir_worker_events_processed_total \d{4,}$/m);
      assert.doesNotMatch(body, /_per_second/, 'rates are for Prometheus to compute from the counters');
      assert.match(body, /^skeldir_dead_events\{remediation_status="pending"\} \d+$/m);
      for (const line of body.trim().split('\n').filter(Boolean)) assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{\w+="[^"]*"(,\w+="[^"]*")*\})? (-?[\d.e+-]+|NaN|[+-]Inf))$/, line);
      for (const t of [tenantA, tenantB]) assert.ok(!body.includes(t), 'no tenant id');
    } finally {
      await server.close();
    }
    const guarded = await buildApp({ db, config: loadConfig({ SKELDIR_METRICS_TOKEN: 'scrape-secret-0123456789' }), logger: false });
    try {
      const none = await guarded.inject({ method: 'GET', url: '/metrics' });
      assert.equal(none.statusCode, 401);
      assert.match(none.json().detail, /Authorization: Bearer <SKELDIR_METRICS_TOKEN>/);
      assert.equal((await guarded.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer wrong' } })).statusCode, 401);
      assert.equal((await guarded.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Basic scrape-secret-0123456789' } })).statusCode, 401);
      const ok = await guarded.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer scrape-secret-0123456789' } });
      assert.equal(ok.statusCode, 200);
      assert.match(ok.body, /^skeldir_queue_pending_events 5$/m);
    } finally {
      await guarded.close();
    }
  });
});

describe('a dead network', () => {
  test('connections keep TCP alive and give up connecting; a query unanswered past its client-side limit is a connection error', async () => {
    const config = clientConfig(db.url, { queryTimeoutMs: 200 });
    assert.equal(config.keepAlive, true);
    assert.ok((config.connectionTimeoutMillis ?? 0) > 0, 'connecting gives up');
    // A query the server does not answer in time (here: it sleeps; a dropped network looks the same to the client).
    const client = new pg.Client(config);
    client.on('error', () => {});
    await client.connect();
    try {
      const error = await client.query('SELECT pg_sleep(3)').then(() => null, (e: unknown) => e);
      assert.ok(error instanceof Error && /Query read timeout/.test(error.message), String(error));
      assert.equal(isConnectionError(error), true, 'the worker treats it as a lost connection: batch rolled back, nothing counted, new connection');
    } finally {
      await client.end().catch(() => {});
    }
  });
});

describe('the worker command', () => {
  test('bad options exit 2 naming them', async () => {
    const r = await runCli(['worker', '--batch-size', '0'], { env: { DATABASE_URL: db.url } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--batch-size must be an integer from 1 to 10000, got "0"/);
  });

  test('skeldir start runs the worker next to the API; every line it writes on stdout is a JSON log record', async (t) => {
    cleanUp(t, 'DELETE FROM attribution_events; DELETE FROM test_processed_log');
    const child = spawnCli(['start'], { env: { DATABASE_URL: db.url, PORT: '0', LOG_LEVEL: 'info', SKELDIR_WORKER_POLL_MS: '50' } });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    try {
      const deadline = Date.now() + 60_000;
      while (!/skeldir is running/.test(stdout)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`start did not come up: ${stdout}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const records = stdout.trim().split('\n').map((line) => JSON.parse(line) as { service: string; msg: string; level: number });
      assert.ok(records.some((r) => r.service === 'api' && /^listening on http:/.test(r.msg)), stdout);
      assert.ok(records.some((r) => r.service === 'worker' && /^instance [0-9a-f-]{36}: 2 loop\(s\) x 100 events, up to 5 retries/.test(r.msg)), stdout);
      assert.ok(records.some((r) => r.service === 'skeldir' && /^schema at head/.test(r.msg)), stdout);
      const [id] = await insertPendingEvents(app, tenantB, [{ type: 'touchpoint', channel: 'email', session: randomUUID(), at: new Date() }]);
      await until(`SELECT processing_status = 'processed' AS ok FROM attribution_events WHERE id = $1`, [id]);
      child.kill('SIGTERM');
      const [code] = (await once(child, 'close')) as [number | null];
      assert.equal(code, 0, stderr);
      for (const line of stdout.trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), `not a JSON record: ${line}`);
      assert.equal(stderr, '', 'nothing on stderr when all is well');
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('SIGTERM lets the batch in flight commit, then exits 0', async (t) => {
    cleanUp(t, 'DROP TRIGGER IF EXISTS trg_test_slow ON attribution_events');
    const ids = await insertPendingEvents(app, tenantA, journeys({ events: 300, touches: 5, conversionRate: 0, seed: 51 }));
    // One slow event keeps a batch in flight for a while.
    await su.query(`CREATE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1.5); RETURN NEW; END $$`);
    await su.query(`CREATE TRIGGER trg_test_slow BEFORE UPDATE OF processing_status ON attribution_events
      FOR EACH ROW WHEN (NEW.id = '${ids[0]}' AND NEW.processing_status = 'processed') EXECUTE FUNCTION test_slow()`);
    await su.query(`UPDATE attribution_events SET processed_at = now() - interval '1 hour' WHERE id = $1`, [ids[0]]); // first in line (before the NULLs)
    const child = spawnCli(['worker', '--batch-size', '10', '--concurrency', '1', '--poll-ms', '50'], { env: { DATABASE_URL: db.url, LOG_LEVEL: 'info' } });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.on('data', (d) => (stderr += d));
    try {
      // The slow event is in the first batch: wait until its statement is running.
      // On Citus the trigger sleeps on the shard's node: citus_stat_activity shows every node's backends.
      await until(citus
        ? `SELECT EXISTS (SELECT 1 FROM citus_stat_activity WHERE datname = current_database() AND query LIKE '%UPDATE %attribution_events%' AND wait_event = 'PgSleep') AS ok`
        : `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE '%UPDATE attribution_events%' AND wait_event = 'PgSleep') AS ok`);
      child.kill('SIGTERM');
      const [code] = (await once(child, 'close')) as [number | null];
      assert.equal(code, 0, stderr);
      assert.match(stderr, /SIGTERM: finishing the batches in flight/);
      assert.match(stderr, /"msg":"worker stopped"/);
    } finally {
      child.kill('SIGKILL');
    }
    const first = (await su.query(`SELECT processing_status FROM attribution_events WHERE id = $1`, [ids[0]])).rows[0];
    assert.equal(first.processing_status, 'processed', 'the batch in flight was finished and committed');
    const left = (await su.query(`SELECT count(*) FILTER (WHERE processing_status = 'processed')::int AS done, count(*)::int AS n FROM attribution_events`)).rows[0];
    assert.ok(left.done >= 10 && left.done < left.n, `stopped part-way: ${left.done}/${left.n}`);
    const instance = (await su.query(`SELECT stopped_at FROM worker_instances ORDER BY started_at DESC LIMIT 1`)).rows[0];
    assert.ok(instance.stopped_at instanceof Date, 'it said goodbye');
    const twice = (await su.query(`SELECT count(*)::int AS n FROM (SELECT event_id FROM test_processed_log GROUP BY 1 HAVING count(*) > 1) x`)).rows[0].n;
    assert.equal(twice, 0);
  });
});
