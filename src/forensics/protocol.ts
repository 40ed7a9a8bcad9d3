import { CHECKS, COLUMNS, REVISION_LINES, type DocumentColumn, type Phase } from '../migrations/document.js';
import type { Revision } from '../migrations/revision.js';
import { keySwapBehaviour, keySwapIndex, transitionsCascade, transitionsForeignKey, transitionsTable, type CitusEquivalent } from './equivalents.js';
import { eventValues, inTransaction, ledgerValues, type Probe } from './fixtures.js';
import {
  checkConstraintChecks,
  columnChecks,
  droppedIndexChecks,
  foreignKeyChecks,
  indexChecks,
  invariantChecks,
  revisionChecks,
  tableChecks,
} from './probes.js';
import type { Session } from './session.js';
import type { Check } from './types.js';

/**
 * The design document's forensic validation protocol as data: 6 phases (4, 5, 6, 7, 8a, 8b),
 * 24 exit gates, 51 SQL tests, each test naming the document lines it proves.
 *
 * How the document's gate lists map onto its counted gates: every phase's list begins with
 * "Migration file created with correct DDL" (already ✅ when the document was written). The
 * coverage section (lines 305-311) counts exactly the listed gates for phase 4 (4 listed, 4
 * counted) and one fewer than listed for every later phase (5: 7→6, 6: 4→3, 7: 6→5,
 * 8a/8b: 4→3 each). So phase 4 keeps that item as its own gate G4.1, realised as "the revision
 * is applied after the document's down revision, and its columns carry their INVARIANT
 * comments" (lines 34-35, 51), while phases 5-8b fold the same check (revision applied after
 * its down revision; INVARIANT tags inside the column test) into their first counted gate
 * ("all columns exist with correct types"), which records the folded line in `foldedLines`.
 */

export interface RunContext {
  session: Session;
  revisions: readonly Revision[];
}

export interface TestSpec {
  id: string;
  title: string;
  kind: 'catalogue' | 'behaviour';
  lines: number[];
  run(ctx: RunContext): Promise<Check[]>;
  /** On a distributed Citus database, run instead: the documented equivalent (equivalents.ts). */
  citus?: CitusEquivalent;
}

export interface GateSpec {
  id: string;
  title: string;
  line: number;
  foldedLines: number[];
  tests: TestSpec[];
}

export interface PhaseSpec {
  phase: Phase;
  title: string;
  /** Line of the phase's heading in the document. */
  line: number;
  revision: string;
  previous: string;
  revisionLine: number;
  gates: GateSpec[];
}

const cols = (phase: Phase, except: string[] = []) => COLUMNS.filter((c) => c.phase === phase && !except.includes(c.column));
const col = (table: string, column: string): DocumentColumn => COLUMNS.find((c) => c.table === table && c.column === column)!;
const revisionOf = (phase: Phase) => REVISION_LINES.find((r) => r.phase === phase)!;
const revisionFields = (phase: Phase) => {
  const r = revisionOf(phase);
  return { revision: r.revision, previous: r.previous, revisionLine: r.line };
};
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/** The test, with the distributed equivalent Citus runs instead. */
function onCitus(test: TestSpec, citus: CitusEquivalent): TestSpec {
  return { ...test, citus };
}

function catalogue(id: string, title: string, lines: number[], run: (ctx: RunContext) => Promise<Check[]>): TestSpec {
  return { id, title, kind: 'catalogue', lines, run };
}

function behaviour(id: string, title: string, lines: number[], run: (tx: Probe, ctx: RunContext) => Promise<Check[]>): TestSpec {
  return { id, title, kind: 'behaviour', lines, run: (ctx) => inTransaction(ctx.session, (tx) => run(tx, ctx)) };
}

function revisionTest(id: string, phase: Phase): TestSpec {
  const doc = revisionOf(phase);
  return catalogue(id, `revision ${doc.revision} applied after its down revision ${doc.previous}`, [doc.line, doc.line + 1], (ctx) =>
    revisionChecks(ctx.session, ctx.revisions, doc),
  );
}

function columnsTest(id: string, title: string, lines: number[], columns: DocumentColumn[], invariant = true): TestSpec {
  return catalogue(id, title, lines, (ctx) => columnChecks(ctx.session, columns, { invariant }));
}

function indexTest(id: string, name: string, line: number): TestSpec {
  return catalogue(id, `index ${name} exists with the document's definition`, [line], (ctx) => indexChecks(ctx.session, name));
}

