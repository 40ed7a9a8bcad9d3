import { randomUUID } from 'node:crypto';
import { KEY_SWAPS, DROPPED_FOREIGN_KEYS } from '../citus/plan.js';
import { COLUMNS } from '../migrations/document.js';
import { distributedByTenantChecks, onEveryShard } from './deployment.js';
import { inTransaction, type Probe } from './fixtures.js';
import { columnChecks } from './probes.js';
import { ReferenceRenderer } from './reference.js';
import type { Session } from './session.js';
import type { Check, Difference } from './types.js';

/**
 * The distributed equivalents of the protocol's tests, run instead of them on a Citus database
 * (`skeldir citus distribute`, docs/scaling.md "Where the distributed schema differs"). Each
 * states the difference and why nothing is lost, and checks the equivalent for real: on the
 * coordinator's catalogue, on every shard (run_command_on_shards), and by provoking the same
 * violation. A test without one runs unchanged on Citus.
 */
export interface CitusEquivalent {
  difference: Difference;
  run(ctx: { session: Session }): Promise<Check[]>;
}

const q = (s: string) => `'${s.replace(/'/g, "''")}'`;

function swap(name: string) {
  const s = KEY_SWAPS.find((x) => x.name === name);
  if (!s || !s.check) throw new Error(`no Citus key swap with a CHECK for ${name} in src/citus/plan.ts`);
  return s as typeof s & { check: { name: string; expression: string } };
}

/** The tenant-scoped unique index and the CHECK that makes it equivalent: coordinator and every shard. */
async function keySwapCatalogue(session: Session, name: string): Promise<Check[]> {
  const s = swap(name);
  const checks: Check[] = [await distributedByTenantChecks(session, s.table)];
  const index = (await session.query<{ def: string; usable: boolean }>(
    `SELECT pg_get_indexdef(i.indexrelid) AS def, (i.indisvalid AND i.indisready AND i.indislive) AS usable
       FROM pg_index i WHERE i.indexrelid = to_regclass($1)`, [`public.${s.replacement}`])).rows[0];
  const wantIndex = `CREATE UNIQUE INDEX ${s.replacement} ON public.${s.table} USING btree (${s.columns})`;
  checks.push(
    { label: `definition of ${s.replacement} (replaces ${name})`, expected: wantIndex, actual: index?.def ?? 'index does not exist', pass: index?.def === wantIndex },
    { label: `${s.replacement} is valid and ready`, expected: 'true', actual: index ? String(index.usable) : 'index does not exist', pass: index?.usable === true },
  );
  const ref = await new ReferenceRenderer(session).checkExpression(s.table, s.check.name, s.check.expression);
  const live = (await session.query<{ def: string; valid: boolean }>(
    `SELECT pg_get_constraintdef(oid) AS def, convalidated AS valid FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2 AND contype = 'c'`,
    [`public.${s.table}`, s.check.name])).rows[0];
  checks.push(
    { label: `definition of ${s.check.name}`, expected: ref.text, actual: live?.def ?? 'constraint does not exist', pass: !!live && live.def === ref.text },
    { label: `${s.check.name} validated`, expected: 'true', actual: live ? String(live.valid) : 'constraint does not exist', pass: live?.valid === true },
  );
  const cols = s.columns.split(',').map((c) => q(c.trim())).join(', ');
  checks.push(await onEveryShard(session, s.table, `unique index on (${s.columns})`, 'valid unique index', `SELECT CASE WHEN EXISTS (
      SELECT 1 FROM pg_index x WHERE x.indrelid = '%s'::regclass AND x.indisunique AND x.indisvalid AND x.indpred IS NULL
         AND ARRAY(SELECT a.attname::text FROM unnest(x.indkey) k JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k) = ARRAY[${cols}]
    ) THEN 1 ELSE 0 END`));
  checks.push(await onEveryShard(session, s.table, `CHECK ${s.check.name}`, 'validated, same definition', `SELECT CASE WHEN EXISTS (
      SELECT 1 FROM pg_constraint WHERE conrelid = '%s'::regclass AND contype = 'c' AND convalidated AND pg_get_constraintdef(oid) = ${q(ref.text)}
    ) THEN 1 ELSE 0 END`));
  return checks;
}

