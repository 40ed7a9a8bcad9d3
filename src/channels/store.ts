import type { Queryable } from '../db/pool.js';
import { DEFAULT_CHANNEL_PLATFORM, type Condition, type Rule } from './classify.js';

/**
 * The SQL of tenant channels and channel rules, one function per statement. Every statement
 * runs in a transaction with the tenant's context set and names the tenant explicitly
 * (`tenant_id = $1`: row-level security isolates, the predicate routes on Citus).
 */

export interface ChannelRow {
  code: string;
  display_name: string;
  family: string;
  is_paid: boolean;
  ad_platform: string | null;
  is_active: boolean;
  is_default: boolean;
  created_at: Date;
  updated_at: Date;
}

export interface RuleRow {
  id: string;
  position: number;
  name: string;
  channel_code: string;
  conditions: Condition[];
  is_active: boolean;
  created_at: Date;
  updated_at: Date;
}

const CHANNEL_COLUMNS = 'code, display_name, family, is_paid, ad_platform, is_active, is_default, created_at, updated_at';
const RULE_COLUMNS = 'id, position, name, channel_code, conditions, is_active, created_at, updated_at';

/**
 * Gives a tenant the default channels (the rows of channel_taxonomy) it does not have yet; run in
 * the transaction that creates the tenant (the revision that introduced tenant_channels seeded
 * the tenants that existed then). Idempotent.
 */
export async function seedDefaultChannels(client: Queryable, tenantId: string): Promise<number> {
  const platforms = Object.entries(DEFAULT_CHANNEL_PLATFORM);
  const r = await client.query(
    `INSERT INTO tenant_channels (tenant_id, code, display_name, family, is_paid, ad_platform, is_active, is_default)
     SELECT $1, ct.code, ct.display_name, ct.family, ct.is_paid, p.platform, ct.is_active, true
       FROM channel_taxonomy ct
       LEFT JOIN unnest($2::text[], $3::text[]) AS p(code, platform) ON p.code = ct.code
     ON CONFLICT (tenant_id, code) DO NOTHING`,
    [tenantId, platforms.map(([c]) => c), platforms.map(([, p]) => p)],
  );
  return r.rowCount ?? 0;
}

export async function listChannels(client: Queryable, tenantId: string): Promise<ChannelRow[]> {
  const r = await client.query<ChannelRow>(`SELECT ${CHANNEL_COLUMNS} FROM tenant_channels WHERE tenant_id = $1 ORDER BY code`, [tenantId]);
  return r.rows;
}

export async function getChannel(client: Queryable, tenantId: string, code: string): Promise<ChannelRow | undefined> {
  const r = await client.query<ChannelRow>(`SELECT ${CHANNEL_COLUMNS} FROM tenant_channels WHERE tenant_id = $1 AND code = $2`, [tenantId, code]);
  return r.rows[0];
}

export interface ChannelInput {
  code: string;
  display_name: string;
  family: string;
  is_paid: boolean;
  ad_platform: string | null;
  is_active: boolean;
}

/** Inserts a channel; undefined when the code exists already. */
export async function insertChannel(client: Queryable, tenantId: string, c: ChannelInput): Promise<ChannelRow | undefined> {
  const r = await client.query<ChannelRow>(
    `INSERT INTO tenant_channels (tenant_id, code, display_name, family, is_paid, ad_platform, is_active)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (tenant_id, code) DO NOTHING
     RETURNING ${CHANNEL_COLUMNS}`,
    [tenantId, c.code, c.display_name, c.family, c.is_paid, c.ad_platform, c.is_active],
  );
  return r.rows[0];
}

export async function updateChannel(client: Queryable, tenantId: string, code: string, c: Omit<ChannelInput, 'code'>): Promise<ChannelRow | undefined> {
  const r = await client.query<ChannelRow>(
    `UPDATE tenant_channels SET display_name = $3, family = $4, is_paid = $5, ad_platform = $6, is_active = $7
      WHERE tenant_id = $1 AND code = $2
     RETURNING ${CHANNEL_COLUMNS}`,
    [tenantId, code, c.display_name, c.family, c.is_paid, c.ad_platform, c.is_active],
  );
  return r.rows[0];
}

