import type { DocumentColumn, DocumentRevision } from '../migrations/document.js';
import { MIGRATION_TABLE } from '../migrations/migrator.js';
import type { Revision } from '../migrations/revision.js';
import { FOREIGN_KEY_SOURCE, INDEX_SOURCES, LEGACY_INDEX_SOURCES } from './ddl.js';
import { anonymous, ReferenceRenderer, type Reference } from './reference.js';
import type { Session } from './session.js';
import type { Check } from './types.js';

/**
 * Catalogue probes: read pg_catalog only, compare with the document, one Check per item.
 * Written against catalogue columns that exist from PostgreSQL 15 through 18; where 18 adds
 * something that changes the answer (NOT NULL NOT VALID), it is looked up when present.
 */

/** "Migration file created with correct DDL", realised: the revision is applied and follows the document's down revision. */
export async function revisionChecks(session: Session, revisions: readonly Revision[], doc: DocumentRevision): Promise<Check[]> {
  const code = revisions.find((r) => r.id === doc.revision);
  const checks: Check[] = [
    {
      label: `migration ${doc.revision} in the revision chain`,
      expected: `down revision ${doc.previous}`,
      actual: code ? `down revision ${code.previous ?? 'base'}` : 'absent from the chain',
      pass: code?.previous === doc.previous,
    },
  ];
  const exists = await session.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [`public.${MIGRATION_TABLE}`]);
  let applied: string[] = [];
  if (exists.rows[0]!.ok) {
    const { rows } = await session.query<{ name: string }>(
      `SELECT name FROM ${MIGRATION_TABLE} WHERE name <= $1 ORDER BY name DESC LIMIT 2`,
      [doc.revision],
    );
    applied = rows.map((r) => r.name);
  }
  checks.push({
    label: `applied revisions up to ${doc.revision}`,
    expected: `${doc.revision} applied, after ${doc.previous}`,
    actual: applied.length === 0 ? 'none applied' : applied[0] === doc.revision ? `${applied[0]} applied, after ${applied[1] ?? 'base'}` : `${doc.revision} not applied (latest ${applied[0]})`,
    pass: applied[0] === doc.revision && applied[1] === doc.previous,
  });
  return checks;
}

interface LiveColumn {
  name: string;
  type: string;
  not_null: boolean;
  not_null_valid: boolean;
  default: string | null;
  identity: string;
  generated: string;
  comment: string | null;
}

