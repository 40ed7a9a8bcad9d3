import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { XMLValidator } from 'fast-xml-parser';
import type pg from 'pg';
import { CHECKS, FOREIGN_KEY, INDEXES } from '../migrations/document.js';
import { SchemaMigrator } from '../migrations/migrator.js';
import { LEGACY_HEAD } from '../migrations/registry.js';
import { runCli, ROOT } from '../testing/cli.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { generateLegacyData, insertLegacyData } from '../testing/legacy-fixtures.js';
import { LEGACY_INDEX_SOURCES } from './ddl.js';
import { render } from './formats/index.js';
import { mappingTable } from './formats/mapping.js';
import { EXPECTED_COUNTS, PHASES } from './protocol.js';
import { ReferenceRenderer } from './reference.js';
import { runForensics } from './runner.js';
import { Session } from './session.js';
import type { ForensicReport } from './types.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const schema = JSON.parse(readFileSync(join(ROOT, 'schema', 'forensics-report.schema.json'), 'utf8'));
const validateReport = addFormats(new Ajv({ allErrors: true, strict: true })).compile(schema);
// A copy of the design document is kept in the repository, so this test always runs.
const DOCUMENT_PATH = join(ROOT, 'docs', 'design', '000_eb3e904667a5ea19.txt');

const cleanup: TestDatabase[] = [];
after(async () => {
  for (const db of cleanup) await db.drop().catch(() => {});
});
async function database(from: 'head' | 'empty'): Promise<TestDatabase> {
  const db = await createTestDatabase(from);
  cleanup.push(db);
  return db;
}
const forensics = (db: TestDatabase, args: string[] = []) => runCli(['forensics', ...args], { env: { DATABASE_URL: db.url } });

function assertSchemaValid(report: unknown): void {
  assert.ok(validateReport(report), JSON.stringify(validateReport.errors, null, 2));
}
function assertJunitValid(xml: string): void {
  const result = XMLValidator.validate(xml);
  assert.equal(result, true, JSON.stringify(result));
}

