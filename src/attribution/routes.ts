import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { BAYESIAN_DEFAULTS } from './bayesian-model.js';
import { MARKOV_DEFAULTS } from './markov-model.js';
import { HEURISTIC_MODELS, isPopulation, MODEL_TYPES, MODEL_VERSIONS, POSITION_BASED_SHARES, type ModelType } from './models.js';
import type pg from 'pg';
import { reconciliationChannels } from '../reconciliation/report.js';
import { DomainError } from '../errors.js';
import { channelReport, comparisonReport, totalIntervals, withTotalIntervals } from './reports.js';
import { FROM_AGGREGATES, PrunedSchema, prunedPeriod, withDailyAggregates } from '../retention/aggregates.js';
import { CONFIDENCE_MEANING } from './run.js';
import { latestRuns, recentRuns, reportRuns, reportRunsJson, runJson } from './runs.js';
import { readSettings, settingsJson, writeSettings, type AttributionSettings } from './settings.js';
import { SHAPLEY_DEFAULTS } from './shapley-model.js';
import { formatInstant, instantOf } from '../db/timestamps.js';

const Run = Type.Object({
  id: Type.String(),
  status: Type.String({ description: 'running, succeeded, not_converged (wrote nothing) or failed' }),
  trigger: Type.String(),
  model_version: Type.String(),
  window_from: Type.String(),
  window_to: Type.String(),
  parameters: Type.Unknown({ description: 'The model parameters the run used' }),
  started_at: Type.String(),
  finished_at: Type.Union([Type.String(), Type.Null()]),
  conversions: Type.Union([Type.Integer(), Type.Null()]),
  allocations: Type.Union([Type.Integer(), Type.Null()]),
  results: Type.Unknown(),
  diagnostics: Type.Unknown(),
  error: Type.Union([Type.String(), Type.Null()]),
});

const ModelName = Type.Union(MODEL_TYPES.map((m) => Type.Literal(m)), { description: 'Attribution model' });
const Period = {
  from: Type.String({ format: 'date-time', description: 'Start of the period of conversion times (inclusive)' }),
  to: Type.String({ format: 'date-time', description: 'End of the period (exclusive)' }),
};

const Verified = Type.Union(
  [
    Type.Object({
      currency: Type.String({ description: "The tenant's reporting currency" }),
      channels: Type.Array(
        Type.Object({
          channel: Type.String(),
          claimed_cents: Type.Integer({ description: 'Conversion value credited to the channel, converted at each conversion date' }),
          verified_cents: Type.Integer({ description: 'Ledger-verified revenue credited to the channel: captured minus refunded and charged back' }),
          gap_cents: Type.Integer(),
        }),
      ),
      total_verified_cents: Type.Integer(),
    }),
    Type.Object({ unavailable: Type.String({ description: 'Why verified figures cannot be given (e.g. a missing FX rate)' }) }),
  ],
  { description: 'Verified revenue of the same conversions, as GET /reconciliation computes it, per channel of this model' },
);

export const TotalIntervalSchema = Type.Object(
  {
    lower_cents: Type.Integer({ description: 'Lower bound of the total, minor units (rounded down)' }),
    upper_cents: Type.Integer({ description: 'Upper bound of the total, minor units (rounded up)' }),
    mass: Type.Number({ description: 'Probability mass of the interval (0.94)' }),
    method: Type.String({ description: 'posterior_draws (bayesian) or bootstrap (markov, shapley)' }),
    draws: Type.Integer({ description: 'Draws or bootstrap replicates the quantiles were taken over' }),
    r_hat: Type.Union([Type.Number(), Type.Null()], { description: 'R-hat of the total over the chains (bayesian)' }),
    ess: Type.Union([Type.Integer(), Type.Null()], { description: 'Bulk effective sample size of the total (bayesian)' }),
  },
  { description: 'Central interval of a total from the draws of the total' },
);

