import type { Queryable } from '../db/pool.js';

/**
 * What `skeldir citus distribute` does to each table of a migrated database (docs/scaling.md).
 * Every table of the `public` schema must be named here or carry `tenant_id`: a table added by a
 * later revision without either makes the plan fail (and src/citus/citus.test.ts with it), so no
 * table is ever left behind on the coordinator by accident.
 */

/** Copied whole to every node: global data, and tenant data looked up before any tenant is known. */
export const REFERENCE_TABLES: ReadonlyArray<{ table: string; why: string }> = [
  { table: 'tenants', why: 'every tenant row references it; authentication looks its key hash up before a tenant is known (idx_tenants_api_key_hash stays globally unique)' },
  { table: 'channel_taxonomy', why: 'global, small, read by every tenant' },
  { table: 'fx_rates', why: 'global market data, read by every tenant' },
  { table: 'tenant_api_keys_retired', why: 'authentication looks a key hash up before a tenant is known (idx_tenant_api_keys_retired_key_hash stays globally unique); small, written on key rotation only' },
  { table: 'webhook_endpoints', why: 'a webhook request names its endpoint by id before a tenant is known; small, written when endpoints change' },
];

/** Stay local to the coordinator: system data of the processes, never joined with tenant rows. */
export const LOCAL_TABLES: ReadonlyArray<{ table: string; why: string }> = [
  { table: 'login_failures', why: 'sign-in throttle, no tenant (sign-in happens before one is known)' },
  { table: 'worker_instances', why: 'worker liveness, no tenant' },
  { table: 'worker_throughput', why: 'worker counters, no tenant' },
  { table: 'skeldir_migration', why: 'migrator bookkeeping' },
  { table: 'skeldir_migration_lock', why: 'migrator bookkeeping' },
  { table: 'skeldir_migration_inflight', why: 'migrator bookkeeping' },
];

/**
 * Unique keys of distributed tables that lack tenant_id, each replaced by the same key with
 * tenant_id in front, and why that loses nothing. A unique key lacking tenant_id that is not
 * listed (nor a PRIMARY KEY (id) on a generated UUID) fails the plan.
 */
export const KEY_SWAPS: ReadonlyArray<{ table: string; name: string; replacement: string; columns: string; where?: string; check?: { name: string; expression: string }; why: string }> = [
  {
    table: 'attribution_events', name: 'idx_events_idempotency', replacement: 'idx_events_idempotency_tenant', columns: 'tenant_id, idempotency_key',
    check: { name: 'ck_attribution_events_idempotency_key_tenant', expression: `starts_with(idempotency_key::text, tenant_id::text || ':')` },
    why: 'every key starts with its own tenant id (ingestion writes <tenant_id>:…, the legacy backfill did too; ck_attribution_events_idempotency_key_tenant enforces it), so keys of two tenants never collide and (tenant_id, idempotency_key) unique is idempotency_key unique',
  },
  {
    table: 'revenue_ledger', name: 'idx_revenue_ledger_transaction_id', replacement: 'idx_revenue_ledger_tenant_transaction', columns: 'tenant_id, transaction_id',
    check: { name: 'ck_revenue_ledger_transaction_id_tenant', expression: `starts_with(transaction_id::text, tenant_id::text || ':') OR transaction_id::text = 'legacy_' || id::text` },
    why: "every transaction id starts with its own tenant id (<tenant_id>:<provider>:<id>) or is the legacy 'legacy_' || its own row id (ck_revenue_ledger_transaction_id_tenant enforces it), so ids of two tenants never collide",
  },
  {
    table: 'revenue_ledger_references', name: 'pk_revenue_ledger_references', replacement: 'idx_revenue_ledger_references_tenant_reference', columns: 'tenant_id, reference',
    check: { name: 'ck_revenue_ledger_references_tenant', expression: `starts_with(reference::text, tenant_id::text || ':')` },
    why: 'references are <tenant_id>:<provider>:<id> (ck_revenue_ledger_references_tenant enforces it)',
  },
  {
    table: 'dead_events', name: 'idx_dead_events_event_id', replacement: 'idx_dead_events_tenant_event', columns: 'tenant_id, event_id', where: 'event_id IS NOT NULL',
    why: 'event_id names an attribution event, which belongs to one tenant (the foreign key (tenant_id, event_id) says which)',
  },
];

