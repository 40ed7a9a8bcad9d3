import type { Command } from 'commander';
import type pg from 'pg';
import { runCommand, type CommandContext } from '../cli/run.js';
import { existingTenant } from '../cli/tenant-flag.js';
import { instantsReplacer } from '../db/timestamps.js';
import { identify, showIdentity, unlink } from './graph.js';

const print = (value: unknown) => process.stdout.write(JSON.stringify(value, instantsReplacer, 2) + '\n');

/** As the application role in the tenant's context, like the API: row-level security confines every statement. */
async function inTenant<T>(ctx: CommandContext, tenant: string, fn: (pool: pg.Pool, tenantId: string) => Promise<T>): Promise<T> {
  const db = await ctx.database();
  const pool = db.appPool({ max: 1, applicationName: 'skeldir-identity' });
  try {
    return await fn(pool, await existingTenant(pool, tenant));
  } finally {
    await pool.end();
  }
}

/** `skeldir identity …`: the identity graph (docs/collect.md, "Identity"), the same operations as the API. */
export function registerIdentity(program: Command): void {
  const identity = program.command('identity').description("the identity graph: which browsers (anonymous ids) are which person (user id)");

  identity
    .command('link')
    .description("link a browser's anonymous id to a person and re-attribute the conversions that changes; prints the outcome (JSON)")
    .argument('<anonymous_id>', "the browser's anonymous id")
    .argument('<user_id>', 'the user_id of the person')
    .requiredOption('--tenant <id>', 'the tenant (see `tenant list`)')
    .option('--at <timestamp>', 'when the identify happened (ISO 8601, default now)')
    .action((anonymousId: string, userId: string, o: { tenant: string; at?: string }) =>
      runCommand(async (ctx) => {
        print(await inTenant(ctx, o.tenant, (pool, t) => identify(pool, t, { anonymousId, userId, ...(o.at !== undefined ? { at: o.at } : {}) }, 'cli')));
      }),
    );

  identity
    .command('show')
    .description("a person's links and the audit trail of every link and unlink (JSON)")
    .argument('<user_id>', 'the user_id of the person')
    .requiredOption('--tenant <id>', 'the tenant (see `tenant list`)')
    .action((userId: string, o: { tenant: string }) =>
      runCommand(async (ctx) => {
        print(await inTenant(ctx, o.tenant, (pool, t) => showIdentity(pool, t, userId)));
      }),
    );

  identity
    .command('unlink')
    .description('unlink one browser (or, without anonymous_id, every browser) from a person and re-attribute the conversions that changes')
    .argument('<user_id>', 'the user_id of the person')
    .argument('[anonymous_id]', 'the browser to unlink (default: all of them)')
    .requiredOption('--tenant <id>', 'the tenant (see `tenant list`)')
    .action((userId: string, anonymousId: string | undefined, o: { tenant: string }) =>
      runCommand(async (ctx) => {
        print(await inTenant(ctx, o.tenant, (pool, t) => unlink(pool, t, { userId, anonymousId: anonymousId ?? null }, 'cli')));
      }),
    );
}
