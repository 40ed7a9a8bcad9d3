import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

/**
 * `npm run test:citus` on a machine without Citus: a missing Citus is a skip (exit 0, saying
 * why), but an install.sh that runs and fails is a failure, so CI cannot show green without a
 * cluster run. A fake pg_config points at an empty library directory; nothing is installed.
 */
const script = join(import.meta.dirname, '..', '..', 'scripts', 'test-citus.mjs');
const dir = mkdtempSync(join(tmpdir(), 'skeldir-test-citus-script-'));
after(() => rmSync(dir, { recursive: true, force: true }));

writeFileSync(
  join(dir, 'pg_config'),
  `#!/bin/sh\ncase "$1" in --pkglibdir) echo ${dir}/lib;; --bindir) echo ${dir};; --version) echo "PostgreSQL 15 (fake)";; esac\n`,
);
chmodSync(join(dir, 'pg_config'), 0o755);

const run = (shared: string) =>
  spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, CITUS_PG_BINDIR: dir, CITUS_SHARED_DIR: shared } });

test('no Citus and no install.sh: skipped, exit 0, saying why', () => {
  const r = run(join(dir, 'nothing-here'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /test:citus skipped: Citus is not installed in .* does not exist/);
});

test('an install.sh that fails: exit 1, naming it', (t) => {
  if (process.getuid?.() !== 0) return t.skip('install.sh is only run as root');
  const shared = join(dir, 'shared');
  spawnSync('mkdir', ['-p', shared]);
  writeFileSync(join(shared, 'install.sh'), 'echo "no compiler" >&2; exit 3\n');
  const r = run(shared);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr, /install\.sh failed \(exit 3\)/);
});