/** Foreign keys Citus refuses, dropped, and what keeps the data right without them. */
export const DROPPED_FOREIGN_KEYS: ReadonlyArray<{ table: string; name: string; why: string }> = [
  { table: 'revenue_state_transitions', name: 'fk_revenue_state_transitions_ledger_id', why: 'replaced by fk_revenue_state_transitions_tenant_ledger (tenant_id, ledger_id) → revenue_ledger (tenant_id, id) ON DELETE CASCADE, which implies it' },
  { table: 'dead_events', name: 'fk_dead_events_event_id', why: "ON DELETE SET NULL (event_id) is not supported by Citus; a dead event whose event is deleted (erasure, retention) keeps the id, and every reader joins the event (a missing event reads as 'gone')" },
  { table: 'webhook_deliveries', name: 'fk_webhook_deliveries_endpoint_id', why: 'ON DELETE SET NULL (endpoint_id) is not supported by Citus (and webhook_endpoints is a reference table); a delivery of a deleted endpoint keeps its id, which no longer resolves' },
];

/**
 * Triggers Citus cannot run on shards, dropped before distributing and replaced once distributed
 * (distribute.ts); `previous`: replacements of earlier releases, dropped by a later distribute.
 */
export const REPLACED_TRIGGERS: ReadonlyArray<{ table: string; name: string; replacement: string; previous: ReadonlyArray<{ trigger: string; fn: string }>; why: string }> = [
  {
    table: 'attribution_allocations', name: 'trg_attribution_allocations_verify', replacement: 'trg_attribution_allocations_verify_shard',
    previous: [{ trigger: 'trg_attribution_allocations_verify_row', fn: 'skeldir_allocations_verify_row()' }],
    why: "a statement trigger joining its transition table with distributed tables is refused; the same statement trigger on each shard, joining the colocated shards of attribution_events and revenue_ledger, replaces it (taking the order's advisory lock on the shard's node, where the payment side takes it too)",
  },
];

export interface TablePlan {
  table: string;
  kind: 'reference' | 'distributed' | 'local';
  why: string;
}

export class CitusPlanError extends Error {
  readonly code = 'citus_plan_incomplete';
}

