import type { Queryable } from '../db/pool.js';
import { classify, compileRule, compileRuleSet, DEFAULT_RULES, normaliseTouch, type Classification, type Condition, type Rule, type RuleSet, type Touch } from './classify.js';
import { loadRuleSet } from './cache.js';
import { ChannelError } from './errors.js';
import { checkConditions, type ChannelCreate, type ChannelPatch, type RuleInputBody } from './schema.js';
import {
  deleteChannel,
  deleteRule,
  getChannel,
  getRule,
  insertChannel,
  insertRule,
  listChannels,
  listRules,
  lockRules,
  reorderRules,
  toRule,
  updateChannel,
  updateRule,
  type ChannelRow,
  type RuleRow,
} from './store.js';

/**
 * What the channel routes and the CLI do, in the caller's tenant transaction: checks that need the
 * database (the channel a rule names exists, a code is free, the order lists every rule), then
 * one statement each. A change to channels or rules is picked up by ingestion within the rule
 * cache's TTL (src/channels/cache.ts); past events keep their channel until re-classified.
 */

export async function createChannel(client: Queryable, tenantId: string, input: ChannelCreate): Promise<ChannelRow> {
  const row = await insertChannel(client, tenantId, {
    code: input.code,
    display_name: input.display_name,
    family: input.family ?? 'other',
    is_paid: input.is_paid ?? false,
    ad_platform: input.ad_platform ?? null,
    is_active: input.is_active ?? true,
  });
  if (!row) throw new ChannelError('channel_exists', `the tenant has a channel ${input.code} already`, { field: 'body/code' });
  return row;
}

export async function patchChannel(client: Queryable, tenantId: string, code: string, patch: ChannelPatch): Promise<ChannelRow> {
  const current = await getChannel(client, tenantId, code);
  if (!current) throw new ChannelError('channel_not_found', `no channel ${code}`, { field: 'params/code' });
  if (code === 'unknown' && patch.is_active === false) {
    throw new ChannelError('channel_invalid', 'unknown is the answer of last resort and cannot be deactivated', { field: 'body/is_active' });
  }
  const row = await updateChannel(client, tenantId, code, {
    display_name: patch.display_name ?? current.display_name,
    family: patch.family ?? current.family,
    is_paid: patch.is_paid ?? current.is_paid,
    ad_platform: patch.ad_platform !== undefined ? patch.ad_platform : current.ad_platform,
    is_active: patch.is_active ?? current.is_active,
  });
  return row!;
}

export async function removeChannel(client: Queryable, tenantId: string, code: string): Promise<void> {
  const current = await getChannel(client, tenantId, code);
  if (!current) throw new ChannelError('channel_not_found', `no channel ${code}`, { field: 'params/code' });
  if (current.is_default) throw new ChannelError('channel_default', `${code} is a default channel: deactivate it instead (is_active false)`, { field: 'params/code' });
  await client.query('SAVEPOINT delete_channel');
  try {
    await deleteChannel(client, tenantId, code);
    await client.query('RELEASE SAVEPOINT delete_channel');
  } catch (error) {
    await client.query('ROLLBACK TO SAVEPOINT delete_channel');
    if ((error as { code?: string }).code === '23503') {
      // "… violates foreign key constraint "fk_…" on table "<referencing table>"" (on Citus the shard's
      // name, "<table>_<shard id>": the suffix is dropped).
      const table = /constraint "[^"]+" on table "([a-z_]+?)(?:_\d+)?"/.exec((error as Error).message)?.[1] ?? 'another table';
      throw new ChannelError('channel_in_use', `channel ${code} is still named by rows of ${table}: deactivate it instead (is_active false)`, {
        field: 'params/code',
        details: { referenced_by: table },
      });
    }
    throw error;
  }
}

