import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { runCli, spawnCli } from '../testing/cli.js';
import { startEmbedded } from './embedded.js';

// One data directory for the whole file: each initdb costs seconds.
const dataDir = mkdtempSync(join(tmpdir(), 'skeldir-embedded-'));
const env = { SKELDIR_DATA_DIR: dataDir, DATABASE_URL: '', PORT: '0' };
after(() => rmSync(dataDir, { recursive: true, force: true }));

function postmasterPid(): number | undefined {
  const file = join(dataDir, 'pg', 'postmaster.pid');
  return existsSync(file) ? Number(readFileSync(file, 'utf8').split('\n')[0]) : undefined;
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(what: string, check: () => boolean, ms = 60_000, refresh?: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    await refresh?.();
    if (check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the embedded PostgreSQL', () => {
  test('two commands starting at once on a new directory share one cluster', async () => {
    const [a, b] = await Promise.all([runCli(['migrate', 'current'], { env }), runCli(['migrate', 'current'], { env })]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(a.stdout.trim(), 'base');
    assert.equal(b.stdout.trim(), 'base');
    // The password on disk is the cluster's: a third command gets in.
    const c = await runCli(['migrate', 'current'], { env });
    assert.equal(c.code, 0, c.stderr);
    assert.equal(alive(postmasterPid()), false, 'the last one out stopped it');
  });

  test('Ctrl-C (SIGINT to the terminal\'s process group) stops the services first, then the database', async () => {
    const child = spawnCli(['start'], { env, detached: true });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    await waitFor('skeldir start', () => /skeldir is running/.test(stderr), 120_000);
    const pid = postmasterPid();
    assert.ok(alive(pid));
    // The services log in as the application role itself, not as the superuser acting as it.
    const state = JSON.parse(readFileSync(join(dataDir, 'embedded.json'), 'utf8'));
    const su = new pg.Client({ host: '127.0.0.1', port: state.port, user: 'postgres', password: state.password, database: 'skeldir' });
    await su.connect();
    try {
      let logins: string[] = [];
      await waitFor('the worker\'s connections', () => logins.length > 0, 30_000, async () => {
        logins = (await su.query(`SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name LIKE 'skeldir-worker%' OR application_name = 'skeldir-api'`)).rows.map((r) => r.usename);
      });
      assert.deepEqual(logins, ['skeldir_app']);
    } finally {
      await su.end();
    }
    // A terminal's Ctrl-C signals every process of the foreground group: here the CLI's group.
    process.kill(-child.pid!, 'SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, stderr);
    assert.match(stderr, /SIGINT: stopping/);
    assert.doesNotMatch(stderr, /terminating connection|57P01|shutdown|connection lost/i, 'no service lost its database while stopping');
    assert.equal(alive(pid), false, 'the database stopped after the services');
  });

  test('a cluster left running by a killed process is reused, and stopped by the last process to leave', async () => {
    const child = spawnCli(['start'], { env });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    await waitFor('skeldir start', () => /skeldir is running/.test(stderr), 120_000);
    const pid = postmasterPid();
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('close', resolve));
    assert.ok(alive(pid), 'the orphaned cluster keeps running');

    const server = await startEmbedded({ dataDir });
    assert.equal(server.owned, false, 'not started by this process');
    assert.equal(postmasterPid(), pid, 'the running cluster was reused, not restarted');
    const other = await startEmbedded({ dataDir });
    await other.stop();
    assert.ok(alive(pid), 'still in use: not stopped');
    await server.stop();
    assert.equal(alive(pid), false, 'the last one out stopped it');
  });
});
