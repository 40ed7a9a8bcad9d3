import { COLUMNS, REVISION_LINES } from '../migrations/document.js';
import { BOOKKEEPING_TABLES } from '../db/catalogue.js';
import { MIGRATION_TABLE } from '../migrations/migrator.js';
import type { Revision } from '../migrations/revision.js';
import { invariantTags } from './probes.js';
import type { Session } from './session.js';
import type { LintFinding, LintSection } from './types.js';

/**
 * Schema lint (`--lint`): general rules over every table of the `public` schema, so tables
 * added by later revisions are judged like the document's. Nothing here names today's
 * tables except the document's columns and their INVARIANT tags.
 */
export const LINT_RULES: LintSection['rules'] = [
  { id: 'comment-table', severity: 'warning', description: 'every table has a COMMENT' },
  { id: 'comment-column', severity: 'warning', description: 'every column has a COMMENT' },
  {
    id: 'rls-tenant-scoped',
    severity: 'error',
    description:
      'a tenant-scoped table (one with a tenant_id column, or a foreign key to a tenant-scoped table) has row-level security ENABLED and FORCED and a policy (on tenant_id when it has that column)',
  },
  { id: 'rls-tenant-root', severity: 'error', description: 'the table tenant_id columns reference (tenants) has row-level security enabled and a policy' },
  {
    id: 'money-integer',
    severity: 'error',
    description: 'money columns (named *_cents, *_minor, *amount, *price, *revenue, *cost, *spend, *fee, *tax, *balance, *total, *value) are integer minor units (smallint, integer, bigint); the money type is never used',
  },
  { id: 'naming-constraint', severity: 'warning', description: 'constraint names: pk_ (primary key), fk_ (foreign key), ck_ (check), uq_ or idx_ (unique), ex_ or idx_ (exclusion)' },
  { id: 'naming-index', severity: 'warning', description: 'index names not backing a constraint start with idx_' },
  { id: 'invariant-document', severity: 'error', description: "the design document's columns carry their INVARIANT: tag in their COMMENT" },
  { id: 'invariant-format', severity: 'warning', description: 'an INVARIANT tag is written "INVARIANT: lower_snake_case"' },
];

const EXCLUDED = BOOKKEEPING_TABLES;
const MONEY_NAME = /(^|_)(cents|minor|amount|price|revenue|cost|spend|fee|tax|balance|total|value)$/;
const INTEGER_TYPES = new Set(['smallint', 'integer', 'bigint']);
const CONSTRAINT_PREFIX: Record<string, { pattern: RegExp; says: string }> = {
  p: { pattern: /^pk_/, says: 'pk_' },
  f: { pattern: /^fk_/, says: 'fk_' },
  c: { pattern: /^ck_/, says: 'ck_' },
  u: { pattern: /^(uq|idx)_/, says: 'uq_ or idx_' },
  x: { pattern: /^(ex|idx)_/, says: 'ex_ or idx_' },
};

