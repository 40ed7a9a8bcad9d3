import type { Command } from 'commander';
import type pg from 'pg';
import { runCommand, type CommandContext } from '../cli/run.js';
import { reportingTimeZone } from '../money/reporting.js';
import { createTenant, DEFAULT_GRACE_MS, listTenants, parseGrace, revokeApiKeys, rotateApiKey, type TenantSummary } from './tenants.js';
import { instantsReplacer } from '../db/timestamps.js';

/** Runs `fn` with a one-connection owner pool (tenant administration is the owner's job). */
async function asOwner<T>(ctx: CommandContext, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const db = await ctx.database();
  const pool = db.ownerPool({ max: 1 });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

const print = (value: unknown) => process.stdout.write(JSON.stringify(value, instantsReplacer) + '\n');

export function registerTenant(program: Command): void {
  const tenant = program.command('tenant').description('manage tenants and their API keys');

  tenant
    .command('create')
    .description('create a tenant; prints {"tenant_id","api_key"} (the key is shown only here)')
    .requiredOption('--name <name>', 'display name of the tenant')
    .requiredOption('--email <email>', 'address for operational notifications')
    .action((options: { name: string; email: string }) =>
      runCommand(async (ctx) => {
        print(await asOwner(ctx, (pool) => createTenant(pool, options)));
      }),
    );

  tenant
    .command('time-zone')
    .description("show, or with --set change, the IANA time zone the tenant's days are counted in (spend days, performance reports); default UTC")
    .argument('<tenant_id>', 'tenant id')
    .option('--set <zone>', 'e.g. Europe/Berlin')
    .action((id: string, o: { set?: string }) =>
      runCommand(async (ctx) => {
        print(await asOwner(ctx, (pool) => reportingTimeZone(pool, id, o.set)));
      }),
    );

  tenant
    .command('rotate-key')
    .description(
      'issue a new API key; prints {"tenant_id","api_key","previous_key_valid_until"} (the key is shown only here). ' +
        'The previous key keeps working for the grace period, then stops.',
    )
    .argument('<id>', 'tenant id')
    .option('--grace <duration>', 'how long the previous key keeps working: 0, 30m, 24h, 7d … (at most 30d)', `${DEFAULT_GRACE_MS / 3600_000}h`)
    .action((id: string, options: { grace: string }) =>
      runCommand(async (ctx) => {
        const grace = parseGrace(options.grace);
        print(await asOwner(ctx, (pool) => rotateApiKey(pool, id, grace)));
      }),
    );

  tenant
    .command('revoke-key')
    .description(
      'revoke a tenant\'s API keys at once: the current key and rotated-out keys still in their grace period ' +
        '(the tenant has no key until rotate-key issues one); prints {"tenant_id","revoked","current_key_revoked"}',
    )
    .argument('<id>', 'tenant id')
    .option('--previous-only', 'revoke only rotated-out keys still in their grace period; keep the current key')
    .action((id: string, options: { previousOnly?: boolean }) =>
      runCommand(async (ctx) => {
        print(await asOwner(ctx, (pool) => revokeApiKeys(pool, id, { previousOnly: options.previousOnly === true })));
      }),
    );

  tenant
    .command('list')
    .description('list tenants with the state of their keys (never the keys)')
    .option('--json', 'one JSON array instead of a table')
    .action((options: { json?: boolean }) =>
      runCommand(async (ctx) => {
        const tenants = await asOwner(ctx, (pool) => listTenants(pool));
        if (options.json) print(tenants);
        else process.stdout.write(table(tenants));
      }),
    );
}

function table(tenants: TenantSummary[]): string {
  const header = ['TENANT ID', 'NAME', 'NOTIFICATION EMAIL', 'CREATED', 'KEY', 'KEYS IN GRACE (UNTIL)'];
  const rows = tenants.map((t) => [
    t.tenant_id,
    t.name,
    t.notification_email,
    t.created_at,
    t.current_key,
    t.keys_in_grace.length ? t.keys_in_grace.join(' ') : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ') + '\n';
  return line(header) + rows.map(line).join('') + (tenants.length === 0 ? '(no tenants)\n' : '');
}
