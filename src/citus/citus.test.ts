import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { FIND_BY_ID_SQL, FIND_BY_KEYS_SQL } from '../ingestion/store.js';
import { insertTenants } from '../worker/test-fixtures.js';
import { CitusPlanError, LOCAL_TABLES, planTables, REFERENCE_TABLES } from './plan.js';
import { distribute } from './distribute.js';

// On plain PostgreSQL (npm test): the plan of `skeldir citus distribute` covers every table at head, and a table or
// key it does not cover fails it. On Citus (npm run test:citus): the test database is distributed by that plan.
describe('skeldir citus: the distribution plan', () => {
  let db: TestDatabase;
  let su: pg.Client;
  let citus = false;
  before(async () => {
    db = await createTestDatabase('head');
    su = await superClient(db);
    citus = (await su.query(`SELECT 1 FROM pg_extension WHERE extname = 'citus'`)).rows.length > 0;
  });
  after(async () => {
    await su?.end();
    await db?.drop();
  });

  test('every table at head is reference, local, or a tenant table distributed by tenant_id', async () => {
    const plan = await planTables(su);
    const tables = (await su.query<{ t: string }>(`SELECT relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND relkind = 'r'`)).rows.map((r) => r.t).sort();
    assert.deepEqual(plan.map((p) => p.table).sort(), tables);
    for (const r of REFERENCE_TABLES) assert.equal(plan.find((p) => p.table === r.table)?.kind, 'reference', r.table);
    const distributed = plan.filter((p) => p.kind === 'distributed').map((p) => p.table);
    assert.ok(distributed.includes('attribution_events') && distributed.includes('revenue_state_transitions'));
    for (const l of LOCAL_TABLES) assert.notEqual(plan.find((p) => p.table === l.table)?.kind, 'distributed');
  });

  test('a later table the plan does not cover, or a unique key without tenant_id, fails the plan by name', async () => {
    if (citus) return; // DDL on the distributed test database would be propagated; the plain run covers it
    await su.query('BEGIN');
    try {
      await su.query(`CREATE TABLE orphan_table (id int PRIMARY KEY)`);
      await su.query(`CREATE TABLE later_tenant_table (tenant_id uuid NOT NULL, code text NOT NULL, CONSTRAINT uq_later_code UNIQUE (code))`);
      await assert.rejects(planTables(su), (e: Error) =>
        e instanceof CitusPlanError && /table orphan_table has no tenant_id/.test(e.message) && /unique key uq_later_code \(code\) of later_tenant_table lacks tenant_id/.test(e.message));
    } finally {
      await su.query('ROLLBACK');
    }
  });

  test('on Citus: every tenant table distributed by tenant_id in one colocation group, the reference tables replicated', async (t) => {
    if (!citus) return t.skip('not a Citus database (npm run test:citus runs this)');
    const rows = (await su.query<{ t: string; type: string; col: string | null; colocation: number }>(
      `SELECT table_name::text AS t, citus_table_type AS type, distribution_column AS col, colocation_id AS colocation FROM citus_tables`)).rows;
    const plan = await planTables(su);
    for (const p of plan) {
      const r = rows.find((x) => x.t === p.table);
      if (p.kind === 'distributed') assert.deepEqual([r?.type, r?.col], ['distributed', 'tenant_id'], p.table);
      if (p.kind === 'reference') assert.equal(r?.type, 'reference', p.table);
      if (p.kind === 'local') assert.equal(r, undefined, p.table);
    }
    assert.equal(new Set(rows.filter((r) => r.type === 'distributed').map((r) => r.colocation)).size, 1);
  });

  test('on Citus: the tenant context reaches the shards, and a query naming tenant_id runs on one shard', async (t) => {
    if (!citus) return t.skip('not a Citus database (npm run test:citus runs this)');
    const [a, b] = await insertTenants(su, 2);
    const app = db.appPool({ max: 1 });
    try {
      await withTenant(app, a!, (c) => c.query(
        `INSERT INTO attribution_events (tenant_id, event_type, channel, session_id, event_timestamp, occurred_at, revenue_cents, idempotency_key, raw_payload)
         VALUES ($1::uuid, 'touchpoint', 'email', gen_random_uuid(), now(), now(), 0, $2, '{}')`, [a, `${a}:ext:x`]));
      const seen = await withTenant(app, a!, async (c) => (await c.query(`SELECT count(*)::int AS n FROM attribution_events`)).rows[0].n);
      const other = await withTenant(app, b!, async (c) => (await c.query(`SELECT count(*)::int AS n FROM attribution_events`)).rows[0].n);
      assert.deepEqual([seen, other], [1, 0]);
      const plan = await withTenant(app, a!, async (c) =>
        (await c.query(`EXPLAIN SELECT count(*) FROM attribution_events WHERE tenant_id = '${a}'`)).rows.map((r) => r['QUERY PLAN']).join('\n'));
      assert.match(plan, /Task Count: 1\b/);
      const fanout = await withTenant(app, a!, async (c) =>
        (await c.query(`EXPLAIN SELECT count(*) FROM attribution_events`)).rows.map((r) => r['QUERY PLAN']).join('\n'));
      assert.doesNotMatch(fanout, /Task Count: 1\b/, 'without tenant_id the policy alone does not route (docs/scaling.md)');
    } finally {
      await app.end();
    }
  });

  test("on Citus: the ingestion's look-ups by id and by idempotency key (GET /events/:id, a replay) run on one shard", async (t) => {
    if (!citus) return t.skip('not a Citus database (npm run test:citus runs this)');
    const [a] = await insertTenants(su, 1);
    const app = db.appPool({ max: 1 });
    try {
      for (const [sql, values] of [[FIND_BY_ID_SQL, [a, '00000000-0000-4000-8000-000000000001']], [FIND_BY_KEYS_SQL, [a, [`${a}:ext:x`, `${a}:ext:y`]]]] as const) {
        const plan = await withTenant(app, a!, async (c) => (await c.query(`EXPLAIN ${sql}`, [...values])).rows.map((r) => r['QUERY PLAN']).join('\n'));
        assert.match(plan, /Task Count: 1\b/, `${sql}\n${plan}`);
      }
    } finally {
      await app.end();
    }
  });

  // The allocation trigger: the migration's statement trigger on one server; on Citus its replacement
  // on each shard (distribute.ts, VERIFY_SHARD_FUNCTION_SQL), which reads the colocated shards.
  const verificationCase = async () => {
    const [a, b] = await insertTenants(su, 2);
    const app = db.appPool({ max: 1 });
    try {
      const event = (tenant: string, order: string | null) => withTenant(app, tenant, async (c) => (await c.query<{ id: string }>(
        `INSERT INTO attribution_events (tenant_id, event_type, channel, session_id, event_timestamp, occurred_at, revenue_cents, conversion_value_cents, idempotency_key, raw_payload, order_id)
         VALUES ($1::uuid, 'conversion', 'direct', gen_random_uuid(), now(), now(), 1000, 1000, $1::text || ':ext:' || gen_random_uuid()::text, '{}', $2) RETURNING id`,
        [tenant, order])).rows[0]!.id);
      const ledger = (tenant: string, order: string, state: string, at: string) => withTenant(app, tenant, (c) => c.query(
        `INSERT INTO revenue_ledger (tenant_id, transaction_id, order_id, state, revenue_cents, amount_cents, verification_source, verification_timestamp)
         VALUES ($1::uuid, $1::text || ':stripe:' || $2 || ':' || $4, $2, $3, 1000, 1000, 'stripe', $4::timestamptz)`, [tenant, order, state, at]));
      await ledger(a!, 'ORD-CAPTURED', 'captured', '2026-11-02T00:00:00Z');
      await ledger(a!, 'ORD-CAPTURED', 'captured', '2026-11-01T00:00:00Z');
      await ledger(a!, 'ORD-AUTHORIZED', 'authorized', '2026-11-01T00:00:00Z');
      await ledger(b!, 'ORD-OF-B', 'captured', '2026-11-01T00:00:00Z');
      const captured = await event(a!, 'ORD-CAPTURED');
      const authorized = await event(a!, 'ORD-AUTHORIZED');
      const none = await event(a!, null);
      const otherTenants = await event(a!, 'ORD-OF-B');
      // One statement, several conversions and models (as the worker writes them).
      await withTenant(app, a!, (c) => c.query(
        `INSERT INTO attribution_allocations (tenant_id, event_id, channel_code, allocated_revenue_cents, allocation_ratio, model_type, confidence_score)
         SELECT $1::uuid, e, ch, 500, 0.5, m, 0.9 FROM unnest($2::uuid[]) e CROSS JOIN unnest(ARRAY['direct', 'email']) ch CROSS JOIN unnest(ARRAY['linear', 'last_touch']) m
         RETURNING id`, [a, [captured, authorized, none, otherTenants]]));
      const rows = await withTenant(app, a!, async (c) => (await c.query<{ event_id: string; verified: boolean; source: string | null; at: Date | null; n: number }>(
        `SELECT event_id, verified, verification_source AS source, verification_timestamp AS at, count(*)::int AS n FROM attribution_allocations
          WHERE tenant_id = $1 GROUP BY 1, 2, 3, 4`, [a])).rows);
      const of = (id: string) => rows.filter((r) => r.event_id === id).map((r) => [r.verified, r.source, r.at?.toISOString() ?? null, r.n]);
      assert.deepEqual(of(captured), [[true, 'stripe', '2026-11-01T00:00:00.000Z', 4]], 'verified by the earliest captured row of its order');
      assert.deepEqual(of(authorized), [[false, null, null, 4]], 'an authorization alone does not verify');
      assert.deepEqual(of(none), [[false, null, null, 4]]);
      assert.deepEqual(of(otherTenants), [[false, null, null, 4]], "another tenant's order of the same id does not verify");
    } finally {
      await app.end();
    }
  };

  test('allocations written after their order is captured are verified in the same statement; authorized, unknown and other tenants\' orders are not', verificationCase);

  test('on Citus: the allocation trigger is a statement trigger on every shard, reading colocated shards; a distribute replaces the earlier row trigger', async (t) => {
    if (!citus) return t.skip('not a Citus database (npm run test:citus runs this)');
    const onShards = async () => (await su.query<{ result: string }>(
      `SELECT result FROM run_command_on_shards('attribution_allocations', $$SELECT string_agg(tgname || ':' || (tgtype & 1)::text, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = '%s'::regclass AND tgname LIKE 'trg_attribution_allocations_verify%%'$$)`)).rows.map((r) => r.result);
    const shards = await onShards();
    assert.ok(shards.length > 1);
    // tgtype bit 0: FOR EACH ROW. The shard's copy of the trigger carries the shard's suffix.
    for (const r of shards) assert.match(r, /^trg_attribution_allocations_verify_shard_\d+:0$/);
    // A database distributed by an earlier release has the row trigger (a distributed query per row): put it back, distribute again.
    await su.query(`DROP TRIGGER trg_attribution_allocations_verify_shard ON attribution_allocations`);
    await su.query(`CREATE FUNCTION skeldir_allocations_verify_row() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN RETURN NEW; END $fn$`);
    await su.query(`CREATE TRIGGER trg_attribution_allocations_verify_row BEFORE INSERT ON attribution_allocations FOR EACH ROW EXECUTE FUNCTION skeldir_allocations_verify_row()`);
    const again = await distribute(su, db.roles);
    assert.deepEqual(again.changed, []);
    assert.ok(again.steps.some((s) => s.includes('drop trg_attribution_allocations_verify_row')), again.steps.join('\n'));
    for (const r of await onShards()) assert.match(r, /^trg_attribution_allocations_verify_shard_\d+:0$/);
    assert.equal((await su.query(`SELECT 1 FROM pg_proc WHERE proname = 'skeldir_allocations_verify_row'`)).rows.length, 0);
    await verificationCase();
    // A database distributed before the shard trigger took the order's lock: its function body is replaced (on the workers too), once.
    await su.query(`CREATE OR REPLACE FUNCTION skeldir_allocations_verify_shard() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN RETURN NULL; END $fn$`);
    const replaced = await distribute(su, db.roles);
    assert.ok(replaced.steps.some((s) => s.includes("function replaced (takes the order's advisory lock")), replaced.steps.join('\n'));
    const bodies = (await su.query<{ result: string }>(
      `SELECT result FROM run_command_on_workers($$SELECT prosrc LIKE '%pg_advisory_xact_lock_shared%' FROM pg_proc WHERE proname = 'skeldir_allocations_verify_shard'$$)`)).rows.map((r) => r.result);
    assert.deepEqual(bodies, bodies.map(() => 't'));
    assert.ok(!(await distribute(su, db.roles)).steps.some((s) => s.includes('function replaced')));
    await verificationCase();
  });
});