function checkDefinitionTest(id: string, name: string, line: number): TestSpec {
  const c = CHECKS.find((x) => x.name === name)!;
  return catalogue(id, `CHECK ${name} exists with the document's definition`, [line], (ctx) => checkConstraintChecks(ctx.session, c.table, name));
}

type Inserter = (tx: Probe, tenant: string, value: string | number, parent: string | undefined) => Promise<unknown>;

/**
 * Every rejected value is refused by this CHECK (23514 naming it); every allowed value and
 * boundary is accepted. `parent` makes a row the probed one needs (outside the savepoints).
 */
async function checkEnforcement(tx: Probe, name: string, insert: Inserter, parent?: (tx: Probe, tenant: string) => Promise<string>): Promise<Check[]> {
  const c = CHECKS.find((x) => x.name === name)!;
  const tenant = await tx.tenant();
  const parentId = parent ? await parent(tx, tenant) : undefined;
  const checks: Check[] = [];
  for (const v of c.rejected) {
    checks.push(await tx.expectRejected(`${c.column} = ${JSON.stringify(v)}`, () => insert(tx, tenant, v, parentId), { code: '23514', constraint: name }));
  }
  for (const v of c.accepted) {
    checks.push(await tx.expectAccepted(`${c.column} = ${JSON.stringify(v)}`, () => insert(tx, tenant, v, parentId)));
  }
  return checks;
}

function checkEnforcementTest(id: string, name: string, lines: number[], insert: Inserter, alsoDefinition = false): TestSpec {
  const c = CHECKS.find((x) => x.name === name)!;
  const title =
    `${alsoDefinition ? `CHECK ${name} has the document's definition and ` : ''}rejects ${c.rejected.map((v) => JSON.stringify(v)).join(', ')} (23514), ` +
    `accepts ${c.accepted.map((v) => JSON.stringify(v)).join(', ')}`;
  return {
    id,
    title,
    kind: 'behaviour',
    lines,
    run: async (ctx) => [
      ...(alsoDefinition ? await checkConstraintChecks(ctx.session, c.table, name) : []),
      ...(await inTransaction(ctx.session, (tx) => checkEnforcement(tx, name, insert))),
    ],
  };
}

/** A NULL in each column is refused (23502 naming the column); the same fixture with a value is accepted. */
function notNullTest(id: string, table: string, columnsUnderTest: string[], lines: number[], insert: (tx: Probe, tenant: string, overrides: Record<string, unknown>) => Promise<unknown>): TestSpec {
  return behaviour(id, `NULL ${columnsUnderTest.join(', NULL ')} rejected by NOT NULL (23502) on ${table}`, lines, async (tx) => {
    const tenant = await tx.tenant();
    const checks = [await tx.expectAccepted('valid fixture (control)', () => insert(tx, tenant, {}))];
    for (const c of columnsUnderTest) {
      checks.push(await tx.expectRejected(`${c} = NULL`, () => insert(tx, tenant, { [c]: null }), { code: '23502', column: c }));
    }
    return checks;
  });
}

const insertEvent = (tx: Probe, tenant: string, o: Record<string, unknown>) => tx.event(tenant, o);
const insertLedger = (tx: Probe, tenant: string, o: Record<string, unknown>) => tx.ledger(tenant, o);

/** Reads back the row a fixture insert produced and compares the named columns. */
function defaultsChecks(row: Record<string, unknown>, want: Record<string, (v: unknown) => [string, boolean]>, expected: Record<string, string>): Check[] {
  return Object.entries(want).map(([column, judge]) => {
    const [actual, pass] = judge(row[column]);
    return { label: `${column} when omitted`, expected: expected[column]!, actual, pass };
  });
}

const equals = (want: unknown) => (v: unknown): [string, boolean] => [v === null || v === undefined ? 'NULL' : JSON.stringify(v), v === want];
const isSet = (v: unknown): [string, boolean] => [v === null || v === undefined ? 'NULL' : 'set', v !== null && v !== undefined];

