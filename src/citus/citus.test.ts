import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { FIND_BY_ID_SQL, FIND_BY_KEYS_SQL } from '../ingestion/store.js';
import { insertTenants } from '../worker/test-fixtures.js';
import { CitusPlanError, LOCAL_TABLES, planTables, REFERENCE_TABLES } from './plan.js';

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
});
