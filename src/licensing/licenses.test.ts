import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ROOT } from '../testing/cli.js';

// The licence check as the build runs it (scripts/licenses.mjs), on the real lockfile and on made-up ones.
const run = promisify(execFile);
const SCRIPT = join(ROOT, 'scripts', 'licenses.mjs');
const dir = mkdtempSync(join(tmpdir(), 'skeldir-licences-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The script on a made-up lockfile and web bundle (esbuild metafile inputs; none by default). */
async function check(packages: Record<string, Record<string, unknown>>, bundleInputs: string[] = [], extra: string[] = ['--no-notices']): Promise<{ code: number; stderr: string; out: string }> {
  const lock = join(dir, `lock-${Math.random().toString(36).slice(2)}.json`);
  const out = lock.replace(/\.json$/, '.md');
  const meta = lock.replace(/\.json$/, '.meta.json');
  writeFileSync(lock, JSON.stringify({ name: 'x', lockfileVersion: 3, packages: { '': { name: 'x' }, ...packages } }));
  writeFileSync(meta, JSON.stringify({ inputs: Object.fromEntries(['web/src/main.tsx', ...bundleInputs].map((i) => [i, { bytes: 1, imports: [] }])), outputs: {} }));
  try {
    const r = await run(process.execPath, [SCRIPT, '--lock', lock, '--meta', meta, '--out', out, ...extra]);
    return { code: 0, stderr: r.stderr, out: readFileSync(out, 'utf8') };
  } catch (e) {
    const err = e as { code: number; stderr: string };
    return { code: err.code, stderr: err.stderr, out: '' };
  }
}

describe('licence', () => {
  test('Skeldir is Apache-2.0: LICENSE and package.json', () => {
    const text = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
    assert.match(text, /Apache License\s+Version 2\.0, January 2004/);
    assert.match(text, /END OF TERMS AND CONDITIONS/);
    assert.equal(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).license, 'Apache-2.0');
  });

  test('the real lockfile passes and THIRD-PARTY-LICENSES.md lists exactly its production packages', async () => {
    const r = await run(process.execPath, [SCRIPT, '--check']);
    assert.match(r.stderr, /and \d+ in the web bundle, all compatible with Apache-2\.0; .* is current/);
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
    const expected = new Set<string>();
    for (const [path, e] of Object.entries<{ dev?: boolean; version: string; name?: string; link?: boolean }>(lock.packages)) {
      if (path === '' || e.dev || e.link) continue;
      expected.add(`${e.name ?? path.slice(path.lastIndexOf('node_modules/') + 13)}@${e.version}`);
    }
    const listed = new Set(
      [...readFileSync(join(ROOT, 'THIRD-PARTY-LICENSES.md'), 'utf8').split('## Bundled into the web app')[0]!.matchAll(/^\| (\S+) \| (\S+) \| .+ \|$/gm)]
        .filter((m) => m[1] !== 'package' && m[1] !== '---')
        .map((m) => `${m[1]}@${m[2]}`),
    );
    assert.deepEqual([...listed].sort(), [...expected].sort());
    for (const direct of Object.keys(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).dependencies)) {
      assert.ok([...listed].some((l) => l.startsWith(`${direct}@`)), direct);
    }
    assert.ok(![...listed].some((l) => l.startsWith('typescript@')), 'development dependencies are not listed');
  });

  test('a copyleft production dependency fails the build, naming it; the same as a dev dependency does not', async () => {
    const gpl = await check({
      'node_modules/ok': { version: '1.0.0', license: 'MIT' },
      'node_modules/ok/node_modules/bad': { version: '2.0.0', license: 'GPL-3.0-only' },
      'node_modules/tool': { version: '1.0.0', license: 'AGPL-3.0-or-later', dev: true },
    });
    assert.equal(gpl.code, 1);
    assert.match(gpl.stderr, /bad@2\.0\.0: GPL-3\.0-only is not compatible with Apache-2\.0/);
    assert.doesNotMatch(gpl.stderr, /tool@|ok@/);

    const devOnly = await check({ 'node_modules/tool': { version: '1.0.0', license: 'GPL-2.0-only', dev: true }, 'node_modules/ok': { version: '1.0.0', license: 'ISC' } });
    assert.equal(devOnly.code, 0, devOnly.stderr);
    assert.match(devOnly.out, /\| ok \| 1\.0\.0 \| ISC \|/);
    assert.doesNotMatch(devOnly.out, /\| tool \|/);
  });

  test('SPDX expressions: OR passes with one allowed side, AND needs both; no licence or a non-SPDX one fails', async () => {
    assert.equal((await check({ 'node_modules/a': { version: '1.0.0', license: '(MIT OR GPL-3.0-only)' } })).code, 0);
    const and = await check({ 'node_modules/a': { version: '1.0.0', license: '(MIT AND LGPL-2.1-only)' } });
    assert.equal(and.code, 1);
    assert.match(and.stderr, /a@1\.0\.0: \(MIT AND LGPL-2\.1-only\) is not compatible/);
    const none = await check({ 'node_modules/b': { version: '1.0.0' } });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /b@1\.0\.0: declares no licence/);
    const odd = await check({ 'node_modules/c': { version: '1.0.0', license: 'SEE LICENSE IN LICENSE.txt' } });
    assert.equal(odd.code, 1);
    assert.match(odd.stderr, /c@1\.0\.0: "SEE LICENSE IN LICENSE\.txt" is not an SPDX licence expression/);
  });

  test('the web bundle: THIRD-PARTY-LICENSES.md lists exactly the packages dist/web was built from, and their licence files ship with it', () => {
    const meta = JSON.parse(readFileSync(join(ROOT, 'dist', 'web', 'meta.json'), 'utf8')) as { inputs: Record<string, unknown> };
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
    const expected = new Set<string>();
    for (const input of Object.keys(meta.inputs)) {
      const m = /^(.*node_modules\/(@[^/]+\/)?[^/]+)\//.exec(input);
      if (m) expected.add(`${m[1]!.replace(/^.*node_modules\//, '')}@${lock.packages[m[1]!].version}`);
    }
    assert.ok([...expected].some((p) => p.startsWith('preact@')) && [...expected].some((p) => p.startsWith('echarts@')), [...expected].join(' '));
    const doc = readFileSync(join(ROOT, 'THIRD-PARTY-LICENSES.md'), 'utf8');
    const section = doc.split('## Bundled into the web app')[1];
    assert.ok(section, 'a section for the web bundle');
    const listed = [...section.matchAll(/^\| (\S+) \| (\S+) \| \S+ \|$/gm)].filter((m) => m[1] !== 'package' && m[1] !== '---').map((m) => `${m[1]}@${m[2]}`);
    assert.deepEqual(listed.sort(), [...expected].sort());
    const notices = readFileSync(join(ROOT, 'dist', 'web', 'THIRD-PARTY-LICENSES.txt'), 'utf8');
    for (const p of expected) assert.match(notices, new RegExp(`^${p.replace('@', ' ').replace(/[.]/g, '\\.')} \\(`, 'm'), p);
    assert.match(notices, /Permission is hereby granted/);
  });

  test('a copyleft package in the web bundle fails the build although it is a dev dependency; so does one the lockfile lacks or a missing bundle', async () => {
    const lock = {
      'node_modules/chart': { version: '1.0.0', license: 'MIT', dev: true },
      'node_modules/chart/node_modules/@gpl/draw': { version: '3.1.0', license: 'GPL-3.0-or-later', dev: true },
      'node_modules/unused': { version: '1.0.0', license: 'AGPL-3.0-only', dev: true },
    };
    const ok = await check(lock, ['node_modules/chart/index.js']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.out, /## Bundled into the web app[\s\S]*\| chart \| 1\.0\.0 \| MIT \|/);
    const bad = await check(lock, ['node_modules/chart/index.js', 'node_modules/chart/node_modules/@gpl/draw/lib/a.js', 'node_modules/chart/node_modules/@gpl/draw/lib/b.js']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /@gpl\/draw@3\.1\.0: GPL-3\.0-or-later is not compatible with Apache-2\.0 .*\(in the web bundle\)/);
    assert.doesNotMatch(bad.stderr, /unused@|chart@/);
    const stray = await check(lock, ['node_modules/nowhere/x.js']);
    assert.equal(stray.code, 1);
    assert.match(stray.stderr, /nowhere@\?: not in package-lock\.json/);
    const r = await run(process.execPath, [SCRIPT, '--meta', join(dir, 'no-such-meta.json'), '--out', join(dir, 'x.md')]).catch((e: { code: number; stderr: string }) => e);
    assert.equal((r as { code: number }).code, 1);
    assert.match((r as { stderr: string }).stderr, /no-such-meta\.json is missing: build the web app first/);
  });

  test('a bundled package without a licence file to carry fails the build', async () => {
    // The made-up lockfile's node_modules (next to it, in the temporary folder) has no LICENSE for the package.
    const r = await check({ 'node_modules/bare': { version: '1.0.0', license: 'MIT', dev: true } }, ['node_modules/bare/index.js'], []);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bare@1\.0\.0: no LICENSE or NOTICE file/);
  });

  test('optional platform packages and dev+optional ones installed in production are checked', async () => {
    const r = await check({
      'node_modules/@x/linux': { version: '1.0.0', license: 'MPL-2.0', optional: true },
      'node_modules/y': { version: '1.0.0', license: 'EPL-2.0', devOptional: true },
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /@x\/linux@1\.0\.0: MPL-2\.0/);
    assert.match(r.stderr, /y@1\.0\.0: EPL-2\.0/);
  });
});