export const PHASES: readonly PhaseSpec[] = [
  {
    phase: '4',
    title: 'Phase 4: Tenants Table Migration',
    line: 31,
    ...revisionFields('4'),
    gates: [
      {
        id: 'G4.1', title: 'Migration file created with correct DDL', line: 55, foldedLines: [],
        tests: [
          revisionTest('T4.1.1', '4'),
          catalogue('T4.1.2', 'api_key_hash and notification_email are commented with INVARIANT: auth_critical', [51, 68], (ctx) =>
            invariantChecks(ctx.session, cols('4'))),
        ],
      },
      {
        id: 'G4.2', title: 'Both columns exist with correct types', line: 56, foldedLines: [],
        tests: [
          columnsTest('T4.2.1', 'api_key_hash is VARCHAR(255) NOT NULL without default', [40, 47], [col('tenants', 'api_key_hash')], false),
          columnsTest('T4.2.2', 'notification_email is VARCHAR(255) NOT NULL without default', [41, 48], [col('tenants', 'notification_email')], false),
        ],
      },
      {
        id: 'G4.3', title: 'UNIQUE constraint prevents duplicate api_key_hash', line: 57, foldedLines: [],
        tests: [
          indexTest('T4.3.1', 'idx_tenants_api_key_hash', 44),
          behaviour('T4.3.2', 'a second tenant with the same api_key_hash is rejected (23505 idx_tenants_api_key_hash)', [40, 49, 66], async (tx) => {
            const first = await tx.tenant();
            const { rows } = await tx.session.query<{ h: string }>(`SELECT api_key_hash AS h FROM tenants WHERE id = $1`, [first]);
            return [
              await tx.expectAccepted('another tenant with its own api_key_hash (control)', () => tx.tenant()),
              await tx.expectRejected('another tenant with the same api_key_hash', () => tx.tenant({ api_key_hash: rows[0]!.h }), {
                code: '23505', constraint: 'idx_tenants_api_key_hash',
              }),
            ];
          }),
        ],
      },
      {
        id: 'G4.4', title: 'NOT NULL constraints enforced', line: 58, foldedLines: [],
        tests: [
          notNullTest('T4.4.1', 'tenants', ['api_key_hash'], [47, 67], (tx, _t, o) => tx.tenant(o)),
          notNullTest('T4.4.2', 'tenants', ['notification_email'], [48, 67], (tx, _t, o) => tx.tenant(o)),
        ],
      },
    ],
  },
  {
    phase: '5',
    title: 'Phase 5: Attribution Events Table Migration',
    line: 72,
    ...revisionFields('5'),
    gates: [
      {
        id: 'G5.1', title: 'All 10 columns exist with correct types', line: 117, foldedLines: [116],
        tests: [
          revisionTest('T5.1.1', '5'),
          columnsTest('T5.1.2', 'the 10 added columns: type, length, nullability, default, INVARIANT tag', range(81, 90), cols('5', ['session_id'])),
          behaviour('T5.1.3', 'defaults apply to an inserted event: currency USD, processing_status pending, retry_count 0, processed_at set', [86, 88, 89, 90], async (tx) => {
            const tenant = await tx.tenant();
            const values = eventValues(tenant);
            for (const omitted of ['currency', 'processing_status', 'retry_count', 'processed_at']) delete values[omitted];
            const row = await tx.insert('attribution_events', values);
            return defaultsChecks(
              row,
              { currency: equals('USD'), processing_status: equals('pending'), retry_count: equals(0), processed_at: isSet },
              { currency: '"USD"', processing_status: '"pending"', retry_count: '0', processed_at: 'set' },
            );
          }),
        ],
      },
      {
        id: 'G5.2', title: 'idempotency_key UNIQUE constraint enforced', line: 118, foldedLines: [],
        tests: [
          onCitus(indexTest('T5.2.1', 'idx_events_idempotency', 96),
            keySwapIndex('idx_events_idempotency', 'idx_events_idempotency UNIQUE (idempotency_key)')),
          onCitus(behaviour('T5.2.2', 'a duplicate idempotency_key is rejected (23505 idx_events_idempotency), in the same tenant and in another', [81, 96, 118], async (tx) => {
            const a = await tx.tenant();
            const first = await tx.event(a);
            const checks = [
              await tx.expectAccepted('an event with a new key (control)', () => tx.event(a)),
              await tx.expectRejected('same key, same tenant', () => tx.event(a, { idempotency_key: first.idempotency_key }), { code: '23505', constraint: 'idx_events_idempotency' }),
            ];
            const b = await tx.tenant();
            checks.push(await tx.expectRejected('same key, another tenant', () => tx.event(b, { idempotency_key: first.idempotency_key }), { code: '23505', constraint: 'idx_events_idempotency' }));
            return checks;
          }), keySwapBehaviour('idx_events_idempotency', 'a duplicate idempotency_key refused by idx_events_idempotency (23505) in any tenant', 'idempotency_key', (tx, t, o) => tx.event(t, o))),
        ],
      },
      {
        id: 'G5.3', title: 'session_id NOT NULL enforced', line: 119, foldedLines: [],
        tests: [
          columnsTest('T5.3.1', 'session_id is UUID NOT NULL', [93], [col('attribution_events', 'session_id')]),
          notNullTest('T5.3.2', 'attribution_events', ['session_id'], [93, 119], insertEvent),
        ],
      },
      {
        id: 'G5.4', title: 'processing_status CHECK constraint enforced', line: 120, foldedLines: [],
        tests: [
          checkDefinitionTest('T5.4.1', 'ck_attribution_events_processing_status_valid', 105),
          checkEnforcementTest('T5.4.2', 'ck_attribution_events_processing_status_valid', [89, 105, 120], (tx, t, v) => tx.event(t, { processing_status: v })),
          checkDefinitionTest('T5.4.3', 'ck_attribution_events_retry_count_positive', 106),
          checkEnforcementTest('T5.4.4', 'ck_attribution_events_retry_count_positive', [90, 106], (tx, t, v) => tx.event(t, { retry_count: v })),
        ],
      },
      {
        id: 'G5.5', title: 'Old composite indexes dropped', line: 121, foldedLines: [],
        tests: [
          catalogue('T5.5.1', 'idx_attribution_events_tenant_external_event_id is gone (under any name)', [101], (ctx) =>
            droppedIndexChecks(ctx.session, 'idx_attribution_events_tenant_external_event_id')),
          catalogue('T5.5.2', 'idx_attribution_events_tenant_correlation_id is gone (under any name)', [102], (ctx) =>
            droppedIndexChecks(ctx.session, 'idx_attribution_events_tenant_correlation_id')),
        ],
      },
      {
        id: 'G5.6', title: 'New canonical indexes exist', line: 122, foldedLines: [],
        tests: [indexTest('T5.6.1', 'idx_events_tenant_timestamp', 97), indexTest('T5.6.2', 'idx_events_processing_status', 98)],
      },
    ],
  },
  {
    phase: '6',
    title: 'Phase 6: Attribution Allocations Table Migration',
    line: 126,
    ...revisionFields('6'),
    gates: [
      {
        id: 'G6.1', title: 'All 9 columns exist with correct types', line: 159, foldedLines: [158],
        tests: [
          revisionTest('T6.1.1', '6'),
          columnsTest('T6.1.2', 'the 9 added columns: type, precision, nullability, default, INVARIANT tag', range(135, 143), cols('6')),
          behaviour('T6.1.3', 'NULL model_type and NULL confidence_score rejected (23502); verified defaults to false', [135, 136, 141], async (tx) => {
            const tenant = await tx.tenant();
            const event = await tx.event(tenant);
            const checks = [
              await tx.expectRejected('model_type = NULL', () => tx.allocation(tenant, event.id as string, { model_type: null }), { code: '23502', column: 'model_type' }),
              await tx.expectRejected('confidence_score = NULL', () => tx.allocation(tenant, event.id as string, { confidence_score: null }), { code: '23502', column: 'confidence_score' }),
            ];
            const row = await tx.allocation(tenant, event.id as string);
            return [...checks, ...defaultsChecks(row, { verified: equals(false) }, { verified: 'false' })];
          }),
        ],
      },
      {
        id: 'G6.2', title: 'confidence_score CHECK constraint enforced (reject 1.5, accept 0.5)', line: 160, foldedLines: [],
        tests: [
          checkDefinitionTest('T6.2.1', 'ck_allocations_confidence_score', 149),
          behaviour('T6.2.2', 'confidence_score 1.5, -0.001, 1.001 rejected (23514 ck_allocations_confidence_score); 0, 0.5, 1 accepted', [136, 149, 160], (tx) =>
            checkEnforcement(
              tx,
              'ck_allocations_confidence_score',
              (p, t, v, event) => p.allocation(t, event!, { confidence_score: v }),
              async (p, t) => (await p.event(t)).id as string,
            )),
        ],
      },
      {
        id: 'G6.3', title: 'Canonical index with INCLUDE clause exists', line: 161, foldedLines: [],
        tests: [indexTest('T6.3.1', 'idx_allocations_channel_performance', 146)],
      },
    ],
  },
  {
    phase: '7',
    title: 'Phase 7: Revenue Ledger Table Migration',
    line: 165,
    ...revisionFields('7'),
    gates: [
      {
        id: 'G7.1', title: 'All 9 columns exist with correct types', line: 203, foldedLines: [202],
        tests: [
          revisionTest('T7.1.1', '7'),
          columnsTest('T7.1.2', 'the 9 added columns: type, length, nullability, default, INVARIANT tag', range(174, 182), cols('7')),
          behaviour('T7.1.3', 'currency defaults to USD; order_id, previous_state and metadata accept NULL', [175, 177, 179, 182], async (tx) => {
            const tenant = await tx.tenant();
            const values = ledgerValues(tenant, { order_id: null, previous_state: null, metadata: null });
            delete values.currency;
            const row = await tx.insert('revenue_ledger', values);
            return defaultsChecks(
              row,
              { currency: equals('USD'), order_id: equals(null), previous_state: equals(null), metadata: equals(null) },
              { currency: '"USD"', order_id: 'NULL', previous_state: 'NULL', metadata: 'NULL' },
            );
          }),
        ],
      },
      {
        id: 'G7.2', title: 'transaction_id UNIQUE constraint enforced', line: 204, foldedLines: [],
        tests: [
          onCitus(behaviour('T7.2.1', 'a duplicate transaction_id is rejected (23505 idx_revenue_ledger_transaction_id), in the same tenant and in another', [174, 185, 204], async (tx) => {
            const a = await tx.tenant();
            const first = await tx.ledger(a);
            const checks = [
              await tx.expectAccepted('a ledger row with a new transaction_id (control)', () => tx.ledger(a)),
              await tx.expectRejected('same transaction_id, same tenant', () => tx.ledger(a, { transaction_id: first.transaction_id }), { code: '23505', constraint: 'idx_revenue_ledger_transaction_id' }),
            ];
            const b = await tx.tenant();
            checks.push(await tx.expectRejected('same transaction_id, another tenant', () => tx.ledger(b, { transaction_id: first.transaction_id }), { code: '23505', constraint: 'idx_revenue_ledger_transaction_id' }));
            return checks;
          }), keySwapBehaviour('idx_revenue_ledger_transaction_id', 'a duplicate transaction_id refused by idx_revenue_ledger_transaction_id (23505) in any tenant', 'transaction_id', (tx, t, o) => tx.ledger(t, o))),
        ],
      },
      {
        id: 'G7.3', title: "state CHECK constraint enforced (reject 'invalid_state')", line: 205, foldedLines: [],
        tests: [
          checkDefinitionTest('T7.3.1', 'ck_revenue_ledger_state_valid', 190),
          checkEnforcementTest('T7.3.2', 'ck_revenue_ledger_state_valid', [176, 190, 205], (tx, t, v) => tx.ledger(t, { state: v })),
        ],
      },
      {
        id: 'G7.4', title: 'All NOT NULL constraints enforced', line: 206, foldedLines: [],
        tests: [
          notNullTest('T7.4.1', 'revenue_ledger', ['transaction_id'], [174, 206], insertLedger),
          notNullTest('T7.4.2', 'revenue_ledger', ['state', 'amount_cents'], [176, 178, 206], insertLedger),
          notNullTest('T7.4.3', 'revenue_ledger', ['currency', 'verification_source', 'verification_timestamp'], [179, 180, 181, 206], insertLedger),
        ],
      },
      {
        id: 'G7.5', title: 'All 3 indexes exist', line: 207, foldedLines: [],
        tests: [
          onCitus(indexTest('T7.5.1', 'idx_revenue_ledger_transaction_id', 185),
            keySwapIndex('idx_revenue_ledger_transaction_id', 'idx_revenue_ledger_transaction_id UNIQUE (transaction_id)')),
          indexTest('T7.5.2', 'idx_revenue_ledger_state', 186),
          indexTest('T7.5.3', 'idx_revenue_ledger_tenant_state', 187),
        ],
      },
    ],
  },
  {
    phase: '8a',
    title: 'Phase 8, Part A: Dead Events Enhancements',
    line: 213,
    ...revisionFields('8a'),
    gates: [
      {
        id: 'G8a.1', title: 'All 9 columns exist', line: 263, foldedLines: [262],
        tests: [
          revisionTest('T8a.1.1', '8a'),
          columnsTest('T8a.1.2', 'the 9 added columns: type, length, nullability, default, INVARIANT tag', range(220, 228), cols('8a')),
        ],
      },
      {
        id: 'G8a.2', title: 'remediation_status CHECK constraint enforced', line: 264, foldedLines: [],
        tests: [
          checkEnforcementTest('T8a.2.1', 'ck_dead_events_remediation_status_valid', [226, 234, 264], (tx, t, v) => tx.dead(t, { remediation_status: v }), true),
          checkEnforcementTest('T8a.2.2', 'ck_dead_events_retry_count_positive', [224, 235], (tx, t, v) => tx.dead(t, { retry_count: v }), true),
        ],
      },
      {
        id: 'G8a.3', title: 'Remediation index exists', line: 265, foldedLines: [],
        tests: [indexTest('T8a.3.1', 'idx_dead_events_remediation', 231)],
      },
    ],
  },
  {
    phase: '8b',
    title: 'Phase 8, Part B: Revenue State Transitions Table',
    line: 237,
    ...revisionFields('8b'),
    gates: [
      {
        id: 'G8b.1', title: 'Table exists with all 6 columns', line: 269, foldedLines: [268],
        tests: [
          revisionTest('T8b.1.1', '8b'),
          onCitus(catalogue('T8b.1.2', 'revenue_state_transitions exists with its primary key and 6 columns: type, nullability, default, INVARIANT tag', [243, ...range(245, 251)], async (ctx) => [
            ...(await tableChecks(ctx.session, 'revenue_state_transitions')),
            ...(await columnChecks(ctx.session, cols('8b'), { invariant: true })),
          ]), transitionsTable),
        ],
      },
      {
        id: 'G8b.2', title: 'FK to revenue_ledger enforced with CASCADE delete', line: 270, foldedLines: [],
        tests: [
          onCitus(catalogue('T8b.2.1', 'fk_revenue_state_transitions_ledger_id: FOREIGN KEY (ledger_id) REFERENCES revenue_ledger(id) ON DELETE CASCADE', [247, 256, 257], (ctx) =>
            foreignKeyChecks(ctx.session)), transitionsForeignKey),
          onCitus(behaviour('T8b.2.2', 'deleting a ledger row deletes its transitions; re-keying a referenced ledger row is refused (23503)', [247, 257, 270], async (tx) => {
            const tenant = await tx.tenant();
            const ledger = await tx.ledger(tenant);
            await tx.transition(ledger.id as string);
            await tx.transition(ledger.id as string, { from_state: 'authorized', to_state: 'captured' });
            const count = async () =>
              Number((await tx.session.query<{ n: string }>(`SELECT count(*) AS n FROM revenue_state_transitions WHERE ledger_id = $1`, [ledger.id])).rows[0]!.n);
            const before = await count();
            let after = -1;
            const deleted = await tx.attempt(async () => {
              const r = await tx.session.query(`DELETE FROM revenue_ledger WHERE id = $1 RETURNING id`, [ledger.id]);
              after = await count();
              return r.rows;
            });
            return [
              { label: 'transitions of the fixture ledger row before DELETE', expected: 'at least 2', actual: String(before), pass: before >= 2 },
              {
                label: 'DELETE the ledger row, then count its transitions',
                expected: 'ledger row deleted, 0 transitions left',
                actual: deleted.ok ? `ledger row deleted (${deleted.rows.length}), ${after} transitions left` : `DELETE rejected ${deleted.code}: ${deleted.message}`,
                pass: deleted.ok && deleted.rows.length === 1 && after === 0,
              },
              await tx.expectRejected('UPDATE the referenced ledger row\'s id', () => tx.session.query(`UPDATE revenue_ledger SET id = gen_random_uuid() WHERE id = $1`, [ledger.id]), {
                code: '23503', constraint: 'fk_revenue_state_transitions_ledger_id',
              }),
            ];
          }), transitionsCascade),
        ],
      },
      {
        id: 'G8b.3', title: 'Index on ledger_id exists', line: 271, foldedLines: [],
        tests: [indexTest('T8b.3.1', 'idx_revenue_state_transitions_ledger_id', 254)],
      },
    ],
  },
];

/** The document's coverage counts (lines 305-311). */
export const EXPECTED_COUNTS: Record<string, { gates: number; tests: number }> = {
  '4': { gates: 4, tests: 8 },
  '5': { gates: 6, tests: 15 },
  '6': { gates: 3, tests: 6 },
  '7': { gates: 5, tests: 12 },
  '8': { gates: 6, tests: 10 },
};

