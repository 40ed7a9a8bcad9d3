import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { runCli } from '../testing/cli.js';
import { createCitusDatabase, superClient, testsRunOnCitus, type TestDatabase } from '../testing/db.js';
import { REVISIONS } from '../migrations/registry.js';

// Upgrading a database that is already distributed (npm run test:citus): a user who ran
// `skeldir citus distribute` at some revision later installs a newer Skeldir and runs
// `skeldir migrate upgrade head` on the coordinator, then `skeldir citus distribute` again.
// Every revision after the first one a distributed database can be at (202612030600, the
// tenant-scoped keys `distribute` needs) is applied here to a distributed database that holds
// data, through the CLI, and the result must be the same distributed schema a fresh install
// gets: every tenant table distributed and colocated, the revisions' objects on every shard,
// the forensic run 24/24. On one server this is what migrations.test.ts covers.
const FIRST_DISTRIBUTABLE = '202612030600';
const citus = testsRunOnCitus();

describe('a distributed database upgraded to head', { skip: citus ? false : 'needs a Citus cluster (npm run test:citus)' }, () => {
  let db: TestDatabase;
  let su: pg.Client;
  const cli = (args: string[]) => runCli(args, { env: { DATABASE_URL: db.url }, timeoutMs: 300_000 });
  let tenant = '';

  before(async () => {
    db = await createCitusDatabase();
  });
  after(async () => {
    await su?.end();
    await db?.drop();
  });

  test(`migrates to ${FIRST_DISTRIBUTABLE}, distributes, takes data, then upgrades to head and distributes again`, async () => {
    const later = REVISIONS.slice(REVISIONS.findIndex((r) => r.id === FIRST_DISTRIBUTABLE) + 1).map((r) => r.id);
    assert.ok(later.length > 0, 'revisions after the first distributable one');

    const up = await cli(['migrate', 'upgrade', FIRST_DISTRIBUTABLE]);
    assert.equal(up.code, 0, up.stderr);
    const first = await cli(['citus', 'distribute']);
    assert.equal(first.code, 0, first.stderr);
    // Connected after distribute: its per-database settings (the tenant context reaching the shards) apply from the next session.
    su = await superClient(db);

    // Data in the distributed tables the later revisions touch (a tenant, a ledger row).
    const created = await cli(['tenant', 'create', '--name', 'Upgrade', '--email', 'ops@upgrade.example']);
    assert.equal(created.code, 0, created.stderr);
    tenant = (JSON.parse(created.stdout) as { tenant_id: string }).tenant_id;
    await su.query(`BEGIN; SET LOCAL app.current_tenant_id = '${tenant}'`);
    await su.query(
      `INSERT INTO revenue_ledger (tenant_id, transaction_id, order_id, state, amount_cents, currency, revenue_cents, verification_source, verification_timestamp)
       VALUES ($1::uuid, $1::text || ':stripe:ch_1', 'order-1', 'captured', 1250, 'USD', 1250, 'stripe', now())`,
      [tenant],
    );
    await su.query(`COMMIT`);

    const head = await cli(['migrate', 'upgrade', 'head']);
    assert.equal(head.code, 0, `${head.stdout}\n${head.stderr}`);
    for (const id of later) assert.match(head.stdout + head.stderr, new RegExp(id), `revision ${id} applied`);
    const second = await cli(['citus', 'distribute']);
    assert.equal(second.code, 0, second.stderr);
    const again = await cli(['citus', 'distribute']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, / 0 changed by this run/, 'a second distribute after the upgrade changes nothing');

    // Every tenant table distributed by tenant_id in attribution_events' colocation group.
    const { rows: local } = await su.query<{ t: string }>(
      `SELECT c.relname::text AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r'
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
          AND NOT EXISTS (SELECT 1 FROM citus_tables t WHERE t.table_name = c.oid::regclass AND t.citus_table_type IN ('distributed', 'reference'))`,
    );
    assert.deepEqual(local.map((r) => r.t), [], 'tenant tables left undistributed after the upgrade');
    const { rows: colo } = await su.query<{ t: string; same: boolean }>(
      `SELECT table_name::text AS t, colocation_id = (SELECT colocation_id FROM citus_tables WHERE table_name = 'attribution_events'::regclass) AS same
         FROM citus_tables WHERE table_name = 'attribution_run_totals'::regclass`,
    );
    assert.deepEqual(colo, [{ t: 'attribution_run_totals', same: true }]);
    // The last revision's index on every shard of the ledger.
    const { rows: shards } = await su.query<{ ok: boolean }>(
      `SELECT bool_and(result = '1') AS ok FROM run_command_on_shards('revenue_ledger',
         $$SELECT count(*) FROM pg_indexes WHERE tablename = '%s' AND indexname LIKE 'idx_revenue_ledger_tenant_verified%%'$$)`,
    );
    assert.equal(shards[0]!.ok, true, 'idx_revenue_ledger_tenant_verified on every shard');
    // The data survived and is read through the application role in the tenant's context.
    await su.query(`BEGIN; SET LOCAL ROLE ${db.roles.app}; SET LOCAL app.current_tenant_id = '${tenant}'`);
    const { rows: ledger } = await su.query<{ n: number }>(`SELECT count(*)::int AS n FROM revenue_ledger WHERE tenant_id = $1`, [tenant]);
    await su.query(`COMMIT`);
    assert.equal(ledger[0]!.n, 1);

    const forensics = await cli(['forensics', '--format', 'json']);
    assert.equal(forensics.code, 0, `${forensics.stdout.slice(0, 2000)}\n${forensics.stderr}`);
    const report = JSON.parse(forensics.stdout) as { summary: { verdict: string; line: string } };
    assert.equal(report.summary.verdict, 'PASS', report.summary.line);
    assert.match(report.summary.line, /^24\/24 gates/);
  });
});
