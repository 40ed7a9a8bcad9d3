import type { Command } from 'commander';
import type pg from 'pg';
import { runCommand, type CommandContext } from '../cli/run.js';
import { stderrProgress } from '../cli/progress.js';
import { existingTenant } from '../cli/tenant-flag.js';
import { withTenant } from '../db/tenant-context.js';
import { isAdPlatform, type Touch } from './classify.js';
import { ChannelError } from './errors.js';
import { countEvents, reclassifyAll } from './reclassify.js';
import { createChannel, createRule, listChannels, listRules, testTouch } from './service.js';
import type { RuleInputBody } from './schema.js';
import { instantsReplacer } from '../db/timestamps.js';

const print = (value: unknown) => process.stdout.write(JSON.stringify(value, instantsReplacer, 2) + '\n');

/** The application-role pool for a tenant that exists (`--tenant` checked by src/cli/tenant-flag.ts: exit 2 otherwise). */
export async function tenantPool(ctx: CommandContext, tenant: string, applicationName: string): Promise<pg.Pool> {
  const db = await ctx.database();
  const pool = db.appPool({ max: 2, applicationName });
  try {
    await existingTenant(pool, tenant);
    return pool;
  } catch (error) {
    await pool.end();
    throw error;
  }
}

function json<T>(flag: string, text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ChannelError('channel_rule_invalid', `${flag} must be JSON, got ${JSON.stringify(text.slice(0, 60))}`, { field: flag });
  }
}

function instant(flag: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(d.getTime())) throw new ChannelError('reclassify_invalid', `${flag} must be a date (YYYY-MM-DD) or an ISO 8601 timestamp`, { field: flag });
  return d;
}