const ChannelLine = Type.Object({
  channel: Type.String(),
  display_name: Type.String(),
  currency: Type.String({ description: 'ISO 4217 code; a channel with conversions in several currencies has one line per currency' }),
  attributed_cents: Type.Integer({ description: 'Value credited to the channel, minor units of the currency' }),
  attributed_conversions: Type.Number({ description: 'Sum of the allocation ratios: conversions credited, fractionally' }),
  conversions: Type.Integer({ description: 'Conversions that credit the channel at all' }),
  mean_confidence: Type.Union([Type.Number(), Type.Null()], { description: 'Mean confidence_score of the allocations (meaning per model: GET /attribution/models)' }),
  summed_allocation_bounds: Type.Union(
    [
      Type.Object({
        lower_cents: Type.Integer({ description: 'Sum of the allocations\' lower bounds (bayesian: 94 % central intervals of each share)' }),
        upper_cents: Type.Integer({ description: 'Sum of the allocations\' upper bounds' }),
        allocations_with_interval: Type.Integer(),
      }),
      Type.Null(),
    ],
    { description: 'Only for models with per-allocation intervals (bayesian). The bounds ADDED UP: not an interval of the total (too wide); total_interval is.' },
  ),
  total_interval: Type.Union([TotalIntervalSchema, Type.Null()], {
    description: "The central 94 % interval of this line's total, from the draws of the total (bayesian: posterior draws; markov, shapley: bootstrap replicates) in the run named by total_intervals.run_id; null for rule models, when no run applies (total_intervals.note) or when the line's sum is no longer the run's total",
  }),
});

export const TotalIntervalsNote = Type.Object(
  {
    run_id: Type.Union([Type.String(), Type.Null()], { description: 'The run whose stored totals give total_interval (null: none applies)' }),
    note: Type.String({ description: 'What the intervals are, or why there are none' }),
  },
  { description: 'Where total_interval comes from' },
);

const SettingsBody = Type.Object(
  {
    models: Type.Optional(Type.Array(ModelName, { minItems: 1, maxItems: 9, uniqueItems: true })),
    lookback_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 365 })),
    half_life_days: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 365 })),
    recompute_interval_minutes: Type.Optional(Type.Integer({ minimum: 5, maximum: 10080 })),
    recompute_window_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 366 })),
    excluded_channels: Type.Optional(
      Type.Array(Type.String({ pattern: '^[a-z][a-z0-9_]{0,99}$' }), {
        maxItems: 100,
        description: 'Channels the rule models leave out of a path (a path of excluded touches only keeps them); [] for none',
      }),
    ),
  },
  { additionalProperties: false },
);

const Settings = Type.Object({
  configured: Type.Boolean({ description: 'False: the tenant has not configured attribution and gets these defaults' }),
  models: Type.Array(Type.String()),
  lookback_days: Type.Integer(),
  half_life_days: Type.Number(),
  recompute_interval_minutes: Type.Integer(),
  recompute_window_days: Type.Integer(),
  excluded_channels: Type.Array(Type.String()),
});

function modelParameters(model: ModelType, s: AttributionSettings): Record<string, unknown> {
  const p: Record<string, unknown> = { lookback_days: s.lookbackDays };
  if (model === 'time_decay') Object.assign(p, { half_life_days: s.halfLifeDays, weight: '2^(-dt / half_life), dt in continuous time' });
  if (model === 'last_non_direct') Object.assign(p, { credited: 'the last touch whose channel is not direct; a path of direct touches only: its last touch' });
  if (s.excludedChannels.length && (HEURISTIC_MODELS as readonly string[]).includes(model)) p.excluded_channels = [...s.excludedChannels];
  if (model === 'position_based') Object.assign(p, { ...POSITION_BASED_SHARES, one_touch: 1, two_touches: [0.5, 0.5] });
  if (model === 'markov') Object.assign(p, { order: 1, solver: 'exact linear solve (Gaussian elimination)', ...MARKOV_DEFAULTS });
  if (model === 'shapley') Object.assign(p, { characteristic_function: 'v(T) = sum over U subset of T of conversion_rate(U)', exact_up_to_channels: 12, ...SHAPLEY_DEFAULTS });
  if (model === 'bayesian') Object.assign(p, { ...BAYESIAN_DEFAULTS, rhat_max: 1.01, ess_min: 400 });
  return p;
}

/**
 * The verified side of the channel report: the reconciliation's channel lines for the same period
 * and model (refunds and chargebacks reduce it), from the same statement without its days and
 * unmatched ledger revenue (reconciliationChannels), so both reports agree by construction. A missing FX rate
 * makes the verified figures unavailable, not the channel report.
 */
