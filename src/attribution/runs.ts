import type { Queryable } from '../db/pool.js';
import type { ModelType } from './models.js';
import { formatInstant } from '../db/timestamps.js';

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

/** The latest run of each model (of the tenant in context). */
export async function latestRuns(client: Queryable): Promise<RunRow[]> {
  const r = await client.query<RunRow>(
    `SELECT DISTINCT ON (model_type) id, model_type, model_version, window_from, window_to, trigger, status, parameters,
            results, diagnostics, conversions, journeys, allocations, error, started_at, finished_at
     FROM attribution_model_runs
     ORDER BY model_type, started_at DESC`,
  );
  return r.rows;
}

/** When the scheduler last started a run of `model` for the tenant in context (null: never). */
export async function lastScheduledStart(client: Queryable, model: ModelType): Promise<Date | null> {
  const r = await client.query<{ started_at: Date }>(
    `SELECT started_at FROM attribution_model_runs WHERE model_type = $1 AND trigger = 'schedule' ORDER BY started_at DESC LIMIT 1`,
    [model],
  );
  return r.rows[0]?.started_at ?? null;
}