/** `skeldir channels …`: a tenant's channels and rules, testing a touch, re-classifying past events. */
export function registerChannels(program: Command): void {
  const channels = program.command('channels').description("a tenant's channels and channel rules (docs/channels.md)");

  const withPool = (tenant: string, fn: (pool: pg.Pool) => Promise<void>) =>
    runCommand(async (ctx) => {
      const pool = await tenantPool(ctx, tenant, 'skeldir-channels');
      try {
        await fn(pool);
      } finally {
        await pool.end();
      }
    });

  channels
    .command('list')
    .description("the tenant's channels and rules, and the built-in defaults' order")
    .requiredOption('--tenant <id>', 'tenant id')
    .action((o: { tenant: string }) =>
      withPool(o.tenant, async (pool) => {
        const [list, rules] = await withTenant(pool, o.tenant, async (c) => [await listChannels(c, o.tenant), await listRules(c, o.tenant)] as const);
        print({ channels: list, rules });
      }),
    );

  channels
    .command('add')
    .description('add a channel')
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption('--code <code>', 'lower snake case, e.g. microsoft_search_paid')
    .requiredOption('--name <name>', 'display name')
    .option('--family <family>', 'grouping, e.g. paid_search (default other)')
    .option('--paid', 'bought media')
    .option('--platform <platform>', 'ad platform its spend comes from: google_ads, meta_ads, tiktok_ads, microsoft_ads, linkedin_ads, other')
    .action((o: { tenant: string; code: string; name: string; family?: string; paid?: boolean; platform?: string }) =>
      withPool(o.tenant, async (pool) => {
        if (!/^[a-z][a-z0-9_]{0,99}$/.test(o.code)) throw new ChannelError('channel_invalid', '--code must be lower snake case (a-z, 0-9, _), starting with a letter, at most 100 characters', { field: '--code' });
        if (o.family !== undefined && !/^[a-z][a-z0-9_]{0,49}$/.test(o.family)) throw new ChannelError('channel_invalid', '--family must be lower snake case', { field: '--family' });
        if (o.platform !== undefined && !isAdPlatform(o.platform)) throw new ChannelError('channel_invalid', `--platform ${JSON.stringify(o.platform)} is not an ad platform`, { field: '--platform' });
        if (o.name.trim() === '' || o.name.length > 255) throw new ChannelError('channel_invalid', '--name must be 1-255 characters', { field: '--name' });
        const row = await withTenant(pool, o.tenant, (c) =>
          createChannel(c, o.tenant, { code: o.code, display_name: o.name.trim(), ...(o.family ? { family: o.family } : {}), is_paid: o.paid ?? false, ad_platform: (o.platform as never) ?? null }),
        );
        print(row);
      }),
    );

  channels
    .command('add-rule')
    .description('add a rule at the end of the order: --conditions is a JSON array of {field, op, value}')
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption('--name <name>', 'rule name')
    .requiredOption('--channel <code>', 'the channel a matching touch gets')
    .requiredOption('--conditions <json>', 'e.g. [{"field":"click_id","op":"in","value":["msclkid"]}]')
    .action((o: { tenant: string; name: string; channel: string; conditions: string }) =>
      withPool(o.tenant, async (pool) => {
        const conditions = json<RuleInputBody['conditions']>('--conditions', o.conditions);
        if (!Array.isArray(conditions) || conditions.length === 0 || conditions.length > 20) {
          throw new ChannelError('channel_rule_invalid', '--conditions must be a JSON array of 1-20 conditions', { field: '--conditions' });
        }
        const row = await withTenant(pool, o.tenant, (c) => createRule(c, o.tenant, { name: o.name, channel: o.channel, conditions }));
        print(row);
      }),
    );

  channels
    .command('test')
    .description('which channel a touch gets and which rule decided: --touch is JSON, e.g. {"landing_url":"https://shop.example/?gclid=x"}')
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption('--touch <json>', 'the touch (channel, utm_*, campaign_id, referrer, landing_url, click ids)')
    .action((o: { tenant: string; touch: string }) =>
      withPool(o.tenant, async (pool) => {
        const touch = json<Touch>('--touch', o.touch);
        if (touch === null || typeof touch !== 'object' || Array.isArray(touch)) throw new ChannelError('channel_rule_invalid', '--touch must be a JSON object', { field: '--touch' });
        print(await withTenant(pool, o.tenant, (c) => testTouch(c, o.tenant, touch)));
      }),
    );

  channels
    .command('reclassify')
    .description("re-classify the tenant's past events with its current rules, in batches (progress on stderr, totals on stdout); the rule-model allocations of the conversions they are on are recomputed")
    .requiredOption('--tenant <id>', 'tenant id')
    .option('--from <date>', 'events from this time (YYYY-MM-DD UTC or ISO 8601)')
    .option('--to <date>', 'events before this time')
    .option('--batch <n>', 'events per transaction (1-5000, default 1000)')
    .option('--dry-run', 'count what would change, change nothing')
    .action((o: { tenant: string; from?: string; to?: string; batch?: string; dryRun?: boolean }) =>
      withPool(o.tenant, async (pool) => {
        const from = instant('--from', o.from);
        const to = instant('--to', o.to);
        if (o.batch !== undefined && !/^\d+$/.test(o.batch)) throw new ChannelError('reclassify_invalid', '--batch must be a whole number', { field: '--batch' });
        const options = { ...(from ? { from } : {}), ...(to ? { to } : {}), ...(o.batch ? { limit: Number(o.batch) } : {}), dryRun: o.dryRun ?? false };
        const total = await withTenant(pool, o.tenant, (c) => countEvents(c, o.tenant, options));
        const bar = stderrProgress().start(o.dryRun ? 'events examined (dry run)' : 'events re-classified', total);
        try {
          const result = await reclassifyAll(pool, o.tenant, options, (b) => bar.tick(b.examined));
          bar.stop();
          print({ ...result, dry_run: options.dryRun, population_models: 'markov, shapley and bayesian allocations are not recomputed: run skeldir attribution run' });
        } catch (error) {
          bar.stop();
          throw error;
        }
      }),
    );
}
