import type { Command } from 'commander';
import pino from 'pino';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import { withTenant } from '../db/tenant-context.js';
import { compareInstants, instantsReplacer, readInstant } from '../db/timestamps.js';
import { serviceLogger, type Logger } from '../cli/log.js';
import { runCommand, type CommandContext } from '../cli/run.js';
import { stderrProgress } from '../cli/progress.js';
import type { Service } from '../cli/start.js';
import { AttributionError } from './errors.js';
import { isModelType, MODEL_TYPES, MODEL_VERSIONS, type ModelType } from './models.js';
import { channelReport, checkInstant, checkPeriod, totalIntervals, withTotalIntervals } from './reports.js';
import { runModel } from './run.js';
import { latestRuns, recentRuns, reportRuns, reportRunsJson, runJson } from './runs.js';
import { AttributionScheduler, schedulePass } from './scheduler.js';
import { readSettings, settingsJson, writeSettings, type SettingsChange } from './settings.js';
import { withDailyAggregates } from '../retention/aggregates.js';

const print = (value: unknown) => process.stdout.write(JSON.stringify(value, instantsReplacer, 2) + '\n');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `--from` / `--to`: the one rule of the API and the CLI (readInstant): a date (its midnight UTC) or an RFC 3339 date-time with offset. */
export function parseInstant(flag: string, value: string): Date {
  const d = readInstant(flag, value);
  if (typeof d === 'string') throw new AttributionError('attribution_window_invalid', d, {}, flag);
  checkInstant(flag, d);
  return d;
}

function parseIntFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new AttributionError('attribution_settings_invalid', `${flag} must be a whole number, got ${JSON.stringify(value)}`, {}, flag);
  return Number(value);
}

function parseNumberFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(value)) throw new AttributionError('attribution_settings_invalid', `${flag} must be a number, got ${JSON.stringify(value)}`, {}, flag);
  return Number(value);
}

/** The tenant must exist: as the application role in its context, tenants shows exactly its row. */
async function checkTenant(ctx: CommandContext, tenant: string) {
  if (!UUID.test(tenant)) throw new AttributionError('attribution_settings_invalid', `--tenant must be a tenant id (UUID), got ${JSON.stringify(tenant)}`, {}, '--tenant');
  const db = await ctx.database();
  const pool = db.appPool({ max: 2, applicationName: 'skeldir-attribution' });
  const found = await withTenant(pool, tenant, async (c) => (await c.query('SELECT 1 FROM tenants')).rowCount === 1).catch(async (e) => {
    await pool.end();
    throw e;
  });
  if (!found) {
    await pool.end();
    throw new AttributionError('attribution_settings_invalid', `no tenant ${tenant}`, {}, '--tenant');
  }
  return pool;
}

/** `schedule --once` prints its runs on stdout: its log lines go to stderr. */
function onceLogger() {
  return pino({ level: process.env.LOG_LEVEL || 'info', base: { service: 'attribution-scheduler' } }, pino.destination(2));
}

/** SKELDIR_ATTRIBUTION_TICK_MS: how often the scheduler looks for due runs (default 60000). */
function tickMs(env: NodeJS.ProcessEnv): number {
  const raw = env.SKELDIR_ATTRIBUTION_TICK_MS;
  const n = raw === undefined || raw === '' ? 60_000 : Number(raw);
  if (!Number.isInteger(n) || n < 1000) throw new AttributionError('attribution_settings_invalid', `SKELDIR_ATTRIBUTION_TICK_MS must be an integer ≥ 1000, got ${JSON.stringify(raw)}`);
  return n;
}

/** The scheduler as a service of `skeldir start`. */
export const attributionSchedulerService: Service = {
  name: 'attribution-scheduler',
  async start(db: Database, _config: Config, log: Logger) {
    const tick = tickMs(process.env);
    const owner = db.ownerPool({ max: 1, applicationName: 'skeldir-attribution-scheduler' });
    const app = db.appPool({ max: 3, applicationName: 'skeldir-attribution-scheduler' });
    const scheduler = new AttributionScheduler(owner, app, tick, log);
    scheduler.start();
    return {
      describe: `recomputes configured population models (markov, shapley, bayesian) on each tenant's schedule; checks every ${tick} ms`,
      stop: async () => {
        await scheduler.stop();
        await Promise.all([owner.end(), app.end()]);
      },
    };
  },
};

