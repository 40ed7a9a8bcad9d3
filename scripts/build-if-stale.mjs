#!/usr/bin/env node
// `npm start` runs this first: it builds (`npm run build`) only when dist/ is older than what it
// is built from, instead of recompiling on every start (about 70 s on a busy 2-core machine).
// "Older" means: a file under src/ or web/ (tests included: cheap to over-build, never stale),
// package.json, package-lock.json, a tsconfig or a build script changed after dist/.build-stamp,
// which `npm run build` writes as its last step (so `npm ci`, whose prepare script builds, leaves it fresh).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const INPUTS = ['src', 'web', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts/licenses.mjs', 'scripts/build-web.mjs', 'scripts/build-if-stale.mjs'];

/** The newest modification time (ms) of a file or of any file below a directory; 0 when absent. */
function newest(path) {
  if (!existsSync(path)) return 0;
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let max = s.mtimeMs; // a deleted file shows as its directory's change
  for (const entry of readdirSync(path)) max = Math.max(max, newest(join(path, entry)));
  return max;
}

/** Why dist/ must be rebuilt, or null when it is up to date. */
export function staleness(root) {
  const stamp = join(root, 'dist', '.build-stamp');
  if (!existsSync(stamp)) return 'dist/ has not been built by this script yet';
  const built = statSync(stamp).mtimeMs;
  for (const input of INPUTS) if (newest(join(root, input)) > built) return `${input} changed since the last build`;
  return null;
}

/** Builds when stale; returns what it did. */
// The build's own output goes to stderr (fd 2): `npm start --silent` prints the server's JSON log lines on stdout and
// nothing else, even when it builds first.
export function buildIfStale(root, run = () => spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: ['ignore', 2, 2] }).status) {
  const why = staleness(root);
  if (why === null) return { built: false };
  process.stderr.write(`skeldir: building (${why})\n`);
  // `npm run build` stamps dist/ as its last step.
  return run() === 0 ? { built: true } : { built: false, failed: true };
}

/** Marks dist/ as built from what is there now (the last step of `npm run build`). */
export function stamp(root) {
  writeFileSync(join(root, 'dist', '.build-stamp'), `${new Date().toISOString()}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = join(import.meta.dirname, '..');
  if (process.argv.includes('--stamp')) stamp(root);
  else process.exit(buildIfStale(root).failed ? 1 : 0);
}
