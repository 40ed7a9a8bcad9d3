import type { Command } from 'commander';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import { serviceLogger, type Logger } from '../cli/log.js';
import { runCommand } from '../cli/run.js';
import type { Service } from '../cli/start.js';
import { workerOptions, type WorkerOptions } from './options.js';
import { queueStats, renderStatus, statsJson } from './stats.js';
import { Worker } from './worker.js';
import { instantsReplacer } from '../db/timestamps.js';

function describe(o: WorkerOptions, w: Worker): string {
  return (
    `instance ${w.instanceId}: ${o.concurrency} loop(s) x ${o.batchSize} events, up to ${o.maxRetries} retries ` +
    `(backoff ${o.retryBaseMs} ms doubling to ${o.retryMaxMs} ms), LISTEN skeldir_events + poll every ${o.pollMs} ms`
  );
}

/** The worker as a service of `skeldir start`; its options come from the environment. */
export const workerService: Service = {
  name: 'worker',
  async start(db: Database, _config: Config, log: Logger) {
    const options = workerOptions(process.env);
    const worker = new Worker(db, options, log);
    await worker.start();
    return { describe: describe(options, worker), stop: () => worker.stop() };
  },
};

interface WorkerFlags {
  concurrency?: string;
  batchSize?: string;
  maxRetries?: string;
  retryBaseMs?: string;
  retryMaxMs?: string;
  pollMs?: string;
  statementTimeoutMs?: string;
  status?: boolean;
  json?: boolean;
}

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('the worker alone, against DATABASE_URL (or the embedded database): processes pending events until SIGTERM/SIGINT')
    .option('--concurrency <n>', 'batches processed at once, each on its own connection (env SKELDIR_WORKER_CONCURRENCY, default 2)')
    .option('--batch-size <n>', 'events claimed per batch/transaction (env SKELDIR_WORKER_BATCH_SIZE, default 100)')
    .option('--max-retries <n>', 'retries after a failed attempt before an event is dead-lettered (env SKELDIR_WORKER_MAX_RETRIES, default 5)')
    .option('--retry-base-ms <ms>', 'backoff before the first retry; doubles per failure (env SKELDIR_WORKER_RETRY_BASE_MS, default 10000)')
    .option('--retry-max-ms <ms>', 'longest backoff (env SKELDIR_WORKER_RETRY_MAX_MS, default 3600000)')
    .option('--poll-ms <ms>', 'polling interval when idle, besides LISTEN/NOTIFY (env SKELDIR_WORKER_POLL_MS, default 2000)')
    .option('--statement-timeout-ms <ms>', 'statement_timeout of the worker transactions (env SKELDIR_WORKER_STATEMENT_TIMEOUT_MS, default 60000)')
    .option('--status', 'print queue depth, age of the oldest pending event, rates, dead events and live workers, then exit')
    .option('--json', 'with --status: print the figures as JSON')
    .action((flags: WorkerFlags) => {
      if (flags.status) {
        return runCommand(async (ctx) => {
          const db = await ctx.database();
          const pool = db.appPool({ max: 1, applicationName: 'skeldir-worker-status' });
          try {
            const stats = await queueStats(pool);
            process.stdout.write(flags.json ? JSON.stringify(statsJson(stats), instantsReplacer, 2) + '\n' : renderStatus(stats));
          } finally {
            await pool.end();
          }
        });
      }
      const log = serviceLogger('worker');
      return runCommand(
        async (ctx) => {
          const options = workerOptions(process.env, {
            concurrency: flags.concurrency,
            batchSize: flags.batchSize,
            maxRetries: flags.maxRetries,
            retryBaseMs: flags.retryBaseMs,
            retryMaxMs: flags.retryMaxMs,
            pollMs: flags.pollMs,
            statementTimeoutMs: flags.statementTimeoutMs,
          });
          // Listen for signals before starting, so one arriving during start-up still stops cleanly.
          const signalled = ctx.untilSignal();
          const db = await ctx.database();
          const worker = new Worker(db, options, log);
          await ctx.whenReachable('worker', () => worker.start());
          log.info({}, describe(options, worker));
          const signal = await signalled;
          log.info({ signal }, `${signal}: finishing the batches in flight`);
          await worker.stop();
        },
        { service: { log } },
      );
    });
}
