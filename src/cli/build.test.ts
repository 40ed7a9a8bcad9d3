import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../testing/cli.js';
import { createTestDatabase } from '../testing/db.js';
// @ts-expect-error: a plain ES module script without types
import { buildIfStale, stamp, staleness } from '../../scripts/build-if-stale.mjs';

test('npm start builds only when dist/ is older than its sources (scripts/build-if-stale.mjs)', () => {
  const root = mkdtempSync(join(tmpdir(), 'skeldir-build-'));
  try {
    mkdirSync(join(root, 'src', 'cli'), { recursive: true });
    mkdirSync(join(root, 'dist'));
    writeFileSync(join(root, 'src', 'cli', 'main.ts'), 'export {};\n');
    writeFileSync(join(root, 'package.json'), '{}\n');
    let builds = 0;
    const run = () => {
      builds++;
      stamp(root); // what `npm run build` does last
      return 0;
    };
    const past = (path: string, secondsAgo: number) => utimesSync(path, new Date(Date.now() - secondsAgo * 1000), new Date(Date.now() - secondsAgo * 1000));
    assert.match(staleness(root), /not been built/);
    assert.deepEqual(buildIfStale(root, run), { built: true });
    for (const p of ['src/cli/main.ts', 'src/cli', 'src', 'package.json']) past(join(root, p), 60);
    past(join(root, 'dist', '.build-stamp'), 30);
    assert.equal(staleness(root), null, 'nothing changed since');
    assert.deepEqual(buildIfStale(root, run), { built: false });
    assert.equal(builds, 1, 'no rebuild when dist/ is up to date');
    writeFileSync(join(root, 'src', 'cli', 'main.ts'), 'export const changed = 1;\n');
    past(join(root, 'src', 'cli', 'main.ts'), 10); // after the last build
    past(join(root, 'src', 'cli'), 60);
    assert.match(staleness(root), /src changed/);
    assert.deepEqual(buildIfStale(root, run), { built: true });
    assert.equal(builds, 2);
    assert.deepEqual(buildIfStale(root, () => 1), { built: false }, 'just built: up to date');
    past(join(root, 'dist', '.build-stamp'), 30);
    past(join(root, 'src', 'cli', 'main.ts'), 60);
    past(join(root, 'package.json'), 10);
    assert.deepEqual(buildIfStale(root, () => 2), { built: false, failed: true }, 'a failed build is reported');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a build before start writes its output on stderr, so stdout stays the server\'s JSON log lines', () => {
  const root = mkdtempSync(join(tmpdir(), 'skeldir-build-'));
  try {
    mkdirSync(join(root, 'dist'));
    const build = `node -e "console.log('compiled 12 files'); require('fs').writeFileSync('dist/.build-stamp', '')"`;
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'fake', version: '1.0.0', scripts: { build } }));
    const script = join(ROOT, 'scripts', 'build-if-stale.mjs');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(script)}); console.log(JSON.stringify(m.buildIfStale(${JSON.stringify(root)})));`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '{"built":true}\n', 'nothing of the build on stdout');
    assert.match(r.stderr, /skeldir: building \(dist\/ has not been built/);
    assert.match(r.stderr, /compiled 12 files/, 'the build\'s own output, on stderr');
    assert.doesNotMatch(r.stderr, /> fake@1\.0\.0 build/, 'npm\'s banner is silenced');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('`npm start --silent` (the README\'s first command): every line on stdout is a JSON log line', async () => {
  const db = await createTestDatabase('head');
  // Its own process group, so the whole tree (npm, sh, node) is stopped at the end.
  const child = spawn('npm', ['start', '--silent'], {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, DATABASE_URL: db.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  try {
    const deadline = Date.now() + 120_000;
    while (!/listening on http/.test(out) || !/worker started/.test(out)) {
      if (Date.now() > deadline || child.exitCode !== null) assert.fail(`not started; stdout:\n${out}\nstderr:\n${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    process.kill(-child.pid!, 'SIGTERM');
    await closed;
    await db.drop();
  }
  const lines = out.split('\n').filter((l) => l !== '');
  assert.ok(lines.length >= 3, out);
  for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `not a JSON log line: ${JSON.stringify(line)}`);
  assert.doesNotMatch(out, /> skeldir@/, 'no npm banner');
});
