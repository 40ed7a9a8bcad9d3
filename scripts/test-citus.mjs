#!/usr/bin/env node
// `npm run test:citus`: the test suite (the files of CITUS_SUITE below, or those matching the
// arguments) against a real Citus cluster: one coordinator and two workers on 127.0.0.1, every
// test file's database migrated to head and distributed by `skeldir citus distribute`
// (src/testing/db.ts clones it on every node). Citus comes from, in order: CITUS_PG_BINDIR (the
// bin directory of a PostgreSQL with Citus installed), the system PostgreSQL 15 if Citus is in
// it, or ../shared/citus (relative to the repository root) installed into it by its install.sh
// (as root). The cluster is started with ../shared/citus/cluster.sh (or CITUS_CLUSTER_SH) on
// ports SKELDIR_CITUS_PORT .. +2 (default 9700), in a temporary directory, and stopped at the end.
// When no Citus can be found or installed, it says why and exits 0 (nothing to test against).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const shared = join(root, '..', 'shared', 'citus');

/**
 * The files run on Citus, and why each file left out is left out. Every file of src/ must be in
 * one of the two lists (checked below), so a new test file is a decision, not an accident.
 */
const CITUS_SUITE = [
  'src/citus/citus.test.ts',
  'src/tenants/isolation.test.ts',
];
const LEFT_OUT = {};

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', ...opts });
}

function pgConfig(bindir) {
  const exe = bindir ? join(bindir, 'pg_config') : 'pg_config';
  const r = run(exe, ['--pkglibdir']);
  if (r.status !== 0) return undefined;
  const bin = run(exe, ['--bindir']).stdout.trim();
  return { lib: r.stdout.trim(), bin, version: run(exe, ['--version']).stdout.trim() };
}

function skip(why) {
  console.log(`# test:citus skipped: ${why}`);
  process.exit(0);
}

let pg = pgConfig(process.env.CITUS_PG_BINDIR);
if (!pg) skip(process.env.CITUS_PG_BINDIR ? `no pg_config in CITUS_PG_BINDIR=${process.env.CITUS_PG_BINDIR}` : 'no PostgreSQL server installed (pg_config not found)');
if (!existsSync(join(pg.lib, 'citus.so'))) {
  const install = join(shared, 'install.sh');
  if (!existsSync(install)) skip(`Citus is not installed in ${pg.lib} and ${install} does not exist`);
  if (process.getuid?.() !== 0) skip(`Citus is not installed in ${pg.lib}, and installing it from ${shared} needs root`);
  const r = run('bash', [install], { stdio: 'inherit' });
  if (r.status !== 0 || !existsSync(join(pg.lib, 'citus.so'))) skip(`${install} failed (exit ${r.status}); ${pg.version}`);
}
const clusterSh = process.env.CITUS_CLUSTER_SH ?? join(shared, 'cluster.sh');
if (!existsSync(clusterSh)) skip(`no cluster script (${clusterSh})`);
if (process.getuid?.() === 0 && run('id', ['postgres']).status !== 0) skip('running as root without a postgres user (initdb refuses root)');

// Every test file is either run or left out with a reason.
const all = run('find', ['src', '-name', '*.test.ts'], { cwd: root }).stdout.split('\n').filter(Boolean).sort();
const unknown = all.filter((f) => !CITUS_SUITE.includes(f) && !(f in LEFT_OUT));
if (unknown.length) {
  console.error(`test:citus: these test files are neither in CITUS_SUITE nor in LEFT_OUT (scripts/test-citus.mjs):\n  ${unknown.join('\n  ')}`);
  process.exit(1);
}
const filters = process.argv.slice(2);
const files = CITUS_SUITE.filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
for (const [f, why] of Object.entries(LEFT_OUT)) if (filters.length === 0) console.log(`# test:citus leaves out ${f}: ${why}`);

const port = Number(process.env.SKELDIR_CITUS_PORT ?? 9700);
const base = mkdtempSync(join(tmpdir(), 'skeldir-citus-'));
chmodSync(base, 0o777);
const clusterEnv = {
  ...process.env,
  PATH: `${pg.bin}:${process.env.PATH}`,
  CITUS_BASE: base,
  COORD_PORT: String(port),
  WORKER1_PORT: String(port + 1),
  WORKER2_PORT: String(port + 2),
  SKELDIR_ROLES: '1',
};
const stop = () => {
  run('bash', [clusterSh, 'stop'], { env: clusterEnv, stdio: 'inherit' });
  rmSync(base, { recursive: true, force: true });
};
process.on('SIGINT', () => { stop(); process.exit(130); });
process.on('SIGTERM', () => { stop(); process.exit(143); });

console.log(`# test:citus: starting a Citus cluster (coordinator ${port}, workers ${port + 1}, ${port + 2}) in ${base}`);
const started = run('bash', [clusterSh, 'start'], { env: clusterEnv, stdio: 'inherit' });
if (started.status !== 0) {
  stop();
  console.error(`test:citus: the cluster did not start (exit ${started.status})`);
  process.exit(1);
}
const env = {
  ...process.env,
  TEST_DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/postgres`,
  SKELDIR_TEST_CITUS_WORKERS: `127.0.0.1:${port + 1},127.0.0.1:${port + 2}`,
  SKELDIR_TEST_CONCURRENCY: process.env.SKELDIR_TEST_CONCURRENCY ?? '2',
};
const child = spawn(process.execPath, [join(root, 'scripts', 'test.mjs'), ...files], { cwd: root, env, stdio: 'inherit' });
const code = await new Promise((resolve) => child.on('close', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
stop();
process.exit(code);
