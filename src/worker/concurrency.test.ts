import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import {
  assertProcessedExactlyOnce,
  countByStatus,
  insertPendingEvents,
  insertTenants,
  installAudit,
  journeys,
  spawnWorker,
  waitFor,
  type WorkerProcess,
} from './test-fixtures.js';

const EVENTS = 20_000;
const WORKERS = 4;

let db: TestDatabase;
let su: pg.Client;

before(async () => {
  db = await createTestDatabase('head');
  su = await superClient(db);
  await installAudit(su);
});
after(async () => {
  await su?.end();
  await db?.drop();
});

test(`${WORKERS} worker processes share ${EVENTS} events: every event processed exactly once`, async () => {
  const tenants = await insertTenants(su, 4);
  const workers: WorkerProcess[] = [];
  try {
    // All four idle first, so that they compete for the same queue from its first event.
    for (let i = 0; i < WORKERS; i++) workers.push(spawnWorker(db.url, ['--concurrency', '1', '--batch-size', '50', '--poll-ms', '100']));
    await waitFor(`${WORKERS} live workers`, async () =>
      (await su.query(`SELECT count(*)::int AS n FROM worker_instances WHERE stopped_at IS NULL`)).rows[0].n === WORKERS,
    );
    const app = db.appPool({ max: 2 });
    try {
      for (const [i, t] of tenants.entries()) {
        await insertPendingEvents(app, t, journeys({ events: EVENTS / tenants.length, touches: 4, conversionRate: 0.02, seed: 100 + i }));
        await withTenant(app, t, (c) => c.query(`SELECT pg_notify('skeldir_events', $1)`, [t]));
      }
    } finally {
      await app.end();
    }
    await waitFor('an empty queue', async () => (await countByStatus(su)).pending === 0, 240_000, 100);
    for (const w of workers) w.child.kill('SIGTERM');
    for (const w of workers) assert.equal((await w.exited).code, 0, w.output());
  } finally {
    for (const w of workers) w.child.kill('SIGKILL');
  }
  const { conversions } = await assertProcessedExactlyOnce(su, EVENTS);
  assert.ok(conversions > 50, `${conversions} conversions attributed`);
  const per = (await su.query<{ instance_id: string; processed: string }>(
    `SELECT instance_id, sum(processed) AS processed FROM worker_throughput GROUP BY 1`,
  )).rows.map((r) => Number(r.processed));
  console.log(`# events per worker process: ${per.sort((a, b) => b - a).join(', ')}`);
  assert.equal(per.length, WORKERS, 'every process took part');
  assert.ok(per.every((n) => n > 0));
  assert.equal(per.reduce((a, b) => a + b, 0), EVENTS, 'their counters add up exactly');
});