async function verifiedByChannel(client: pg.PoolClient, tenantId: string, model: ModelType, from: Date, to: Date) {
  await client.query('SAVEPOINT verified');
  try {
    const r = await reconciliationChannels(client, tenantId, from, to, model);
    await client.query('RELEASE SAVEPOINT verified');
    return {
      currency: r.currency,
      channels: r.channels.map((c) => ({ channel: c.channel, claimed_cents: c.claimed_cents, verified_cents: c.verified_cents, gap_cents: c.gap_cents })),
      total_verified_cents: r.total.verified_cents,
    };
  } catch (error) {
    await client.query('ROLLBACK TO SAVEPOINT verified');
    if (error instanceof DomainError) return { unavailable: error.message };
    throw error;
  }
}

/** GET /attribution/channels, GET /attribution/models, GET /attribution/comparison, GET|PUT /attribution/settings. */
export const attributionRoutes: FastifyPluginAsync = async (app) => {
  app.get<{ Querystring: { model: ModelType; from: string; to: string } }>(
    '/attribution/channels',
    {
      config: { problems: ['attribution_window_invalid'] },
      schema: {
        tags: ['attribution'],
        summary: 'Per channel, for one model and period of conversion times: attributed value, conversions, mean confidence, the 94 % interval of the total',
        security: [{ apiKey: [] }],
        querystring: Type.Object({ model: ModelName, ...Period }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            model: Type.String(),
            model_version: Type.String(),
            from: Type.String(),
            to: Type.String(),
            channels: Type.Array(ChannelLine),
            total_intervals: TotalIntervalsNote,
            verified: Verified,
            from_aggregates: PrunedSchema('Days of the period whose events retention removed: their figures come from daily aggregates (null: none). The verified figures leave them out (see GET /reconciliation\'s pruned)'),
            runs: Type.Array(
              Type.Object({
                id: Type.String(),
                status: Type.String(),
                trigger: Type.String(),
                model_version: Type.String(),
                window_from: Type.String(),
                window_to: Type.String(),
                parameters: Type.Unknown(),
                started_at: Type.String(),
                finished_at: Type.Union([Type.String(), Type.Null()]),
                allocation_rows: Type.Integer({ description: 'Allocation rows of this report the run wrote' }),
              }),
              { description: 'The runs whose allocations these figures sum (each row names its run), newest first' },
            ),
            allocation_rows_without_run: Type.Integer({ description: 'Allocation rows the worker wrote per conversion (heuristic models): no run' }),
          }),
        },
      },
    },
    async (request) => {
      const { model, from, to } = request.query;
      const [start, end] = [instantOf(from), instantOf(to)];
      const [report, verified, runs, intervals] = await request.inTenant(async (c) => [
        await withDailyAggregates(c, request.tenantId, model, start, end, await channelReport(c, request.tenantId, model, start, end)),
        await verifiedByChannel(c, request.tenantId, model, start, end),
        await reportRuns(c, request.tenantId, model, start, end),
        await totalIntervals(c, request.tenantId, model, start, end, 'channel'),
      ] as const);
      return {
        model,
        model_version: MODEL_VERSIONS[model],
        from: formatInstant(start),
        to: formatInstant(end),
        ...withTotalIntervals(report.channels, intervals, report.source !== null),
        verified,
        from_aggregates: report.source,
        ...reportRunsJson(runs),
      };
    },
  );

  app.get(
    '/attribution/models',
    {
      schema: {
        tags: ['attribution'],
        summary: 'The attribution models: parameters, what confidence_score means, whether the tenant has them configured, their latest run',
        security: [{ apiKey: [] }],
        response: {
          200: Type.Object({
            settings: Settings,
            models: Type.Array(
              Type.Object({
                model: Type.String(),
                version: Type.String(),
                kind: Type.Union([Type.Literal('per_conversion'), Type.Literal('population')]),
                computed_by: Type.String(),
                configured: Type.Boolean(),
                parameters: Type.Record(Type.String(), Type.Unknown()),
                confidence_score: Type.String(),
                latest_run: Type.Union([Run, Type.Null()], { description: 'The latest run that succeeded and found conversions (null: none)' }),
                recent_runs: Type.Array(Run, { description: 'The last five runs, newest first, whatever their status' }),
              }),
            ),
          }),
        },
      },
    },
    async (request) =>
      request.inTenant(async (c) => {
        const settings = await readSettings(c, request.tenantId);
        const runs = new Map((await latestRuns(c, request.tenantId)).map((r) => [r.model_type, r]));
        const recent = await recentRuns(c, request.tenantId);
        return {
          settings: settingsJson(settings),
          models: MODEL_TYPES.map((model) => {
            const run = runs.get(model);
            return {
              model,
              version: MODEL_VERSIONS[model],
              kind: isPopulation(model) ? ('population' as const) : ('per_conversion' as const),
              computed_by: isPopulation(model)
                ? 'skeldir attribution run, and the scheduler when configured'
                : (HEURISTIC_MODELS as readonly string[]).includes(model) && settings.models.includes(model)
                  ? 'the worker, as each conversion is processed (and skeldir attribution run)'
                  : 'skeldir attribution run (configure it for the worker to compute it per conversion)',
              configured: settings.models.includes(model),
              parameters: modelParameters(model, settings),
              confidence_score: CONFIDENCE_MEANING[model],
              latest_run: run ? runJson(run) : null,
              recent_runs: recent.filter((r) => r.model_type === model).map(runJson),
            };
          }),
        };
      }),
  );

  app.get<{ Querystring: { from: string; to: string } }>(
    '/attribution/comparison',
    {
      config: { problems: ['attribution_window_invalid'] },
      schema: {
        tags: ['attribution'],
        summary: 'Every model side by side for one period of conversion times: per channel and currency, each model\'s attributed value',
        security: [{ apiKey: [] }],
        querystring: Type.Object(Period, { additionalProperties: false }),
        response: {
          200: Type.Object({
            from: Type.String(),
            to: Type.String(),
            models: Type.Array(Type.String()),
            channels: Type.Array(
              Type.Object({
                channel: Type.String(),
                currency: Type.String(),
                models: Type.Record(
                  Type.String(),
                  Type.Object({ attributed_cents: Type.Integer(), attributed_conversions: Type.Number(), mean_confidence: Type.Union([Type.Number(), Type.Null()]) }),
                ),
              }),
            ),
            from_aggregates: PrunedSchema('Days of the period whose events retention removed: every model\'s figures for them come from daily aggregates (null: none)'),
          }),
        },
      },
    },
    async (request) => {
      const { from, to } = request.query;
      const [start, end] = [instantOf(from), instantOf(to)];
      const [channels, pruned] = await request.inTenant(async (c) => [
        await comparisonReport(c, request.tenantId, start, end),
        await prunedPeriod(c, request.tenantId, start, end, FROM_AGGREGATES),
      ] as const);
      return { from: formatInstant(start), to: formatInstant(end), models: [...MODEL_TYPES], channels, from_aggregates: pruned };
    },
  );

  app.get(
    '/attribution/settings',
    {
      schema: { tags: ['attribution'], summary: "The tenant's attribution settings (defaults when unconfigured)", security: [{ apiKey: [] }], response: { 200: Settings } },
    },
    async (request) => request.inTenant(async (c) => settingsJson(await readSettings(c, request.tenantId))),
  );

  app.put<{ Body: { models?: string[]; lookback_days?: number; half_life_days?: number; recompute_interval_minutes?: number; recompute_window_days?: number; excluded_channels?: string[] } }>(
    '/attribution/settings',
    {
      config: { problems: ['attribution_settings_invalid'] },
      schema: {
        tags: ['attribution'],
        summary: "Change the tenant's models and parameters (fields not given keep their value)",
        security: [{ apiKey: [] }],
        body: SettingsBody,
        response: { 200: Settings },
      },
    },
    async (request) => {
      const b = request.body;
      return request.inTenant(async (c) =>
        settingsJson(
          await writeSettings(c, request.tenantId, {
            ...(b.models !== undefined ? { models: b.models } : {}),
            ...(b.lookback_days !== undefined ? { lookbackDays: b.lookback_days } : {}),
            ...(b.half_life_days !== undefined ? { halfLifeDays: b.half_life_days } : {}),
            ...(b.recompute_interval_minutes !== undefined ? { recomputeIntervalMinutes: b.recompute_interval_minutes } : {}),
            ...(b.recompute_window_days !== undefined ? { recomputeWindowDays: b.recompute_window_days } : {}),
            ...(b.excluded_channels !== undefined ? { excludedChannels: b.excluded_channels } : {}),
          }),
        ),
      );
    },
  );
};