/**
 * Deletes one of the tenant's own channels (never a default). A channel that rules, allocations or
 * spend still name is protected by their foreign keys (23503, answered as channel_in_use).
 */
export async function deleteChannel(client: Queryable, tenantId: string, code: string): Promise<boolean> {
  const r = await client.query(`DELETE FROM tenant_channels WHERE tenant_id = $1 AND code = $2 AND NOT is_default`, [tenantId, code]);
  return (r.rowCount ?? 0) > 0;
}

export async function listRules(client: Queryable, tenantId: string): Promise<RuleRow[]> {
  const r = await client.query<RuleRow>(`SELECT ${RULE_COLUMNS} FROM channel_rules WHERE tenant_id = $1 ORDER BY position, id`, [tenantId]);
  return r.rows;
}

export async function getRule(client: Queryable, tenantId: string, id: string): Promise<RuleRow | undefined> {
  const r = await client.query<RuleRow>(`SELECT ${RULE_COLUMNS} FROM channel_rules WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
  return r.rows[0];
}

/** Locks the tenant's rules (in position order) so two writers of its rule order serialise. */
export async function lockRules(client: Queryable, tenantId: string): Promise<void> {
  await client.query(`SELECT id FROM channel_rules WHERE tenant_id = $1 ORDER BY position, id FOR UPDATE`, [tenantId]);
}

export interface RuleInput {
  name: string;
  channel_code: string;
  conditions: readonly Condition[];
  is_active: boolean;
}

/** Inserts a rule at the end of the order (position = last + 10). */
export async function insertRule(client: Queryable, tenantId: string, rule: RuleInput): Promise<RuleRow> {
  const r = await client.query<RuleRow>(
    `INSERT INTO channel_rules (tenant_id, position, name, channel_code, conditions, is_active)
     SELECT $1, coalesce(max(position), 0) + 10, $2, $3, $4::jsonb, $5 FROM channel_rules WHERE tenant_id = $1
     RETURNING ${RULE_COLUMNS}`,
    [tenantId, rule.name, rule.channel_code, JSON.stringify(rule.conditions), rule.is_active],
  );
  return r.rows[0]!;
}

export async function updateRule(client: Queryable, tenantId: string, id: string, rule: RuleInput): Promise<RuleRow | undefined> {
  const r = await client.query<RuleRow>(
    `UPDATE channel_rules SET name = $3, channel_code = $4, conditions = $5::jsonb, is_active = $6
      WHERE tenant_id = $1 AND id = $2
     RETURNING ${RULE_COLUMNS}`,
    [tenantId, id, rule.name, rule.channel_code, JSON.stringify(rule.conditions), rule.is_active],
  );
  return r.rows[0];
}

export async function deleteRule(client: Queryable, tenantId: string, id: string): Promise<boolean> {
  const r = await client.query(`DELETE FROM channel_rules WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
  return (r.rowCount ?? 0) > 0;
}

/**
 * Sets the order of every rule of the tenant: `ids` in their new order get positions 10, 20, …
 * Positions are unique, so the rules pass through negative positions first (two statements,
 * no deferred constraint).
 */
export async function reorderRules(client: Queryable, tenantId: string, ids: readonly string[]): Promise<void> {
  await client.query(`UPDATE channel_rules SET position = -position - 1 WHERE tenant_id = $1 AND position >= 0`, [tenantId]);
  await client.query(
    `UPDATE channel_rules c SET position = o.n * 10
       FROM unnest($2::uuid[]) WITH ORDINALITY AS o(id, n)
      WHERE c.tenant_id = $1 AND c.id = o.id`,
    [tenantId, ids],
  );
}

/** A stored rule as the classifier takes it. */
export function toRule(row: RuleRow): Rule {
  return { id: row.id, name: row.name, channel: row.channel_code, conditions: row.conditions, position: row.position, active: row.is_active };
}
