/**
 * The isolation matrix (issue 4): two tenants, A and B, with rows in EVERY tenant-scoped table —
 * tables are discovered from the catalogue (row-level security enabled), and their rows are
 * generated from the catalogue too (types, foreign keys, CHECK enumerations), so a table added by
 * a later revision is covered without editing this file. Then, through the application role and
 * through every route under /api/v1, A can neither see, count, change nor infer B's rows.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { loadConfig } from '../config.js';
import { tenantContextSql, withTenant } from '../db/tenant-context.js';
import { buildApp, type App } from '../http/app.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { createTenant } from './tenants.js';

interface Column {
  name: string;
  type: string;
  base: string;
  notNull: boolean;
  hasDefault: boolean;
  num: number;
  maxLength: number | null;
}
interface Table {
  name: string;
  oid: number;
  columns: Column[];
  pk: string[];
  /** Single-column foreign keys: column → referenced table and column. */
  fks: Map<string, { table: string; column: string }>;
  /** Columns a CHECK constraint limits to a list of values. */
  enums: Map<string, string[]>;
  /** Constraint name → its columns (to know which value to change when one is violated). */
  constraintColumns: Map<string, string[]>;
  /** SQL giving the owning tenant of a row `t` of this table. */
  owner: string;
}

let db: TestDatabase;
let app: App;
let su: pg.Client;
let appPool: pg.Pool;
let tables: Table[];
const tenants: Record<'A' | 'B', { id: string; key: string }> = {} as never;

