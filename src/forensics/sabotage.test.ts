import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SchemaMigrator } from '../migrations/migrator.js';
import { cloneDatabase, createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { runForensics } from './runner.js';
import type { ForensicReport } from './types.js';

/**
 * "It catches what it claims to catch": each case applies one sabotage to a correct schema
 * and asserts that the run fails, in the right phase, naming exactly the expected gates, with
 * every earlier phase passing and every later phase not run.
 *
 * The correct schema is the document's end state, revision 202511151450, built once and
 * cloned per case (CREATE DATABASE … TEMPLATE, ~0.6 s): at a later head, other features'
 * objects legitimately react to a sabotage too (the ledger's trigger writes
 * revenue_state_transitions, so dropping that table also breaks phase 7's ledger probes),
 * which would blur which gate a single missing item trips. Runs at head are covered by
 * forensics.test.ts.
 */

interface Sabotage {
  name: string;
  sql: string[];
  /** The gates that must fail, all in one phase. */
  gates: string[];
}

const SABOTAGES: Sabotage[] = [
  // CHECK constraints dropped, widened, relaxed, or left unvalidated.
  { name: 'drop ck_attribution_events_processing_status_valid', sql: ['ALTER TABLE attribution_events DROP CONSTRAINT ck_attribution_events_processing_status_valid'], gates: ['G5.4'] },
  { name: 'drop ck_attribution_events_retry_count_positive', sql: ['ALTER TABLE attribution_events DROP CONSTRAINT ck_attribution_events_retry_count_positive'], gates: ['G5.4'] },
  { name: 'drop ck_allocations_confidence_score', sql: ['ALTER TABLE attribution_allocations DROP CONSTRAINT ck_allocations_confidence_score'], gates: ['G6.2'] },
  { name: 'drop ck_revenue_ledger_state_valid', sql: ['ALTER TABLE revenue_ledger DROP CONSTRAINT ck_revenue_ledger_state_valid'], gates: ['G7.3'] },
  { name: 'drop ck_dead_events_remediation_status_valid', sql: ['ALTER TABLE dead_events DROP CONSTRAINT ck_dead_events_remediation_status_valid'], gates: ['G8a.2'] },
  { name: 'drop ck_dead_events_retry_count_positive', sql: ['ALTER TABLE dead_events DROP CONSTRAINT ck_dead_events_retry_count_positive'], gates: ['G8a.2'] },
  {
    name: "widen processing_status's allowed list with 'archived'",
    sql: [
      'ALTER TABLE attribution_events DROP CONSTRAINT ck_attribution_events_processing_status_valid',
      "ALTER TABLE attribution_events ADD CONSTRAINT ck_attribution_events_processing_status_valid CHECK (processing_status IN ('pending', 'processed', 'failed', 'archived'))",
    ],
    gates: ['G5.4'],
  },
  {
    name: "widen state's allowed list with 'settled'",
    sql: [
      'ALTER TABLE revenue_ledger DROP CONSTRAINT ck_revenue_ledger_state_valid',
      "ALTER TABLE revenue_ledger ADD CONSTRAINT ck_revenue_ledger_state_valid CHECK (state IN ('authorized', 'captured', 'refunded', 'chargeback', 'settled'))",
    ],
    gates: ['G7.3'],
  },
  {
    name: "widen remediation_status's allowed list with 'done'",
    sql: [
      'ALTER TABLE dead_events DROP CONSTRAINT ck_dead_events_remediation_status_valid',
      "ALTER TABLE dead_events ADD CONSTRAINT ck_dead_events_remediation_status_valid CHECK (remediation_status IN ('pending', 'in_progress', 'resolved', 'ignored', 'done'))",
    ],
    gates: ['G8a.2'],
  },
  {
    name: 'relax confidence_score upper bound to 1.5',
    sql: [
      'ALTER TABLE attribution_allocations DROP CONSTRAINT ck_allocations_confidence_score',
      'ALTER TABLE attribution_allocations ADD CONSTRAINT ck_allocations_confidence_score CHECK (confidence_score >= 0 AND confidence_score <= 1.5)',
    ],
    gates: ['G6.2'],
  },
  {
    name: 'state CHECK re-added NOT VALID',
    sql: [
      'ALTER TABLE revenue_ledger DROP CONSTRAINT ck_revenue_ledger_state_valid',
      "ALTER TABLE revenue_ledger ADD CONSTRAINT ck_revenue_ledger_state_valid CHECK (state IN ('authorized', 'captured', 'refunded', 'chargeback')) NOT VALID",
    ],
    gates: ['G7.3'],
  },
  // NOT NULL, lengths, precisions, defaults, columns.
  { name: 'drop NOT NULL on tenants.api_key_hash', sql: ['ALTER TABLE tenants ALTER COLUMN api_key_hash DROP NOT NULL'], gates: ['G4.2', 'G4.4'] },
  { name: 'drop NOT NULL on attribution_events.session_id', sql: ['ALTER TABLE attribution_events ALTER COLUMN session_id DROP NOT NULL'], gates: ['G5.3'] },
  { name: 'drop NOT NULL on revenue_ledger.verification_source', sql: ['ALTER TABLE revenue_ledger ALTER COLUMN verification_source DROP NOT NULL'], gates: ['G7.1', 'G7.4'] },
  { name: 'tenants.notification_email VARCHAR(255) -> VARCHAR(320)', sql: ['ALTER TABLE tenants ALTER COLUMN notification_email TYPE varchar(320)'], gates: ['G4.2'] },
  { name: 'attribution_events.channel VARCHAR(100) -> VARCHAR(150)', sql: ['ALTER TABLE attribution_events ALTER COLUMN channel TYPE varchar(150)'], gates: ['G5.1'] },
  { name: 'confidence_score NUMERIC(4,3) -> NUMERIC(5,3)', sql: ['ALTER TABLE attribution_allocations ALTER COLUMN confidence_score TYPE numeric(5,3)'], gates: ['G6.1'] },
  { name: 'convergence_r_hat NUMERIC(5,4) -> NUMERIC(6,4)', sql: ['ALTER TABLE attribution_allocations ALTER COLUMN convergence_r_hat TYPE numeric(6,4)'], gates: ['G6.1'] },
  { name: "attribution_events.currency DEFAULT 'EUR'", sql: ["ALTER TABLE attribution_events ALTER COLUMN currency SET DEFAULT 'EUR'"], gates: ['G5.1'] },
  { name: 'drop column dead_events.resolved_at', sql: ['ALTER TABLE dead_events DROP COLUMN resolved_at CASCADE'], gates: ['G8a.1'] },
  // Indexes: dropped, or changed (uniqueness, predicate, DESC, INCLUDE), and dropped legacy ones re-created.
  { name: 'drop idx_tenants_api_key_hash', sql: ['DROP INDEX idx_tenants_api_key_hash'], gates: ['G4.3'] },
  {
    name: 'idx_events_idempotency no longer UNIQUE',
    sql: ['DROP INDEX idx_events_idempotency', 'CREATE INDEX idx_events_idempotency ON attribution_events (idempotency_key)'],
    gates: ['G5.2'],
  },
  {
    name: 'idx_events_processing_status without its partial predicate',
    sql: ['DROP INDEX idx_events_processing_status', 'CREATE INDEX idx_events_processing_status ON attribution_events (processing_status, processed_at)'],
    gates: ['G5.6'],
  },
  {
    name: 'idx_events_tenant_timestamp without DESC',
    sql: ['DROP INDEX idx_events_tenant_timestamp', 'CREATE INDEX idx_events_tenant_timestamp ON attribution_events (tenant_id, event_timestamp)'],
    gates: ['G5.6'],
  },
  {
    name: 'idx_allocations_channel_performance without its INCLUDE list',
    sql: [
      'DROP INDEX idx_allocations_channel_performance',
      'CREATE INDEX idx_allocations_channel_performance ON attribution_allocations (tenant_id, channel_code, created_at DESC)',
    ],
    gates: ['G6.3'],
  },
  {
    name: 'idx_revenue_ledger_transaction_id no longer UNIQUE',
    sql: ['DROP INDEX idx_revenue_ledger_transaction_id', 'CREATE INDEX idx_revenue_ledger_transaction_id ON revenue_ledger (transaction_id)'],
    gates: ['G7.2', 'G7.5'],
  },
  { name: 'drop idx_revenue_ledger_state', sql: ['DROP INDEX idx_revenue_ledger_state'], gates: ['G7.5'] },
  {
    name: 'idx_revenue_ledger_tenant_state columns reordered',
    sql: ['DROP INDEX idx_revenue_ledger_tenant_state', 'CREATE INDEX idx_revenue_ledger_tenant_state ON revenue_ledger (state, tenant_id, created_at DESC)'],
    gates: ['G7.5'],
  },
  { name: 'drop idx_dead_events_remediation', sql: ['DROP INDEX idx_dead_events_remediation'], gates: ['G8a.3'] },
  {
    name: 'idx_revenue_state_transitions_ledger_id without DESC',
    sql: [
      'DROP INDEX idx_revenue_state_transitions_ledger_id',
      'CREATE INDEX idx_revenue_state_transitions_ledger_id ON revenue_state_transitions (ledger_id, transitioned_at)',
    ],
    gates: ['G8b.3'],
  },
  {
    name: 're-create the dropped legacy idx_attribution_events_tenant_external_event_id',
    sql: ['CREATE UNIQUE INDEX idx_attribution_events_tenant_external_event_id ON attribution_events (tenant_id, external_event_id) WHERE external_event_id IS NOT NULL'],
    gates: ['G5.5'],
  },
  {
    name: 're-create the legacy correlation index under another name',
    sql: ['CREATE UNIQUE INDEX idx_events_legacy_correlation ON attribution_events (tenant_id, correlation_id) WHERE correlation_id IS NOT NULL AND external_event_id IS NULL'],
    gates: ['G5.5'],
  },
  // The foreign key, comments, the new table.
  {
    name: 'FK ON DELETE CASCADE -> ON DELETE RESTRICT',
    sql: [
      'ALTER TABLE revenue_state_transitions DROP CONSTRAINT fk_revenue_state_transitions_ledger_id',
      'ALTER TABLE revenue_state_transitions ADD CONSTRAINT fk_revenue_state_transitions_ledger_id FOREIGN KEY (ledger_id) REFERENCES revenue_ledger (id) ON DELETE RESTRICT',
    ],
    gates: ['G8b.2'],
  },
  { name: 'remove the INVARIANT tag of tenants.api_key_hash', sql: ["COMMENT ON COLUMN tenants.api_key_hash IS 'Hash of the API key.'"], gates: ['G4.1'] },
  { name: 'remove the comment of revenue_ledger.amount_cents', sql: ['COMMENT ON COLUMN revenue_ledger.amount_cents IS NULL'], gates: ['G7.1'] },
  {
    name: 'wrong INVARIANT tag on dead_events.remediation_status',
    sql: ["COMMENT ON COLUMN dead_events.remediation_status IS 'Remediation state. INVARIANT: financial_critical'"],
    gates: ['G8a.1'],
  },
  { name: 'drop the new table revenue_state_transitions', sql: ['DROP TABLE revenue_state_transitions CASCADE'], gates: ['G8b.1', 'G8b.2', 'G8b.3'] },
];

const PHASE_ORDER = ['4', '5', '6', '7', '8a', '8b'];
const phaseOfGate = (gate: string) => /^G(\w+)\./.exec(gate)![1]!;

const cleanup: TestDatabase[] = [];
after(async () => {
  for (const db of cleanup) await db.drop().catch(() => {});
});

let template: TestDatabase;
before(async () => {
  template = await createTestDatabase('empty');
  cleanup.push(template);
  const migrator = new SchemaMigrator(template.ownerPool({ max: 2 }), { roles: template.roles });
  await migrator.upgrade('202511151450');
  await migrator.close();
});

function cloneTemplate(): Promise<TestDatabase> {
  return cloneDatabase(template.adminUrl, template.roles, template.name);
}

async function sabotaged(sql: string[]): Promise<ForensicReport> {
  const db = await cloneTemplate();
  cleanup.push(db);
  const client = await superClient(db);
  try {
    for (const statement of sql) await client.query(statement);
  } finally {
    await client.end();
  }
  try {
    return await runForensics(db);
  } finally {
    await db.drop();
    cleanup.splice(cleanup.indexOf(db), 1);
  }
}

// Cases run 4 at a time: each spends most of its time waiting on the server (clone, probes).
describe('a single sabotage of a correct schema fails the run and names the gate', { concurrency: 4 }, () => {
  test(`the suite has at least 20 distinct sabotages (${SABOTAGES.length})`, () => {
    assert.ok(SABOTAGES.length >= 20);
    assert.equal(new Set(SABOTAGES.map((s) => s.sql.join(';'))).size, SABOTAGES.length);
    for (const s of SABOTAGES) assert.equal(new Set(s.gates.map(phaseOfGate)).size, 1, `${s.name}: its gates are in one phase`);
  });

  for (const s of SABOTAGES) {
    test(s.name, async () => {
      const report = await sabotaged(s.sql);
      const phase = phaseOfGate(s.gates[0]!);
      const failed = report.phases.flatMap((p) => p.gates.filter((g) => g.verdict === 'FAIL').map((g) => g.id));
      assert.equal(report.summary.verdict, 'FAIL');
      assert.deepEqual(failed, s.gates, `failed gates (${report.summary.line})`);
      for (const p of report.phases) {
        const i = PHASE_ORDER.indexOf(p.phase);
        const expected = i < PHASE_ORDER.indexOf(phase) ? 'PASS' : i === PHASE_ORDER.indexOf(phase) ? 'FAIL' : 'NOT RUN';
        assert.equal(p.verdict, expected, `phase ${p.phase}`);
      }
      // The failing test says what it saw.
      const failing = report.phases.flatMap((p) => p.gates.flatMap((g) => g.tests)).filter((t) => t.verdict === 'FAIL');
      assert.ok(failing.every((t) => t.actual.includes('✗') || t.actual.startsWith('error:')), 'every failed test marks the failing check');
    });
  }
});
