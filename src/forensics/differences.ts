import { CLAIM_INDEXES } from '../citus/distribute.js';
import { DROPPED_FOREIGN_KEYS, KEY_SWAPS, REPLACED_TRIGGERS } from '../citus/plan.js';
import { onEveryShard } from './deployment.js';
import { transitionsTable } from './equivalents.js';
import { PHASES } from './protocol.js';
import type { Session } from './session.js';
import type { Check, CitusDifference } from './types.js';

/**
 * The places where the distributed schema differs from the document that no gate covers (a gate's
 * Citus equivalent names what it covers in its `difference.document`), derived from
 * src/citus/plan.ts's constants so that a new entry is reported without a change here, each
 * checked against the catalogue of the coordinator and of every shard (a shard command is a format()
 * string: `%s` the shard, `%%` a literal %). A check that does not hold
 * (the object is back, or its replacement is missing) is FAIL, and fails the run; the two
 * ON DELETE SET NULL keys Citus refuses are NOT EQUIVALENT: documented limits, reported with
 * their consequence, not failures.
 */
const q = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** Gate ids whose distributed equivalent names `object` in what the document has. */
function coveringGates(pattern: RegExp): string[] {
  return PHASES.flatMap((p) => p.gates.filter((g) => g.tests.some((t) => t.citus && pattern.test(t.citus.difference.document))).map((g) => g.id));
}
const word = (s: string) => new RegExp(`(^|[^a-z0-9_])${s.replace(/[()]/g, '\\$&')}($|[^a-z0-9_])`);

function verdictOf(checks: Check[], limit: boolean): CitusDifference['verdict'] {
  if (!checks.every((c) => c.pass)) return 'FAIL';
  return limit ? 'NOT EQUIVALENT' : 'EQUIVALENT';
}

async function constraintDef(session: Session, table: string, name: string): Promise<string | undefined> {
  return (await session.query<{ def: string }>(
    `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2`, [`public.${table}`, name])).rows[0]?.def;
}

async function droppedForeignKeys(session: Session): Promise<CitusDifference[]> {
  const out: CitusDifference[] = [];
  for (const f of DROPPED_FOREIGN_KEYS) {
    if (coveringGates(word(f.name)).length) continue;
    const def = await constraintDef(session, f.table, f.name);
    const checks: Check[] = [
      { label: `${f.name} on ${f.table}`, expected: 'absent', actual: def ? `present: ${def}` : 'absent', pass: def === undefined },
      await onEveryShard(session, f.table, `no ${f.name}`, 'absent', `SELECT CASE WHEN NOT EXISTS (
          SELECT 1 FROM pg_constraint WHERE conrelid = '%s'::regclass AND contype = 'f' AND conname LIKE ${q(`${f.name}%%`)}
        ) THEN 1 ELSE 0 END`),
    ];
    // ON DELETE SET NULL is what the document's key does and nothing on Citus does instead: a documented limit.
    const setNull = /ON DELETE SET NULL/.test(f.why);
    out.push({
      kind: 'foreign key', object: f.name, table: f.table,
      document: `${f.name} on ${f.table}`,
      distributed: 'dropped, on the coordinator and on every shard',
      why: f.why,
      ...(setNull ? { consequence: `not equivalent (docs/scaling.md): deleting the referenced row no longer sets ${f.table}'s reference to NULL; ${f.why.split('; ').slice(1).join('; ')}` } : {}),
      verdict: verdictOf(checks, setNull),
      checks,
    });
  }
  return out;
}

async function replacedTriggers(session: Session): Promise<CitusDifference[]> {
  const out: CitusDifference[] = [];
  for (const t of REPLACED_TRIGGERS) {
    if (coveringGates(word(t.name)).length) continue;
    const names = (await session.query<{ name: string; statement: boolean }>(
      `SELECT tgname AS name, (tgtype & 1) = 0 AS statement FROM pg_trigger WHERE tgrelid = to_regclass($1) AND NOT tgisinternal`, [`public.${t.table}`])).rows;
    const original = names.find((n) => n.name === t.name);
    const replacement = names.find((n) => n.name === t.replacement);
    const checks: Check[] = [
      { label: `${t.name} on ${t.table}`, expected: 'absent', actual: original ? 'present' : 'absent', pass: !original },
      { label: `${t.replacement} on ${t.table}`, expected: 'statement trigger', actual: replacement ? (replacement.statement ? 'statement trigger' : 'row trigger') : 'absent', pass: replacement?.statement === true },
      await onEveryShard(session, t.table, `${t.replacement}, no ${t.name}`, 'replacement present, original absent', `SELECT CASE WHEN EXISTS (
          SELECT 1 FROM pg_trigger g WHERE g.tgrelid = r.oid AND NOT g.tgisinternal AND g.tgname LIKE ${q(`${t.replacement}%%`)} AND (g.tgtype & 1) = 0
        ) AND NOT EXISTS (
          SELECT 1 FROM pg_trigger g WHERE g.tgrelid = r.oid AND NOT g.tgisinternal AND (g.tgname = ${q(t.name)} OR g.tgname ~ ${q(`^${t.name}_[0-9]+$`)})
        ) THEN 1 ELSE 0 END FROM (SELECT '%s'::regclass AS oid) r`),
    ];
    out.push({
      kind: 'trigger', object: t.name, table: t.table,
      document: `${t.name} on ${t.table}`,
      distributed: `${t.replacement}: the same statement trigger on each shard`,
      why: t.why, verdict: verdictOf(checks, false), checks,
    });
  }
  return out;
}

