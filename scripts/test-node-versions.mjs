#!/usr/bin/env node
// `npm run test:node-versions [-- --versions 22,24] [filters…]`: runs the test suite (or the files
// matching the filters) under Node.js 22 and 24 LTS, one after the other, the way CI runs it under
// the machine's Node. Each version's binary comes from the npm package family the `node` package
// installs from (node-<platform>-<arch>, a registry package holding the official binary), installed
// once into .skeldir/node-versions/<major>; `scripts/test.mjs` then runs under it, and so does every
// process the tests start (they use process.execPath). Not part of `npm test` (~30 MB per
// version). Exit code: 0 only when every version passed.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// The newest release of each LTS line in the registry when this was written (pinned, like the lockfile).
const RELEASES = { 22: '22.23.5', 24: '24.22.3' };

const root = join(import.meta.dirname, '..');
const args = process.argv.slice(2);
let versions = ['22', '24'];
const at = args.indexOf('--versions');
if (at >= 0) {
  versions = String(args[at + 1] ?? '').split(',').filter(Boolean);
  args.splice(at, 2);
}
for (const v of versions) {
  if (!RELEASES[v]) {
    console.error(`unknown Node.js major ${JSON.stringify(v)}; known: ${Object.keys(RELEASES).join(', ')}`);
    process.exit(2);
  }
}
const pkg = `node-${process.platform === 'win32' ? 'win' : process.platform}-${process.arch}`;

/** Installs (once) and returns the path of the `node` binary of `major`. */
function install(major) {
  const dir = join(root, '.skeldir', 'node-versions', major);
  const bin = join(dir, 'node_modules', pkg, 'bin', 'node');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `node-${major}`, private: true }));
    console.error(`# installing ${pkg}@${RELEASES[major]} into ${dir}`);
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', dir, `${pkg}@${RELEASES[major]}`], { stdio: 'inherit' });
    if (!existsSync(bin)) throw new Error(`${pkg}@${RELEASES[major]} installed no binary at ${bin}`);
  }
  return bin;
}

const results = [];
for (const major of versions) {
  const node = install(major);
  const version = execFileSync(node, ['--version']).toString().trim();
  console.error(`# Node.js ${version}: ${node}`);
  const t0 = Date.now();
  const code = await new Promise((resolve) => {
    const child = spawn(node, [join(root, 'scripts', 'test.mjs'), ...args], {
      cwd: root,
      stdio: 'inherit',
      // Anything started by name (a shell's `node`) is this version too.
      env: { ...process.env, PATH: `${join(node, '..')}:${process.env.PATH}` },
    });
    child.on('close', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
  results.push([version, code, Math.round((Date.now() - t0) / 1000)]);
}
for (const [version, code, seconds] of results) console.error(`# Node.js ${version}: ${code === 0 ? 'passed' : `FAILED (exit ${code})`} in ${seconds} s`);
process.exit(results.every(([, code]) => code === 0) ? 0 : 1);