async function discover(): Promise<Table[]> {
  const { rows } = await su.query<{ oid: number; name: string }>(
    `SELECT c.oid::int AS oid, c.relname AS name FROM pg_class c
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relrowsecurity ORDER BY c.relname`,
  );
  const out: Table[] = [];
  for (const { oid, name } of rows) {
    const columns = (
      await su.query(
        `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, t.typname AS base, a.attnotnull AS "notNull",
                (d.adbin IS NOT NULL OR a.attidentity <> '' OR a.attgenerated <> '') AS "hasDefault", a.attnum AS num,
                CASE WHEN a.atttypmod > 4 AND t.typname IN ('varchar', 'bpchar') THEN a.atttypmod - 4 END AS "maxLength"
           FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
        [oid],
      )
    ).rows as Column[];
    const colName = (n: number) => columns.find((c) => c.num === n)!.name;
    const cons = (
      await su.query<{ name: string; type: string; keys: number[]; ref: string | null; refkeys: number[] | null; refoid: number; def: string }>(
        `SELECT conname AS name, contype AS type, conkey AS keys, confrelid::regclass::text AS ref, confkey AS refkeys, confrelid::int AS refoid,
                pg_get_constraintdef(oid) AS def
           FROM pg_constraint WHERE conrelid = $1`,
        [oid],
      )
    ).rows;
    const fks = new Map<string, { table: string; column: string }>();
    const enums = new Map<string, string[]>();
    const constraintColumns = new Map<string, string[]>();
    for (const c of cons) {
      constraintColumns.set(c.name, (c.keys ?? []).map(colName));
      if (c.type === 'f') {
        // Each column of the key references its column of the parent ((tenant_id, event_id) → (tenant_id, id)).
        for (const [i, key] of c.keys.entries()) {
          const refCol = (await su.query(`SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum = $2`, [c.refoid, c.refkeys![i]])).rows[0].attname;
          fks.set(colName(key), { table: c.ref!, column: refCol });
        }
      }
      const list = /= ANY \(\(?ARRAY\[(.*?)\]/.exec(c.def);
      if (c.type === 'c' && c.keys?.length === 1 && list) enums.set(colName(c.keys[0]!), [...list[1]!.matchAll(/'([^']*)'/g)].map((m) => m[1]!));
    }
    const pk = (
      await su.query(
        `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
          WHERE i.indrelid = $1 AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)`,
        [oid],
      )
    ).rows.map((r) => r.attname as string);
    assert.ok(pk.length > 0, `${name} has no primary key: the matrix identifies rows by it`);
    out.push({ name, oid, columns, pk, fks, enums, constraintColumns, owner: '' });
  }
  // Whose row is it: tenant_id, the tenant's own id, or (one level up) the owner of the parent row.
  for (const t of out) {
    if (t.name === 'tenants') t.owner = 't.id';
    else if (t.columns.some((c) => c.name === 'tenant_id')) t.owner = 't.tenant_id';
    else {
      const link = [...t.fks.entries()].find(([, ref]) => out.find((p) => p.name === ref.table)?.columns.some((c) => c.name === 'tenant_id'));
      assert.ok(link, `cannot tell which tenant a row of ${t.name} belongs to (no tenant_id, no foreign key to a tenant-scoped table)`);
      t.owner = `(SELECT p.tenant_id FROM ${link[1].table} p WHERE p.${link[1].column} = t.${link[0]})`;
    }
  }
  // Parents before children.
  const ordered: Table[] = [];
  const visit = (t: Table, path: Set<string>) => {
    if (ordered.includes(t) || path.has(t.name)) return;
    path.add(t.name);
    for (const [, ref] of t.fks) {
      const parent = out.find((p) => p.name === ref.table);
      if (parent && parent !== t) visit(parent, path);
    }
    ordered.push(t);
  };
  for (const t of out) visit(t, new Set());
  return ordered;
}

// Immutable casts only (Citus refuses STABLE functions of columns, e.g. a record's or a date's text form, in an UPDATE).
const pkText = (t: Table) =>
  `(${t.pk.map((c) => (t.columns.find((x) => x.name === c)?.base === 'date' ? `(t.${c} - date '2000-01-01')::text` : `t.${c}::text`)).join(` || ',' || `)})`;

/** Candidate values (as text) for a column, first choice first. */
function candidates(t: Table, c: Column, tag: string): string[] {
  const enumValues = t.enums.get(c.name);
  if (enumValues) return enumValues;
  const stamp = (ms: number) => new Date(Date.now() + ms).toISOString();
  switch (c.base) {
    case 'uuid':
      return [randomUUID()];
    case 'text':
    case 'varchar':
    case 'bpchar': {
      const marker = `iso${tag}_${randomBytes(4).toString('hex')}_${c.name}`;
      const cut = (v: string) => (c.maxLength ? v.slice(0, c.maxLength) : v);
      // Lower case too, for codes that must be lower snake case (tenant_channels.code); last, a lower-case
      // e-mail address, for columns whose CHECK wants one (tenant_users.email).
      return [cut(marker), cut(marker.toLowerCase()), 'USD', randomBytes(32).toString('hex'), `${marker.toLowerCase()}@iso.example`];
    }
    case 'int2':
    case 'int4':
    case 'int8':
      return ['1', '5', '10', '100', '0'];
    case 'numeric':
    case 'float4':
    case 'float8':
      return ['1', '0.5', '5', '0'];
    case 'bool':
      return ['false', 'true'];
    case 'json':
    case 'jsonb':
      // An object, else a one-element array (columns that hold lists, e.g. channel_rules.conditions).
      return ['{}', '[{}]'];
    case 'timestamptz':
    case 'timestamp':
      // Later columns get later times (window_from < window_to, retired_at <= expires_at …), minutes apart: a
      // rotated-out key's grace (expires_at) seconds ahead ended between two snapshots on a loaded machine.
      return [stamp(c.num * 60_000), stamp(-c.num * 86_400_000)];
    case 'date':
      return ['2026-01-01'];
    case 'bytea':
      return ['\\x' + '00'.repeat(32)];
    case 'interval':
      return ['1 hour'];
    default:
      // '{1}' reads as a one-element array of text or of numbers (for a CHECK wanting at least one).
      if (c.base.startsWith('_')) return ['{}', '{1}'];
      return [];
  }
}

/**
 * One generated row of `t` owned by `tenant` (as the superuser, with the tenant context set
 * for triggers). NOT NULL columns without a default get a value; foreign keys point at a row of
 * the same tenant. A violated constraint moves its columns to their next candidate value.
 */
async function generateRow(t: Table, tenant: string, tag: string): Promise<string | null> {
  const fixed = new Map<string, string>();
  const free: { column: Column; values: string[] }[] = [];
  for (const c of t.columns) {
    const fk = t.fks.get(c.name);
    if (c.name === 'tenant_id' || (fk?.table === 'tenants' && fk.column === 'id')) fixed.set(c.name, tenant);
    else if (fk) {
      const parent = tables.find((p) => p.name === fk.table);
      const { rows } = parent
        ? await su.query(`SELECT t.${fk.column}::text AS v FROM ${fk.table} t WHERE ${parent.owner} = $1 LIMIT 1`, [tenant])
        : await su.query(`SELECT ${fk.column}::text AS v FROM ${fk.table} LIMIT 1`);
      if (rows.length) fixed.set(c.name, rows[0].v);
      else if (c.notNull) return `no ${fk.table} row of the tenant to reference`;
    } else if (c.notNull && !c.hasDefault) {
      const values = candidates(t, c, tag);
      if (values.length === 0) return `no candidate value for column ${c.name} (${c.type})`;
      // Last, a value prefixed with the tenant id: what the Citus-only CHECKs of tenant-scoped keys ask (src/citus/plan.ts).
      if (['text', 'varchar'].includes(c.base)) values.push(`${tenant}:iso${tag}_${c.name}`.slice(0, c.maxLength ?? undefined));
      free.push({ column: c, values });
    }
  }
  const choice = free.map(() => 0);
  let lastError = '';
  for (let attempt = 0; attempt < 60; attempt++) {
    const names = [...fixed.keys(), ...free.map((f) => f.column.name)];
    const values = [...fixed.values(), ...free.map((f, i) => f.values[choice[i]!]!)];
    const types = [...fixed.keys()].map((n) => t.columns.find((c) => c.name === n)!.type).concat(free.map((f) => f.column.type));
    try {
      await su.query('BEGIN');
      await su.query(tenantContextSql(tenant));
      await su.query(
        `INSERT INTO ${t.name} (${names.join(', ')}) VALUES (${values.map((_, i) => `$${i + 1}::${types[i]}`).join(', ')})`,
        values,
      );
      await su.query('COMMIT');
      return null;
    } catch (error) {
      await su.query('ROLLBACK');
      const e = error as { message: string; constraint?: string; column?: string };
      lastError = e.message;
      // Advance the free columns of the violated constraint (odometer style).
      // On Citus a shard's error comes back without the constraint field: the message names it (a shard's index with its shard id).
      const constraint = e.constraint ?? /constraint "([^"]+?)(?:_\d+)?"/.exec(e.message)?.[1];
      const involved = new Set(constraint ? (t.constraintColumns.get(constraint) ?? []) : e.column ? [e.column] : free.map((f) => f.column.name));
      let advanced = false;
      for (let i = 0; i < free.length && !advanced; i++) {
        if (!involved.has(free[i]!.column.name)) continue;
        if (choice[i]! + 1 < free[i]!.values.length) {
          choice[i]!++;
          advanced = true;
        } else choice[i] = 0;
      }
      if (!advanced) break;
    }
  }
  return lastError;
}

/** Rows of `t` per owning tenant, identified by their primary key as text. */
async function rowsByOwner(t: Table): Promise<Map<string, string[]>> {
  const { rows } = await su.query<{ owner: string | null; pk: string }>(`SELECT ${t.owner}::text AS owner, ${pkText(t)} AS pk FROM ${t.name} t`);
  const map = new Map<string, string[]>();
  for (const r of rows) map.set(String(r.owner), [...(map.get(String(r.owner)) ?? []), r.pk]);
  return map;
}

/** Everything tenant B owns, as JSON text per table (to prove nothing of it changed). */
async function snapshotOf(tenant: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of tables) {
    const { rows } = await su.query(`SELECT to_jsonb(t)::text AS j FROM ${t.name} t WHERE ${t.owner} = $1 ORDER BY 1`, [tenant]);
    out[t.name] = rows.map((r) => r.j);
  }
  return out;
}

async function seedTenant(tag: 'A' | 'B'): Promise<void> {
  const failures: string[] = [];
  for (const t of tables) {
    if (t.name === 'tenants') continue;
    const error = await generateRow(t, tenants[tag].id, tag);
    // A table filled by the database itself (e.g. a trigger's audit rows) may already hold one.
    if (error && ((await rowsByOwner(t)).get(tenants[tag].id)?.length ?? 0) === 0) failures.push(`${t.name}: ${error}`);
  }
  assert.deepEqual(failures, [], 'every tenant-scoped table gets a generated row; for a table listed here, make its row generatable');
}

before(async () => {
  db = await createTestDatabase('head');
  su = await superClient(db);
  const owner = db.ownerPool({ max: 1 });
  for (const tag of ['A', 'B'] as const) {
    const t = await createTenant(owner, { name: `Tenant ${tag}`, email: `ops@${tag.toLowerCase()}.example` });
    tenants[tag] = { id: t.tenant_id, key: t.api_key };
  }
  await owner.end();
  tables = await discover();
  app = await buildApp({ db, config: loadConfig({}), logger: false, rateLimit: { max: 0 } });
  appPool = db.appPool({ max: 2 });
  // Events through the API too, so routes reading events have real rows.
  for (const tag of ['A', 'B'] as const) {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/events',
      headers: { authorization: `Bearer ${tenants[tag].key}` },
      payload: {
        idempotency_key: 'shared-client-key',
        event_type: 'conversion',
        event_timestamp: '2026-01-15T10:00:00Z',
        session_id: randomUUID(),
        channel: 'email',
        conversion_value_cents: 1000,
        currency: 'USD',
        order_id: `iso${tag}_order`,
      },
    });
    assert.equal(res.statusCode, 201, `${tag}: ${res.body}`);
  }
  await seedTenant('A');
  await seedTenant('B');
});
after(async () => {
  await appPool?.end();
  await app?.close();
  await su?.end();
  await db?.drop();
});

/** Runs one statement in the tenant's context as the application role; a privilege error counts as "refused". */
async function asApp(tenant: string | null, sql: string, params: unknown[] = []): Promise<{ rows: any[]; rowCount: number } | { refused: string }> {
  const run = async (client: pg.PoolClient) => {
    try {
      await client.query('SAVEPOINT op');
      const r = await client.query(sql, params);
      await client.query('RELEASE SAVEPOINT op');
      return { rows: r.rows, rowCount: r.rowCount ?? 0 };
    } catch (error) {
      await client.query('ROLLBACK TO SAVEPOINT op');
      const code = (error as { code?: string }).code;
      if (code === '42501') return { refused: (error as Error).message };
      throw error;
    }
  };
  if (tenant) return withTenant(appPool, tenant, run);
  const client = await appPool.connect();
  try {
    await client.query('BEGIN');
    const r = await run(client);
    await client.query('ROLLBACK');
    return r;
  } finally {
    client.release();
  }
}

describe('isolation matrix through the application role', () => {
  test('the matrix covers every table with row-level security, each holding rows of both tenants', async () => {
    assert.ok(tables.length >= 8, tables.map((t) => t.name).join(', '));
    for (const name of ['tenants', 'attribution_events', 'attribution_allocations', 'revenue_ledger', 'dead_events', 'revenue_state_transitions', 'tenant_api_keys_retired', 'tenant_channels', 'channel_rules', 'ad_spend']) {
      assert.ok(tables.some((t) => t.name === name), `${name} is discovered`);
    }
    for (const t of tables) {
      const owners = await rowsByOwner(t);
      for (const tag of ['A', 'B'] as const) assert.ok((owners.get(tenants[tag].id)?.length ?? 0) > 0, `${t.name} has rows of ${tag}`);
    }
    // Every tenant-scoped table forces row-level security (tenants itself: enabled, by design not forced).
    const { rows } = await su.query(
      `SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND NOT (c.relrowsecurity AND c.relforcerowsecurity)`,
    );
    assert.deepEqual(rows, [], 'tables with a tenant_id and without forced row-level security');
  });

  for (const [viewer, other] of [['A', 'B'], ['B', 'A']] as const) {
    test(`${viewer} can neither select, count, update, delete nor insert ${other}'s rows, in any table`, async () => {
      const before = await snapshotOf(tenants[other].id);
      for (const t of tables) {
        const owners = await rowsByOwner(t);
        const mine = (owners.get(tenants[viewer].id) ?? []).sort();
        const theirs = owners.get(tenants[other].id) ?? [];
        const label = `${t.name} (${viewer} looking at ${other})`;

        // select and count: exactly the viewer's own rows
        const visible = await asApp(tenants[viewer].id, `SELECT ${pkText(t)} AS pk FROM ${t.name} t`);
        if ('rows' in visible) {
          assert.deepEqual(visible.rows.map((r) => r.pk).sort(), mine, `${label}: select`);
          const count = await asApp(tenants[viewer].id, `SELECT count(*)::int AS n FROM ${t.name}`);
          assert.ok('rows' in count && count.rows[0].n === mine.length, `${label}: count`);
          const targeted = await asApp(tenants[viewer].id, `SELECT count(*)::int AS n FROM ${t.name} t WHERE ${pkText(t)} = ANY($1)`, [theirs]);
          assert.ok('rows' in targeted && targeted.rows[0].n === 0, `${label}: select by id`);
        }

        // update and delete by primary key: nothing happens
        const updatable = (
          await su.query(`SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND has_column_privilege($2, attrelid, attname, 'UPDATE') ORDER BY attnum LIMIT 1`, [
            t.oid,
            db.roles.app,
          ])
        ).rows[0]?.attname ?? t.pk[0];
        const updated = await asApp(tenants[viewer].id, `UPDATE ${t.name} t SET ${updatable} = ${updatable} WHERE ${pkText(t)} = ANY($1)`, [theirs]);
        assert.ok('refused' in updated || updated.rowCount === 0, `${label}: update touched ${'rowCount' in updated ? updated.rowCount : 0} rows`);
        const deleted = await asApp(tenants[viewer].id, `DELETE FROM ${t.name} t WHERE ${pkText(t)} = ANY($1)`, [theirs]);
        assert.ok('refused' in deleted || deleted.rowCount === 0, `${label}: delete removed ${'rowCount' in deleted ? deleted.rowCount : 0} rows`);

        // insert: a copy of one of the other's rows (a new primary key when it has a default) is refused
        const insertable = (
          await su.query(`SELECT attname FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND has_column_privilege($2, attrelid, attname, 'INSERT')
               AND NOT (attname = ANY($3) AND d.adbin IS NOT NULL) ORDER BY attnum`, [t.oid, db.roles.app, t.pk])
        ).rows.map((r) => r.attname as string);
        const source = (await su.query(`SELECT to_jsonb(t) AS j FROM ${t.name} t WHERE ${pkText(t)} = $1`, [theirs[0]])).rows[0].j;
        const inserted = insertable.length
          ? await asApp(
              tenants[viewer].id,
              // VALUES, not INSERT … SELECT: Citus runs an INSERT … SELECT without a distributed table in its SELECT as a COPY, which it refuses under row-level security.
              `INSERT INTO ${t.name} (${insertable.join(', ')}) VALUES (${insertable.map((c) => `(jsonb_populate_record(NULL::${t.name}, $1)).${c}`).join(', ')})`,
              [source],
            )
          : await asApp(tenants[viewer].id, `INSERT INTO ${t.name} DEFAULT VALUES`);
        assert.ok('refused' in inserted, `${label}: inserting a row of ${other} must be refused`);
      }
      assert.deepEqual(await snapshotOf(tenants[other].id), before, `nothing of ${other} changed`);
    });
  }

  test('the schema owner, in one tenant\'s context (maintenance, tenant CLI commands), sees only that tenant\'s rows where RLS is forced', async () => {
    const owner = db.ownerPool({ max: 1 });
    try {
      for (const t of tables) {
        const forced = (await su.query('SELECT relforcerowsecurity AS f FROM pg_class WHERE oid = $1', [t.oid])).rows[0].f;
        if (!forced) continue;
        const owners = await rowsByOwner(t);
        for (const tag of ['A', 'B'] as const) {
          const seen = await withTenant(owner, tenants[tag].id, async (c) => (await c.query(`SELECT ${pkText(t)} AS pk FROM ${t.name} t`)).rows.map((r) => r.pk).sort());
          assert.deepEqual(seen, (owners.get(tenants[tag].id) ?? []).sort(), `${t.name}: the owner in ${tag}'s context`);
        }
      }
    } finally {
      await owner.end();
    }
  });

  test('without a tenant context the application role sees no row of any table', async () => {
    for (const t of tables) {
      const r = await asApp(null, `SELECT count(*)::int AS n FROM ${t.name}`);
      assert.ok('refused' in r || r.rows[0].n === 0, `${t.name}: ${JSON.stringify(r)}`);
    }
  });

  test('a connection returned to the pool carries no tenant context (after commit, after an error)', async () => {
    const pool = db.appPool({ max: 1 });
    try {
      const setting = async () => (await pool.query(`SELECT current_setting('app.current_tenant_id', true) AS v`)).rows[0].v;
      await withTenant(pool, tenants.A.id, async (c) => {
        assert.equal((await c.query(`SELECT current_setting('app.current_tenant_id', true) AS v`)).rows[0].v, tenants.A.id);
      });
      assert.ok(!(await setting()), 'cleared after COMMIT');
      await assert.rejects(withTenant(pool, tenants.A.id, async (c) => c.query('SELECT 1/0')));
      assert.ok(!(await setting()), 'cleared after ROLLBACK');
      assert.equal((await pool.query('SELECT count(*)::int AS n FROM attribution_events')).rows[0].n, 0);
    } finally {
      await pool.end();
    }
    // And the API's own pool, after it served requests of both tenants.
    for (const tag of ['A', 'B'] as const) {
      await app.inject({ method: 'GET', url: '/api/v1/tenant', headers: { authorization: `Bearer ${tenants[tag].key}` } });
    }
    const clients = await Promise.all(Array.from({ length: 5 }, () => app.appPool.connect()));
    try {
      for (const c of clients) assert.ok(!(await c.query(`SELECT current_setting('app.current_tenant_id', true) AS v`)).rows[0].v);
    } finally {
      for (const c of clients) c.release();
    }
  });

  test(
    'a foreign key cannot be used to reference, and so detect, another tenant\'s row',
    async () => {
      const probes: string[] = [];
      for (const t of tables) {
        for (const [column, ref] of t.fks) {
          const parent = tables.find((p) => p.name === ref.table);
          if (!parent || parent.name === 'tenants' || !t.columns.some((c) => c.name === 'tenant_id')) continue;
          // A value of B's that A does not have itself (tenants share the default channel codes).
          const theirs = (
            await su.query(
              `SELECT t.${ref.column}::text AS v FROM ${parent.name} t WHERE ${parent.owner} = $1
                  AND t.${ref.column} NOT IN (SELECT t.${ref.column} FROM ${parent.name} t WHERE ${parent.owner} = $2) LIMIT 1`,
              [tenants.B.id, tenants.A.id],
            )
          ).rows[0]?.v;
          const mine = (await su.query(`SELECT to_jsonb(t) AS j FROM ${t.name} t WHERE tenant_id = $1 LIMIT 1`, [tenants.A.id])).rows[0]?.j;
          if (!theirs || !mine) continue;
          const r = await withTenant(appPool, tenants.A.id, async (c) => {
            try {
              await c.query('SAVEPOINT p');
              await c.query(`UPDATE ${t.name} SET ${column} = $1 WHERE ${t.pk[0]}::text = $2`, [theirs, String(mine[t.pk[0]!])]);
              await c.query('ROLLBACK TO SAVEPOINT p');
              return 'accepted';
            } catch {
              await c.query('ROLLBACK TO SAVEPOINT p');
              return 'refused';
            }
          });
          if (r === 'accepted') probes.push(`${t.name}.${column} → ${parent.name}`);
        }
      }
      assert.deepEqual(probes, []);
    },
  );
});

