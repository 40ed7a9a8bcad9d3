import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { startEmbedded, type EmbeddedServer } from '../db/embedded.js';
import { runCli } from '../testing/cli.js';
import { assertAcknowledgedExactlyOnce, eventLoad, resendUntilAcknowledged, spawnService, waitForStatus } from '../testing/load.js';
import { assertProcessedExactlyOnce, installAudit, waitFor } from '../worker/test-fixtures.js';

/**
 * `skeldir start` as a whole (embedded PostgreSQL, API, worker, attribution scheduler) while its
 * database goes away under load: every backend terminated (pg_terminate_backend), then the
 * PostgreSQL server process stopped and started again, twice (a fast shutdown, then an immediate
 * one that needs crash recovery). Nothing may end the process; afterwards every acknowledged event
 * is exactly one row, every event is processed exactly once, and the scheduler still runs.
 */

const dataDir = mkdtempSync(join(tmpdir(), 'skeldir-outage-'));
let ours: EmbeddedServer | undefined;
after(async () => {
  await ours?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const env = {
  SKELDIR_DATA_DIR: dataDir,
  DATABASE_URL: '',
  SKELDIR_WORKER_POLL_MS: '100',
  SKELDIR_WORKER_RETRY_BASE_MS: '100',
  SKELDIR_ATTRIBUTION_TICK_MS: '1000',
};

function superuserUrl(): string {
  const state = JSON.parse(readFileSync(join(dataDir, 'embedded.json'), 'utf8')) as { port: number; password: string };
  return `postgres://postgres:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/skeldir`;
}

async function connect(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: superuserUrl() });
  c.on('error', () => {});
  await c.connect();
  return c;
}

function postmasterPid(): number {
  return Number(readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function cli(args: string[]): Promise<string> {
  const r = await runCli(args, { env });
  assert.equal(r.code, 0, `skeldir ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('skeldir start survives terminated backends and two PostgreSQL restarts under load: no exit, each 2xx one row, each event processed once, the scheduler carries on', async () => {
  const start = await spawnService(['start'], env, 180_000);
  let su: pg.Client | undefined;
  try {
    const { tenant_id: tenant, api_key: key } = JSON.parse(await cli(['tenant', 'create', '--name', 'Outage', '--email', 'ops@outage.example'])) as {
      tenant_id: string;
      api_key: string;
    };
    su = await connect();
    await installAudit(su);
    const load = eventLoad(start.baseUrl, key, 8);
    await waitFor('some events acknowledged', async () => load.answers.filter((a) => a.status === 201).length > 50, 60_000, 50);

    // 1. Every backend of the services, terminated five times.
    for (let i = 0; i < 5; i++) {
      await su.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND application_name LIKE 'skeldir%' AND pid <> pg_backend_pid()`,
      );
      await new Promise((r) => setTimeout(r, 300));
    }
    // 2. The server process stopped and started again: a fast shutdown (SIGINT), then an
    //    immediate one (SIGQUIT: no checkpoint, crash recovery at the next start).
    for (const signal of ['SIGINT', 'SIGQUIT'] as const) {
      const acknowledged = load.answers.filter((a) => a.status === 201).length;
      await waitFor('progress before the restart', async () => load.answers.filter((a) => a.status === 201).length > acknowledged + 50, 60_000, 50);
      await su.end().catch(() => {});
      const pid = postmasterPid();
      process.kill(pid, signal);
      await waitFor('PostgreSQL to stop', async () => !alive(pid), 60_000, 20);
      await new Promise((r) => setTimeout(r, 1500)); // nobody home for a while, under load
      await ours?.stop();
      ours = await startEmbedded({ dataDir });
      su = await connect();
      assert.ok(start.alive(), `skeldir start is still running after the ${signal} restart:\n${start.stderr()}`);
    }
    await waitFor('events acknowledged after the restarts', async () => {
      const n = load.answers.length;
      return load.answers.slice(n - 20).filter((a) => a.status === 201).length === 20;
    }, 60_000, 50);
    const answers = await load.stop();
    assert.ok(start.alive(), `skeldir start is still running:\n${start.stderr()}`);
    assert.deepEqual(answers.filter((a) => a.status === null).map((a) => a.error).slice(0, 5), [], 'every request got an answer');
    const refused = answers.filter((a) => a.status !== 201);
    for (const a of refused) {
      assert.equal(a.status, 503, `${a.status} ${a.code}`);
      assert.ok(Number(a.retryAfter) >= 1, 'with Retry-After');
    }
    await waitForStatus(`${start.baseUrl}/ready`, 200);
    await assertAcknowledgedExactlyOnce(su, answers);
    await resendUntilAcknowledged(start.baseUrl, key, refused);
    await assertAcknowledgedExactlyOnce(su, answers);

    // The worker processed every event exactly once across the outages.
    await waitFor('an empty queue', async () =>
      (await su!.query<{ n: number }>(`SELECT count(*)::int AS n FROM attribution_events WHERE processing_status = 'pending'`)).rows[0]!.n === 0,
    120_000, 100);
    await assertProcessedExactlyOnce(su, answers.length);

    // The scheduler survived: a model configured now is run on its next tick.
    await cli(['attribution', 'configure', '--tenant', tenant, '--models', 'first_touch,markov']);
    await waitFor('a scheduled markov run', async () =>
      (await su!.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM attribution_model_runs WHERE tenant_id = $1 AND model_type = 'markov' AND trigger = 'schedule' AND status = 'succeeded'`,
        [tenant],
      )).rows[0]!.n > 0,
    60_000, 200);
    assert.ok(start.alive());
    console.log(`# ${answers.length} requests, ${refused.length} answered 503 during the outages`);
  } finally {
    await su?.end().catch(() => {});
    await start.stop();
  }
  const logs = start.stdout() + start.stderr();
  assert.equal((await start.exited).code, 0, `SIGTERM stopped it cleanly:\n${start.stderr()}`);
  assert.doesNotMatch(logs, /Unhandled|uncaught/i);
  assert.match(logs, /database connection lost; reconnecting/, 'the worker noticed');
});
