import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SchemaMigrator } from '../migrations/migrator.js';
import { LEGACY_HEAD, REVISIONS } from '../migrations/registry.js';
import type { Revision } from '../migrations/revision.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { generateLegacyData, insertLegacyData } from '../testing/legacy-fixtures.js';
import { runForensics } from './runner.js';

/**
 * `--apply` against sabotaged migrations, injected as the revision chain (the CLI always uses
 * the real one): the run must stop at the phase whose migration is wrong, leave the database
 * at that phase's revision, report later phases NOT RUN, and say how to roll back.
 */

const cleanup: TestDatabase[] = [];
after(async () => {
  for (const db of cleanup) await db.drop().catch(() => {});
});

/** The chain up to the document's last revision, with one revision replaced. */
function chainWith(id: string, change: (original: Revision) => Revision): Revision[] {
  const upTo = REVISIONS.slice(0, REVISIONS.findIndex((r) => r.id === '202511151450') + 1);
  return upTo.map((r) => (r.id === id ? change(r) : r));
}

async function populatedLegacy(): Promise<TestDatabase> {
  const db = await createTestDatabase('empty');
  cleanup.push(db);
  const m = new SchemaMigrator(db.ownerPool({ max: 2 }), { roles: db.roles });
  await m.upgrade(LEGACY_HEAD);
  await m.close();
  const client = await superClient(db);
  try {
    await insertLegacyData(client, generateLegacyData({ tenants: 2, events: 300, ledger: 150, allocations: 150, dead: 100, seed: 11 }));
  } finally {
    await client.end();
  }
  return db;
}

describe('--apply with a sabotaged migration', () => {
  test('phase 6 creating its index without the INCLUDE list: stops at phase 6, at 202511151420, with the rollback command', async () => {
    const db = await populatedLegacy();
    const revisions = chainWith('202511151420', (r) => ({
      ...r,
      async up(m) {
        await r.up(m);
        await m.dropIndex('idx_allocations_channel_performance');
        await m.createIndex('idx_allocations_channel_performance', 'attribution_allocations (tenant_id, channel_code, created_at DESC)');
      },
    }));
    const lines: string[] = [];
    const report = await runForensics(db, { apply: true, revisions, onProgress: (l) => lines.push(l) });
    assert.equal(report.summary.verdict, 'FAIL');
    assert.deepEqual(report.phases.map((p) => [p.phase, p.verdict]), [
      ['4', 'PASS'], ['5', 'PASS'], ['6', 'FAIL'], ['7', 'NOT RUN'], ['8a', 'NOT RUN'], ['8b', 'NOT RUN'],
    ]);
    assert.deepEqual(report.phases[2]!.gates.filter((g) => g.verdict === 'FAIL').map((g) => g.id), ['G6.3']);
    assert.equal(report.phases[3]!.reason, 'phase 6 failed');
    assert.equal(report.phases[3]!.migration, undefined, 'phase 7 was not applied');
    assert.equal(report.currentRevision, '202511151420');
    assert.deepEqual(report.rollback && [report.rollback.revision, report.rollback.command], ['202511151410', 'skeldir migrate downgrade 202511151410']);
    assert.ok(lines.some((l) => l === 'phase 6: upgrading 202511151410 -> 202511151420'));
    assert.ok(!lines.some((l) => /phase 7: upgrading/.test(l)));
    const m = new SchemaMigrator(db.ownerPool({ max: 2 }), { roles: db.roles });
    try {
      assert.equal(await m.current(), '202511151420');
    } finally {
      await m.close();
    }
  });

  test('phase 7 whose migration fails part-way: phase 7 FAIL with the error, database still at 202511151420', async () => {
    const db = await populatedLegacy();
    const revisions = chainWith('202511151430', (r) => ({
      ...r,
      async up(m) {
        await m.exec('ALTER TABLE revenue_ledger ADD COLUMN IF NOT EXISTS transaction_id varchar(255)');
        throw new Error('disk full (simulated)');
      },
    }));
    const report = await runForensics(db, { apply: true, revisions });
    assert.deepEqual(report.phases.map((p) => p.verdict), ['PASS', 'PASS', 'PASS', 'FAIL', 'NOT RUN', 'NOT RUN']);
    assert.match(report.phases[3]!.reason!, /upgrade to 202511151430 failed: .*disk full \(simulated\)/);
    assert.equal(report.phases[3]!.migration?.error !== undefined, true);
    assert.equal(report.currentRevision, '202511151420');
    assert.match(report.rollback!.message, /still recorded at 202511151420/);
    assert.equal(report.rollback!.command, 'skeldir migrate downgrade 202511151420');
    assert.equal(report.summary.line, '13/24 gates, 29/51 tests passed (phase 7 upgrade failed, 11 not run)');
    // The advised rollback really undoes the half-applied revision.
    const m = new SchemaMigrator(db.ownerPool({ max: 3 }), { roles: db.roles, revisions });
    try {
      const result = await m.downgrade('202511151420');
      assert.deepEqual(result.resumed, { revision: '202511151430', interrupted: 'up', finished: 'down' });
      const client = await superClient(db);
      try {
        const col = await client.query(`SELECT 1 FROM information_schema.columns WHERE table_name = 'revenue_ledger' AND column_name = 'transaction_id'`);
        assert.equal(col.rowCount, 0, 'the column the failed upgrade added is gone');
      } finally {
        await client.end();
      }
      assert.equal(await m.inflight(), undefined);
    } finally {
      await m.close();
    }
  });
});
