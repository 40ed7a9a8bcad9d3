import type pg from 'pg';
import { ident } from '../db/pool.js';
import { DROPPED_FOREIGN_KEYS, KEY_SWAPS, planTables, REFERENCE_TABLES, REPLACED_TRIGGERS, type TablePlan } from './plan.js';

export class CitusUnavailableError extends Error {
  readonly code = 'citus_unavailable';
}

/**
 * The database's settings on Citus: SET LOCAL of the tenant context reaches the workers only with
 * propagate_set_commands (set_config() never does); the ledger's and the allocations' row
 * triggers need enable_unsafe_triggers (they read colocated shards of the same tenant).
 * Per database (a database cloned from this one does not inherit them).
 */
export const DATABASE_SETTINGS: ReadonlyArray<[string, string]> = [
  ['citus.propagate_set_commands', 'local'],
  ['citus.enable_unsafe_triggers', 'on'],
];

export function databaseSettingsSql(dbName: string): string {
  return DATABASE_SETTINGS.map(([k, v]) => `ALTER DATABASE ${ident(dbName)} SET ${k} = '${v}'`).join('; ');
}

export interface DistributeResult {
  plan: TablePlan[];
  /** Tables this run distributed or made reference tables (none on a second run). */
  changed: string[];
  workers: number;
  steps: string[];
}

/**
 * `skeldir citus distribute`: turns a database migrated to head on a Citus coordinator into a
 * distributed one (docs/scaling.md). As a superuser. Idempotent: a second run changes nothing.
 * Order: settings and roles, the Citus-only key swaps (CHECKs first, validated: a row that breaks
 * the argument for a swap stops the run before anything is dropped), foreign keys and the trigger
 * Citus refuses, then reference tables, then every tenant table by tenant_id, parents first, in
 * the colocation group of attribution_events.
 */
