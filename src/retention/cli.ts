import type { Command } from 'commander';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import type { Logger } from '../cli/log.js';
import { runCommand, UsageError } from '../cli/run.js';
import { existingTenant, tenantFlag } from '../cli/tenant-flag.js';
import type { Service } from '../cli/start.js';
import { withTenant } from '../db/tenant-context.js';
import { RetentionError, runRetention, SETTING_NAMES, tenantsWithRetention, writeRetentionSettings, type RetentionSettings } from './retention.js';
import { instantsReplacer } from '../db/timestamps.js';

const print = (v: unknown) => process.stdout.write(JSON.stringify(v, instantsReplacer, 2) + '\n');

function days(flag: string, v: string | undefined): number | null | undefined {
  if (v === undefined) return undefined;
  if (v === 'off') return null;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 36_500) throw new RetentionError(`${flag} must be a whole number of days from 1 to 36500, or off`, flag);
  return Number(v);
}

/** How often `skeldir start` applies every tenant's rules (SKELDIR_RETENTION_TICK_MS, default hourly). */
export function retentionTickMs(env: NodeJS.ProcessEnv): number {
  const v = env.SKELDIR_RETENTION_TICK_MS;
  if (v === undefined || v === '') return 3_600_000;
  if (!/^\d+$/.test(v) || Number(v) < 1000) throw new UsageError(`SKELDIR_RETENTION_TICK_MS must be a whole number of milliseconds, at least 1000, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** The scheduler part of `skeldir start`: every tick, each tenant with a rule, in batches (src/retention/retention.ts). */
export const retentionService: Service = {
  name: 'retention',
  async start(db: Database, _config: Config, log: Logger) {
    const tick = retentionTickMs(process.env);
    const owner = db.ownerPool({ max: 1, applicationName: 'skeldir-retention' });
    const app = db.appPool({ max: 1, applicationName: 'skeldir-retention' });
    let stopped = false;
    let running: Promise<void> = Promise.resolve();
    const pass = async () => {
      try {
        for (const t of await tenantsWithRetention(owner)) {
          if (stopped) return;
          const r = await runRetention(app, t, { stopped: () => stopped });
          if (r.events_deleted + r.payloads_redacted + r.dead_event_payloads_redacted > 0) log.info({ ...r, settings: undefined }, 'retention applied');
        }
      } catch (error) {
        log.error({ err: error }, 'retention pass failed; the next tick tries again');
      }
    };
    const timer = setInterval(() => void (running = running.then(pass)), tick);
    running = running.then(pass);
    return {
      describe: `applies each tenant's retention rules every ${tick} ms, in batches`,
      stop: async () => {
        stopped = true;
        clearInterval(timer);
        await running;
        await Promise.all([owner.end(), app.end()]);
      },
    };
  },
};

export function registerRetention(program: Command): void {
  const retention = program.command('retention').description("retention rules per tenant: old payloads redacted, old events folded into daily aggregates and deleted");
  retention
    .command('configure')
    .description("set a tenant's rules (days; off keeps forever) and print them")
    .requiredOption('--tenant <id>', 'tenant id')
    .option('--payload-days <n>', 'redact raw payloads of events older than n days (or off)')
    .option('--event-days <n>', 'delete events older than n days, their allocations folded into daily aggregates (or off)')
    .option('--dead-event-payload-days <n>', 'redact payloads of dead events older than n days (or off)')
    .action((o: { tenant: string; payloadDays?: string; eventDays?: string; deadEventPayloadDays?: string }) =>
      runCommand(async (ctx) => {
        tenantFlag(o.tenant);
        const change: Partial<RetentionSettings> = {};
        const set = (k: (typeof SETTING_NAMES)[number], v: number | null | undefined) => v !== undefined && (change[k] = v);
        set('payload_days', days('--payload-days', o.payloadDays));
        set('event_days', days('--event-days', o.eventDays));
        set('dead_event_payload_days', days('--dead-event-payload-days', o.deadEventPayloadDays));
        const db = await ctx.database();
        const pool = db.appPool({ max: 1, applicationName: 'skeldir-retention' });
        try {
          const id = await existingTenant(pool, o.tenant);
          print(await withTenant(pool, id, (c) => writeRetentionSettings(c, id, change)));
        } finally {
          await pool.end();
        }
      }),
    );
  retention
    .command('run')
    .description('apply the rules now (every tenant with rules, or --tenant); --dry-run only says what it would do')
    .option('--tenant <id>', 'only this tenant')
    .option('--dry-run', 'count what would be redacted, folded and deleted; change nothing')
    .action((o: { tenant?: string; dryRun?: boolean }) =>
      runCommand(async (ctx) => {
        if (o.tenant !== undefined) tenantFlag(o.tenant);
        const db = await ctx.database();
        const owner = db.ownerPool({ max: 1, applicationName: 'skeldir-retention' });
        const app = db.appPool({ max: 1, applicationName: 'skeldir-retention' });
        try {
          const tenants = o.tenant !== undefined ? [await existingTenant(app, o.tenant)] : await tenantsWithRetention(owner);
          const reports = [];
          for (const t of tenants) reports.push(await runRetention(app, t, { dryRun: o.dryRun }));
          print(reports);
        } finally {
          await Promise.all([owner.end(), app.end()]);
        }
      }),
    );
}
