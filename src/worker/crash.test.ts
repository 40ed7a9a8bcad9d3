import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { rng } from '../testing/rng.js';
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

const EVENTS = 20_000;
const KILLS = 10;
const seed = Number(process.env.CRASH_SEED ?? Date.now() % 2 ** 31);
console.log(`# crash test seed ${seed} (CRASH_SEED=${seed} to replay the kill delays)`);

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

test(`a worker killed with SIGKILL ${KILLS} times at random moments while processing ${EVENTS} events loses nothing and doubles nothing`, async () => {
  const [a, b] = (await insertTenants(su, 2)) as [string, string];
  const app = db.appPool({ max: 2 });
  try {
    await insertPendingEvents(app, a, journeys({ events: EVENTS / 2, touches: 4, conversionRate: 0.02, seed: 201 }));
    await insertPendingEvents(app, b, journeys({ events: EVENTS / 2, touches: 3, conversionRate: 0.02, seed: 202 }));
  } finally {
    await app.end();
  }
  const random = rng(seed);
  const args = ['--concurrency', '2', '--batch-size', '25', '--poll-ms', '50'];
  const lives: { processedBefore: number; processedAfter: number; delayMs: number; inTransaction: boolean }[] = [];
  // A batch transaction of the worker open right now (it holds row locks, so it has an xid; heartbeats excluded).
  const batchOpen = async () =>
    (await su.query(`SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND application_name = 'skeldir-worker' AND backend_xid IS NOT NULL
         AND query NOT LIKE '%worker_instances%'`)).rows[0].n > 0;
  const lifeLogs: (() => string)[] = [];
  while (lives.length < KILLS) {
    const before = (await countByStatus(su)).processed;
    assert.ok(before < EVENTS, `the queue ran dry after ${lives.length} kills; process fewer events per life`);
    const w = spawnWorker(db.url, args);
    lifeLogs.push(w.output);
    try {
      // Kill it at a random moment once it is working: mid-batch, mid-commit, between batches.
      await waitFor('the worker to make progress', async () => {
        if (w.child.exitCode !== null) throw new Error(`the worker exited: ${w.output()}`);
        return (await countByStatus(su)).processed > before;
      }, 60_000, 10).catch((e: Error) => {
        throw new Error(`${e.message}; the worker wrote: ${w.output()}`);
      });
      const delayMs = Math.floor(random() * 250);
      await new Promise((r) => setTimeout(r, delayMs));
      // Then at the next moment a batch transaction is open (seen just before the kill; a batch
      // of 25 lasts milliseconds, the kill follows the check within a fraction of one), so the
      // kill tests rollback mid-transaction rather than a quiet moment between batches.
      let inTransaction = false;
      for (let i = 0; i < 500 && !inTransaction && w.child.exitCode === null; i++) inTransaction = await batchOpen();
      w.child.kill('SIGKILL');
      const { signal } = await w.exited;
      assert.equal(signal, 'SIGKILL', w.output());
      lives.push({ processedBefore: before, processedAfter: (await countByStatus(su)).processed, delayMs, inTransaction });
    } finally {
      w.child.kill('SIGKILL');
    }
  }
  console.log(`# processed after each kill: ${lives.map((l) => l.processedAfter).join(', ')}`);
  const hits = lives.filter((l) => l.inTransaction).length;
  console.log(`# kills with a batch transaction open just before: ${hits}/${KILLS}`);
  assert.ok(lives.every((l) => l.processedAfter < EVENTS), 'every kill interrupted unfinished work');
  assert.ok(hits >= Math.ceil(KILLS * 0.7), `most kills land mid-transaction (${hits}/${KILLS})`);

  // A last, undisturbed life finishes the queue.
  const last = spawnWorker(db.url, args);
  lifeLogs.push(last.output);
  try {
    await waitFor('an empty queue', async () => (await countByStatus(su)).pending === 0, 240_000, 100);
    last.child.kill('SIGTERM');
    assert.equal((await last.exited).code, 0, last.output());
  } finally {
    last.child.kill('SIGKILL');
  }
  await assertProcessedExactlyOnce(su, EVENTS);
  const retried = (await su.query(`SELECT id, event_type, retry_count, last_error_type, last_error_message FROM attribution_events WHERE retry_count <> 0`)).rows;
  const failures = lifeLogs.flatMap((log) => log().split('\n').filter((l) => /event failed|dead-lettered|batch failed/.test(l)));
  assert.deepEqual(retried, [], `a crash burns no attempt; the workers logged:\n${failures.join('\n')}`);
  const counted = (await su.query(`SELECT sum(processed)::int AS n FROM worker_throughput`)).rows[0].n;
  assert.equal(counted, EVENTS, 'the counters, committed with the work, are exact across crashes');
  // The server notices a killed client's closed socket and ends its session (and transaction).
  await waitFor('no worker session left behind', async () =>
    (await su.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'skeldir-worker%'`)).rows[0].n === 0,
    10_000);
});