/** Row count and an md5 of every row of every table, read as the superuser (no row-level security). */
async function contents(client: pg.Client): Promise<Record<string, string>> {
  const { rows: tables } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1`,
  );
  const out: Record<string, string> = {};
  for (const { name } of tables) {
    const { rows } = await client.query(`SELECT count(*)::int AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS h FROM public."${name}" t`);
    out[name] = `${rows[0].n} rows, md5 ${rows[0].h}`;
  }
  return out;
}

describe('the protocol catalogue', () => {
  test("24 gates and 51 tests, with the document's per-phase counts (8a and 8b three gates each)", () => {
    const all = PHASES.flatMap((p) => p.gates);
    assert.equal(all.length, 24);
    assert.equal(all.flatMap((g) => g.tests).length, 51);
    for (const [phase, want] of Object.entries(EXPECTED_COUNTS)) {
      const gates = PHASES.filter((p) => p.phase.startsWith(phase)).flatMap((p) => p.gates);
      assert.deepEqual({ gates: gates.length, tests: gates.flatMap((g) => g.tests).length }, want, `phase ${phase}`);
    }
    assert.equal(PHASES.find((p) => p.phase === '8a')!.gates.length, 3);
    assert.equal(PHASES.find((p) => p.phase === '8b')!.gates.length, 3);
    const ids = all.flatMap((g) => [g.id, ...g.tests.map((t) => t.id)]);
    assert.equal(new Set(ids).size, ids.length, 'ids are unique');
    for (const g of all) for (const t of g.tests) assert.ok(t.id.startsWith(g.id.replace('G', 'T') + '.'), `${t.id} belongs to ${g.id}`);
  });

  test('every gate quotes its line of the design document; folded gates point at "Migration file created with correct DDL"', () => {
    const lines = readFileSync(DOCUMENT_PATH, 'utf8').split('\n');
    for (const p of PHASES) {
      assert.match(lines[p.revisionLine - 1]!, new RegExp(`\\*\\*Revision\\*\\*: ${p.revision}`), `phase ${p.phase} revision line`);
      assert.match(lines[p.revisionLine]!, new RegExp(`\\*\\*Down Revision\\*\\*: ${p.previous}`));
      for (const g of p.gates) {
        assert.ok(lines[g.line - 1]!.includes(g.title), `${g.id} "${g.title}" is on line ${g.line}: ${lines[g.line - 1]}`);
        for (const f of g.foldedLines) assert.match(lines[f - 1]!, /Migration file created with correct DDL/, `${g.id} folded line ${f}`);
        for (const t of g.tests) for (const l of t.lines) assert.ok(l >= 1 && l <= lines.length && lines[l - 1]!.trim() !== '', `${t.id} line ${l} is a line of the document`);
      }
    }
  });
});

describe('documentation', () => {
  test('docs/forensics.md carries the current gate → tests → document lines mapping', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'forensics.md'), 'utf8');
    assert.ok(doc.includes(mappingTable()), 'regenerate the mapping table in docs/forensics.md from mappingTable()');
  });
});

describe('references rendered by the server', () => {
  test("on PostgreSQL 15 they equal the document's definitions in src/migrations/document.ts", async () => {
    const db = await database('head');
    const pool = db.ownerPool({ max: 1 });
    const client = await pool.connect();
    try {
      await client.query('SET search_path TO public');
      const num = Number((await client.query(`SELECT current_setting('server_version_num') AS n`)).rows[0].n);
      const renderer = new ReferenceRenderer(new Session(client, num));
      // One at a time: the renderer runs BEGIN … ROLLBACK on its one client.
      const indexes = [];
      for (const i of INDEXES) indexes.push(await renderer.index(i.name));
      const checks = [];
      for (const c of CHECKS) checks.push(await renderer.check(c.name));
      const fk = await renderer.foreignKey();
      const legacy = await renderer.index(Object.keys(LEGACY_INDEX_SOURCES)[0]!);
      // Every reference must come from the server (the document text is only a fallback).
      for (const r of [...indexes, ...checks, fk, legacy]) assert.equal(r.origin, 'server', r.text);
      const rendered = { indexes: indexes.map((r) => r.text), checks: checks.map((r) => r.text), fk: fk.text };
      if (num >= 150000 && num < 160000) {
        assert.deepEqual(rendered.indexes, INDEXES.map((i) => i.definition));
        assert.deepEqual(rendered.checks, CHECKS.map((c) => c.definition));
        assert.equal(rendered.fk, FOREIGN_KEY.definition);
      }
      // Nothing of the scratch work survives.
      const temp = await client.query(`SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = pg_my_temp_schema()`);
      assert.equal(temp.rows[0].n, 0);
    } finally {
      client.release();
      await pool.end();
    }
  });
});

describe('skeldir forensics on a populated database', () => {
  let db: TestDatabase;
  let client: pg.Client;
  before(async () => {
    db = await database('empty');
    const m = new SchemaMigrator(db.ownerPool({ max: 2 }), { roles: db.roles });
    await m.upgrade(LEGACY_HEAD);
    await m.close();
    client = await superClient(db);
    await insertLegacyData(client, generateLegacyData({ tenants: 3, events: 600, ledger: 300, allocations: 300, dead: 200, seed: 7 }));
  });
  after(async () => {
    await client?.end();
  });

  test('at the legacy head without --apply it cannot run: exit 2, and says how to proceed', async () => {
    const r = await forensics(db);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /before phase 4 \(revision 202511151400\).*--apply/);
    assert.equal(r.stdout, '');
  });

  test('--apply from 202511141311 walks the six phases, ends at 202511151450 with 24/24 gates', async () => {
    const r = await forensics(db, ['--apply', '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as ForensicReport;
    assertSchemaValid(report);
    assert.equal(report.mode, 'apply');
    assert.equal(report.startRevision, LEGACY_HEAD);
    assert.equal(report.currentRevision, '202511151450');
    assert.deepEqual(report.phases.map((p) => [p.phase, p.verdict, p.migration?.to]), [
      ['4', 'PASS', '202511151400'], ['5', 'PASS', '202511151410'], ['6', 'PASS', '202511151420'],
      ['7', 'PASS', '202511151430'], ['8a', 'PASS', '202511151440'], ['8b', 'PASS', '202511151450'],
    ]);
    assert.equal(report.summary.line, '24/24 gates, 51/51 tests passed');
    // Progress on stderr, phase by phase, upgrade before validation.
    const order = [...r.stderr.matchAll(/phase (\w+)(?::| \()/g)].map((m) => m[1]);
    assert.deepEqual([...new Set(order)], ['4', '5', '6', '7', '8a', '8b']);
    assert.ok(r.stderr.indexOf('phase 5: upgrading') > r.stderr.indexOf('phase 4 (202511151400): PASS'));
  });

  test('at head: 24/24 gates, 51/51 tests, exit 0, and every table holds exactly the rows it held', async () => {
    const m = new SchemaMigrator(db.ownerPool({ max: 2 }), { roles: db.roles });
    await m.upgrade('head');
    await m.close();
    const ledger = await client.query(`SELECT id, tenant_id FROM revenue_ledger LIMIT 3`);
    for (const { id, tenant_id } of ledger.rows) {
      await client.query(`INSERT INTO revenue_state_transitions (tenant_id, ledger_id, from_state, to_state) VALUES ($1, $2, NULL, 'authorized')`, [tenant_id, id]);
    }
    const before = await contents(client);
    const r = await forensics(db);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /PASS: 24\/24 gates, 51\/51 tests passed\n$/);
    assert.match(r.stderr, /PASS: 24\/24 gates, 51\/51 tests passed/);
    assert.deepEqual(await contents(client), before, 'the run left every table exactly as it was');
    assert.ok(Number(before.attribution_events!.split(' ')[0]) >= 600);
    assert.equal(before.revenue_state_transitions!.split(' ')[0], '3');
  });

  test('the report carries server version, revision, time, and every test with SQL, expected, actual, verdict, duration', async () => {
    // In-process (the CLI's JSON path is exercised by the --apply test): the same report object.
    const report = JSON.parse(render(await runForensics(db, { lint: true }), 'json')) as ForensicReport;
    assertSchemaValid(report);
    assert.match(report.server.version, /^\d+/);
    assert.ok(report.server.versionNum >= 150000);
    assert.ok(Date.now() - Date.parse(report.generatedAt) < 10 * 60_000);
    assert.equal(report.role, 'skeldir_owner');
    // Legacy tables migrated on one server (on Citus: plain tables on the coordinator): the document's schema, nothing explained away.
    assert.deepEqual(report.deployment, { kind: 'postgresql' });
    assert.deepEqual(report.summary.equivalent, []);
    const tests = report.phases.flatMap((p) => p.gates.flatMap((g) => g.tests));
    assert.equal(tests.length, 51);
    for (const t of tests) {
      assert.equal(t.verdict, 'PASS', `${t.id}: ${t.actual}`);
      assert.ok(t.sql.length > 0 && t.expected.length > 0 && t.actual.length > 0, t.id);
      assert.ok(t.durationMs >= 0);
    }
    const cascade = tests.find((t) => t.id === 'T8b.2.2')!;
    assert.match(cascade.sql, /DELETE FROM revenue_ledger/);
    assert.match(cascade.sql, /ROLLBACK;$/);
    assert.equal(report.lint!.summary.errors, 0, JSON.stringify(report.lint!.findings));
  });

  test('JUnit output is valid XML a CI can read: 51 testcases, classname = gate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skeldir-forensics-'));
    try {
      const file = join(dir, 'forensics.xml');
      const r = await forensics(db, ['--format', 'junit', '--out', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '', 'the report goes to the file');
      const xml = readFileSync(file, 'utf8');
      assertJunitValid(xml);
      assert.equal((xml.match(/<testcase /g) ?? []).length, 51);
      assert.match(xml, /<testsuites name="skeldir forensics" tests="51" failures="0" errors="0" skipped="0"/);
      assert.match(xml, /classname="forensics\.phase8b\.G8b\.2" name="T8b\.2\.2 /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('Markdown evidence report maps every gate to its tests and document lines', async () => {
    const markdown = render(await runForensics(db), 'markdown');
    assert.match(markdown, /^# Forensic validation report — PASS/);
    assert.match(markdown, /\*\*24\/24 gates, 51\/51 tests passed\*\*/);
    assert.match(markdown, /\| 5 \| G5\.5 Old composite indexes dropped \| PASS \| 121 \| T5\.5\.1 ✅ \(101\)<br>T5\.5\.2 ✅ \(102\) \|/);
    assert.equal((markdown.match(/^#### T/gm) ?? []).length, 51);
  });

  test('bad options are usage errors (exit 2) and touch nothing', async () => {
    const format = await forensics(db, ['--format', 'yaml']);
    assert.equal(format.code, 2);
    assert.match(format.stderr, /Allowed choices are text, json, markdown, junit/);
    const out = await forensics(db, ['--out', '/nonexistent-dir/x/report.json']);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /cannot write the report/);
  });
});

describe('skeldir forensics without a database', () => {
  test('exit 2 with a clear message', async () => {
    const r = await runCli(['forensics'], { env: { DATABASE_URL: 'postgres://nobody:x@127.0.0.1:1/none' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot reach PostgreSQL/);
  });
});

describe('a database between phases', () => {
  test('phases not yet applied are NOT RUN, the run fails (exit 1 semantics), and the report still validates', async () => {
    const db = await database('empty');
    const m = new SchemaMigrator(db.ownerPool({ max: 2 }), { roles: db.roles });
    await m.upgrade('202511151420');
    await m.close();
    const report = await runForensics(db);
    assertSchemaValid(report);
    assertJunitValid(render(report, 'junit'));
    assert.equal(report.summary.verdict, 'FAIL');
    assert.deepEqual(report.phases.map((p) => p.verdict), ['PASS', 'PASS', 'PASS', 'NOT RUN', 'NOT RUN', 'NOT RUN']);
    assert.match(report.phases[3]!.reason!, /revision 202511151430 is not applied \(database at 202511151420\)/);
    assert.equal(report.summary.line, '13/24 gates, 29/51 tests passed (11 not run)');
    assert.equal(report.rollback, undefined, 'no rollback advice outside --apply');
  });
});

describe('on a later schema (revisions after the document add tables, columns, indexes)', () => {
  test('the document is still validated: 24/24', async () => {
    const db = await database('head');
    const client = await superClient(db);
    try {
      // (Not on revenue_state_transitions: the ledger's own trigger writes its rows and would have to fill such a column.)
      await client.query(`ALTER TABLE revenue_state_transitions ADD COLUMN later_note varchar(20) NOT NULL DEFAULT 'x'`);
      for (const table of ['tenants', 'attribution_events', 'attribution_allocations', 'revenue_ledger', 'dead_events']) {
        // A NOT NULL column without a default: the fixtures must fill it themselves.
        await client.query(`ALTER TABLE ${table} ADD COLUMN later_note varchar(20) NOT NULL DEFAULT 'x', ADD COLUMN later_count bigint NOT NULL DEFAULT 0`);
        await client.query(`ALTER TABLE ${table} ALTER COLUMN later_note DROP DEFAULT, ALTER COLUMN later_count DROP DEFAULT`);
      }
      await client.query(`CREATE INDEX idx_events_later ON attribution_events (tenant_id, channel)`);
      await client.query(`ALTER TABLE revenue_ledger ADD CONSTRAINT ck_revenue_ledger_later CHECK (amount_cents >= 0)`);
      await client.query(`CREATE TABLE later_things (id uuid PRIMARY KEY, tenant_id uuid NOT NULL REFERENCES tenants (id))`);
    } finally {
      await client.end();
    }
    const report = await runForensics(db);
    // On a distributed test database (npm run test:citus) the five documented differences are EQUIVALENT (distributed.test.ts).
    const line = report.deployment.kind === 'citus' ? '24/24 gates, 51/51 tests passed (5 as Citus equivalents: G5.2, G7.2, G7.5, G8b.1, G8b.2)' : '24/24 gates, 51/51 tests passed';
    assert.equal(report.summary.line, line, JSON.stringify(report.phases.flatMap((p) => p.gates.flatMap((g) => g.tests)).filter((t) => t.verdict !== 'PASS' && t.verdict !== 'EQUIVALENT'), null, 2));
  });
});
