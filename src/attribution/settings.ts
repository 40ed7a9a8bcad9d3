import type { Queryable } from '../db/pool.js';
import { AttributionError } from './errors.js';
import { DEFAULT_HALF_LIFE_DAYS, DEFAULT_LOOKBACK_DAYS, DEFAULT_MODELS, isModelType, MODEL_TYPES, type ModelType } from './models.js';

/** A tenant's attribution configuration (attribution_settings); defaults when it has no row. */
export interface AttributionSettings {
  readonly models: readonly ModelType[];
  readonly lookbackDays: number;
  readonly halfLifeDays: number;
  readonly recomputeIntervalMinutes: number;
  readonly recomputeWindowDays: number;
  /** Channels the rule models leave out of a path (a path of excluded touches only keeps them). */
  readonly excludedChannels: readonly string[];
  /** False when the tenant has no row and these are the defaults. */
  readonly configured: boolean;
}

export const DEFAULT_SETTINGS: AttributionSettings = {
  models: DEFAULT_MODELS,
  lookbackDays: DEFAULT_LOOKBACK_DAYS,
  halfLifeDays: DEFAULT_HALF_LIFE_DAYS,
  recomputeIntervalMinutes: 1440,
  recomputeWindowDays: 30,
  excludedChannels: [],
  configured: false,
};

/** The settings as the CLI prints them and the HTTP API returns them (snake_case). */
export function settingsJson(s: AttributionSettings) {
  return {
    configured: s.configured,
    models: [...s.models],
    lookback_days: s.lookbackDays,
    half_life_days: s.halfLifeDays,
    recompute_interval_minutes: s.recomputeIntervalMinutes,
    recompute_window_days: s.recomputeWindowDays,
    excluded_channels: [...s.excludedChannels],
  };
}

/** Reads the settings of the tenant (the transaction's context: row-level security; tenant_id named: one shard on Citus). */
export async function readSettings(client: Queryable, tenantId: string): Promise<AttributionSettings> {
  const r = await client.query<{ models: string[]; lookback_days: number; half_life_days: string; recompute_interval_minutes: number; recompute_window_days: number; excluded_channels: string[] }>(
    `SELECT models, lookback_days, half_life_days::text, recompute_interval_minutes, recompute_window_days, excluded_channels FROM attribution_settings WHERE tenant_id = $1`,
    [tenantId],
  );
  const row = r.rows[0];
  if (!row) return DEFAULT_SETTINGS;
  return {
    // Canonical order (MODEL_TYPES), whatever order they were configured in.
    models: MODEL_TYPES.filter((m) => row.models.includes(m)),
    lookbackDays: row.lookback_days,
    halfLifeDays: Number(row.half_life_days),
    recomputeIntervalMinutes: row.recompute_interval_minutes,
    recomputeWindowDays: row.recompute_window_days,
    excludedChannels: [...row.excluded_channels].sort(),
    configured: true,
  };
}

export interface SettingsChange {
  models?: readonly string[];
  lookbackDays?: number;
  halfLifeDays?: number;
  recomputeIntervalMinutes?: number;
  recomputeWindowDays?: number;
  excludedChannels?: readonly string[];
}

/** Checks a change against the same limits the table's CHECK constraints enforce, with messages naming the field. */
export function validateSettingsChange(change: SettingsChange): void {
  const bad = (field: string, message: string) => new AttributionError('attribution_settings_invalid', message, {}, field);
  if (change.models !== undefined) {
    if (change.models.length === 0) throw bad('models', 'models must name at least one model');
    const unknown = change.models.filter((m) => !isModelType(m));
    if (unknown.length) throw bad('models', `unknown model(s) ${unknown.join(', ')}; models are ${MODEL_TYPES.join(', ')}`);
  }
  if (change.excludedChannels !== undefined) {
    if (change.excludedChannels.length > 100) throw bad('excluded_channels', 'excluded_channels lists at most 100 channels');
    const badCode = change.excludedChannels.find((c) => typeof c !== 'string' || !/^[a-z][a-z0-9_]{0,99}$/.test(c));
    if (badCode !== undefined) throw bad('excluded_channels', `excluded_channels holds channel codes (lower snake case), not ${JSON.stringify(badCode)}`);
  }
  const intIn = (field: string, v: number | undefined, lo: number, hi: number) => {
    if (v !== undefined && !(Number.isInteger(v) && v >= lo && v <= hi)) throw bad(field, `${field} must be an integer from ${lo} to ${hi}, got ${v}`);
  };
  intIn('lookback_days', change.lookbackDays, 1, 365);
  intIn('recompute_interval_minutes', change.recomputeIntervalMinutes, 5, 10080);
  intIn('recompute_window_days', change.recomputeWindowDays, 1, 366);
  const h = change.halfLifeDays;
  // "At most 3 decimals" is checked on the number's shortest decimal text (what the user wrote:
  // 1.005), not by scaling the double (1.005 * 1000 = 1004.9999999999999); numeric(8,3) then
  // stores exactly that text.
  if (h !== undefined && !(Number.isFinite(h) && h > 0 && h <= 365 && /^\d+(\.\d{1,3})?$/.test(String(h)))) {
    throw bad('half_life_days', `half_life_days must be a number of days above 0 and at most 365 with at most 3 decimals, got ${h}`);
  }
}

/** Creates or updates the tenant's settings (fields not given keep their current or default value). */
export async function writeSettings(client: Queryable, tenantId: string, change: SettingsChange): Promise<AttributionSettings> {
  validateSettingsChange(change);
  const current = await readSettings(client, tenantId);
  const next = {
    models: change.models ? MODEL_TYPES.filter((m) => change.models!.includes(m)) : current.models,
    lookbackDays: change.lookbackDays ?? current.lookbackDays,
    halfLifeDays: change.halfLifeDays ?? current.halfLifeDays,
    recomputeIntervalMinutes: change.recomputeIntervalMinutes ?? current.recomputeIntervalMinutes,
    recomputeWindowDays: change.recomputeWindowDays ?? current.recomputeWindowDays,
    excludedChannels: change.excludedChannels ? [...new Set(change.excludedChannels)].sort() : current.excludedChannels,
  };
  await client.query(
    `INSERT INTO attribution_settings (tenant_id, models, lookback_days, half_life_days, recompute_interval_minutes, recompute_window_days, excluded_channels)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (tenant_id) DO UPDATE SET models = EXCLUDED.models, lookback_days = EXCLUDED.lookback_days,
       half_life_days = EXCLUDED.half_life_days, recompute_interval_minutes = EXCLUDED.recompute_interval_minutes,
       recompute_window_days = EXCLUDED.recompute_window_days, excluded_channels = EXCLUDED.excluded_channels`,
    [tenantId, next.models, next.lookbackDays, next.halfLifeDays, next.recomputeIntervalMinutes, next.recomputeWindowDays, next.excludedChannels],
  );
  return { ...next, configured: true };
}