export async function distribute(client: pg.ClientBase, roles: { owner: string; app: string; system: string }, say: (line: string) => void = () => {}): Promise<DistributeResult> {
  const ext = await client.query<{ v: string }>(`SELECT extversion AS v FROM pg_extension WHERE extname = 'citus'`);
  if (ext.rows.length === 0) throw new CitusUnavailableError('the citus extension is not installed in this database (CREATE EXTENSION citus, on the coordinator and every worker)');
  const plan = await planTables(client);
  const steps: string[] = [];
  const run = async (label: string, sql: string) => {
    say(label);
    steps.push(label);
    await client.query(sql);
  };
  const workers = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM pg_dist_node WHERE noderole = 'primary' AND isactive AND groupid <> 0`)).rows[0]!.n);
  // Tables already distributed or reference (Citus turns a table with a foreign key to a reference table into a
  // "citus local" table by itself: that one still needs distributing).
  const done = new Set((await client.query<{ t: string }>(
    `SELECT table_name::text AS t FROM citus_tables WHERE citus_table_type IN ('distributed', 'reference')`)).rows.map((r) => r.t));

  // Citus opens its connections to the workers as the current role (SET ROLE and SECURITY DEFINER included).
  for (const role of [roles.owner, roles.app, roles.system]) {
    const r = await client.query<{ login: boolean }>(`SELECT rolcanlogin AS login FROM pg_roles WHERE rolname = $1`, [role]);
    if (r.rows[0] && !r.rows[0].login) await run(`role ${role}: LOGIN (Citus connects to the workers as it)`, `ALTER ROLE ${ident(role)} LOGIN`);
  }
  const dbName = (await client.query<{ d: string }>(`SELECT current_database() AS d`)).rows[0]!.d;
  // SET LOCAL of the tenant context reaches the workers only with this (set_config() never does).
  await run(`database ${dbName}: ${DATABASE_SETTINGS.map(([k, v]) => `${k} = ${v}`).join(', ')}`, databaseSettingsSql(dbName));
  await client.query(`SET citus.enable_unsafe_triggers = on; SET citus.multi_shard_modify_mode = 'sequential'`);

  const constraint = async (table: string, name: string) =>
    (await client.query(`SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2`, [`public.${table}`, name])).rows.length > 0;
  const index = async (name: string) => (await client.query(`SELECT 1 FROM pg_class WHERE oid = to_regclass($1)`, [`public.${name}`])).rows.length > 0;

  for (const s of KEY_SWAPS) {
    if (s.check && !(await constraint(s.table, s.check.name))) {
      await run(`${s.table}: CHECK ${s.check.name}`, `ALTER TABLE ${ident(s.table)} ADD CONSTRAINT ${ident(s.check.name)} CHECK (${s.check.expression})`);
    }
    const swapped = (await client.query(`SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2 AND pg_get_constraintdef(oid) LIKE '%tenant_id%'`, [`public.${s.table}`, s.name])).rows.length > 0;
    if (swapped) continue;
    if (!(await index(s.replacement))) {
      await run(`${s.table}: UNIQUE ${s.replacement} (${s.columns})`, `CREATE UNIQUE INDEX ${ident(s.replacement)} ON ${ident(s.table)} (${s.columns})${s.where ? ` WHERE ${s.where}` : ''}`);
    }
    if (await constraint(s.table, s.name)) {
      const primary = (await client.query(`SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2 AND contype = 'p'`, [`public.${s.table}`, s.name])).rows.length > 0;
      await run(`${s.table}: drop ${s.name}${primary ? `, primary key on ${s.replacement}` : ''}`, `ALTER TABLE ${ident(s.table)} DROP CONSTRAINT ${ident(s.name)}` +
        (primary ? `; ALTER TABLE ${ident(s.table)} ADD CONSTRAINT ${ident(s.name)} PRIMARY KEY USING INDEX ${ident(s.replacement)}` : ''));
    } else if (await index(s.name)) {
      await run(`${s.table}: drop ${s.name}`, `DROP INDEX ${ident(s.name)}`);
    }
  }
  for (const f of DROPPED_FOREIGN_KEYS) {
    if (await constraint(f.table, f.name)) await run(`${f.table}: drop ${f.name}`, `ALTER TABLE ${ident(f.table)} DROP CONSTRAINT ${ident(f.name)}`);
  }

  // PRIMARY KEY (id) on a generated UUID → PRIMARY KEY (tenant_id, id), on the (tenant_id, id) unique index when there is one.
  const distributed = plan.filter((p) => p.kind === 'distributed').map((p) => p.table);
  for (const table of distributed) {
    const pk = (await client.query<{ name: string; def: string }>(
      `SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'p'`, [`public.${table}`])).rows[0];
    if (!pk || pk.def !== 'PRIMARY KEY (id)') continue;
    const existing = (await client.query<{ name: string }>(
      `SELECT i.relname AS name FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = to_regclass($1) AND x.indisunique AND x.indpred IS NULL AND x.indexprs IS NULL
          AND ARRAY(SELECT a.attname::text FROM unnest(x.indkey) k JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k) = ARRAY['tenant_id', 'id']
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.contype IN ('p', 'u'))
        LIMIT 1`, [`public.${table}`])).rows[0];
    await run(`${table}: PRIMARY KEY (id) → (tenant_id, id)`, `ALTER TABLE ${ident(table)} DROP CONSTRAINT ${ident(pk.name)}; ` +
      (existing
        ? `ALTER TABLE ${ident(table)} ADD CONSTRAINT ${ident(pk.name)} PRIMARY KEY USING INDEX ${ident(existing.name)}`
        : `ALTER TABLE ${ident(table)} ADD CONSTRAINT ${ident(pk.name)} PRIMARY KEY (tenant_id, id)`));
  }

  // The one-server allocation trigger (a statement trigger joining its transition table with
  // distributed tables) is dropped before distributing; its shard-local replacement is created
  // once every table is distributed (below), since it names the colocated shards.
  for (const t of REPLACED_TRIGGERS) {
    const exists = (await client.query(`SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2`, [`public.${t.table}`, t.name])).rows.length > 0;
    if (exists) await run(`${t.table}: drop ${t.name} (replaced by ${t.replacement} once distributed)`, `DROP TRIGGER ${ident(t.name)} ON ${ident(t.table)}`);
  }

  // The worker's claim, per tenant (src/worker/queue.ts, claimTenantEvents): FOR UPDATE SKIP
  // LOCKED across shards is refused, so on Citus the worker asks skeldir_due_tenants for the
  // tenants with due work (a read fanned out to every shard, locking nothing) and claims each
  // tenant's events itself, as skeldir_app in the tenant's context, with a router query
  // `tenant_id = t … FOR UPDATE SKIP LOCKED`. Not in a SECURITY DEFINER function: Citus opens the
  // owner's own connection to the shard for it, and row locks taken there blocked the batch's
  // updates on its skeldir_app connection, which Citus cancelled as a distributed deadlock
  // (measured: every batch of crash.test.ts). skeldir_claim_due_events (one statement over all
  // tenants) cannot run here; it now says so, for a worker of an older release.
  const claim = (await client.query<{ src: string }>(`SELECT prosrc AS src FROM pg_proc WHERE oid = to_regprocedure('skeldir_claim_due_events(integer)')`)).rows[0];
  if (claim && !claim.src.includes('citus: the worker claims per tenant')) {
    await run('skeldir_claim_due_events: refused (the worker claims per tenant on Citus)', `
      CREATE OR REPLACE FUNCTION skeldir_claim_due_events(p_limit integer)
      RETURNS TABLE (id uuid, tenant_id uuid, event_type text, retry_count integer)
      LANGUAGE plpgsql VOLATILE SECURITY DEFINER
      SET search_path = public, pg_temp
      AS $fn$
      -- citus: the worker claims per tenant (skeldir citus distribute)
      BEGIN
        RAISE EXCEPTION 'on Citus the worker claims per tenant (skeldir_due_tenants, then FOR UPDATE SKIP LOCKED by tenant_id as the application role): upgrade the worker'
          USING ERRCODE = 'feature_not_supported';
      END $fn$`);
  }
  if (claim && (await client.query(`SELECT 1 FROM pg_proc WHERE oid = to_regprocedure('skeldir_due_tenants(integer)')`)).rows.length === 0) {
    // plpgsql: the limit is a value when Citus plans the query (a parameter of an inlined sql function is not).
    await run('skeldir_due_tenants: the tenants with due events, for the per-tenant claim', `
      CREATE FUNCTION skeldir_due_tenants(p_limit integer)
      RETURNS TABLE (tenant_id uuid)
      LANGUAGE plpgsql VOLATILE SECURITY DEFINER
      SET search_path = public, pg_temp
      AS $fn$
      BEGIN
        RETURN QUERY SELECT d.tenant_id FROM (SELECT DISTINCT e.tenant_id FROM attribution_events e
                                               WHERE e.processing_status = 'pending' AND (e.next_attempt_at IS NULL OR e.next_attempt_at <= now())) d
                      ORDER BY random() LIMIT p_limit;
      END $fn$;
      REVOKE ALL ON FUNCTION skeldir_due_tenants(integer) FROM PUBLIC;
      GRANT EXECUTE ON FUNCTION skeldir_due_tenants(integer) TO ${ident(roles.app)};
      ALTER FUNCTION skeldir_due_tenants(integer) OWNER TO ${ident(roles.system)};
      COMMENT ON FUNCTION skeldir_due_tenants(integer) IS 'Citus only (skeldir citus distribute): up to n tenants with due pending events, in random order (so that workers spread over tenants); locks nothing: the worker then claims each tenant''s events FOR UPDATE SKIP LOCKED by tenant_id as the application role. SECURITY DEFINER, owned by the system role.'`);
  }
  // The per-tenant claim walks the tenant's due events in claim order: the claim indexes lead with
  // tenant_id here (a shard holds many tenants; the one-server indexes would read and filter the
  // other tenants' due events of the shard on every claim).
  for (const [name, replacement, columns, where] of CLAIM_INDEXES) {
    if (!(await index(replacement))) {
      await run(`attribution_events: ${replacement} (${columns}) for the per-tenant claim`, `CREATE INDEX ${ident(replacement)} ON attribution_events (${columns}) WHERE ${where}`);
      await client.query(`COMMENT ON INDEX ${ident(replacement)} IS ${lit(`Citus only (skeldir citus distribute): ${name} led by tenant_id, for the worker's per-tenant claim.`)}`);
    }
    if (await index(name)) await run(`attribution_events: drop ${name} (replaced by ${replacement})`, `DROP INDEX ${ident(name)}`);
  }

  // Citus turns a local table with a foreign key to a new reference table into a "citus local" table, and
  // distributing that one later re-creates it from Citus's deparsed DDL: every comment (the INVARIANT tags
  // the forensic protocol reads) was lost and CHECKs came back re-printed. So every foreign key between the
  // tables to distribute or replicate is dropped first and added back at the end (with its comment): the
  // tables are then distributed as they are, and Citus checks each key on the shards.
  const replicated = REFERENCE_TABLES.map((r) => r.table).filter((t) => plan.some((p) => p.table === t && p.kind === 'reference'));
  const cluster = [...replicated, ...distributed];
  const pending = cluster.filter((t) => !done.has(t));
  const fks = (await client.query<{ table: string; name: string; def: string; comment: string | null }>(
    `SELECT c.relname AS table, k.conname AS name, pg_get_constraintdef(k.oid) AS def, obj_description(k.oid, 'pg_constraint') AS comment
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
      WHERE k.contype = 'f' AND c.relname = ANY($1) AND p.relname = ANY($1) AND (c.relname = ANY($2) OR p.relname = ANY($2))
      ORDER BY 1, 2`, [cluster, pending])).rows;
  for (const f of fks) await run(`${f.table}: drop ${f.name} while distributing`, `ALTER TABLE ${ident(f.table)} DROP CONSTRAINT ${ident(f.name)}`);
  // Sign-in's lookup across tenants: a LANGUAGE sql function is inlined and planned on the coordinator with its
  // parameter still a parameter, which Citus cannot plan ("could not create distributed plan"); as plpgsql the
  // e-mail is a value when the query is planned. Same query, same owner (the system role), same grants.
  const login = (await client.query<{ lang: string }>(
    `SELECT l.lanname AS lang FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = to_regprocedure('skeldir_login_candidates(text)')`)).rows[0];
  if (login?.lang === 'sql') {
    await run('skeldir_login_candidates: plpgsql (Citus cannot plan a parameter of an inlined sql function)', `
      CREATE OR REPLACE FUNCTION skeldir_login_candidates(p_email text)
      RETURNS TABLE (tenant_id uuid, user_id uuid, password_hash text)
      LANGUAGE plpgsql STABLE SECURITY DEFINER
      SET search_path = public, pg_temp
      AS $fn$
      BEGIN
        RETURN QUERY SELECT u.tenant_id, u.id, u.password_hash FROM tenant_users u
         WHERE u.email = lower(p_email) AND u.password_hash IS NOT NULL AND u.disabled_at IS NULL
         ORDER BY u.tenant_id LIMIT 20;
      END $fn$`);
  }

  const changed: string[] = [];
  // In the order of REFERENCE_TABLES: tenants first, the others reference it.
  for (const table of replicated) {
    if (done.has(table)) continue;
    await run(`${table}: reference table`, `SELECT create_reference_table(${lit(table)})`);
    changed.push(table);
  }
  const ordered = await parentsFirst(client, distributed);
  const anchor = 'attribution_events';
  for (const table of [anchor, ...ordered.filter((t) => t !== anchor)]) {
    if (done.has(table)) continue;
    await run(`${table}: distributed by tenant_id`, `SELECT create_distributed_table(${lit(table)}, 'tenant_id'${table === anchor ? '' : `, colocate_with => ${lit(anchor)}`})`);
    changed.push(table);
  }
  for (const f of fks) {
    await run(`${f.table}: ${f.name} again`, `ALTER TABLE ${ident(f.table)} ADD CONSTRAINT ${ident(f.name)} ${f.def}`);
    // A statement of its own: Citus forwards a COMMENT as the whole query string, and a worker refuses two commands in one.
    if (f.comment !== null) await client.query(`COMMENT ON CONSTRAINT ${ident(f.name)} ON ${ident(f.table)} IS ${lit(f.comment)}`);
  }
  for (const t of REPLACED_TRIGGERS) {
    const has = async (name: string) => (await client.query(`SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2`, [`public.${t.table}`, name])).rows.length > 0;
    for (const old of t.previous) {
      if (!(await has(old.trigger))) continue;
      await run(`${t.table}: drop ${old.trigger} (replaced by ${t.replacement})`, `DROP TRIGGER ${ident(old.trigger)} ON ${ident(t.table)}`);
      await client.query(`DROP FUNCTION IF EXISTS ${old.fn}`);
    }
    if (!(await has(t.replacement))) {
      // One statement per query: Citus forwards some DDL to the workers as the whole query string.
      await run(`${t.table}: ${t.replacement} (statement trigger on each shard, reading the colocated shards)`, VERIFY_SHARD_FUNCTION_SQL);
      await client.query(VERIFY_SHARD_TRIGGER_SQL);
      // A statement of its own: Citus forwards a COMMENT as the whole query string (see the foreign keys above).
      await client.query(`COMMENT ON FUNCTION skeldir_allocations_verify_shard() IS ${lit(VERIFY_SHARD_COMMENT)}`);
    } else if (!(await shardFunctionCurrent(client))) {
      // Distributed by an earlier release (its function did not take the order's lock): the body is replaced, the trigger kept.
      await run(`${t.table}: ${t.replacement}'s function replaced (takes the order's advisory lock on the shard's node)`, VERIFY_SHARD_FUNCTION_SQL);
      await client.query(`COMMENT ON FUNCTION skeldir_allocations_verify_shard() IS ${lit(VERIFY_SHARD_COMMENT)}`);
    }
  }
  const groups = (await client.query<{ n: string }>(
    `SELECT count(DISTINCT colocationid) AS n FROM pg_dist_partition WHERE partmethod = 'h' AND logicalrelid::regclass::text = ANY($1)`, [distributed])).rows[0]!.n;
  if (Number(groups) !== 1) throw new Error(`distributed tables are in ${groups} colocation groups, not one`);
  return { plan, changed, workers, steps };
}

