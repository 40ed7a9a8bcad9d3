import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
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
