import type { Queryable } from '../db/pool.js';
import type { ModelType } from './models.js';
import type { RunTotal } from './totals.js';
import { formatInstant, formatInstantOrNull } from '../db/timestamps.js';

/** SQL of attribution_model_runs: one function per statement. */

export type RunStatus = 'running' | 'succeeded' | 'not_converged' | 'failed';
export type RunTrigger = 'cli' | 'schedule' | 'api';

export async function insertRun(
  client: Queryable,
  run: { tenantId: string; model: ModelType; modelVersion: string; from: Date; to: Date; trigger: RunTrigger; parameters: unknown },
): Promise<string> {
  const r = await client.query<{ id: string }>(
    `INSERT INTO attribution_model_runs (tenant_id, model_type, model_version, window_from, window_to, trigger, parameters)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
    [run.tenantId, run.model, run.modelVersion, formatInstant(run.from), formatInstant(run.to), run.trigger, JSON.stringify(run.parameters)],
  );
  return r.rows[0]!.id;
}

/**
 * A value as it can be stored in jsonb without losing anything: JSON has no NaN or ±Infinity
 * (JSON.stringify writes null), yet they carry meaning in diagnostics — an R-hat of Infinity or NaN
 * is why a run did not converge. They become the strings "NaN", "Infinity", "-Infinity".
 */
export function jsonSafe(value: unknown): unknown {
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number>, jsonSafe);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v)]));
  return value;
}

export async function finishRun(
  client: Queryable,
  tenantId: string,
  id: string,
  outcome: {
    status: Exclude<RunStatus, 'running'>;
    results?: unknown;
    diagnostics?: unknown;
    conversions?: number;
    journeys?: number;
    allocations?: number;
    error?: string;
  },
): Promise<void> {
  await client.query(
    `UPDATE attribution_model_runs
     SET status = $2, results = $3, diagnostics = $4, conversions = $5, journeys = $6, allocations = $7, error = $8, finished_at = now()
     WHERE tenant_id = $9 AND id = $1`,
    [
      id,
      outcome.status,
      outcome.results === undefined ? null : JSON.stringify(jsonSafe(outcome.results)),
      outcome.diagnostics === undefined ? null : JSON.stringify(jsonSafe(outcome.diagnostics)),
      outcome.conversions ?? null,
      outcome.journeys ?? null,
      outcome.allocations ?? null,
      outcome.error ?? null,
      tenantId,
    ],
  );
}

export interface RunRow {
  id: string;
  model_type: string;
  model_version: string;
  window_from: Date;
  window_to: Date;
  trigger: string;
  status: RunStatus;
  parameters: unknown;
  results: unknown;
  diagnostics: unknown;
  conversions: number | null;
  journeys: number | null;
  allocations: number | null;
  error: string | null;
  started_at: Date;
  finished_at: Date | null;
}

const RUN_COLUMNS = `id, model_type, model_version, window_from, window_to, trigger, status, parameters,
            results, diagnostics, conversions, journeys, allocations, error, started_at, finished_at`;

/**
 * The latest good run of each model: succeeded and found conversions. A run that did not converge,
 * failed, is still running or found no conversions wrote nothing, so it never stands for the
 * model's figures as "latest" (recentRuns still lists it, with its status).
 */
export async function latestRuns(client: Queryable, tenantId: string): Promise<RunRow[]> {
  const r = await client.query<RunRow>(
    `SELECT DISTINCT ON (model_type) ${RUN_COLUMNS}
     FROM attribution_model_runs
     WHERE tenant_id = $1 AND status = 'succeeded' AND conversions > 0
     ORDER BY model_type, started_at DESC`,
    [tenantId],
  );
  return r.rows;
}

/** The last `perModel` runs of each model, newest first, whatever their status. */
export async function recentRuns(client: Queryable, tenantId: string, perModel = 5): Promise<RunRow[]> {
  const r = await client.query<RunRow>(
    `SELECT ${RUN_COLUMNS} FROM (
       SELECT *, row_number() OVER (PARTITION BY model_type ORDER BY started_at DESC) AS n
       FROM attribution_model_runs WHERE tenant_id = $1
     ) r
     WHERE n <= $2
     ORDER BY model_type, started_at DESC`,
    [tenantId, perModel],
  );
  return r.rows;
}

/** A run as the API and the CLI print it. */
export function runJson(run: RunRow) {
  return {
    id: run.id,
    status: run.status,
    trigger: run.trigger,
    model_version: run.model_version,
    window_from: formatInstant(run.window_from),
    window_to: formatInstant(run.window_to),
    parameters: run.parameters,
    started_at: formatInstant(run.started_at),
    finished_at: formatInstantOrNull(run.finished_at),
    conversions: run.conversions,
    allocations: run.allocations,
    results: run.results,
    diagnostics: run.diagnostics,
    error: run.error,
  };
}

/**
 * The runs whose allocations a channel report of `model` over conversions in [from, to) sums
 * (each allocation row names the run that wrote it, model_metadata.run_id), with how many rows each;
 * `without_run`: rows the worker wrote per conversion (heuristic models), which name no run.
 * A second pass over the report's range of idx_allocations_model_created, reading model_metadata.
 */
export async function reportRuns(
  client: Queryable,
  tenantId: string,
  model: ModelType,
  from: Date,
  to: Date,
): Promise<{ runs: (Pick<RunRow, 'id' | 'status' | 'trigger' | 'model_version' | 'window_from' | 'window_to' | 'parameters' | 'started_at' | 'finished_at'> & { rows: number })[]; withoutRun: number }> {
  const r = await client.query<{ run_id: string | null; rows: number; id: string | null } & Omit<RunRow, 'id'>>(
    `SELECT u.run_id, u.n AS rows, r.id, r.status, r.trigger, r.model_version, r.window_from, r.window_to, r.parameters, r.started_at, r.finished_at
     FROM (SELECT a.model_metadata->>'run_id' AS run_id, count(*)::int AS n
           FROM attribution_allocations a
           WHERE a.tenant_id = $1 AND a.model_type = $2 AND a.created_at >= $3 AND a.created_at < $4
           GROUP BY 1) u
     LEFT JOIN attribution_model_runs r ON r.tenant_id = $1 AND r.id::text = u.run_id
     ORDER BY r.started_at DESC NULLS LAST`,
    [tenantId, model, formatInstant(from), formatInstant(to)],
  );
  const runs = r.rows.filter((x) => x.id !== null).map(({ run_id: _, ...x }) => ({ ...x, id: x.id! }));
  return { runs, withoutRun: r.rows.filter((x) => x.id === null).reduce((n, x) => n + x.rows, 0) };
}

/** When the scheduler last started a run of `model` for the tenant in context (null: never). */
export async function lastScheduledStart(client: Queryable, tenantId: string, model: ModelType): Promise<Date | null> {
  const r = await client.query<{ started_at: Date }>(
    `SELECT started_at FROM attribution_model_runs WHERE tenant_id = $2 AND model_type = $1 AND trigger = 'schedule' ORDER BY started_at DESC LIMIT 1`,
    [model, tenantId],
  );
  return r.rows[0]?.started_at ?? null;
}

/** reportRuns as the channel report prints it (API and CLI). */
export function reportRunsJson(r: Awaited<ReturnType<typeof reportRuns>>) {
  return {
    runs: r.runs.map((x) => ({
      id: x.id,
      status: x.status,
      trigger: x.trigger,
      model_version: x.model_version,
      window_from: formatInstant(x.window_from),
      window_to: formatInstant(x.window_to),
      parameters: x.parameters,
      started_at: formatInstant(x.started_at),
      finished_at: formatInstantOrNull(x.finished_at),
      allocation_rows: x.rows,
    })),
    allocation_rows_without_run: r.withoutRun,
  };
}

/** Stores a run's channel and campaign totals with their intervals (in the transaction that finishes the run). */
export async function insertRunTotals(client: Queryable, tenantId: string, runId: string, totals: readonly RunTotal[]): Promise<void> {
  if (totals.length === 0) return;
  // In a CTE, as ingestion's insert (src/ingestion/store.ts): on Citus a bare INSERT … SELECT
  // unnest(…) is run as COPY, which row-level security refuses ("COPY FROM not supported"); the
  // CTE's parameters are cast (a CTE reaches the shard as a query of its own).
  await client.query(
    `WITH ins AS (INSERT INTO attribution_run_totals
       (tenant_id, run_id, level, channel_code, campaign_id, currency, total_cents, lower_cents, upper_cents, interval_mass, interval_method,
        draws, convergence_r_hat, effective_sample_size)
     SELECT $1::uuid, $2::uuid, t.level, t.channel, t.campaign, t.currency, t.total, t.lower, t.upper, t.mass, t.method, t.draws, t.r_hat, t.ess
     FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::numeric[], $11::text[],
                 $12::int[], $13::numeric[], $14::int[])
       AS t(level, channel, campaign, currency, total, lower, upper, mass, method, draws, r_hat, ess)
     RETURNING 1)
     SELECT count(*) FROM ins`,
    [
      tenantId,
      runId,
      totals.map((t) => t.level),
      totals.map((t) => t.channel),
      totals.map((t) => t.campaign),
      totals.map((t) => t.currency),
      totals.map((t) => t.totalCents.toString()),
      totals.map((t) => t.lowerCents.toString()),
      totals.map((t) => t.upperCents.toString()),
      totals.map((t) => t.mass),
      totals.map((t) => t.method),
      totals.map((t) => t.draws),
      totals.map((t) => (t.rHat === null ? null : Math.min(99.9999, t.rHat).toFixed(4))),
      totals.map((t) => t.ess),
    ],
  );
}

export interface StoredRunTotal {
  level: 'channel' | 'campaign';
  channel_code: string;
  campaign_id: string;
  currency: string;
  total_cents: string;
  lower_cents: string;
  upper_cents: string;
  interval_mass: string;
  interval_method: string;
  draws: number;
  convergence_r_hat: string | null;
  effective_sample_size: number | null;
}

/**
 * The run whose stored totals can stand for a report of `model` over conversions in [from, to):
 * the latest succeeded, not stale run of the model whose window is exactly [from, to), provided
 * every allocation row of the period names a run with that same window (a run of another window
 * overwrote some of them otherwise). The caller still checks each total against the report's sum.
 */
export async function totalsRun(client: Queryable, tenantId: string, model: ModelType, from: Date, to: Date): Promise<string | null> {
  const r = await client.query<{ id: string | null }>(
    `SELECT (SELECT r.id FROM attribution_model_runs r
             WHERE r.tenant_id = $1 AND r.model_type = $2 AND r.window_from = $3 AND r.window_to = $4
               AND r.status = 'succeeded' AND r.stale_at IS NULL
             ORDER BY r.started_at DESC LIMIT 1) AS id
     WHERE NOT EXISTS (
       SELECT 1 FROM attribution_allocations a
       LEFT JOIN attribution_model_runs o ON o.tenant_id = $1 AND o.id::text = a.model_metadata->>'run_id'
       WHERE a.tenant_id = $1 AND a.model_type = $2 AND a.created_at >= $3 AND a.created_at < $4
         AND (o.id IS NULL OR o.window_from <> $3 OR o.window_to <> $4))`,
    [tenantId, model, formatInstant(from), formatInstant(to)],
  );
  return r.rows[0]?.id ?? null;
}

export async function readRunTotals(client: Queryable, tenantId: string, runId: string, level: 'channel' | 'campaign'): Promise<StoredRunTotal[]> {
  const r = await client.query<StoredRunTotal>(
    `SELECT level, channel_code, campaign_id, currency, total_cents::text, lower_cents::text, upper_cents::text, interval_mass::text,
            interval_method, draws, convergence_r_hat::text, effective_sample_size
     FROM attribution_run_totals WHERE tenant_id = $1 AND run_id = $2 AND level = $3
     ORDER BY channel_code, campaign_id, currency`,
    [tenantId, runId, level],
  );
  return r.rows;
}
