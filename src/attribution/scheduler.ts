import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { isPopulation, type PopulationModel } from './models.js';
import { runModel } from './run.js';
import { lastScheduledStart } from './runs.js';
import { readSettings } from './settings.js';

export interface SchedulerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** One scheduled run's outcome. A run that threw is `failed` (its run row says so too, with the error). */
export interface ScheduledRun {
  readonly tenantId: string;
  readonly model: PopulationModel;
  /** null only when the run failed before its run row was written. */
  readonly runId: string | null;
  readonly status: 'succeeded' | 'not_converged' | 'failed';
  readonly conversions: number | null;
  readonly allocations: number | null;
  readonly error?: string;
}

/**
 * Recomputes the population models (markov, shapley, bayesian) each tenant has configured, on
 * the tenant's schedule: every `recompute_interval_minutes`, over the conversions of the last
 * `recompute_window_days` (up to now). One pass looks at every tenant; a run is due when the
 * last scheduled run of that model started longer ago than the interval. A session advisory
 * lock per (tenant, model) keeps two schedulers (two `skeldir start`) from running the same one.
 *
 * Tenant ids come from the owner (the application role sees only the tenant in context);
 * everything else runs as the application role in the tenant's context.
 */
export async function schedulePass(
  owner: pg.Pool,
  app: pg.Pool,
  options: { now?: Date; logger?: SchedulerLogger; stopped?: () => boolean } = {},
): Promise<ScheduledRun[]> {
  const now = options.now ?? new Date();
  const tenants = (await owner.query<{ id: string }>('SELECT id FROM tenants ORDER BY id')).rows.map((r) => r.id);
  const done: ScheduledRun[] = [];
  for (const tenantId of tenants) {
    if (options.stopped?.()) break;
    const due = await withTenant(app, tenantId, async (c) => {
      const s = await readSettings(c, tenantId);
      const models = s.models.filter(isPopulation) as PopulationModel[];
      const out: PopulationModel[] = [];
      for (const m of models) {
        const last = await lastScheduledStart(c, tenantId, m);
        if (!last || now.getTime() - last.getTime() >= s.recomputeIntervalMinutes * 60_000) out.push(m);
      }
      return { models: out, windowDays: s.recomputeWindowDays };
    });
    for (const model of due.models) {
      if (options.stopped?.()) break;
      const lockClient = await app.connect();
      try {
        const key = `attribution-schedule:${tenantId}:${model}`;
        const got = await lockClient.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok`, [key]);
        if (!got.rows[0]!.ok) continue;
        let runId: string | null = null;
        try {
          const from = new Date(now.getTime() - due.windowDays * 86_400_000);
          const summary = await runModel(app, tenantId, { model, from, to: now, trigger: 'schedule', onRunRecorded: (id) => (runId = id) });
          done.push({ tenantId, model, runId: summary.runId, status: summary.status, conversions: summary.conversions, allocations: summary.allocations });
          const log = summary.status === 'succeeded' ? options.logger?.info : options.logger?.warn;
          log?.call(options.logger, { tenant_id: tenantId, model, run_id: summary.runId, status: summary.status, conversions: summary.conversions, allocations: summary.allocations }, 'scheduled attribution run');
        } catch (error) {
          // One tenant's failure does not stop the pass, but it is returned (`schedule --once` exits 1).
          const message = (error as Error).message;
          done.push({ tenantId, model, runId, status: 'failed', conversions: null, allocations: null, error: message });
          options.logger?.error({ tenant_id: tenantId, model, run_id: runId, err: message }, 'scheduled attribution run failed');
        } finally {
          await lockClient.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [key]).catch(() => {});
        }
      } finally {
        lockClient.release();
      }
    }
  }
  return done;
}

/** Runs `schedulePass` every `tickMs` until stopped. */
export class AttributionScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(
    private readonly owner: pg.Pool,
    private readonly app: pg.Pool,
    private readonly tickMs: number,
    private readonly logger?: SchedulerLogger,
  ) {}

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.running = schedulePass(this.owner, this.app, { logger: this.logger, stopped: () => this.stopped })
        .catch((e: Error) => this.logger?.error({ err: e.message }, 'attribution scheduler pass failed'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.tickMs);
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
