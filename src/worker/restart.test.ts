import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { createDatabaseIfMissing, databaseAt, withClient } from '../db/database.js';
import { startEmbedded, type EmbeddedServer } from '../db/embedded.js';
import { ensureRoles } from '../db/roles.js';
import { SchemaMigrator } from '../migrations/migrator.js';
import {
  assertProcessedExactlyOnce,
  countByStatus,
  insertPendingEvents,
  insertTenants,
  installAudit,
  journeys,
  spawnWorker,
  waitFor,
} from './test-fixtures.js';

/**
 * PostgreSQL restarted under a running worker. The test harness's server is shared by every
 * test file, so this one starts its own embedded cluster, which it can stop and start at will.
 */

const EVENTS = 6_000;
const DATABASE = 'skeldir_restart';
let dataDir: string;
let server: EmbeddedServer;
let url: string;

async function connect(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  return c;
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'skeldir-restart-'));
  server = await startEmbedded({ dataDir, ephemeral: true });
  const roles = await withClient(server.url('postgres'), async (c) => {
    const r = await ensureRoles(c, { ownerRole: 'skeldir_owner', appRole: 'skeldir_app', systemRole: 'skeldir_system' });
    await createDatabaseIfMissing(c, DATABASE, r.owner);
    return r;
  });
  url = server.url(DATABASE);
  const pool = databaseAt(url, roles).ownerPool({ max: 2 });
  const migrator = new SchemaMigrator(pool, { roles });
  try {
    await migrator.upgrade('head');
  } finally {
    await migrator.close();
  }
});
after(async () => {
  await server?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('PostgreSQL restarted twice while the worker runs: it reconnects and carries on, losing and doubling nothing', async () => {
  let su = await connect();
  await installAudit(su);
  const [a, b] = (await insertTenants(su, 2)) as [string, string];
  const roles = { ownerSetRole: 'skeldir_owner', owner: 'skeldir_owner', app: 'skeldir_app', system: 'skeldir_system' };
  const app = databaseAt(url, roles).appPool({ max: 2 });
  try {
    await insertPendingEvents(app, a, journeys({ events: EVENTS / 2, touches: 4, conversionRate: 0.02, seed: 301 }));
    await insertPendingEvents(app, b, journeys({ events: EVENTS / 2, touches: 4, conversionRate: 0.02, seed: 302 }));
  } finally {
    await app.end();
  }
  const port = server.port;
  const w = spawnWorker(url, ['--concurrency', '2', '--batch-size', '25', '--poll-ms', '50']);
  try {
    for (let restart = 1; restart <= 2; restart++) {
      const before = (await countByStatus(su)).processed;
      await waitFor('progress before the restart', async () => (await countByStatus(su)).processed > before + 200, 180_000, 20);
      await su.end().catch(() => {});
      await server.stop(); // fast shutdown: the transactions in flight are rolled back
      await new Promise((r) => setTimeout(r, 1000)); // the worker finds nobody home for a while
      server = await startEmbedded({ dataDir, ephemeral: true });
      assert.equal(server.port, port, 'the cluster came back on its port');
      su = await connect();
      const after = await countByStatus(su);
      assert.ok(after.pending > 0, `restart ${restart} happened with work left (${after.processed} processed)`);
    }
    await waitFor('an empty queue', async () => (await countByStatus(su)).pending === 0, 120_000, 100);
    w.child.kill('SIGTERM');
    const { code } = await w.exited;
    assert.equal(code, 0, w.output());
    assert.match(w.output(), /database connection lost; reconnecting/);
    assert.match(w.output(), /database reachable again; carrying on/);
    await assertProcessedExactlyOnce(su, EVENTS);
    const retried = (await su.query(`SELECT count(*)::int AS n FROM attribution_events WHERE retry_count <> 0`)).rows[0].n;
    assert.equal(retried, 0, 'the outage burned no attempt');
  } finally {
    w.child.kill('SIGKILL');
    await su.end().catch(() => {});
  }
});
