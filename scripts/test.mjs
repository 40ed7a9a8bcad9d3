#!/usr/bin/env node
// `npm test`: runs every src/**/*.test.ts file with node's test runner (TAP output: CI reads
// its `# pass` / `# fail` lines) against one PostgreSQL server: TEST_DATABASE_URL when set,
// else an embedded PostgreSQL 15 started here in a temporary directory and stopped at the end.
// Each test file clones its own database from a migrated template (src/testing/db.ts).
// Arguments narrow the run to files whose path contains one of them.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { register } from 'tsx/esm/api';

const root = join(import.meta.dirname, '..');
const filters = process.argv.slice(2);

function findTests(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findTests(p));
    else if (entry.name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out.sort();
}

const files = findTests(join(root, 'src')).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

let embedded;
let dataDir;
const env = { ...process.env };
if (!env.TEST_DATABASE_URL) {
  register();
  const { startEmbedded } = await import('../src/db/embedded.ts');
  dataDir = mkdtempSync(join(tmpdir(), 'skeldir-test-'));
  embedded = await startEmbedded({ dataDir, ephemeral: true, notice: (m) => console.error(`# ${m}`) });
  env.TEST_DATABASE_URL = embedded.url('postgres');
  console.error(`# embedded PostgreSQL for tests on port ${embedded.port} (${dataDir})`);
}

const concurrency = env.SKELDIR_TEST_CONCURRENCY ?? '3';
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=tap', `--test-concurrency=${concurrency}`, ...files],
  { cwd: root, env, stdio: 'inherit' },
);
const code = await new Promise((resolve) => child.on('close', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
if (embedded) {
  await embedded.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(code);
