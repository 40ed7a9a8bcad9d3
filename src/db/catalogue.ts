import { createHash } from 'node:crypto';
import type { Queryable } from './pool.js';

/**
 * A normalised, sorted, line-per-object description of the `public` schema: tables (with
 * row-level security flags), columns (type, nullability, default), constraints, indexes,
 * policies, triggers, functions, grants and every comment. Two databases with the same
 * schema give the same lines whatever order their objects were created in, so it serves
 * to compare schemas (migration reversibility) and as the committed head snapshot.
 */
/** The migrator's bookkeeping tables (kept here, not imported, so this module stays below migrations/). */
export const BOOKKEEPING_TABLES: readonly string[] = ['skeldir_migration', 'skeldir_migration_lock', 'skeldir_migration_inflight'];

export async function catalogueSnapshot(db: Queryable, options: { exclude?: readonly string[] } = {}): Promise<string[]> {
  const exclude = options.exclude ?? BOOKKEEPING_TABLES;
  const lines: string[] = [];
  const q = async <T extends Record<string, unknown>>(text: string) => (await db.query<T>(text, [[...exclude]])).rows;

  for (const t of await q<{ name: string; rls: boolean; forced: boolean; comment: string | null; acl: string | null }>(`
    SELECT c.relname AS name, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
           obj_description(c.oid, 'pg_class') AS comment,
           -- An explicit ACL equal to the default (the owner's privileges only, as a GRANT then REVOKE leaves it) is the default.
           CASE WHEN c.relacl = acldefault('r', c.relowner) THEN NULL ELSE array_to_string(ARRAY(SELECT unnest(c.relacl)::text ORDER BY 1), ',') END AS acl
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT (c.relname = ANY($1))`)) {
    lines.push(`table ${t.name} rls=${t.rls} forced=${t.forced} comment=${JSON.stringify(t.comment)}`);
    lines.push(`grant ${t.name} ${t.acl ?? ''}`);
  }

  for (const c of await q<{ t: string; name: string; type: string; notnull: boolean; def: string | null; comment: string | null }>(`
    SELECT c.relname AS t, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull,
           pg_get_expr(d.adbin, d.adrelid) AS def, col_description(c.oid, a.attnum) AS comment
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
       AND NOT (c.relname = ANY($1))`)) {
    lines.push(
      `column ${c.t}.${c.name} ${c.type}${c.notnull ? ' not null' : ''}${c.def ? ` default ${c.def}` : ''} comment=${JSON.stringify(c.comment)}`,
    );
  }

  for (const k of await q<{ t: string; name: string; type: string; def: string; comment: string | null }>(`
    SELECT c.relname AS t, k.conname AS name, k.contype::text AS type, pg_get_constraintdef(k.oid) AS def,
           obj_description(k.oid, 'pg_constraint') AS comment
      FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND NOT (c.relname = ANY($1))`)) {
    lines.push(`constraint ${k.t}.${k.name} [${k.type}] ${k.def}${k.comment ? ` comment=${JSON.stringify(k.comment)}` : ''}`);
  }

  for (const i of await q<{ t: string; name: string; def: string; valid: boolean }>(`
    SELECT c.relname AS t, ic.relname AS name, pg_get_indexdef(i.indexrelid) AS def, i.indisvalid AS valid
      FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND NOT (c.relname = ANY($1))`)) {
    lines.push(`index ${i.t}.${i.name} ${i.def}${i.valid ? '' : ' INVALID'}`);
  }

  for (const p of await q<{ t: string; name: string; cmd: string; permissive: string; roles: string; qual: string | null; check: string | null }>(`
    SELECT tablename AS t, policyname AS name, cmd, permissive, array_to_string(roles, ',') AS roles, qual, with_check AS check
      FROM pg_policies WHERE schemaname = 'public' AND NOT (tablename = ANY($1))`)) {
    lines.push(`policy ${p.t}.${p.name} ${p.cmd} ${p.permissive} roles=${p.roles} using=${p.qual ?? '-'} check=${p.check ?? '-'}`);
  }

  for (const tr of await q<{ t: string; name: string; def: string }>(`
    SELECT c.relname AS t, tg.tgname AS name, pg_get_triggerdef(tg.oid) AS def
      FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND NOT tg.tgisinternal AND NOT (c.relname = ANY($1))`)) {
    lines.push(`trigger ${tr.t}.${tr.name} ${tr.def}`);
  }

  for (const f of await q<{ sig: string; def: string; comment: string | null; acl: string | null }>(`
    SELECT p.oid::regprocedure::text AS sig, pg_get_functiondef(p.oid) AS def, obj_description(p.oid, 'pg_proc') AS comment,
           array_to_string(ARRAY(SELECT unnest(p.proacl)::text ORDER BY 1), ',') AS acl
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p') AND cardinality($1::text[]) >= 0`)) {
    const digest = createHash('sha256').update(f.def).digest('hex').slice(0, 16);
    lines.push(`function ${f.sig} sha256:${digest} acl=${f.acl ?? ''} comment=${JSON.stringify(f.comment)}`);
  }

  // One object per line: fold the multi-line texts PostgreSQL returns (policy bodies).
  return lines.map((l) => l.replace(/\s*\n\s*/g, " ")).sort();
}

/**
 * A snapshot as PostgreSQL 15 prints it, so one committed file (schema/head.txt, made on the
 * embedded 15) holds on every supported server: 17 adds the MAINTAIN privilege (`m`) to an
 * owner's table privileges, and 18 stores each NOT NULL as a `contype = 'n'` constraint row
 * (nullability is already on the column lines). Nothing else differs from 15 to 18.
 */
export function asPostgres15(lines: readonly string[]): string[] {
  return lines
    .filter((l) => !/^constraint \S+ \[n\] NOT NULL /.test(l))
    .map((l) => (l.startsWith('grant ') ? l.replace(/=([a-zA-Z*]+)\//g, (_, privileges: string) => `=${privileges.replace('m', '')}/`) : l));
}