export async function lintSchema(session: Session, revisions: readonly Revision[]): Promise<LintSection> {
  const findings: LintFinding[] = [];
  const add = (rule: string, object: string, message: string) =>
    findings.push({ severity: LINT_RULES.find((r) => r.id === rule)!.severity, rule, object, message });

  const tables = (await session.query<{ oid: number; name: string; rls: boolean; forced: boolean; comment: string | null }>(
    `SELECT c.oid::int AS oid, c.relname AS name, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
            obj_description(c.oid, 'pg_class') AS comment
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND NOT (c.relname = ANY($1))
      ORDER BY c.relname`,
    [EXCLUDED],
  )).rows;
  const columns = (await session.query<{ table: string; name: string; type: string; comment: string | null }>(
    `SELECT c.relname AS table, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, col_description(c.oid, a.attnum) AS comment
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped
        AND NOT (c.relname = ANY($1))
      ORDER BY c.relname, a.attnum`,
    [EXCLUDED],
  )).rows;
  const foreignKeys = (await session.query<{ table: string; referenced: string }>(
    `SELECT c.relname AS table, r.relname AS referenced
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND k.contype = 'f'`,
  )).rows;
  const tenantRefs = (await session.query<{ referenced: string }>(
    `SELECT DISTINCT r.relname AS referenced
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND k.contype = 'f' AND cardinality(k.conkey) = 1
        AND (SELECT attname FROM pg_attribute WHERE attrelid = k.conrelid AND attnum = k.conkey[1]) = 'tenant_id'`,
  )).rows.map((r) => r.referenced);
  const policies = (await session.query<{ table: string; name: string; qual: string | null; check: string | null }>(
    `SELECT tablename AS table, policyname AS name, qual, with_check AS check FROM pg_policies WHERE schemaname = 'public'`,
  )).rows;

  // Comments.
  for (const t of tables) if (!t.comment?.trim()) add('comment-table', t.name, `table ${t.name} has no comment`);
  for (const c of columns) if (!c.comment?.trim()) add('comment-column', `${c.table}.${c.name}`, `column ${c.table}.${c.name} has no comment`);

  // Row-level security: tenant_id tables, then whatever references them, to a fixed point.
  const roots = new Set(tenantRefs);
  const scoped = new Set(columns.filter((c) => c.name === 'tenant_id' && !roots.has(c.table)).map((c) => c.table));
  for (let grew = true; grew; ) {
    grew = false;
    for (const fk of foreignKeys) {
      if (scoped.has(fk.referenced) && !scoped.has(fk.table) && !roots.has(fk.table)) {
        scoped.add(fk.table);
        grew = true;
      }
    }
  }
  const hasTenantColumn = new Set(columns.filter((c) => c.name === 'tenant_id').map((c) => c.table));
  for (const t of tables) {
    const own = policies.filter((p) => p.table === t.name);
    if (scoped.has(t.name)) {
      const problems = [];
      if (!t.rls) problems.push('row-level security is not enabled');
      if (!t.forced) problems.push('row-level security is not forced');
      if (own.length === 0) problems.push('it has no policy');
      else if (hasTenantColumn.has(t.name) && !own.some((p) => /\btenant_id\b/.test(`${p.qual ?? ''} ${p.check ?? ''}`))) {
        problems.push('no policy compares tenant_id');
      }
      if (problems.length) add('rls-tenant-scoped', t.name, `tenant-scoped table ${t.name}: ${problems.join('; ')}`);
    } else if (roots.has(t.name)) {
      const problems = [];
      if (!t.rls) problems.push('row-level security is not enabled');
      if (own.length === 0) problems.push('it has no policy');
      if (problems.length) add('rls-tenant-root', t.name, `tenant table ${t.name}: ${problems.join('; ')}`);
    }
  }

  // Money.
  for (const c of columns) {
    if (c.type === 'money') add('money-integer', `${c.table}.${c.name}`, `${c.table}.${c.name} uses the money type; store integer minor units`);
    else if (MONEY_NAME.test(c.name) && !INTEGER_TYPES.has(c.type) && /^(numeric|real|double precision|text|character)/.test(c.type)) {
      add('money-integer', `${c.table}.${c.name}`, `money column ${c.table}.${c.name} is ${c.type}; store integer minor units (integer or bigint)`);
    }
  }

  // Names (PostgreSQL 18's NOT NULL rows, contype 'n', are named by the server and skipped, as are trigger constraints).
  const constraints = (await session.query<{ table: string; name: string; type: string }>(
    `SELECT c.relname AS table, k.conname AS name, k.contype::text AS type
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND k.contype IN ('p', 'f', 'c', 'u', 'x') AND NOT (c.relname = ANY($1))`,
    [EXCLUDED],
  )).rows;
  const kinds: Record<string, string> = { p: 'primary key', f: 'foreign key', c: 'check', u: 'unique', x: 'exclusion' };
  for (const k of constraints) {
    const prefix = CONSTRAINT_PREFIX[k.type]!;
    if (!prefix.pattern.test(k.name)) add('naming-constraint', k.name, `${kinds[k.type]} constraint ${k.name} on ${k.table} should be named ${prefix.says}…`);
  }
  const indexes = (await session.query<{ table: string; name: string }>(
    `SELECT t.relname AS table, ic.relname AS name
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = 'public' AND NOT (t.relname = ANY($1))
        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)`,
    [EXCLUDED],
  )).rows;
  for (const i of indexes) if (!/^idx_/.test(i.name)) add('naming-index', i.name, `index ${i.name} on ${i.table} should be named idx_…`);

  // INVARIANT tags: the document's columns (of the phases applied), and the form of every tag.
  const applied = new Set(
    (await session.query<{ name: string }>(`SELECT name FROM ${MIGRATION_TABLE}`).catch(() => ({ rows: [] as { name: string }[] }))).rows.map((r) => r.name),
  );
  const byKey = new Map(columns.map((c) => [`${c.table}.${c.name}`, c]));
  for (const d of COLUMNS) {
    const revision = REVISION_LINES.find((r) => r.phase === d.phase)!.revision;
    if (!applied.has(revision) || !revisions.some((r) => r.id === revision)) continue;
    const live = byKey.get(`${d.table}.${d.column}`);
    if (!live) add('invariant-document', `${d.table}.${d.column}`, `${d.table}.${d.column} (document line ${d.line}) does not exist`);
    else if (!invariantTags(live.comment).includes(d.invariant)) {
      add('invariant-document', `${d.table}.${d.column}`, `${d.table}.${d.column} (document line ${d.line}) lacks "INVARIANT: ${d.invariant}" in its comment`);
    }
  }
  for (const c of columns) {
    const text = c.comment ?? '';
    const mentions = (text.match(/INVARIANT/gi) ?? []).length;
    if (mentions > invariantTags(text).length) {
      add('invariant-format', `${c.table}.${c.name}`, `${c.table}.${c.name}: malformed INVARIANT tag in ${JSON.stringify(text)}`);
    }
  }

  findings.sort((a, b) => (a.severity === b.severity ? a.rule.localeCompare(b.rule) || a.object.localeCompare(b.object) : a.severity === 'error' ? -1 : 1));
  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.length - errors;
  return {
    rules: LINT_RULES,
    findings,
    summary: {
      errors,
      warnings,
      tables: tables.length,
      columns: columns.length,
      line: `lint: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'} over ${tables.length} tables and ${columns.length} columns`,
    },
  };
}
