import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { createTenant } from '../tenants/tenants.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { assertAcknowledgedExactlyOnce, eventLoad, resendUntilAcknowledged, spawnService, waitForStatus } from '../testing/load.js';

/**
 * PostgreSQL ends the API's connections while requests are in flight (pg_terminate_backend, as
 * a failover, a restart or an idle-session timeout does). Before the fix, the `'error'` event
 * of a checked-out pg client had no listener and ended `skeldir serve` (ECONNRESET).
 * PostgreSQL restarts under load: src/cli/outage.test.ts.
 */

let db: TestDatabase;
let su: pg.Client;
let apiKey: string;

before(async () => {
  db = await createTestDatabase('head');
  su = await superClient(db);
  const owner = db.ownerPool({ max: 1 });
  ({ api_key: apiKey } = await createTenant(owner, { name: 'Outage', email: 'ops@outage.example' }));
  await owner.end();
});
after(async () => {
  await su?.end();
  await db?.drop();
});

test('pg_terminate_backend of every API connection, 12 times under load: the API answers every request (2xx or 503 with Retry-After), never exits, recovers; each 2xx is exactly one row', async () => {
  const api = await spawnService(['serve'], { DATABASE_URL: db.url });
  try {
    const load = eventLoad(api.baseUrl, apiKey, 12);
    let killed = 0;
    for (let round = 0; round < 12; round++) {
      await new Promise((r) => setTimeout(r, 250));
      const { rows } = await su.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND application_name LIKE 'skeldir-api%' AND pid <> pg_backend_pid()`,
      );
      killed += rows[0]!.n;
    }
    await new Promise((r) => setTimeout(r, 500));
    const answers = await load.stop();
    assert.ok(killed >= 12, `backends were really terminated (${killed})`);
    assert.ok(api.alive(), `the API is still running:\n${api.stderr()}\n${api.stdout().slice(-2000)}`);

    const dropped = answers.filter((a) => a.status === null);
    assert.deepEqual(dropped.slice(0, 5).map((a) => a.error), [], 'no request lost its connection without an answer');
    const refused = answers.filter((a) => a.status !== null && a.status >= 300);
    for (const a of refused) {
      assert.equal(a.status, 503, `a failing request is a 503, not ${a.status} ${a.code}`);
      assert.equal(a.code, 'database_unavailable');
      assert.match(a.contentType ?? '', /^application\/problem\+json/);
      assert.ok(Number(a.retryAfter) >= 1, `503 carries Retry-After (${a.retryAfter})`);
    }
    assert.ok(refused.length > 0, 'some requests were in flight when their connection ended');
    // How many get through depends on the machine's speed: only that some did is asserted (no timing).
    assert.ok(answers.length - refused.length > 0, `requests went through between the terminations (${answers.length - refused.length} of ${answers.length})`);

    await waitForStatus(`${api.baseUrl}/ready`, 200);
    await assertAcknowledgedExactlyOnce(su, answers);
    // What was refused is safe to send again: each is then stored once too.
    await resendUntilAcknowledged(api.baseUrl, apiKey, refused);
    await assertAcknowledgedExactlyOnce(su, answers);
    assert.equal(
      (await su.query<{ n: number }>('SELECT count(*)::int AS n FROM attribution_events')).rows[0]!.n,
      answers.length,
      'after resending, exactly one row per event sent',
    );
    console.log(`# ${answers.length} requests, ${refused.length} answered 503, ${killed} backends terminated`);
  } finally {
    await api.stop();
  }
  assert.equal((await api.exited).code, 0, `SIGTERM stopped it cleanly:\n${api.stderr()}`);
});