/**
 * Citus's replacement of trg_attribution_allocations_verify (revision 202611280318), which Citus
 * cannot run: the same UPDATE of the statement's new allocations from its transition table, on
 * each shard, against the colocated shards of attribution_events and revenue_ledger by their shard
 * names (get_shard_id_for_distribution_column + shard_name: every row of one shard's statement
 * hashes to the same shard index, so any one row's tenant names them). A lookup by the distributed
 * names from inside a shard is a distributed query planned on the worker; the row trigger that did
 * that per row (until 2026-12-08) was 80-90 % of the allocation INSERT: 12 rows in 19-35 ms of
 * trigger time against 1.2 ms without, on the shard; this one 1.5-3.5 ms per statement
 * (bench/results/2026-12-08-citus-allocation-trigger.txt). It first takes the order's advisory
 * lock SHARED (same key as revision 202611280318: hashtextextended(tenant_id || ':order:' || order_id, 0)),
 * sorted, in a statement of its own, so that the UPDATE after it reads the ledger in a fresh
 * snapshot: that lock is the one of the worker holding the tenant's shards, and the payment side
 * (src/ledger/apply.ts, verifyOrderAllocations) takes it EXCLUSIVE on the same node through a
 * statement routed to the tenant's shard of revenue_ledger.
 * Fired on the table itself (not a shard: not on Citus), it reads the tables by their own names.
 */