export function registerAttribution(program: Command): void {
  const attribution = program.command('attribution').description('attribution models: run them over a window, configure them per tenant, schedule them');

  attribution
    .command('run')
    .description('compute one model for a tenant over the conversions of [--from, --to) and replace their allocations (progress on stderr, summary JSON on stdout; exit 1 if a bayesian run does not converge)')
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption('--model <model>', `one of ${MODEL_TYPES.join(', ')}`)
    .requiredOption('--from <date>', 'window start (inclusive): YYYY-MM-DD (UTC) or ISO 8601 timestamp')
    .requiredOption('--to <date>', 'window end (exclusive)')
    .option('--lookback-days <n>', "journey lookback for this run (default: the tenant's setting, 30)")
    .option('--half-life-days <n>', "time_decay half-life for this run (default: the tenant's setting, 7)")
    .option('--bootstrap <n>', 'markov/shapley: bootstrap replicates for confidence (default 100)')
    .option('--chains <n>', 'bayesian: MCMC chains (at least 4; default 4)')
    .option('--draws <n>', 'bayesian: draws per chain after warmup (default 1000)')
    .option('--warmup <n>', 'bayesian: warmup iterations per chain (default 1000)')
    .option('--seed <n>', 'seed of the stochastic parts (bootstrap, sampling, MCMC)')
    .action((o: { tenant: string; model: string; from: string; to: string; lookbackDays?: string; halfLifeDays?: string; bootstrap?: string; chains?: string; draws?: string; warmup?: string; seed?: string }) =>
      runCommand(async (ctx) => {
        if (!isModelType(o.model)) throw new AttributionError('attribution_model_invalid', `--model must be one of ${MODEL_TYPES.join(', ')}, got ${JSON.stringify(o.model)}`, {}, '--model');
        const model: ModelType = o.model;
        const from = parseInstant('--from', o.from);
        const to = parseInstant('--to', o.to);
        if (compareInstants(from, to) >= 0) throw new AttributionError('attribution_window_invalid', `--to (${o.to}) must be after --from (${o.from})`, {}, '--to');
        const lookbackDays = parseIntFlag('--lookback-days', o.lookbackDays);
        if (lookbackDays !== undefined && (lookbackDays < 1 || lookbackDays > 365)) throw new AttributionError('attribution_settings_invalid', '--lookback-days must be from 1 to 365', {}, '--lookback-days');
        const halfLifeDays = parseNumberFlag('--half-life-days', o.halfLifeDays);
        if (halfLifeDays !== undefined && !(halfLifeDays > 0 && halfLifeDays <= 365)) throw new AttributionError('attribution_settings_invalid', '--half-life-days must be above 0 and at most 365', {}, '--half-life-days');
        const bootstrap = parseIntFlag('--bootstrap', o.bootstrap);
        if (bootstrap !== undefined && (bootstrap < 10 || bootstrap > 10000)) throw new AttributionError('attribution_settings_invalid', '--bootstrap must be from 10 to 10000', {}, '--bootstrap');
        const chains = parseIntFlag('--chains', o.chains);
        if (chains !== undefined && (chains < 4 || chains > 64)) throw new AttributionError('attribution_settings_invalid', '--chains must be from 4 to 64 (R-hat needs several chains)', {}, '--chains');
        const draws = parseIntFlag('--draws', o.draws);
        if (draws !== undefined && (draws < 100 || draws > 100000)) throw new AttributionError('attribution_settings_invalid', '--draws must be from 100 to 100000', {}, '--draws');
        const warmup = parseIntFlag('--warmup', o.warmup);
        if (warmup !== undefined && (warmup < 100 || warmup > 100000)) throw new AttributionError('attribution_settings_invalid', '--warmup must be from 100 to 100000', {}, '--warmup');
        const seed = parseIntFlag('--seed', o.seed);
        const pool = await checkTenant(ctx, o.tenant);
        try {
          const summary = await runModel(pool, o.tenant, {
            model,
            from,
            to,
            trigger: 'cli',
            ...(lookbackDays !== undefined ? { lookbackDays } : {}),
            ...(halfLifeDays !== undefined ? { halfLifeDays } : {}),
            markov: { ...(bootstrap !== undefined ? { bootstrap } : {}), ...(seed !== undefined ? { seed } : {}) },
            shapley: { ...(bootstrap !== undefined ? { bootstrap } : {}), ...(seed !== undefined ? { seed } : {}) },
            bayesian: {
              ...(chains !== undefined ? { chains } : {}),
              ...(draws !== undefined ? { draws } : {}),
              ...(warmup !== undefined ? { warmup } : {}),
              ...(seed !== undefined ? { seed } : {}),
            },
            progress: stderrProgress(),
          });
          print({
            run_id: summary.runId,
            model: summary.model,
            status: summary.status,
            conversions: summary.conversions,
            journeys: summary.journeys,
            allocations: summary.allocations,
            skipped_without_value: summary.skippedWithoutValue,
            results: summary.results,
            diagnostics: summary.diagnostics,
          });
          if (summary.status === 'not_converged') {
            process.stderr.write(
              `skeldir: the bayesian run did not converge (max R-hat ${fmt(summary.diagnostics.max_rhat)}, min bulk ESS ${fmt(summary.diagnostics.min_ess_bulk)}; need R-hat ≤ 1.01 and ESS ≥ 400): no allocations were stored. Try more --draws/--warmup.\n`,
            );
            return 1;
          }
        } finally {
          await pool.end();
        }
      }),
    );

  attribution
    .command('configure')
    .description("set a tenant's models and parameters; prints the resulting settings")
    .requiredOption('--tenant <id>', 'tenant id')
    .option('--models <list>', `comma-separated, from ${MODEL_TYPES.join(', ')}`)
    .option('--lookback-days <n>', 'journey lookback window, 1..365')
    .option('--half-life-days <n>', 'time_decay half-life in days, (0, 365]')
    .option('--recompute-interval-minutes <n>', 'scheduler: how often to recompute population models, 5..10080')
    .option('--recompute-window-days <n>', 'scheduler: recompute the conversions of the last N days, 1..366')
    .option('--exclude-channels <list>', 'comma-separated channels the rule models leave out of paths ("" for none)')
    .action((o: { tenant: string; models?: string; lookbackDays?: string; halfLifeDays?: string; recomputeIntervalMinutes?: string; recomputeWindowDays?: string; excludeChannels?: string }) =>
      runCommand(async (ctx) => {
        const change: SettingsChange = {
          ...(o.models !== undefined ? { models: o.models.split(',').map((m) => m.trim()).filter(Boolean) } : {}),
          ...(o.lookbackDays !== undefined ? { lookbackDays: parseIntFlag('--lookback-days', o.lookbackDays)! } : {}),
          ...(o.halfLifeDays !== undefined ? { halfLifeDays: parseNumberFlag('--half-life-days', o.halfLifeDays)! } : {}),
          ...(o.recomputeIntervalMinutes !== undefined ? { recomputeIntervalMinutes: parseIntFlag('--recompute-interval-minutes', o.recomputeIntervalMinutes)! } : {}),
          ...(o.recomputeWindowDays !== undefined ? { recomputeWindowDays: parseIntFlag('--recompute-window-days', o.recomputeWindowDays)! } : {}),
          ...(o.excludeChannels !== undefined ? { excludedChannels: o.excludeChannels.split(',').map((c) => c.trim()).filter(Boolean) } : {}),
        };
        const pool = await checkTenant(ctx, o.tenant);
        try {
          print(settingsJson(await withTenant(pool, o.tenant, (c) => writeSettings(c, o.tenant, change))));
        } finally {
          await pool.end();
        }
      }),
    );

  attribution
    .command('show')
    .description("print a tenant's settings (defaults when unconfigured), the latest good run of each model (succeeded, found conversions) and the last five runs of each, whatever their status")
    .requiredOption('--tenant <id>', 'tenant id')
    .action((o: { tenant: string }) =>
      runCommand(async (ctx) => {
        const pool = await checkTenant(ctx, o.tenant);
        try {
          const out = await withTenant(pool, o.tenant, async (c) => ({
            settings: settingsJson(await readSettings(c, o.tenant)),
            latest_runs: (await latestRuns(c, o.tenant)).map((r) => ({ model: r.model_type, ...runJson(r) })),
            recent_runs: (await recentRuns(c, o.tenant)).map((r) => ({ model: r.model_type, ...runJson(r) })),
          }));
          print(out);
        } finally {
          await pool.end();
        }
      }),
    );

  attribution
    .command('report')
    .description("print one model's channel report for the conversions of [--from, --to) (GET /api/v1/attribution/channels' figures): per channel and currency, and which runs wrote them")
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption('--model <model>', `one of ${MODEL_TYPES.join(', ')}`)
    .requiredOption('--from <date>', 'period start (inclusive): YYYY-MM-DD (UTC) or ISO 8601 timestamp')
    .requiredOption('--to <date>', 'period end (exclusive)')
    .action((o: { tenant: string; model: string; from: string; to: string }) =>
      runCommand(async (ctx) => {
        if (!isModelType(o.model)) throw new AttributionError('attribution_model_invalid', `--model must be one of ${MODEL_TYPES.join(', ')}, got ${JSON.stringify(o.model)}`, {}, '--model');
        const model: ModelType = o.model;
        const [from, to] = [parseInstant('--from', o.from), parseInstant('--to', o.to)];
        checkPeriod(from, to);
        const pool = await checkTenant(ctx, o.tenant);
        try {
          print(
            await withTenant(pool, o.tenant, async (c) => {
              // Days retention pruned are added from the daily aggregates and named, as the API does.
              const report = await withDailyAggregates(c, o.tenant, model, from, to, await channelReport(c, o.tenant, model, from, to));
              return {
                model,
                model_version: MODEL_VERSIONS[model],
                from,
                to,
                ...withTotalIntervals(report.channels, await totalIntervals(c, o.tenant, model, from, to, 'channel'), report.source !== null),
                from_aggregates: report.source,
                ...reportRunsJson(await reportRuns(c, o.tenant, model, from, to)),
              };
            }),
          );
        } finally {
          await pool.end();
        }
      }),
    );

  attribution
    .command('schedule')
    .description("recompute every tenant's configured population models when due (by its recompute interval); with --once one pass then exit (for cron; exit 1 if any run failed or did not converge), else keep checking until SIGTERM/SIGINT")
    .option('--once', 'one pass, then exit: prints the runs as JSON; exit 1 if any failed or did not converge')
    .action((o: { once?: boolean }) => {
      const log = o.once ? undefined : serviceLogger('attribution-scheduler');
      return runCommand(
        async (ctx) => {
          const signalled = o.once ? undefined : ctx.untilSignal();
          const db = await ctx.database();
          if (o.once) {
            const owner = db.ownerPool({ max: 1 });
            const app = db.appPool({ max: 2 });
            try {
              const runs = await schedulePass(owner, app, { logger: onceLogger() });
              print(
                runs.map((r) => ({
                  tenant_id: r.tenantId,
                  run_id: r.runId,
                  model: r.model,
                  status: r.status,
                  conversions: r.conversions,
                  allocations: r.allocations,
                  ...(r.error !== undefined ? { error: r.error } : {}),
                })),
              );
              // Exit 1 when any run failed or did not converge (cron sees it); the others still ran.
              return runs.some((r) => r.status !== 'succeeded') ? 1 : 0;
            } finally {
              await Promise.all([owner.end(), app.end()]);
            }
          }
          const handle = await attributionSchedulerService.start(db, ctx.config, log!);
          log!.info({}, handle.describe);
          const signal = await signalled!;
          log!.info({ signal }, `${signal}: stopping`);
          await handle.stop();
          log!.info({}, 'stopped');
        },
        log ? { service: { log } } : {},
      );
    });
}

function fmt(x: unknown): string {
  return typeof x === 'number' ? x.toFixed(4) : String(x);
}
