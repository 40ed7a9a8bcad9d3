import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { runCommand, UsageError } from '../cli/run.js';
import { withTenant } from '../db/tenant-context.js';
import { erasePerson } from './erase.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `skeldir people erase --tenant ID USER_ID`: the same erasure as DELETE /api/v1/people/{user_id}. */
export function registerPeople(program: Command): void {
  const people = program.command('people').description("the people behind a tenant's events (right to be forgotten)");
  people
    .command('erase')
    .description("erase a person: events, allocations, dead events, payloads; ledger rows kept with the id scrubbed; prints the receipt (JSON)")
    .argument('<user_id>', 'the user_id their events carry')
    .requiredOption('--tenant <id>', 'the tenant (see `tenant list`)')
    .action((userId: string, o: { tenant: string }) =>
      runCommand(async (ctx) => {
        if (!UUID.test(o.tenant)) throw new UsageError(`--tenant must be a tenant id (UUID), got ${JSON.stringify(o.tenant)}`);
        const tenantId = o.tenant.toLowerCase();
        const db = await ctx.database();
        // The application role, as the API: row-level security confines every step to the tenant.
        const pool = db.appPool({ max: 1, applicationName: 'skeldir-erasure' });
        try {
          const known = await withTenant(pool, tenantId, async (c) => (await c.query('SELECT 1 FROM tenants WHERE id = $1', [tenantId])).rowCount === 1);
          if (!known) throw new UsageError(`no tenant ${tenantId}`);
          const receipt = await erasePerson(pool, { tenantId, userId, requestedBy: `cli:${safeUser()}` });
          process.stdout.write(JSON.stringify(receipt, null, 2) + '\n');
        } finally {
          await pool.end();
        }
      }),
    );
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
