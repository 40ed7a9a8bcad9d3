import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import pg from 'pg';
import { CLAIM_INDEXES } from '../citus/distribute.js';
import { DROPPED_FOREIGN_KEYS, KEY_SWAPS, REPLACED_TRIGGERS } from '../citus/plan.js';
import { ROOT } from '../testing/cli.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { render } from './formats/index.js';
import { PHASES } from './protocol.js';
import { runForensics } from './runner.js';
import type { ForensicReport } from './types.js';

// `skeldir forensics` on a database distributed by `skeldir citus distribute` (npm run test:citus):
// the documented differences are reported gate by gate as EQUIVALENT, each checked for real, and
// breaking an equivalent (its CHECK on the coordinator, on one shard; the tenant foreign key on one
// shard) fails its gate. On one server (npm test) the same report is 24/24 PASS with nothing
// explained (forensics.test.ts).
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const validateReport = addFormats(new Ajv({ allErrors: true, strict: true })).compile(
  JSON.parse(readFileSync(join(ROOT, 'schema', 'forensics-report.schema.json'), 'utf8')),
);
const EXPLAINED = ['G5.2', 'G7.2', 'G7.5', 'G8b.1', 'G8b.2'];

const gate = (r: ForensicReport, id: string) => r.phases.flatMap((p) => p.gates).find((g) => g.id === id)!;
const phase = (name: string) => PHASES.filter((p) => p.phase === name);