const VERIFY_SHARD_FUNCTION_SQL = `
  CREATE OR REPLACE FUNCTION skeldir_allocations_verify_shard() RETURNS trigger
  LANGUAGE plpgsql AS $fn$
  DECLARE t uuid; events text := 'attribution_events'; ledger text := 'revenue_ledger';
  BEGIN
    SELECT n.tenant_id INTO t FROM inserted n WHERE NOT n.verified LIMIT 1;
    IF t IS NULL THEN RETURN NULL; END IF;
    IF TG_TABLE_NAME <> 'attribution_allocations' THEN
      events := shard_name('attribution_events', get_shard_id_for_distribution_column('attribution_events', t));
      ledger := shard_name('revenue_ledger', get_shard_id_for_distribution_column('revenue_ledger', t));
    END IF;
    EXECUTE format(
      'SELECT count(pg_advisory_xact_lock_shared(hashtextextended(o.tenant_id::text || '':order:'' || o.order_id, 0)))
         FROM (SELECT DISTINCT e.tenant_id, e.order_id
                 FROM inserted n JOIN %s e ON e.id = n.event_id AND e.tenant_id = n.tenant_id
                WHERE NOT n.verified AND e.event_type = ''conversion'' AND e.order_id IS NOT NULL
                ORDER BY 1, 2) o',
      events);
    EXECUTE format(
      'UPDATE %s a
          SET verified = true, verification_source = v.verification_source, verification_timestamp = v.verification_timestamp
         FROM (SELECT DISTINCT ON (n.id) n.id, n.tenant_id, l.verification_source, l.verification_timestamp
                 FROM inserted n
                 JOIN %s e ON e.id = n.event_id AND e.tenant_id = n.tenant_id
                 JOIN %s l ON l.tenant_id = e.tenant_id AND l.order_id = e.order_id
                WHERE NOT n.verified AND e.event_type = ''conversion'' AND e.order_id IS NOT NULL AND l.state <> ''authorized''
                ORDER BY n.id, l.verification_timestamp, l.id) v
        WHERE a.tenant_id = v.tenant_id AND a.id = v.id',
      TG_RELID::regclass, events, ledger);
    RETURN NULL;
  END $fn$`;
