import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { runCli } from '../testing/cli.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { runForensics } from './runner.js';
import type { ForensicReport, LintFinding } from './types.js';

/** The lint judges tables a later revision adds by the same general rules as the document's. */

let db: TestDatabase;
let client: pg.Client;
before(async () => {
  db = await createTestDatabase('head');
  client = await superClient(db);
});
after(async () => {
  await client?.end();
  await db?.drop();
});

const has = (findings: LintFinding[], rule: string, object: string) => findings.some((f) => f.rule === rule && f.object === object);

describe('skeldir forensics --lint', () => {
  test('a later table breaking the rules: findings by severity, protocol still 24/24, exit 1', async () => {
    await client.query(`SET ROLE skeldir_owner`);
    await client.query(`
      CREATE TABLE later_invoices (
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL,
        amount numeric(10,2) NOT NULL,
        tax_cents double precision,
        fee money,
        total_cents bigint NOT NULL DEFAULT 0,
        CONSTRAINT later_invoices_pkey PRIMARY KEY (id),
        CONSTRAINT later_invoices_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
        CONSTRAINT later_positive_amount CHECK (amount >= 0)
      )`);
    await client.query(`CREATE INDEX later_invoices_by_tenant ON later_invoices (tenant_id)`);
    await client.query(`COMMENT ON COLUMN later_invoices.total_cents IS 'Total, minor units. INVARIANT financial critical'`);
    // Tenant-scoped through its parent only (no tenant_id): still needs forced RLS and a policy.
    await client.query(`CREATE TABLE later_invoice_lines (id uuid PRIMARY KEY, invoice_id uuid NOT NULL REFERENCES later_invoices (id))`);
    await client.query(`COMMENT ON TABLE later_invoice_lines IS 'Lines of an invoice.'`);
    // A correct later table: no findings.
    await client.query(`CREATE TABLE later_notes (id uuid NOT NULL, tenant_id uuid NOT NULL, body text NOT NULL,
      CONSTRAINT pk_later_notes PRIMARY KEY (id), CONSTRAINT fk_later_notes_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id))`);
    await client.query(`ALTER TABLE later_notes ENABLE ROW LEVEL SECURITY`);
    await client.query(`ALTER TABLE later_notes FORCE ROW LEVEL SECURITY`);
    await client.query(`CREATE POLICY later_notes_tenant_isolation ON later_notes USING (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::uuid)`);
    await client.query(`COMMENT ON TABLE later_notes IS 'Notes.'`);
    for (const c of ['id', 'tenant_id', 'body']) await client.query(`COMMENT ON COLUMN later_notes.${c} IS 'A column.'`);
    await client.query(`RESET ROLE`);

    const r = await runCli(['forensics', '--lint', '--format', 'json'], { env: { DATABASE_URL: db.url } });
    assert.equal(r.code, 1, r.stderr);
    const report = JSON.parse(r.stdout) as ForensicReport;
    assert.equal(report.summary.line, '24/24 gates, 51/51 tests passed', 'the protocol validates the document, not "nothing else exists"');
    const f = report.lint!.findings;
    assert.ok(has(f, 'comment-table', 'later_invoices'));
    assert.ok(has(f, 'comment-column', 'later_invoices.amount'));
    assert.ok(has(f, 'rls-tenant-scoped', 'later_invoices'));
    assert.ok(has(f, 'rls-tenant-scoped', 'later_invoice_lines'), 'scoped through its foreign key');
    assert.ok(has(f, 'money-integer', 'later_invoices.amount'));
    assert.ok(has(f, 'money-integer', 'later_invoices.tax_cents'));
    assert.ok(has(f, 'money-integer', 'later_invoices.fee'));
    assert.ok(!has(f, 'money-integer', 'later_invoices.total_cents'), 'bigint minor units are fine');
    assert.ok(has(f, 'naming-constraint', 'later_invoices_pkey'));
    assert.ok(has(f, 'naming-constraint', 'later_invoices_tenant'));
    assert.ok(has(f, 'naming-constraint', 'later_positive_amount'));
    assert.ok(has(f, 'naming-index', 'later_invoices_by_tenant'));
    assert.ok(has(f, 'invariant-format', 'later_invoices.total_cents'));
    assert.ok(!f.some((x) => x.object.startsWith('later_notes')), `a table following the rules has no finding: ${JSON.stringify(f.filter((x) => x.object.startsWith('later_notes')))}`);
    assert.ok(!f.some((x) => !x.object.startsWith('later_')), `only the later tables are flagged: ${JSON.stringify(f.filter((x) => !x.object.startsWith('later_')))}`);
    assert.equal(f.find((x) => x.rule === 'rls-tenant-scoped')!.severity, 'error');
    assert.equal(f.find((x) => x.rule === 'naming-index')!.severity, 'warning');
    assert.match(r.stderr, /lint: \d+ errors, \d+ warnings over/);
  });

  test("the document's INVARIANT tags and forced RLS on existing tables are checked too", async () => {
    await client.query(`COMMENT ON COLUMN revenue_ledger.currency IS 'ISO 4217 code.'`);
    await client.query(`ALTER TABLE dead_events NO FORCE ROW LEVEL SECURITY`);
    await client.query(`ALTER TABLE tenants DISABLE ROW LEVEL SECURITY`);
    const report = await runForensics(db, { lint: true });
    const f = report.lint!.findings;
    assert.ok(has(f, 'invariant-document', 'revenue_ledger.currency'));
    assert.match(f.find((x) => x.object === 'revenue_ledger.currency')!.message, /line 179\) lacks "INVARIANT: financial_critical"/);
    assert.ok(has(f, 'rls-tenant-scoped', 'dead_events'));
    assert.match(f.find((x) => x.rule === 'rls-tenant-scoped' && x.object === 'dead_events')!.message, /not forced/);
    assert.ok(has(f, 'rls-tenant-root', 'tenants'));
    // …and the protocol names the gate of the missing tag.
    assert.deepEqual(report.phases.flatMap((p) => p.gates.filter((g) => g.verdict === 'FAIL').map((g) => g.id)), ['G7.1']);
  });
});
