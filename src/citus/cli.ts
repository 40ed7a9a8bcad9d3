import type { Command } from 'commander';
import pg from 'pg';
import type { Database } from '../db/database.js';
import { CommandFailed, runCommand, type CommandContext } from '../cli/run.js';
import { CitusUnavailableError, distribute } from './distribute.js';
import { CitusPlanError, planTables } from './plan.js';

/**
 * `skeldir citus`: the explicit step that turns a database migrated to head on a Citus
 * coordinator into a distributed one (docs/scaling.md). Run it once after `skeldir migrate
 * upgrade head`, as a superuser (DATABASE_URL of the coordinator); a second run changes nothing.
 */
export function registerCitus(program: Command): void {
  const citus = program.command('citus').description('run Skeldir on a Citus cluster (docs/scaling.md)');
  citus
    .command('plan')
    .description('print what distribute does to each table (reference, distributed by tenant_id, or local), without changing anything')
    .action(() =>
      runCommand((ctx) =>
        withClient(ctx, async (client) => {
          const plan = await planTables(client).catch((e) => {
            if (e instanceof CitusPlanError) throw new CommandFailed(e.message, 1);
            throw e;
          });
          for (const p of plan) process.stdout.write(`${p.kind.padEnd(11)} ${p.table.padEnd(28)} ${p.why}\n`);
        }),
      ),
    );
  citus
    .command('distribute')
    .description('make reference tables, distribute every tenant table by tenant_id (one colocation group), swap the keys Citus cannot enforce')
    .action(() =>
      runCommand((ctx) =>
        withClient(ctx, async (client, db) => {
          const r = await distribute(client, db.roles, (line) => process.stderr.write(`citus: ${line}\n`)).catch((e) => {
            if (e instanceof CitusPlanError || e instanceof CitusUnavailableError) throw new CommandFailed(e.message, 2);
            throw e;
          });
          const count = (k: string) => r.plan.filter((p) => p.kind === k).length;
          process.stdout.write(`distributed: ${count('distributed')} tenant tables by tenant_id, ${count('reference')} reference tables, ${count('local')} local; ` +
            `${r.changed.length} changed by this run; ${r.workers} workers\n`);
        }),
      ),
    );
}

/** One client on DATABASE_URL (the coordinator, as a superuser) for the length of a command. */
async function withClient(ctx: CommandContext, fn: (client: pg.Client, db: Database) => Promise<void>): Promise<void> {
  const db = await ctx.database();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await fn(client, db);
  } finally {
    await client.end();
  }
}
