import type { Command } from 'commander';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import { migratorFor } from './migrate.js';
import { runCommand } from './run.js';
import { apiService } from '../http/server.js';
import { workerService } from '../worker/cli.js';
import { attributionSchedulerService } from '../attribution/cli.js';
import { retentionService } from '../retention/cli.js';

/** A long-running part of the system that `skeldir start` runs after migrating. */
export interface Service {
  readonly name: string;
  start(db: Database, config: Config): Promise<{ describe: string; stop(): Promise<void> }>;
}

/** The services `skeldir start` runs, in start order (stopped in reverse). */
export const SERVICES: Service[] = [apiService, workerService, attributionSchedulerService, retentionService];

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('the whole system: embedded PostgreSQL unless DATABASE_URL, migrate to head, then every service')
    .action(() =>
      runCommand(async (ctx) => {
        const db = await ctx.database();
        const { migrator, close } = migratorFor(db, ctx.config);
        try {
          const result = await migrator.upgrade('head');
          process.stderr.write(
            result.applied.length ? `schema upgraded ${result.from} -> ${result.to}\n` : `schema at head (${result.to})\n`,
          );
        } finally {
          await close();
        }
        process.stderr.write(
          db.embedded
            ? `embedded PostgreSQL on 127.0.0.1:${db.embedded.port} (data in ${ctx.config.dataDir})\n`
            : `PostgreSQL at ${redact(db.url)}\n`,
        );
        if (!db.embedded && db.roles.ownerSetRole) {
          process.stderr.write(
            `note: DATABASE_URL logs in as a superuser; the services act as ${db.roles.app}, but a login without superuser ` +
              `rights (owner of the database) is safer: see "Roles" in the README\n`,
          );
        }
        const running: { name: string; stop(): Promise<void> }[] = [];
        for (const service of SERVICES) {
          const handle = await service.start(db, ctx.config);
          running.push({ name: service.name, stop: handle.stop });
          process.stderr.write(`${service.name}: ${handle.describe}\n`);
        }
        process.stderr.write('skeldir is running; Ctrl-C (SIGINT) or SIGTERM stops it\n');
        const signal = await ctx.untilSignal();
        process.stderr.write(`${signal}: stopping…\n`);
        for (const r of running.reverse()) await r.stop().catch((e) => process.stderr.write(`${r.name}: ${(e as Error).message}\n`));
      }),
    );
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
