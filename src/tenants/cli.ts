import type { Command } from 'commander';
import { runCommand } from '../cli/run.js';
import { createTenant } from './tenants.js';

export function registerTenant(program: Command): void {
  const tenant = program.command('tenant').description('manage tenants and their API keys');

  tenant
    .command('create')
    .description('create a tenant; prints {"tenant_id","api_key"} (the key is shown only here)')
    .requiredOption('--name <name>', 'display name of the tenant')
    .requiredOption('--email <email>', 'address for operational notifications')
    .action((options: { name: string; email: string }) =>
      runCommand(async (ctx) => {
        const db = await ctx.database();
        const pool = db.ownerPool({ max: 1 });
        try {
          const created = await createTenant(pool, options);
          process.stdout.write(JSON.stringify(created) + '\n');
        } finally {
          await pool.end();
        }
      }),
    );
}