async function keySwaps(session: Session): Promise<CitusDifference[]> {
  const out: CitusDifference[] = [];
  for (const s of KEY_SWAPS) {
    if (coveringGates(word(s.name)).length) continue;
    const cols = s.columns.split(',').map((c) => c.trim());
    const uniques = (await session.query<{ name: string; cols: string[]; pred: string | null }>(
      `SELECT i.relname AS name, pg_get_expr(x.indpred, x.indrelid) AS pred,
              ARRAY(SELECT a.attname::text FROM unnest(x.indkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n ORDER BY k.o) AS cols
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = to_regclass($1) AND x.indisunique AND x.indisvalid`,
      [`public.${s.table}`])).rows;
    const scoped = uniques.find((u) => u.cols.join(', ') === cols.join(', ') && (s.where ? u.pred !== null : u.pred === null));
    const unscoped = uniques.filter((u) => !u.cols.includes('tenant_id'));
    const checks: Check[] = [
      { label: `unique key on (${s.columns}) of ${s.table}`, expected: 'valid unique index', actual: scoped ? `${scoped.name}${scoped.pred ? ` WHERE ${scoped.pred}` : ''}` : 'absent', pass: !!scoped },
      { label: `unique keys of ${s.table} without tenant_id`, expected: 'none', actual: unscoped.length ? unscoped.map((u) => `${u.name} (${u.cols.join(', ')})`).join(', ') : 'none', pass: unscoped.length === 0 },
      await onEveryShard(session, s.table, `unique index on (${s.columns})`, 'valid unique index', `SELECT CASE WHEN EXISTS (
          SELECT 1 FROM pg_index x WHERE x.indrelid = '%s'::regclass AND x.indisunique AND x.indisvalid
             AND ARRAY(SELECT a.attname::text FROM unnest(x.indkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n ORDER BY k.o) = ARRAY[${cols.map(q).join(', ')}]
        ) THEN 1 ELSE 0 END`),
    ];
    if (s.check) {
      const def = await constraintDef(session, s.table, s.check.name);
      checks.push({ label: `CHECK ${s.check.name}`, expected: 'present', actual: def ?? 'absent', pass: def !== undefined });
    }
    out.push({
      kind: 'unique key', object: s.name, table: s.table,
      document: `${s.name} on ${s.table}, without tenant_id`,
      distributed: `UNIQUE (${s.columns})${s.where ? ` WHERE ${s.where}` : ''}${s.check ? ` and CHECK ${s.check.name} (${s.check.expression})` : ''}, on the coordinator and on every shard`,
      why: `Citus cannot enforce a unique key without the distribution column; ${s.why}`,
      verdict: verdictOf(checks, false), checks,
    });
  }
  return out;
}

