import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { runCli } from '../testing/cli.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { generateLegacyData, insertLegacyData } from '../testing/legacy-fixtures.js';
import { SchemaMigrator } from './migrator.js';
import { LEGACY_HEAD } from './registry.js';

// Revision 202612030600: revenue_state_transitions.tenant_id, backfilled from the ledger row and kept equal to it.
describe('tenant-scoped keys (revision 202612030600)', () => {
  let db: TestDatabase;
  let client: pg.Client;
  before(async () => {
    db = await createTestDatabase('empty');
    const m = new SchemaMigrator(db.ownerPool({ max: 2 }), { roles: db.roles });
    await m.upgrade(LEGACY_HEAD);
    client = await superClient(db);
    await insertLegacyData(client, generateLegacyData({ tenants: 3, events: 300, ledger: 900, allocations: 300, dead: 30, seed: 16 }));
    await m.upgrade('202612022246');
    await m.close();
    // Two transitions per ledger row, written before the column existed.
    await client.query(`INSERT INTO revenue_state_transitions (ledger_id, from_state, to_state) SELECT id, NULL, 'authorized' FROM revenue_ledger`);
    await client.query(`INSERT INTO revenue_state_transitions (ledger_id, from_state, to_state) SELECT id, 'authorized', 'captured' FROM revenue_ledger`);
    // Batches of 100: every tenant's transitions take several.
    const r = await runCli(['migrate', 'upgrade', 'head'], { env: { DATABASE_URL: db.url, SKELDIR_MIGRATION_BATCH_SIZE: '100' } });
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await client?.end();
    await db?.drop();
  });

  test('every old transition got its ledger row tenant; the column is NOT NULL', async () => {
    const { rows } = await client.query<{ n: string; wrong: string; nulls: string }>(
      `SELECT count(*) AS n, count(*) FILTER (WHERE t.tenant_id IS DISTINCT FROM l.tenant_id) AS wrong, count(*) FILTER (WHERE t.tenant_id IS NULL) AS nulls
         FROM revenue_state_transitions t JOIN revenue_ledger l ON l.id = t.ledger_id`,
    );
    assert.equal(rows[0]!.n, '1800');
    assert.equal(rows[0]!.wrong, '0');
    await assert.rejects(
      client.query(`INSERT INTO revenue_state_transitions (ledger_id, to_state) SELECT id, 'refunded' FROM revenue_ledger LIMIT 1`),
      { code: '23502' },
    );
  });

  test('a transition naming another tenant than its ledger row is refused (23503)', async () => {
    const { rows } = await client.query<{ id: string; other: string }>(
      `SELECT l.id, (SELECT t.id FROM tenants t WHERE t.id <> l.tenant_id LIMIT 1) AS other FROM revenue_ledger l LIMIT 1`,
    );
    await assert.rejects(
      client.query(`INSERT INTO revenue_state_transitions (tenant_id, ledger_id, to_state) VALUES ($1, $2, 'refunded')`, [rows[0]!.other, rows[0]!.id]),
      { code: '23503', constraint: 'fk_revenue_state_transitions_tenant_ledger' },
    );
  });

  test('the trigger writes the ledger row tenant; the policy shows a tenant only its own transitions', async () => {
    const { rows } = await client.query<{ id: string; tenant_id: string }>(`SELECT id, tenant_id FROM revenue_ledger WHERE state = 'captured' LIMIT 1`);
    const { id, tenant_id } = rows[0]!;
    // In the tenant's context, as the application does it (the trigger's insert is checked by the policy).
    await client.query(`BEGIN; SELECT set_config('app.current_tenant_id', '${tenant_id}', true)`);
    await client.query(`UPDATE revenue_ledger SET state = 'refunded', refunded_cents = amount_cents WHERE id = $1`, [id]);
    await client.query('COMMIT');
    const t = await client.query<{ tenant_id: string }>(`SELECT tenant_id FROM revenue_state_transitions WHERE ledger_id = $1 AND to_state = 'refunded'`, [id]);
    assert.deepEqual(t.rows, [{ tenant_id }]);
    const app = db.appPool({ max: 1 });
    try {
      const seen = await withTenant(app, tenant_id, async (c) =>
        (await c.query<{ mine: string; others: string }>(
          `SELECT count(*) FILTER (WHERE tenant_id = $1) AS mine, count(*) FILTER (WHERE tenant_id <> $1) AS others FROM revenue_state_transitions`, [tenant_id])).rows[0]!);
      assert.ok(Number(seen.mine) > 0);
      assert.equal(seen.others, '0');
    } finally {
      await app.end();
    }
  });
});