/** Classifies every table of `public`; throws CitusPlanError naming every table or key the plan does not cover. */
export async function planTables(db: Queryable): Promise<TablePlan[]> {
  const { rows } = await db.query<{ name: string; tenant: boolean }>(
    `SELECT c.relname AS name,
            EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped) AS tenant
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      ORDER BY c.relname`,
  );
  const plan: TablePlan[] = [];
  const problems: string[] = [];
  for (const r of rows) {
    const ref = REFERENCE_TABLES.find((t) => t.table === r.name);
    const local = LOCAL_TABLES.find((t) => t.table === r.name);
    if (ref) plan.push({ table: r.name, kind: 'reference', why: ref.why });
    else if (local) plan.push({ table: r.name, kind: 'local', why: local.why });
    else if (r.tenant) plan.push({ table: r.name, kind: 'distributed', why: 'tenant data: distributed by tenant_id, colocated with every other tenant table' });
    else problems.push(`table ${r.name} has no tenant_id and is neither a reference nor a local table in src/citus/plan.ts`);
  }
  const distributed = new Set(plan.filter((p) => p.kind === 'distributed').map((p) => p.table));

  // Unique keys of distributed tables must contain tenant_id (or be swapped by KEY_SWAPS / a PK (id) on a UUID).
  const uniques = (await db.query<{ table: string; name: string; cols: string[]; primary: boolean; uuid_id: boolean }>(
    `SELECT t.relname AS table, i.relname AS name, x.indisprimary AS primary,
            ARRAY(SELECT a.attname::text FROM unnest(x.indkey) k JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k) AS cols,
            EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                     WHERE a.attrelid = t.oid AND a.attname = 'id' AND pg_get_expr(d.adbin, d.adrelid) = 'gen_random_uuid()') AS uuid_id
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = 'public' AND x.indisunique ORDER BY 1, 2`,
  )).rows;
  for (const u of uniques) {
    if (!distributed.has(u.table) || u.cols.includes('tenant_id')) continue;
    const swap = KEY_SWAPS.find((s) => s.table === u.table && s.name === u.name);
    const pkOnUuid = u.primary && u.cols.length === 1 && u.cols[0] === 'id' && u.uuid_id;
    if (!swap && !pkOnUuid) problems.push(`unique key ${u.name} (${u.cols.join(', ')}) of ${u.table} lacks tenant_id and has no replacement in src/citus/plan.ts`);
  }

  // Foreign keys between distributed tables must contain tenant_id on both sides; SET NULL column lists are refused.
  const fks = (await db.query<{ table: string; name: string; ref: string; cols: string[]; def: string }>(
    `SELECT t.relname AS table, k.conname AS name, r.relname AS ref, pg_get_constraintdef(k.oid) AS def,
            ARRAY(SELECT a.attname::text FROM unnest(k.conkey) c JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = c) AS cols
       FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = 'public' AND k.contype = 'f' ORDER BY 1, 2`,
  )).rows;
  for (const f of fks) {
    const dropped = DROPPED_FOREIGN_KEYS.some((d) => d.table === f.table && d.name === f.name);
    if (dropped) continue;
    const from = plan.find((p) => p.table === f.table)?.kind;
    const to = plan.find((p) => p.table === f.ref)?.kind;
    if (from === 'distributed' && to === 'distributed' && !f.cols.includes('tenant_id')) problems.push(`foreign key ${f.name} of ${f.table} lacks tenant_id`);
    if ((from === 'reference' || from === 'local') && to === 'distributed') problems.push(`foreign key ${f.name} from ${from} table ${f.table} to distributed ${f.ref} is refused by Citus`);
    if (/SET (NULL|DEFAULT) \(/.test(f.def) && from !== 'local') problems.push(`foreign key ${f.name} of ${f.table} uses a column list in ON DELETE SET NULL/DEFAULT, which Citus refuses`);
  }

  // Policies with subqueries cannot be distributed.
  const policies = (await db.query<{ table: string; name: string }>(
    `SELECT tablename AS table, policyname AS name FROM pg_policies
      WHERE schemaname = 'public' AND (coalesce(qual, '') ~* '\\mselect\\M' OR coalesce(with_check, '') ~* '\\mselect\\M')`,
  )).rows;
  for (const p of policies) if (plan.find((t) => t.table === p.table)?.kind !== 'local') problems.push(`policy ${p.name} of ${p.table} has a subquery, which Citus refuses`);

  // Statement triggers with transition tables on distributed tables.
  const triggers = (await db.query<{ table: string; name: string }>(
    `SELECT c.relname AS table, g.tgname AS name FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND NOT g.tgisinternal AND (g.tgnewtable IS NOT NULL OR g.tgoldtable IS NOT NULL)`,
  )).rows;
  for (const t of triggers) {
    if (!distributed.has(t.table) && plan.find((p) => p.table === t.table)?.kind !== 'reference') continue;
    if (!REPLACED_TRIGGERS.some((r) => r.table === t.table && (r.name === t.name || r.replacement === t.name))) problems.push(`trigger ${t.name} of ${t.table} uses a transition table, which Citus cannot run on shards`);
  }

  if (problems.length) throw new CitusPlanError(`the Citus plan does not cover this schema:\n- ${problems.join('\n- ')}`);
  return plan;
}