export async function liveColumns(session: Session, table: string, names: string[]): Promise<Map<string, LiveColumn>> {
  // PostgreSQL 18 records NOT NULL as pg_constraint rows (contype 'n'), which may be NOT VALID:
  // attnotnull is then true but the constraint is not validated. Before 18 there are no such
  // rows, and a NOT NULL is always valid.
  const { rows } = await session.query<LiveColumn>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
            a.attnotnull AS not_null,
            COALESCE((SELECT n.convalidated FROM pg_constraint n
                       WHERE n.conrelid = a.attrelid AND n.contype = 'n' AND n.conkey = ARRAY[a.attnum]::int2[]
                       LIMIT 1), true) AS not_null_valid,
            pg_get_expr(d.adbin, d.adrelid) AS default, a.attidentity::text AS identity, a.attgenerated::text AS generated,
            col_description(a.attrelid, a.attnum) AS comment
       FROM pg_attribute a
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = to_regclass($1) AND a.attname = ANY($2) AND a.attnum > 0 AND NOT a.attisdropped`,
    [`public.${table}`, names],
  );
  return new Map(rows.map((r) => [r.name, r]));
}

function describeShape(type: string, notNull: boolean, dflt: string): string {
  return `${type}, ${notNull ? 'NOT NULL' : 'NULL'}, default ${dflt}`;
}

/** Type (with length / precision), nullability and default of each column; optionally its INVARIANT tag. */
export async function columnChecks(session: Session, columns: readonly DocumentColumn[], options: { invariant: boolean }): Promise<Check[]> {
  const byTable = new Map<string, DocumentColumn[]>();
  for (const c of columns) byTable.set(c.table, [...(byTable.get(c.table) ?? []), c]);
  const checks: Check[] = [];
  for (const [table, cols] of byTable) {
    const live = await liveColumns(session, table, cols.map((c) => c.column));
    for (const c of cols) {
      const l = live.get(c.column);
      const expected = describeShape(c.type, !c.nullable, c.default ?? 'none') + (options.invariant ? `, INVARIANT: ${c.invariant}` : '');
      if (!l) {
        checks.push({ label: `${table}.${c.column}`, expected, actual: 'column does not exist', pass: false });
        continue;
      }
      const notNull = l.not_null && l.not_null_valid;
      const dflt = l.generated ? `GENERATED (${l.default})` : l.identity ? 'IDENTITY' : l.default ?? 'none';
      const tags = invariantTags(l.comment);
      const actual =
        describeShape(l.type, notNull, dflt) +
        (l.not_null && !l.not_null_valid ? ' (NOT NULL is NOT VALID)' : '') +
        (options.invariant ? `, ${tags.length ? tags.map((t) => `INVARIANT: ${t}`).join(' ') : 'no INVARIANT tag'}` : '');
      const pass =
        l.type === c.type && notNull === !c.nullable && dflt === (c.default ?? 'none') && (!options.invariant || tags.includes(c.invariant));
      checks.push({ label: `${table}.${c.column}`, expected, actual, pass });
    }
  }
  return checks;
}

/** The comments carry the INVARIANT tags (line 51 for phase 4; line 449 "All INVARIANT tags applied" for all). */
export async function invariantChecks(session: Session, columns: readonly DocumentColumn[]): Promise<Check[]> {
  const checks: Check[] = [];
  for (const c of columns) {
    const l = (await liveColumns(session, c.table, [c.column])).get(c.column);
    checks.push({
      label: `comment on ${c.table}.${c.column}`,
      expected: `contains "INVARIANT: ${c.invariant}"`,
      actual: !l ? 'column does not exist' : l.comment === null ? 'no comment' : JSON.stringify(l.comment),
      pass: !!l && invariantTags(l.comment).includes(c.invariant),
    });
  }
  return checks;
}

export function invariantTags(comment: string | null): string[] {
  return [...(comment ?? '').matchAll(/INVARIANT:\s*([a-z][a-z0-9_]*)/g)].map((m) => m[1]!);
}

function referenceLabel(ref: Reference): string {
  return ref.origin === 'server' ? '' : ` [${ref.note}]`;
}

/** The index exists under its name, is valid, and its definition is the document's (columns, order, INCLUDE, predicate, uniqueness). */
export async function indexChecks(session: Session, name: string): Promise<Check[]> {
  const ref = await new ReferenceRenderer(session).index(name);
  const { rows } = await session.query<{ def: string; usable: boolean }>(
    `SELECT pg_get_indexdef(i.indexrelid) AS def, (i.indisvalid AND i.indisready AND i.indislive) AS usable
       FROM pg_index i WHERE i.indexrelid = to_regclass($1)`,
    [`public.${name}`],
  );
  const live = rows[0];
  return [
    { label: `definition of ${name}`, expected: ref.text + referenceLabel(ref), actual: live?.def ?? 'index does not exist', pass: live?.def === ref.text },
    { label: `${name} is valid and ready`, expected: 'true', actual: live ? String(live.usable) : 'index does not exist', pass: live?.usable === true },
  ];
}

/** A dropped legacy index is gone: not under its own name, and not re-created under another. */
export async function droppedIndexChecks(session: Session, name: string): Promise<Check[]> {
  const source = LEGACY_INDEX_SOURCES[name]!;
  const ref = await new ReferenceRenderer(session).index(name);
  const byName = await session.query<{ r: string | null }>(`SELECT to_regclass($1)::text AS r`, [`public.${name}`]);
  const all = await session.query<{ name: string; def: string }>(
    `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = to_regclass($1)`,
    [`public.${source.table}`],
  );
  const twins = all.rows.filter((r) => anonymous(r.def) === anonymous(ref.text)).map((r) => r.name);
  return [
    { label: `index ${name}`, expected: 'absent', actual: byName.rows[0]!.r === null ? 'absent' : 'present', pass: byName.rows[0]!.r === null },
    {
      label: `an index defined as ${anonymous(ref.text)}${referenceLabel(ref)}`,
      expected: 'none on the table',
      actual: twins.length ? twins.join(', ') : 'none on the table',
      pass: twins.length === 0,
    },
  ];
}

/** The CHECK exists by name, is validated (and enforced), and its definition is the document's. */
export async function checkConstraintChecks(session: Session, table: string, name: string): Promise<Check[]> {
  const ref = await new ReferenceRenderer(session).check(name);
  const live = await liveConstraint(session, table, name);
  return [
    { label: `definition of ${name}`, expected: ref.text + referenceLabel(ref), actual: live?.def ?? 'constraint does not exist', pass: live?.def === ref.text },
    { label: `${name} validated`, expected: 'true', actual: live ? String(live.convalidated) : 'constraint does not exist', pass: live?.convalidated === true },
  ];
}

async function liveConstraint(session: Session, table: string, name: string) {
  const { rows } = await session.query<{ def: string; convalidated: boolean; contype: string; confdeltype: string; confrelid: string | null; columns: string[] }>(
    `SELECT pg_get_constraintdef(k.oid) AS def, k.convalidated, k.contype::text AS contype, k.confdeltype::text AS confdeltype,
            NULLIF(k.confrelid, 0)::regclass::text AS confrelid,
            ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, o)
                    JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o) AS columns
       FROM pg_constraint k WHERE k.conrelid = to_regclass($1) AND k.conname = $2`,
    [`public.${table}`, name],
  );
  return rows[0];
}

/** The foreign key: definition, and structurally ON DELETE CASCADE onto revenue_ledger(id), validated. */
export async function foreignKeyChecks(session: Session): Promise<Check[]> {
  const fk = FOREIGN_KEY_SOURCE;
  const ref = await new ReferenceRenderer(session).foreignKey();
  const live = await liveConstraint(session, fk.table, fk.name);
  const actions: Record<string, string> = { a: 'NO ACTION', r: 'RESTRICT', c: 'CASCADE', n: 'SET NULL', d: 'SET DEFAULT' };
  return [
    { label: `definition of ${fk.name}`, expected: ref.text + referenceLabel(ref), actual: live?.def ?? 'constraint does not exist', pass: live?.def === ref.text },
    {
      label: `${fk.name} structure`,
      expected: 'FOREIGN KEY (ledger_id) → revenue_ledger, ON DELETE CASCADE, validated',
      actual: live
        ? `${live.contype === 'f' ? 'FOREIGN KEY' : `contype ${live.contype}`} (${live.columns.join(', ')}) → ${live.confrelid}, ON DELETE ${actions[live.confdeltype] ?? live.confdeltype}${live.convalidated ? ', validated' : ', NOT VALID'}`
        : 'constraint does not exist',
      pass:
        !!live && live.contype === 'f' && live.columns.join(',') === 'ledger_id' && live.confrelid === 'revenue_ledger' && live.confdeltype === 'c' && live.convalidated,
    },
  ];
}

/** The table itself exists (phase 8b creates it). */
export async function tableChecks(session: Session, table: string): Promise<Check[]> {
  const { rows } = await session.query<{ kind: string | null; pk: string | null }>(
    `SELECT c.relkind::text AS kind,
            (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') AS pk
       FROM (SELECT to_regclass($1) AS oid) r LEFT JOIN pg_class c ON c.oid = r.oid`,
    [`public.${table}`],
  );
  const r = rows[0]!;
  return [
    { label: `table ${table}`, expected: 'ordinary table', actual: r.kind === null ? 'does not exist' : r.kind === 'r' ? 'ordinary table' : `relkind ${r.kind}`, pass: r.kind === 'r' },
    { label: `primary key of ${table}`, expected: 'PRIMARY KEY (id)', actual: r.pk ?? 'none', pass: r.pk === 'PRIMARY KEY (id)' },
  ];
}

export { INDEX_SOURCES };
