import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import type { Progress } from '../migrations/context.js';
import { SchemaMigrator, type DataLoss, type Inflight, type MigrateResult } from '../migrations/migrator.js';
import { stderrProgress } from './progress.js';
import { CommandFailed, runCommand, type CommandContext } from './run.js';
import { formatInstant } from '../db/timestamps.js';

export function migratorFor(db: Database, config: Config, progress: Progress = stderrProgress()): { migrator: SchemaMigrator; close(): Promise<void> } {
  const pool = db.ownerPool({ max: 3, applicationName: 'skeldir-migrate' });
  const migrator = new SchemaMigrator(pool, { roles: db.roles, progress, batchSize: config.migrationBatchSize });
  return { migrator, close: async () => migrator.close() };
}

async function withMigrator<T>(ctx: CommandContext, fn: (m: SchemaMigrator) => Promise<T>): Promise<T> {
  const { migrator, close } = migratorFor(await ctx.database(), ctx.config);
  try {
    return await fn(migrator);
  } finally {
    await close();
  }
}

export function registerMigrate(program: Command): void {
  const migrate = program.command('migrate').description('show or move the database schema along its revision chain');

  migrate
    .command('current')
    .description('print the current revision id (base when empty)')
    .action(() =>
      runCommand(async (ctx) => {
        const [current, inflight] = await withMigrator(ctx, async (m) => [await m.current(), await m.inflight()] as const);
        process.stdout.write(current + '\n');
        warnInflight(inflight);
      }),
    );

  migrate
    .command('history')
    .description('print the revision chain, newest first, marking head and the current revision')
    .action(() =>
      runCommand(async (ctx) => {
        const [history, inflight] = await withMigrator(ctx, async (m) => [await m.history(), await m.inflight()] as const);
        warnInflight(inflight);
        const head = history[history.length - 1]?.id;
        for (const r of [...history].reverse()) {
          const marks = `${r.id === head ? ' (head)' : ''}${r.current ? ' (current)' : ''}`;
          process.stdout.write(`${r.previous ?? 'base'} -> ${r.id}${marks}, ${r.title}\n`);
        }
      }),
    );

  migrate
    .command('upgrade')
    .description('upgrade to REV (default head)')
    .argument('[rev]', 'target revision id, or head', 'head')
    .action((rev: string) =>
      runCommand(async (ctx) => {
        const result = await withMigrator(ctx, (m) => m.upgrade(rev));
        report(result);
      }),
    );

  migrate
    .command('downgrade')
    .description('downgrade to REV (a revision id, or base); warns first when it drops data')
    .argument('<rev>', 'target revision id, or base')
    .option('-y, --yes', 'proceed without asking even when data will be dropped')
    .action((rev: string, options: { yes?: boolean }) =>
      runCommand(async (ctx) => {
        const result = await withMigrator(ctx, async (m) => {
          const from = await m.current();
          const losses = await m.dataLoss(rev);
          if (losses.length > 0) {
            process.stderr.write(describeLoss(losses));
            if (!options.yes && !(await confirm('Drop this data and downgrade?'))) {
              throw new CommandFailed('downgrade not performed: it would drop data (pass --yes to proceed)');
            }
          }
          // Refuses if another run moved the schema after the warning was computed.
          return m.downgrade(rev, { expectedFrom: from });
        });
        report(result);
      }),
    );
}

function warnInflight(inflight: Inflight | undefined): void {
  if (!inflight) return;
  process.stderr.write(
    `warning: the ${inflight.direction === 'up' ? 'upgrade' : 'downgrade'} of revision ${inflight.revision} started ` +
      `${formatInstant(inflight.started_at)} did not finish; the next \`skeldir migrate upgrade\` or \`downgrade\` finishes it first\n`,
  );
}

function report(result: MigrateResult): void {
  if (result.resumed) {
    const r = result.resumed;
    process.stderr.write(`finished the interrupted ${r.interrupted === 'up' ? 'upgrade' : 'downgrade'} of ${r.revision} (${r.finished === 'up' ? 'applied' : 'reverted'})\n`);
  }
  if (result.applied.length === 0) {
    process.stdout.write(`already at ${result.to}\n`);
    return;
  }
  for (const a of result.applied) process.stderr.write(`${a.direction === 'up' ? 'applied' : 'reverted'} ${a.revision}\n`);
  process.stdout.write(`${result.from} -> ${result.to} (${result.applied.length} revision${result.applied.length === 1 ? '' : 's'})\n`);
}

export function describeLoss(losses: DataLoss[]): string {
  const lines = ['WARNING: this downgrade permanently deletes data:'];
  for (const l of losses) {
    const what = l.columns ? `columns ${l.columns.join(', ')} of ${l.table}` : `table ${l.table}`;
    lines.push(`  - ${what}: ${l.rows} row${l.rows === 1 ? '' : 's'} hold data (dropped by reverting ${l.revision})`);
  }
  return lines.join('\n') + '\n';
}

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