function keySwapDifference(name: string, documentText: string): Difference {
  const s = swap(name);
  return {
    document: documentText,
    distributed: `${s.replacement} UNIQUE (${s.columns}) and ${s.check.name} CHECK (${s.check.expression}), on the coordinator and on every shard`,
    why: `Citus cannot enforce a unique key without the distribution column; ${s.why}`,
  };
}

/** The unique index of the document, checked as its tenant-scoped replacement. */
export function keySwapIndex(name: string, documentText: string): CitusEquivalent {
  return { difference: keySwapDifference(name, documentText), run: (ctx) => keySwapCatalogue(ctx.session, name) };
}

/**
 * A duplicate is still refused, in the same tenant by the tenant-scoped index and in another tenant
 * by the CHECK (another tenant's row cannot carry a key that starts with this tenant's id).
 */
export function keySwapBehaviour(
  name: string,
  documentText: string,
  column: string,
  insert: (tx: Probe, tenant: string, overrides: Record<string, unknown>) => Promise<Record<string, unknown>>,
): CitusEquivalent {
  const s = swap(name);
  return {
    difference: keySwapDifference(name, documentText),
    run: (ctx) => inTransaction(ctx.session, async (tx) => {
      const a = await tx.tenant();
      const first = await insert(tx, a, {});
      const checks = [
        await tx.expectAccepted(`a row with a new ${column} (control)`, () => insert(tx, a, {})),
        await tx.expectRejected(`same ${column}, same tenant`, () => insert(tx, a, { [column]: first[column] }), { code: '23505', constraint: s.replacement }),
      ];
      const b = await tx.tenant();
      checks.push(await tx.expectRejected(`same ${column}, another tenant`, () => insert(tx, b, { [column]: first[column] }), { code: '23514', constraint: s.check.name }));
      return checks;
    }),
  };
}

const TENANT_FK = 'fk_revenue_state_transitions_tenant_ledger';
const TENANT_FK_DEF = 'FOREIGN KEY (tenant_id, ledger_id) REFERENCES revenue_ledger(tenant_id, id) ON DELETE CASCADE';

/** revenue_state_transitions: PRIMARY KEY (tenant_id, id) instead of (id), the document's six columns otherwise. */
export const transitionsTable: CitusEquivalent = {
  difference: {
    document: 'revenue_state_transitions PRIMARY KEY (id)',
    distributed: 'PRIMARY KEY (tenant_id, id), id still gen_random_uuid(), tenant_id NOT NULL, on the coordinator and on every shard',
    why: 'Citus cannot enforce a primary key without the distribution column; every lookup by id still works, and ids are random UUIDs: only their uniqueness across tenants is no longer enforced by the index',
  },
  run: async ({ session }) => {
    const { rows } = await session.query<{ kind: string | null; pk: string | null; tenant: boolean | null }>(
      `SELECT c.relkind::text AS kind,
              (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') AS pk,
              (SELECT a.attnotnull FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped) AS tenant
         FROM (SELECT to_regclass('public.revenue_state_transitions') AS oid) r LEFT JOIN pg_class c ON c.oid = r.oid`,
    );
    const r = rows[0]!;
    return [
      { label: 'table revenue_state_transitions', expected: 'ordinary table', actual: r.kind === null ? 'does not exist' : r.kind === 'r' ? 'ordinary table' : `relkind ${r.kind}`, pass: r.kind === 'r' },
      await distributedByTenantChecks(session, 'revenue_state_transitions'),
      { label: 'primary key of revenue_state_transitions', expected: 'PRIMARY KEY (tenant_id, id)', actual: r.pk ?? 'none', pass: r.pk === 'PRIMARY KEY (tenant_id, id)' },
      { label: 'revenue_state_transitions.tenant_id', expected: 'NOT NULL', actual: r.tenant === null ? 'column does not exist' : r.tenant ? 'NOT NULL' : 'NULL', pass: r.tenant === true },
      await onEveryShard(session, 'revenue_state_transitions', 'PRIMARY KEY (tenant_id, id)', 'primary key (tenant_id, id)', `SELECT CASE WHEN EXISTS (
          SELECT 1 FROM pg_constraint WHERE conrelid = '%s'::regclass AND contype = 'p' AND pg_get_constraintdef(oid) = 'PRIMARY KEY (tenant_id, id)'
        ) THEN 1 ELSE 0 END`),
      ...(await columnChecks(session, COLUMNS.filter((c) => c.phase === '8b'), { invariant: true })),
    ];
  },
};