describe('isolation matrix through every API route', () => {
  /**
   * B's identifying values: every uuid and short text of B's rows (and the last segment of scoped
   * ids) that A's rows do not hold too (every tenant has the default channel codes: they identify
   * nothing of B's).
   */
  async function probesOf(tenant: string): Promise<string[]> {
    const others = await valuesOf(tenants.A.id === tenant ? tenants.B.id : tenants.A.id);
    return [...(await valuesOf(tenant))].filter((v) => v === tenant || !others.has(v));
  }
  async function valuesOf(tenant: string): Promise<Set<string>> {
    const values = new Set<string>([tenant]);
    for (const t of tables) {
      const cols = t.columns.filter((c) => ['uuid', 'text', 'varchar'].includes(c.base));
      if (!cols.length) continue;
      const { rows } = await su.query(`SELECT ${cols.map((c) => `t.${c.name}::text AS "${c.name}"`).join(', ')} FROM ${t.name} t WHERE ${t.owner} = $1`, [tenant]);
      for (const r of rows) {
        for (const v of Object.values(r) as (string | null)[]) {
          if (!v || v.length > 200) continue;
          values.add(v);
          if (v.includes(':')) values.add(v.slice(v.lastIndexOf(':') + 1));
        }
      }
    }
    return values;
  }
  /** A value shaped like `v` (same length, same character classes, a UUID stays a UUID) that names nothing. */
  const missingLike = (v: string) =>
    v.replace(/[0-9a-f]|[g-z]|[A-F]|[G-Z]/g, (ch) => {
      const pick = (set: string) => set[randomBytes(1)[0]! % set.length]!;
      if (/[0-9a-f]/.test(ch)) return pick('0123456789abcdef');
      if (/[g-z]/.test(ch)) return pick('ghijklmnopqrstuvwxyz');
      if (/[A-F]/.test(ch)) return pick('ABCDEF');
      return pick('GHIJKLMNOPQRSTUVWXYZ');
    });
  const apiRoutes = () => app.routeList.filter((r) => r.url.startsWith('/api/v1/'));

  function queryFor(url: string, method: string): string {
    const route = app.routeList.find((r) => r.url === url && r.method === method) as { schema?: { querystring?: any } } | undefined;
    const props = route?.schema?.querystring?.properties ?? {};
    const required: string[] = route?.schema?.querystring?.required ?? [];
    const parts = required.map((name) => {
      const p = props[name] ?? {};
      const value =
        p.format === 'date-time' ? (/(^|_)(to|end|until)$/.test(name) ? '2100-01-01T00:00:00Z' : '2000-01-01T00:00:00Z')
        : p.format === 'date' ? (/(^|_)(to|end|until)$/.test(name) ? '2100-01-01' : '2000-01-01')
        // A day by pattern (QueryDay: spend, the performance report and its export), within their ten-year limit, so
        // those routes answer with data rather than a 400.
        : String(p.pattern ?? '').startsWith('^\\d{4}-\\d{2}-\\d{2}') ? (/(^|_)(to|end|until)$/.test(name) ? '2029-12-01' : '2020-01-01')
        : p.enum?.[0] ?? p.anyOf?.[0]?.const ?? (p.type === 'integer' || p.type === 'number' ? (p.minimum ?? 1) : 'x');
      return `${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`;
    });
    return parts.length ? `?${parts.join('&')}` : '';
  }

  async function call(method: string, url: string, key: string) {
    const res = await app.inject({
      method: method as 'GET',
      url,
      headers: { authorization: `Bearer ${key}`, ...(method === 'GET' || method === 'DELETE' ? {} : { 'content-type': 'application/json' }) },
      ...(method === 'GET' || method === 'DELETE' ? {} : { payload: '{}' }),
    });
    const body = res.body;
    assert.ok(res.statusCode < 500, `${method} ${url}: ${res.statusCode} ${body}`);
    return { status: res.statusCode, body };
  }
  // Replaces the probed value where it stands as a whole token, never inside a longer word
  // (a short random stand-in such as "que" must not rewrite "request").
  const normalise = (body: string, replace: string[]) => {
    // Fields that differ on every call whatever the data (an erasure receipt's audit id and times) are blanked too.
    let out = body.replace(/"(request_id|erasure_id|started_at|finished_at)":"[^"]*"/g, '"$1":"-"');
    const token = (v: string) => new RegExp(`(?<![A-Za-z0-9_%-])${v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![A-Za-z0-9_%-])`, 'g');
    for (const v of replace) out = out.replace(token(encodeURIComponent(v)), 'VALUE').replace(token(v), 'VALUE');
    return out;
  };

  test('the routes under test include the ingestion, tenant and identity routes', () => {
    const urls = apiRoutes().map((r) => `${r.method} ${r.url}`);
    for (const r of [
      'POST /api/v1/events', 'POST /api/v1/events/batch', 'GET /api/v1/events/:id', 'GET /api/v1/tenant', 'GET /api/v1/spend', 'GET /api/v1/spend/summary', 'DELETE /api/v1/spend', 'POST /api/v1/spend',
      'GET /api/v1/performance', 'GET /api/v1/exports/performance', 'POST /api/v1/identify', 'GET /api/v1/people/:user_id/links', 'DELETE /api/v1/people/:user_id/links', 'DELETE /api/v1/people/:user_id/links/:anonymous_id',
    ]) assert.ok(urls.includes(r), urls.join(', '));
  });

  test('a route given one of B\'s identifiers answers A exactly as for an identifier that does not exist', async () => {
    const before = await snapshotOf(tenants.B.id);
    const probes = await probesOf(tenants.B.id);
    const withParams = apiRoutes().filter((r) => r.url.includes(':'));
    assert.ok(withParams.length > 0);
    let compared = 0;
    for (const route of withParams) {
      const params = route.url.match(/:[A-Za-z_]+/g)!.map((p) => p.slice(1));
      // A parameter with a fixed set of values (e.g. a webhook's provider) takes each of them in
      // turn; the others take the probe.
      const props = ((route.schema as { params?: { properties?: Record<string, any> } } | undefined)?.params?.properties ?? {}) as Record<string, any>;
      const choices = (name: string): string[] | null => props[name]?.enum ?? (props[name]?.anyOf?.every((a: any) => 'const' in a) ? props[name].anyOf.map((a: any) => a.const) : null);
      const fixedParams = params.filter((p) => choices(p));
      // Every parameter fixed (e.g. an export's dataset): no probe reaches the URL, so there is nothing to compare
      // here (the next test covers such routes: A's answer must not change when B's data does).
      if (fixedParams.length === params.length) continue;
      const combos: Record<string, string>[] = fixedParams.reduce<Record<string, string>[]>(
        (acc, p) => acc.flatMap((combo) => choices(p)!.map((v) => ({ ...combo, [p]: v }))),
        [{}],
      );
      for (const combo of combos) {
        for (const probe of probes) {
          if (Object.values(combo).includes(probe)) continue;
          const missing = missingLike(probe);
          const fill = (v: string) => params.reduce((u, p) => u.replace(`:${p}`, encodeURIComponent(combo[p] ?? v)), route.url) + queryFor(route.url, route.method);
          const theirs = await call(route.method, fill(probe), tenants.A.key);
          const none = await call(route.method, fill(missing), tenants.A.key);
          assert.equal(theirs.status, none.status, `${route.method} ${route.url} with ${probe}: ${theirs.body} vs ${none.body}`);
          assert.equal(normalise(theirs.body, [probe]), normalise(none.body, [missing]), `${route.method} ${route.url} with ${probe}`);
          compared++;
        }
      }
    }
    assert.ok(compared > 0);
    assert.deepEqual(await snapshotOf(tenants.B.id), before, 'no route changed a row of B');
  });

  test('no route\'s answer to A changes when B\'s data changes, or mentions B', async () => {
    const plain = apiRoutes().filter((r) => !r.url.includes(':') && r.method === 'GET');
    assert.ok(plain.length > 0);
    const answers = async () => {
      const out: string[] = [];
      for (const r of plain) {
        const res = await call(r.method, r.url + queryFor(r.url, r.method), tenants.A.key);
        // The day-ranged reports answer with data here (queryFor's days), not a 400 that would compare nothing.
        if (r.url === '/api/v1/performance' || r.url === '/api/v1/exports/performance') assert.equal(res.status, 200, `${r.url}: ${res.body}`);
        assert.ok(!res.body.includes(tenants.B.id) && !res.body.includes('isoB'), `${r.method} ${r.url} mentions B: ${res.body.slice(0, 300)}`);
        out.push(`${r.url} ${res.status} ${normalise(res.body, [])}`);
      }
      return out;
    };
    const first = await answers();
    // B gets more of everything: generated rows and an event through the API.
    for (const t of tables) if (t.name !== 'tenants') await generateRow(t, tenants.B.id, 'B');
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/events',
      headers: { authorization: `Bearer ${tenants.B.key}` },
      payload: { idempotency_key: randomUUID(), event_type: 'conversion', event_timestamp: '2026-01-16T10:00:00Z', session_id: randomUUID(), conversion_value_cents: 99, currency: 'USD' },
    });
    assert.equal(res.statusCode, 201);
    assert.deepEqual(await answers(), first);
  });

  test('ingestion: A using B\'s client key creates A\'s own event (no replay, no conflict, nothing of B returned)', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/events',
      headers: { authorization: `Bearer ${tenants.A.key}` },
      payload: { idempotency_key: 'shared-client-key', event_type: 'touchpoint', event_timestamp: '2026-01-15T10:00:00Z', session_id: randomUUID() },
    });
    // A already used this key itself in the set-up with another body: a 409 naming A's event, never B's.
    assert.equal(res.statusCode, 409);
    const own = (await su.query(`SELECT id FROM attribution_events WHERE idempotency_key = $1`, [`${tenants.A.id}:ext:shared-client-key`])).rows[0].id;
    assert.equal(res.json().event_id, own);
    const fresh = randomUUID();
    for (const tag of ['B', 'A'] as const) {
      const r = await app.inject({
        method: 'POST',
        url: '/api/v1/events',
        headers: { authorization: `Bearer ${tenants[tag].key}` },
        payload: { idempotency_key: fresh, event_type: 'touchpoint', event_timestamp: '2026-01-15T10:00:00Z', session_id: randomUUID() },
      });
      assert.equal(r.statusCode, 201, `${tag}: ${r.body}`);
    }
  });
});