/** A rule body checked against the tenant's channels; `pointer` locates it in the request. */
async function checkRule(client: Queryable, tenantId: string, input: RuleInputBody, pointer: string): Promise<{ name: string; channel_code: string; conditions: Condition[]; is_active: boolean }> {
  const conditions = checkConditions(input.conditions as Condition[], `${pointer}/conditions`);
  if (!(await getChannel(client, tenantId, input.channel))) {
    throw new ChannelError('channel_rule_invalid', `the tenant has no channel ${input.channel}; create it first (POST /api/v1/channels)`, { field: `${pointer}/channel` });
  }
  return { name: input.name, channel_code: input.channel, conditions, is_active: input.is_active ?? true };
}

export async function createRule(client: Queryable, tenantId: string, input: RuleInputBody): Promise<RuleRow> {
  const rule = await checkRule(client, tenantId, input, 'body');
  await lockRules(client, tenantId);
  return insertRule(client, tenantId, rule);
}

export async function replaceRule(client: Queryable, tenantId: string, id: string, input: RuleInputBody): Promise<RuleRow> {
  const rule = await checkRule(client, tenantId, input, 'body');
  const row = await updateRule(client, tenantId, id, rule);
  if (!row) throw new ChannelError('channel_rule_not_found', `no channel rule ${id}`, { field: 'params/id' });
  return row;
}

export async function removeRule(client: Queryable, tenantId: string, id: string): Promise<void> {
  if (!(await deleteRule(client, tenantId, id))) throw new ChannelError('channel_rule_not_found', `no channel rule ${id}`, { field: 'params/id' });
}

/** Puts the tenant's rules in the order of `ids`, which must name each of them exactly once. */
export async function orderRules(client: Queryable, tenantId: string, ids: readonly string[]): Promise<RuleRow[]> {
  await lockRules(client, tenantId);
  const current = await listRules(client, tenantId);
  const given = ids.map((x) => x.toLowerCase());
  const have = new Set(current.map((r) => r.id));
  const duplicate = given.find((id, i) => given.indexOf(id) !== i);
  if (duplicate) throw new ChannelError('channel_rule_order_invalid', `rule ${duplicate} is listed twice`, { field: 'body/ids' });
  const unknown = given.find((id) => !have.has(id));
  if (unknown) throw new ChannelError('channel_rule_order_invalid', `no channel rule ${unknown}`, { field: 'body/ids' });
  if (given.length !== current.length) {
    const missing = current.find((r) => !given.includes(r.id))!;
    throw new ChannelError('channel_rule_order_invalid', `the order must list every rule; ${missing.id} (${missing.name}) is missing`, { field: 'body/ids' });
  }
  await reorderRules(client, tenantId, given);
  return listRules(client, tenantId);
}

export interface TestResult extends Classification {
  /** Every rule (the tenant's, then the defaults) whose conditions match, in evaluation order: the first active one decided. */
  readonly matching_rules: { kind: 'rule' | 'default'; id: string; name: string; channel: string; active: boolean }[];
}

/**
 * Which rule a sample touch matches: the classification with the stored rules (or with `rules`,
 * tried without being saved), and every rule whose conditions match.
 */
export async function testTouch(client: Queryable, tenantId: string, touch: Touch, rules?: readonly RuleInputBody[]): Promise<TestResult> {
  let set: RuleSet = await loadRuleSet(client, tenantId);
  if (rules) {
    const tried: Rule[] = [];
    for (const [i, r] of rules.entries()) {
      const checked = await checkRule(client, tenantId, r, `body/rules/${i}`);
      tried.push({ id: `proposed:${i}`, name: checked.name, channel: checked.channel_code, conditions: checked.conditions, position: i, active: checked.is_active });
    }
    set = compileRuleSet([...set.channels.values()], tried);
  }
  const result = classify(touch, set);
  const t = normaliseTouch(touch);
  const matching: TestResult['matching_rules'] = [];
  for (const c of set.rules) if (c.test(t)) matching.push({ kind: 'rule', id: c.rule.id, name: c.rule.name, channel: c.rule.channel, active: c.rule.active !== false });
  for (const rule of DEFAULT_RULES) if (compileRule(rule).test(t)) matching.push({ kind: 'default', id: rule.id, name: rule.name, channel: rule.channel, active: true });
  return { ...result, matching_rules: matching };
}

export { listChannels, listRules, getRule, toRule };