describe('skeldir forensics on a distributed (Citus) database', () => {
  let db: TestDatabase;
  let su: pg.Client;
  let citus = false;
  before(async () => {
    db = await createTestDatabase('head');
    su = await superClient(db);
    citus = (await su.query(`SELECT 1 FROM pg_dist_partition LIMIT 1`).catch(() => ({ rows: [] }))).rows.length > 0;
  });
  after(async () => {
    await su?.end();
    await db?.drop();
  });

  /** A superuser connection to the worker holding one shard of `table` (and that shard's name). */
  async function onShard<T>(table: string, fn: (c: pg.Client, shard: string, id: string) => Promise<T>): Promise<T> {
    const { rows } = await su.query<{ id: string; host: string; port: number }>(
      `SELECT s.shardid::text AS id, p.nodename AS host, p.nodeport AS port FROM pg_dist_shard s JOIN pg_dist_shard_placement p USING (shardid)
        WHERE s.logicalrelid = $1::regclass ORDER BY s.shardid LIMIT 1`, [table]);
    const url = new URL(db.url);
    url.hostname = rows[0]!.host;
    url.port = String(rows[0]!.port);
    const c = new pg.Client({ connectionString: url.toString() });
    await c.connect();
    try {
      await c.query(`SET citus.enable_manual_changes_to_shards = on`);
      return await fn(c, `${table}_${rows[0]!.id}`, rows[0]!.id);
    } finally {
      await c.end();
    }
  }

  test('24/24: the five documented differences are EQUIVALENT, each naming what differs and why; every other gate PASS', async (t) => {
    if (!citus) return t.skip('not a distributed database (npm run test:citus runs this)');
    const report = await runForensics(db, { lint: true });
    assert.ok(validateReport(JSON.parse(render(report, 'json'))), JSON.stringify(validateReport.errors));
    assert.equal(report.deployment.kind, 'citus');
    assert.equal(report.summary.verdict, 'PASS');
    assert.equal(report.summary.line, `24/24 gates, 51/51 tests passed (5 as Citus equivalents: ${EXPLAINED.join(', ')})`);
    assert.deepEqual(report.summary.equivalent, EXPLAINED);
    for (const g of report.phases.flatMap((p) => p.gates)) {
      assert.equal(g.verdict, EXPLAINED.includes(g.id) ? 'EQUIVALENT' : 'PASS', `${g.id}: ${g.tests.map((x) => x.actual).join('\n')}`);
      for (const x of g.tests) {
        // Never a silent pass: an equivalent names the document's object, the distributed one, and why.
        if (x.verdict === 'EQUIVALENT') assert.ok(x.difference && x.difference.document && x.difference.distributed && x.difference.why, x.id);
        else assert.equal(x.difference, undefined, x.id);
      }
    }
    const index = gate(report, 'G5.2').tests.find((x) => x.id === 'T5.2.1')!;
    assert.match(index.actual, /CHECK ck_attribution_events_idempotency_key_tenant, on every shard of attribution_events: validated, same definition on (\d+)\/\1 shards/);
    assert.match(gate(report, 'G5.2').tests[1]!.actual, /same idempotency_key, another tenant: rejected 23514 ck_attribution_events_idempotency_key_tenant/);
    assert.match(gate(report, 'G8b.2').tests[0]!.actual, /fk_revenue_state_transitions_tenant_ledger, on every shard of revenue_state_transitions: .* on (\d+)\/\1 shards/);
    // Violations raised on a shard are read from its message, and the evidence says so.
    assert.match(gate(report, 'G4.3').tests[1]!.actual, /rejected 23505 idx_tenants_api_key_hash \[Citus: read from the shard's message/);
    const text = render(report, 'text');
    assert.match(text, /G7\.5 EQUIVALENT[\s\S]*document: {4}idx_revenue_ledger_transaction_id UNIQUE \(transaction_id\)\n\s+distributed: idx_revenue_ledger_tenant_transaction UNIQUE \(tenant_id, transaction_id\)/);
    assert.match(render(report, 'markdown'), /\| 5 \| G5\.2 idempotency_key UNIQUE constraint enforced \| EQUIVALENT \|/);
    assert.equal(report.lint!.summary.errors, 0, JSON.stringify(report.lint!.findings));
  });

  test('every difference of src/citus/plan.ts outside the gates is listed and checked, in every format; the two SET NULL keys NOT EQUIVALENT', async (t) => {
    if (!citus) return t.skip('not a distributed database (npm run test:citus runs this)');
    const report = await runForensics(db, { phases: phase('4') });
    assert.ok(validateReport(JSON.parse(render(report, 'json'))), JSON.stringify(validateReport.errors));
    assert.equal(report.summary.verdict, 'PASS', JSON.stringify(report.citus?.differences.filter((x) => x.verdict === 'FAIL')));
    const diffs = report.citus!.differences;
    const inGates = PHASES.flatMap((p) => p.gates.flatMap((g) => g.tests)).map((x) => x.citus?.difference.document ?? '').join('\n');
    // Each plan entry is named either by a gate's equivalent or by the section: never a silent pass.
    for (const name of [...DROPPED_FOREIGN_KEYS.map((f) => f.name), ...REPLACED_TRIGGERS.map((x) => x.name), ...KEY_SWAPS.map((k) => k.name), ...CLAIM_INDEXES.map((c) => c[0])]) {
      assert.ok(diffs.some((x) => x.object === name) || inGates.includes(name), name);
    }
    for (const f of DROPPED_FOREIGN_KEYS.filter((x) => !inGates.includes(x.name))) {
      const x = diffs.find((d) => d.object === f.name)!;
      assert.equal(x.why, f.why);
      if (/SET NULL/.test(f.why)) assert.ok(x.verdict === 'NOT EQUIVALENT' && x.consequence, f.name);
      else assert.equal(x.verdict, 'EQUIVALENT');
    }
    assert.deepEqual(diffs.filter((x) => x.verdict === 'NOT EQUIVALENT').map((x) => x.object), ['fk_dead_events_event_id', 'fk_webhook_deliveries_endpoint_id']);
    assert.ok(diffs.every((x) => x.verdict !== 'FAIL'), JSON.stringify(diffs.filter((x) => x.verdict === 'FAIL')));
    assert.equal(diffs.find((x) => x.object === 'trg_attribution_allocations_verify')!.why, REPLACED_TRIGGERS[0]!.why);
    assert.ok(diffs.some((x) => x.kind === 'primary key' && x.table === 'attribution_events'));
    assert.ok(!diffs.some((x) => x.object === 'revenue_state_transitions PRIMARY KEY (id)'), 'covered by G8b.1');
    assert.ok(diffs.some((x) => x.object === 'skeldir_claim_due_events(integer)' && x.verdict === 'EQUIVALENT'));
    const text = render(report, 'text');
    assert.match(text, /Citus differences outside the gates[\s\S]*NOT EQUIVALENT {2}foreign key fk_dead_events_event_id \(dead_events\)\n {4}document: {4}fk_dead_events_event_id on dead_events\n {4}distributed: dropped/);
    assert.match(text, /EQUIVALENT {2}trigger trg_attribution_allocations_verify \(attribution_allocations\)[\s\S]*✓ trg_attribution_allocations_verify_shard, no trg_attribution_allocations_verify, on every shard of attribution_allocations: replacement present, original absent on (\d+)\/\1 shards/);
    const md = render(report, 'markdown');
    assert.match(md, /## Citus differences outside the gates/);
    assert.match(md, /\| NOT EQUIVALENT \| foreign key `fk_webhook_deliveries_endpoint_id` \(webhook_deliveries\) \|/);
    assert.match(render(report, 'junit'), /<testsuite name="Citus differences outside the gates" tests="\d+" failures="0"/);
  });

  test("the shard trigger dropped on one shard turns its line into a FAIL, and the run fails", async (t) => {
    if (!citus) return t.skip('not a distributed database (npm run test:citus runs this)');
    const restore = await onShard('attribution_allocations', async (c, shard) => {
      const trg = (await c.query<{ name: string; def: string }>(`SELECT tgname AS name, pg_get_triggerdef(oid) AS def FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname LIKE 'trg_attribution_allocations_verify_shard%'`, [shard])).rows[0]!;
      await c.query(`DROP TRIGGER ${trg.name} ON ${shard}`);
      return trg.def;
    });
    try {
      const report = await runForensics(db, { phases: phase('4') });
      const x = report.citus!.differences.find((d) => d.object === 'trg_attribution_allocations_verify')!;
      assert.equal(x.verdict, 'FAIL');
      assert.match(x.checks.find((c) => !c.pass)!.actual, /^\d+\/\d+ shards; missing on shard \d+/);
      assert.equal(report.summary.verdict, 'FAIL');
      assert.match(report.summary.line, /1 Citus difference outside the gates failed/);
      assert.match(render(report, 'text'), /FAIL {2}trigger trg_attribution_allocations_verify/);
      assert.match(render(report, 'junit'), /<testsuite name="Citus differences outside the gates" tests="\d+" failures="1"/);
    } finally {
      await onShard('attribution_allocations', (c) => c.query(restore));
    }
  });

  test('a dropped foreign key added back turns its line into a FAIL', async (t) => {
    if (!citus) return t.skip('not a distributed database (npm run test:citus runs this)');
    await su.query(`ALTER TABLE webhook_deliveries ADD CONSTRAINT fk_webhook_deliveries_endpoint_id FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints(id)`);
    try {
      const report = await runForensics(db, { phases: phase('4') });
      const x = report.citus!.differences.find((d) => d.object === 'fk_webhook_deliveries_endpoint_id')!;
      assert.equal(x.verdict, 'FAIL');
      assert.match(x.checks[0]!.actual, /^present: FOREIGN KEY \(endpoint_id\) REFERENCES webhook_endpoints\(id\)/);
      assert.equal(report.summary.verdict, 'FAIL');
    } finally {
      await su.query(`ALTER TABLE webhook_deliveries DROP CONSTRAINT fk_webhook_deliveries_endpoint_id`);
    }
    assert.equal((await runForensics(db, { phases: phase('4') })).summary.verdict, 'PASS', 'restored');
  });

  test('the CHECK that makes the key swap equivalent, dropped on one shard, fails G5.2 naming the shard', async (t) => {
    if (!citus) return t.skip('not a distributed database (npm run test:citus runs this)');
    const id = await onShard('attribution_events', async (c, shard, id) => {
      await c.query(`ALTER TABLE ${shard} DROP CONSTRAINT ck_attribution_events_idempotency_key_tenant`);
      return id;
    });
    try {
      const report = await runForensics(db, { phases: phase('5') });
      assert.equal(gate(report, 'G5.2').verdict, 'FAIL');
      const index = gate(report, 'G5.2').tests.find((x) => x.id === 'T5.2.1')!;
      assert.equal(index.verdict, 'FAIL');
      assert.match(index.actual, new RegExp(`✗ CHECK ck_attribution_events_idempotency_key_tenant, on every shard of attribution_events: (\\d+)/\\d+ shards; missing on shard ${id}\\b`));
      assert.equal(report.summary.verdict, 'FAIL');
    } finally {
      await onShard('attribution_events', (c, shard) => c.query(
        `ALTER TABLE ${shard} ADD CONSTRAINT ck_attribution_events_idempotency_key_tenant CHECK (starts_with(idempotency_key::text, tenant_id::text || ':'))`));
    }
    assert.equal(gate(await runForensics(db, { phases: phase('5') }), 'G5.2').verdict, 'EQUIVALENT', 'restored');
  });

  test('the same CHECK dropped on the coordinator (and so on every shard) fails G5.2: a duplicate key in another tenant is accepted', async (t) => {
    if (!citus) return t.skip('not a distributed database (npm run test:citus runs this)');
    await su.query(`ALTER TABLE attribution_events DROP CONSTRAINT ck_attribution_events_idempotency_key_tenant`);
    try {
      const report = await runForensics(db, { phases: phase('5') });
      const [index, duplicate] = gate(report, 'G5.2').tests;
      assert.deepEqual([gate(report, 'G5.2').verdict, index!.verdict, duplicate!.verdict], ['FAIL', 'FAIL', 'FAIL']);
      assert.match(index!.actual, /✗ definition of ck_attribution_events_idempotency_key_tenant: constraint does not exist/);
      assert.match(duplicate!.actual, /✗ same idempotency_key, another tenant: accepted/);
    } finally {
      await su.query(`ALTER TABLE attribution_events ADD CONSTRAINT ck_attribution_events_idempotency_key_tenant CHECK (starts_with(idempotency_key::text, tenant_id::text || ':'))`);
    }
  });

  test("the tenant foreign key that replaces the document's, dropped on one shard, fails G8b.2", async (t) => {
    if (!citus) return t.skip('not a distributed database (npm run test:citus runs this)');
    const restore = await onShard('revenue_state_transitions', async (c, shard, id) => {
      const def = (await c.query<{ def: string }>(`SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1::regclass AND conname = $2`,
        [shard, `fk_revenue_state_transitions_tenant_ledger_${id}`])).rows[0]!.def;
      await c.query(`ALTER TABLE ${shard} DROP CONSTRAINT fk_revenue_state_transitions_tenant_ledger_${id}`);
      return `ALTER TABLE ${shard} ADD CONSTRAINT fk_revenue_state_transitions_tenant_ledger_${id} ${def}`;
    });
    try {
      const report = await runForensics(db, { phases: phase('8b') });
      assert.equal(gate(report, 'G8b.2').verdict, 'FAIL');
      assert.match(gate(report, 'G8b.2').tests[0]!.actual, /✗ fk_revenue_state_transitions_tenant_ledger, on every shard of revenue_state_transitions: \d+\/\d+ shards; missing on shard/);
    } finally {
      await onShard('revenue_state_transitions', (c) => c.query(restore));
    }
  });
});