const VERIFY_SHARD_TRIGGER_SQL = `
  CREATE TRIGGER trg_attribution_allocations_verify_shard AFTER INSERT ON attribution_allocations
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION skeldir_allocations_verify_shard()`;

const VERIFY_SHARD_COMMENT = "Citus only (skeldir citus distribute): skeldir_allocations_verify_inserted on each shard, reading the colocated shards of attribution_events and revenue_ledger (no distributed query per statement); takes each order's advisory lock (shared) on the shard's node first, as the payment side does (exclusive, by a statement routed to the tenant's shard).";

/** Whether the database's skeldir_allocations_verify_shard() has this release's body (an earlier distribute may have created an older one). */
async function shardFunctionCurrent(client: pg.ClientBase): Promise<boolean> {
  const body = VERIFY_SHARD_FUNCTION_SQL.slice(VERIFY_SHARD_FUNCTION_SQL.indexOf('$fn$') + 4, VERIFY_SHARD_FUNCTION_SQL.lastIndexOf('$fn$'));
  const r = await client.query(`SELECT 1 FROM pg_proc WHERE oid = to_regprocedure('public.skeldir_allocations_verify_shard()') AND prosrc = $1`, [body]);
  return r.rows.length > 0;
}

/** The one-server claim indexes (revision 202611280313) and their tenant-led replacements on Citus. */
export const CLAIM_INDEXES: ReadonlyArray<[string, string, string, string]> = [
  ['idx_events_claim_retry', 'idx_events_claim_retry_tenant', 'tenant_id, next_attempt_at', `processing_status = 'pending' AND next_attempt_at IS NOT NULL`],
  ['idx_events_claim_new', 'idx_events_claim_new_tenant', 'tenant_id, processed_at, created_at', `processing_status = 'pending' AND next_attempt_at IS NULL`],
];

function lit(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** Distributed tables ordered so that a table comes after every distributed table its foreign keys reference. */
async function parentsFirst(client: pg.ClientBase, tables: string[]): Promise<string[]> {
  const edges = (await client.query<{ child: string; parent: string }>(
    `SELECT c.relname AS child, p.relname AS parent FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
      WHERE k.contype = 'f' AND c.relname = ANY($1) AND p.relname = ANY($1) AND c.relname <> p.relname`, [tables])).rows;
  const out: string[] = [];
  const visit = (t: string, path: Set<string>) => {
    if (out.includes(t)) return;
    if (path.has(t)) throw new Error(`foreign key cycle through ${t}`);
    path.add(t);
    for (const e of edges.filter((x) => x.child === t)) visit(e.parent, path);
    path.delete(t);
    out.push(t);
  };
  for (const t of [...tables].sort()) visit(t, new Set());
  return out;
}