/** PRIMARY KEY (id) on a generated UUID → (tenant_id, id): every distributed table with such an id (distribute.ts). */
async function primaryKeys(session: Session, distributed: readonly string[]): Promise<CitusDifference[]> {
  const { rows } = await session.query<{ table: string; pk: string | null }>(
    `SELECT c.relname AS table, (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') AS pk
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'id' AND NOT a.attisdropped
       JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
      WHERE n.nspname = 'public' AND c.relname = ANY($1) AND pg_get_expr(d.adbin, d.adrelid) = 'gen_random_uuid()' ORDER BY 1`,
    [[...distributed]]);
  const out: CitusDifference[] = [];
  for (const r of rows) {
    if (coveringGates(word(`${r.table} PRIMARY KEY (id)`)).length) continue;
    // Another primary key (revenue_ledger_references: (tenant_id, reference), a KEY_SWAPS entry) is not this difference.
    if (r.pk !== null && r.pk !== 'PRIMARY KEY (id)' && r.pk !== 'PRIMARY KEY (tenant_id, id)') continue;
    const checks: Check[] = [
      { label: `primary key of ${r.table}`, expected: 'PRIMARY KEY (tenant_id, id)', actual: r.pk ?? 'none', pass: r.pk === 'PRIMARY KEY (tenant_id, id)' },
      await onEveryShard(session, r.table, 'PRIMARY KEY (tenant_id, id)', 'primary key (tenant_id, id)', `SELECT CASE WHEN EXISTS (
          SELECT 1 FROM pg_constraint WHERE conrelid = '%s'::regclass AND contype = 'p' AND pg_get_constraintdef(oid) = 'PRIMARY KEY (tenant_id, id)'
        ) THEN 1 ELSE 0 END`),
    ];
    out.push({
      kind: 'primary key', object: `${r.table} PRIMARY KEY (id)`, table: r.table,
      document: `${r.table} PRIMARY KEY (id), id gen_random_uuid()`,
      distributed: 'PRIMARY KEY (tenant_id, id), on the coordinator and on every shard',
      why: transitionsTable.difference.why,
      verdict: verdictOf(checks, false), checks,
    });
  }
  return out;
}

const CLAIM_MARK = 'citus: the worker claims per tenant';

/** The worker's claim: skeldir_claim_due_events refuses, skeldir_due_tenants and the tenant-led claim indexes replace it (distribute.ts). */
async function claim(session: Session): Promise<CitusDifference[]> {
  const fns = (await session.query<{ claim: string | null; due: boolean }>(
    `SELECT (SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure('public.skeldir_claim_due_events(integer)')) AS claim,
            to_regprocedure('public.skeldir_due_tenants(integer)') IS NOT NULL AS due`)).rows[0]!;
  const checks: Check[] = [
    { label: 'skeldir_claim_due_events(integer)', expected: 'refuses (the worker claims per tenant on Citus)', actual: fns.claim === null ? 'absent' : fns.claim.includes(CLAIM_MARK) ? 'refuses (the worker claims per tenant on Citus)' : 'the one-server claim', pass: !!fns.claim?.includes(CLAIM_MARK) },
    { label: 'skeldir_due_tenants(integer)', expected: 'present', actual: fns.due ? 'present' : 'absent', pass: fns.due },
  ];
  const out: CitusDifference[] = [{
    kind: 'function', object: 'skeldir_claim_due_events(integer)', table: 'attribution_events',
    document: 'skeldir_claim_due_events(n): one FOR UPDATE SKIP LOCKED over all tenants',
    distributed: 'refuses with a reason; the worker reads skeldir_due_tenants(n), then claims each tenant\'s events FOR UPDATE SKIP LOCKED by tenant_id as the application role',
    why: 'Citus refuses FOR UPDATE across shards; each claim still locks its rows and skips locked ones, so crash safety (the locks are the claim) is the same; due retries come first within a tenant, not across tenants (docs/scaling.md)',
    verdict: verdictOf(checks, false), checks,
  }];
  for (const [name, replacement, columns, where] of CLAIM_INDEXES) {
    const idx = (await session.query<{ name: string; def: string }>(
      `SELECT relname AS name, pg_get_indexdef(oid) AS def FROM pg_class WHERE oid IN (to_regclass($1), to_regclass($2))`, [`public.${name}`, `public.${replacement}`])).rows;
    const old = idx.find((i) => i.name === name);
    const neu = idx.find((i) => i.name === replacement);
    const idxChecks: Check[] = [
      { label: `index ${name}`, expected: 'absent', actual: old ? `present: ${old.def}` : 'absent', pass: !old },
      { label: `index ${replacement}`, expected: `on attribution_events (${columns})`, actual: neu?.def ?? 'absent', pass: !!neu && neu.def.includes(`(${columns})`) },
    ];
    out.push({
      kind: 'index', object: name, table: 'attribution_events',
      document: `${name} WHERE ${where}`,
      distributed: `${replacement} (${columns}) WHERE ${where}`,
      why: "every claim is one tenant's; a shard holds many tenants, and the one-server index would read and filter the other tenants' due events of the shard on every claim",
      verdict: verdictOf(idxChecks, false), checks: idxChecks,
    });
  }
  return out;
}

export async function citusDifferences(session: Session, distributed: readonly string[]): Promise<CitusDifference[]> {
  return [
    ...(await droppedForeignKeys(session)),
    ...(await replacedTriggers(session)),
    ...(await keySwaps(session)),
    ...(await primaryKeys(session, distributed)),
    ...(await claim(session)),
  ];
}
