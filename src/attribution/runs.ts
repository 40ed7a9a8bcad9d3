import type { Queryable } from '../db/pool.js';
import type { ModelType } from './models.js';
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
     WHERE id = $1`,
    [
      id,
      outcome.status,
      outcome.results === undefined ? null : JSON.stringify(jsonSafe(outcome.results)),
      outcome.diagnostics === undefined ? null : JSON.stringify(jsonSafe(outcome.diagnostics)),
      outcome.conversions ?? null,
      outcome.journeys ?? null,
      outcome.allocations ?? null,
      outcome.error ?? null,
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
export async function lastScheduledStart(client: Queryable, model: ModelType): Promise<Date | null> {
  const r = await client.query<{ started_at: Date }>(
    `SELECT started_at FROM attribution_model_runs WHERE model_type = $1 AND trigger = 'schedule' ORDER BY started_at DESC LIMIT 1`,
    [model],
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
