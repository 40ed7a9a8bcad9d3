#!/usr/bin/env node
// `npm run bench`: runs every bench/*.bench.ts (or those whose name contains an argument),
// one after the other so they do not compete for the CPU. Each starts its own embedded
// PostgreSQL (or uses TEST_DATABASE_URL), prints its figures, and cleans up.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const filters = process.argv.slice(2);
const benches = readdirSync(join(root, 'bench'))
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
let failed = 0;
for (const file of benches) {
  console.log(`\n=== ${file} ===`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', join('bench', file)], { cwd: root, stdio: 'inherit' });
  console.log(`=== ${file}: ${r.status === 0 ? 'done' : `FAILED (${r.status ?? r.signal})`} in ${((Date.now() - t0) / 1000).toFixed(0)} s ===`);
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
