import type { Command } from 'commander';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import { logProgress, serviceLogger, type Logger } from './log.js';
import { migratorFor } from './migrate.js';
import { runCommand } from './run.js';
import { apiService } from '../http/server.js';
import { workerService } from '../worker/cli.js';
import { attributionSchedulerService } from '../attribution/cli.js';
import { retentionService } from '../retention/cli.js';

/** A long-running part of the system that `skeldir start` runs after migrating. */
export interface Service {
  readonly name: string;
  /** Starts it, logging to `log` (that service's logger); `describe` says, in one line, what it runs. */
  start(db: Database, config: Config, log: Logger): Promise<{ describe: string; stop(): Promise<void> }>;
}

/** The services `skeldir start` runs, in start order (stopped in reverse). */
export const SERVICES: Service[] = [apiService, workerService, attributionSchedulerService, retentionService];

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('the whole system: embedded PostgreSQL unless DATABASE_URL, migrate to head, then every service')
    .action(() => {
      const log = serviceLogger('skeldir');
      return runCommand(
        async (ctx) => {
          const signalled = ctx.untilSignal();
          const db = await ctx.database();
          log.info(
            db.embedded
              ? { port: db.embedded.port, data_dir: db.embedded.dataDir, cluster_dir: db.embedded.clusterDir }
              : { database_url: redact(db.url) },
            db.embedded
              ? `embedded PostgreSQL on 127.0.0.1:${db.embedded.port}, data directory ${db.embedded.dataDir}` +
                  (db.embedded.clusterDir.startsWith(db.embedded.dataDir + '/') ? '' : ` (cluster files in ${db.embedded.clusterDir})`)
              : `PostgreSQL at ${redact(db.url)}`,
          );
          const result = await ctx.whenReachable('migrations', async () => {
            const { migrator, close } = migratorFor(db, ctx.config, logProgress(log));
            try {
              return await migrator.upgrade('head');
            } finally {
              await close();
            }
          });
          log.info(
            { from: result.from, to: result.to, applied: result.applied.length },
            result.applied.length ? `schema upgraded ${result.from} -> ${result.to}` : `schema at head (${result.to})`,
          );
          if (!db.embedded && db.roles.ownerSetRole) {
            log.warn(
              {},
              `DATABASE_URL logs in as a superuser; the services act as ${db.roles.app}, but a login without superuser ` +
                'rights (owner of the database) is safer: see "Roles" in the README',
            );
          }
          const running: { name: string; stop(): Promise<void> }[] = [];
          for (const service of SERVICES) {
            const serviceLog = serviceLogger(service.name);
            const handle = await ctx.whenReachable(service.name, () => service.start(db, ctx.config, serviceLog));
            running.push({ name: service.name, stop: handle.stop });
            serviceLog.info({}, handle.describe);
          }
          log.info({}, 'skeldir is running; Ctrl-C (SIGINT) or SIGTERM stops it');
          const signal = await signalled;
          log.info({ signal }, `${signal}: stopping`);
          for (const r of running.reverse()) await r.stop().catch((e) => log.error({ service: r.name, err: (e as Error).message }, `${r.name} did not stop cleanly`));
          log.info({}, 'stopped');
        },
        { service: { log, createsCluster: true } },
      );
    });
}

/** A connection URL with its password replaced, safe to print. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}