const fkWhy = DROPPED_FOREIGN_KEYS.find((f) => f.name === 'fk_revenue_state_transitions_ledger_id')!.why;

/** The tenant-scoped foreign key that replaces the document's (ledger_id) → revenue_ledger(id). */
export const transitionsForeignKey: CitusEquivalent = {
  difference: {
    document: 'fk_revenue_state_transitions_ledger_id FOREIGN KEY (ledger_id) REFERENCES revenue_ledger(id) ON DELETE CASCADE',
    distributed: `${TENANT_FK} ${TENANT_FK_DEF}, validated, on the coordinator and on every shard (referencing the colocated ledger shard)`,
    why: `Citus refuses a foreign key between distributed tables without the distribution column; ${fkWhy}`,
  },
  run: async ({ session }) => {
    const live = (await session.query<{ def: string; valid: boolean }>(
      `SELECT pg_get_constraintdef(oid) AS def, convalidated AS valid FROM pg_constraint WHERE conrelid = 'public.revenue_state_transitions'::regclass AND conname = $1`,
      [TENANT_FK])).rows[0];
    return [
      await distributedByTenantChecks(session, 'revenue_state_transitions'),
      await distributedByTenantChecks(session, 'revenue_ledger'),
      { label: `definition of ${TENANT_FK}`, expected: TENANT_FK_DEF, actual: live?.def ?? 'constraint does not exist', pass: live?.def === TENANT_FK_DEF },
      { label: `${TENANT_FK} validated`, expected: 'true', actual: live ? String(live.valid) : 'constraint does not exist', pass: live?.valid === true },
      await onEveryShard(session, 'revenue_state_transitions', TENANT_FK, 'validated, ON DELETE CASCADE onto the ledger shard', `SELECT CASE WHEN EXISTS (
          SELECT 1 FROM pg_constraint WHERE conrelid = '%s'::regclass AND contype = 'f' AND convalidated
             AND regexp_replace(pg_get_constraintdef(oid), 'REFERENCES \\S+?\\(', 'REFERENCES revenue_ledger(') = ${q(TENANT_FK_DEF)}
        ) THEN 1 ELSE 0 END`),
    ];
  },
};

/**
 * Deleting a ledger row deletes its transitions; re-keying a referenced row is refused by the
 * tenant-scoped key. The new id is generated by the probe: Citus refuses gen_random_uuid() (VOLATILE)
 * in an UPDATE of a distributed table.
 */
export const transitionsCascade: CitusEquivalent = {
  difference: {
    document: "ON DELETE CASCADE and the refused re-key enforced by fk_revenue_state_transitions_ledger_id; the re-key written SET id = gen_random_uuid()",
    distributed: `the same two behaviours enforced by ${TENANT_FK}; the new id is a literal (Citus refuses VOLATILE functions in an UPDATE of a distributed table)`,
    why: fkWhy,
  },
  run: (ctx) => inTransaction(ctx.session, async (tx) => {
    const tenant = await tx.tenant();
    const ledger = await tx.ledger(tenant);
    await tx.transition(ledger.id as string);
    await tx.transition(ledger.id as string, { from_state: 'authorized', to_state: 'captured' });
    const count = async () =>
      Number((await tx.session.query<{ n: string }>(`SELECT count(*) AS n FROM revenue_state_transitions WHERE tenant_id = $1 AND ledger_id = $2`, [tenant, ledger.id])).rows[0]!.n);
    const before = await count();
    const rekey = await tx.expectRejected("UPDATE the referenced ledger row's id", () =>
      tx.session.query(`UPDATE revenue_ledger SET id = $3 WHERE tenant_id = $1 AND id = $2`, [tenant, ledger.id, randomUUID()]), { code: '23503', constraint: TENANT_FK });
    let after = -1;
    const deleted = await tx.attempt(async () => {
      const r = await tx.session.query(`DELETE FROM revenue_ledger WHERE tenant_id = $1 AND id = $2 RETURNING id`, [tenant, ledger.id]);
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
      rekey,
    ];
  }),
};
