import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { runCommand } from '../cli/run.js';
import { existingTenant, tenantFlag } from '../cli/tenant-flag.js';
import { erasePerson } from './erase.js';
import { instantsReplacer } from '../db/timestamps.js';

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
        tenantFlag(o.tenant);
        const db = await ctx.database();
        // The application role, as the API: row-level security confines every step to the tenant.
        const pool = db.appPool({ max: 1, applicationName: 'skeldir-erasure' });
        try {
          const tenantId = await existingTenant(pool, o.tenant);
          const receipt = await erasePerson(pool, { tenantId, userId, requestedBy: `cli:${safeUser()}` });
          process.stdout.write(JSON.stringify(receipt, instantsReplacer, 2) + '\n');
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
