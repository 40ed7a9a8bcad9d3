import type { Command } from 'commander';
import { runCommand, type CommandContext } from '../cli/run.js';
import type pg from 'pg';
import { validateTenantId } from '../tenants/tenants.js';
import { ROLES } from './roles.js';
import { inviteUser, listUsers } from './users.js';
import { instantsReplacer } from '../db/timestamps.js';

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

export function registerUser(program: Command): void {
  const user = program.command('user').description("manage a tenant's web app users (there is no mail server: invitations are links you pass on)");

  user
    .command('invite')
    .description(
      'invite a user; prints {"user","invitation_url","expires_at"}: the link sets the password, works once and expires ' +
        '(SKELDIR_INVITATION_HOURS, default 72). Inviting someone who has not set a password yet issues a new link and ends the old one.',
    )
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption('--email <email>', 'the address the user signs in with')
    .requiredOption('--role <role>', ROLES.slice().reverse().join(' | '))
    .action((options: { tenant: string; email: string; role: string }) =>
      runCommand(async (ctx) => {
        print(await asOwner(ctx, (pool) => inviteUser(pool, options.tenant, { email: options.email, role: options.role }, ctx.config.web)));
      }),
    );

  user
    .command('list')
    .description("a tenant's users with their role and status (invited / active)")
    .requiredOption('--tenant <id>', 'tenant id')
    .action((options: { tenant: string }) =>
      runCommand(async (ctx) => {
        print(await asOwner(ctx, (pool) => listUsers(pool, validateTenantId(options.tenant))));
      }),
    );
}
