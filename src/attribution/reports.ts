import type { Queryable } from '../db/pool.js';
import { compareInstants, formatInstant, inStorableYears, utcDaysStartingIn } from '../db/timestamps.js';
import { AttributionError } from './errors.js';
import { isPopulation, MODEL_TYPES, TOTAL_MASS, type ModelType } from './models.js';
import { readRunTotals, totalsRun } from './runs.js';

/**
 * Read side: per-channel figures of the allocations whose conversion happened in [from, to)
 * (engine rows carry the conversion time in created_at, src/attribution/store.ts). One range of
 * idx_allocations_model_created (tenant, model, created_at; covering) and the conversions of the
 * same period from idx_attribution_events_conversions (for their currency), hash-joined and
 * grouped once (202612022221). The previous form, one lateral lookup per tenant channel, joined
 * each channel's allocations to attribution_events by id and PostgreSQL read the whole events
 * table once per channel: 4.0 s on 1,000,000 events (bench/web.bench.ts), ~0.1 s now. The tests
 * check the plan with EXPLAIN.
 */
export const CHANNELS_SQL = `
  SELECT ct.code AS channel, ct.display_name, agg.currency, agg.cents, agg.attributed_conversions, agg.conversions,
         agg.mean_confidence, agg.ci_lower, agg.ci_upper, agg.with_interval
  FROM (
    SELECT a.channel_code, e.currency,
           sum(a.allocated_revenue_cents)::text AS cents,
           sum(a.allocation_ratio)::text AS attributed_conversions,
           count(DISTINCT a.event_id)::int AS conversions,
           avg(a.confidence_score)::float8 AS mean_confidence,
           sum(a.credible_interval_lower_cents)::text AS ci_lower,
           sum(a.credible_interval_upper_cents)::text AS ci_upper,
           count(a.credible_interval_lower_cents)::int AS with_interval
    FROM attribution_allocations a
    JOIN attribution_events e ON e.tenant_id = $1 AND e.id = a.event_id AND e.event_type = 'conversion'
     AND e.event_timestamp >= $3 AND e.event_timestamp < $4
    WHERE a.tenant_id = $1 AND a.model_type = $2 AND a.created_at >= $3 AND a.created_at < $4
    GROUP BY a.channel_code, e.currency
  ) agg
  JOIN tenant_channels ct ON ct.tenant_id = $1 AND ct.code = agg.channel_code
  ORDER BY ct.code, agg.currency`;

export interface ChannelFigure {
  channel: string;
  display_name: string;
  currency: string;
  attributed_cents: number;
  attributed_conversions: number;
  conversions: number;
  mean_confidence: number | null;
  /** The allocations' own bounds added up (bayesian): conservative, NOT an interval of the total. */
  summed_allocation_bounds: { lower_cents: number; upper_cents: number; allocations_with_interval: number } | null;
}

/** The interval of a channel's (or campaign's) total, from the draws of the total in its run (attribution_run_totals). */
export interface TotalInterval {
  lower_cents: number;
  upper_cents: number;
  mass: number;
  method: string;
  draws: number;
  r_hat: number | null;
  ess: number | null;
}

export interface TotalIntervals {
  /** The run whose stored totals the intervals are (null: none applies; `note` says why). */
  run_id: string | null;
  note: string;
  /** By `${channel}\u0000${campaign}\u0000${currency}` (campaign '' at channel level, and for touches without a campaign). */
  byKey: Map<string, TotalInterval & { total_cents: number }>;
}

export const totalKey = (channel: string, campaign: string, currency: string) => `${channel}\u0000${campaign}\u0000${currency}`;

/**
 * The total intervals that apply to a report of `model` over conversions in [from, to) at one
 * level: those of the latest good run whose window is exactly the period, when every allocation
 * of the period comes from a run of that window (runs.ts, totalsRun). A line uses its total's
 * interval only if the stored total equals the line's sum (an erasure, a deleted conversion or
 * retention's aggregates change the sum; the interval is then not given rather than wrong).
 */
export async function totalIntervals(client: Queryable, tenantId: string, model: ModelType, from: Date, to: Date, level: 'channel' | 'campaign'): Promise<TotalIntervals> {
  if (!isPopulation(model)) return { run_id: null, note: 'rule models have no interval: they are deterministic given the paths', byKey: new Map() };
  const runId = await totalsRun(client, tenantId, model, from, to);
  if (!runId) {
    return {
      run_id: null,
      note: `intervals are those of a run's totals, and no succeeded ${model} run with its window exactly this period wrote all of its allocations; run skeldir attribution run --model ${model} --from … --to … for it`,
      byKey: new Map(),
    };
  }
  const rows = await readRunTotals(client, tenantId, runId, level);
  const byKey = new Map(
    rows.map((r) => [
      totalKey(r.channel_code, r.campaign_id, r.currency),
      {
        total_cents: money(r.total_cents),
        lower_cents: money(r.lower_cents),
        upper_cents: money(r.upper_cents),
        mass: Number(r.interval_mass),
        method: r.interval_method,
        draws: r.draws,
        r_hat: r.convergence_r_hat === null ? null : Number(r.convergence_r_hat),
        ess: r.effective_sample_size,
      },
    ]),
  );
  const source = rows[0]?.interval_method === 'posterior_draws' ? 'posterior draws' : 'bootstrap replicates';
  return { run_id: runId, note: `central ${Math.round(Number(rows[0]?.interval_mass ?? TOTAL_MASS) * 100)} % interval of each total, over the ${source} of run ${runId}`, byKey };
}

/** The interval of a line's total, when its run's stored total equals the line's sum. */
export function intervalFor(t: TotalIntervals, channel: string, campaign: string, currency: string, cents: number): TotalInterval | null {
  const x = t.byKey.get(totalKey(channel, campaign, currency));
  if (!x || x.total_cents !== cents) return null;
  const { total_cents: _, ...interval } = x;
  return interval;
}

/** Throws attribution_window_invalid unless `d` is a valid instant in years 0001–9999 UTC (src/db/timestamps.ts). */
export function checkInstant(field: string, d: Date): void {
  if (Number.isNaN(d.getTime())) throw new AttributionError('attribution_window_invalid', `${field} must be a timestamp`, {}, field);
  if (!inStorableYears(d)) {
    throw new AttributionError('attribution_window_invalid', `${field} must be in years 0001–9999 (UTC), got ${formatInstant(d)}`, {}, field);
  }
}

export function checkPeriod(from: Date, to: Date): void {
  checkInstant('from', from);
  checkInstant('to', to);
  if (compareInstants(from, to) >= 0) throw new AttributionError('attribution_window_invalid', `to (${formatInstant(to)}) must be after from (${formatInstant(from)})`, {}, 'to');
}

function money(text: string | null): number {
  const n = Number(text ?? 0);
  // Sums of int32 allocations; beyond 2^53 minor units a JSON number would lose units.
  if (!Number.isSafeInteger(n)) throw new AttributionError('attribution_window_invalid', 'the attributed sum is too large to return exactly; narrow the period');
  return n;
}

export async function channelReport(client: Queryable, tenantId: string, model: ModelType, from: Date, to: Date): Promise<ChannelFigure[]> {
  checkPeriod(from, to);
  const r = await client.query<{
    channel: string;
    display_name: string;
    currency: string;
    cents: string;
    attributed_conversions: string;
    conversions: number;
    mean_confidence: number | null;
    ci_lower: string | null;
    ci_upper: string | null;
    with_interval: number;
  }>(CHANNELS_SQL, [tenantId, model, formatInstant(from), formatInstant(to)]);
  return r.rows.map((x) => ({
    channel: x.channel,
    display_name: x.display_name,
    currency: x.currency,
    attributed_cents: money(x.cents),
    attributed_conversions: Number(x.attributed_conversions),
    conversions: x.conversions,
    mean_confidence: x.mean_confidence === null ? null : Math.round(x.mean_confidence * 1000) / 1000,
    summed_allocation_bounds: x.with_interval > 0 ? { lower_cents: money(x.ci_lower), upper_cents: money(x.ci_upper), allocations_with_interval: x.with_interval } : null,
  }));
}

/** All models side by side: per channel and currency, each model's attributed value and conversions (the same plan as CHANNELS_SQL, one index range per model). */
/**
 * The comparison of every model: the live allocations of [$2, $3) grouped once over one index range, and the days
 * retention folded into allocation_daily_aggregates ($5 to $6, the UTC days starting in the period; an empty range
 * when none does) added in: sums exactly, the mean confidence over live and aggregated rows together.
 */
export const COMPARISON_SQL = `
  SELECT ct.code AS channel, agg.currency, agg.model_type, sum(agg.cents)::text AS cents, sum(agg.attributed)::text AS attributed_conversions,
         (sum(agg.confidence) / nullif(sum(agg.n), 0))::float8 AS mean_confidence
  FROM (
    SELECT a.channel_code, e.currency, a.model_type,
           sum(a.allocated_revenue_cents) AS cents,
           sum(a.allocation_ratio) AS attributed,
           sum(a.confidence_score) AS confidence,
           count(*) AS n
    FROM attribution_allocations a
    JOIN attribution_events e ON e.tenant_id = $1 AND e.id = a.event_id AND e.event_type = 'conversion'
     AND e.event_timestamp >= $2 AND e.event_timestamp < $3
    WHERE a.tenant_id = $1 AND a.model_type = ANY($4::text[]) AND a.created_at >= $2 AND a.created_at < $3
    GROUP BY a.channel_code, e.currency, a.model_type
    UNION ALL
    SELECT g.channel_code, g.currency, g.model_type, g.allocated_revenue_cents, g.attributed_conversions, g.confidence_sum, g.allocations
    FROM allocation_daily_aggregates g
    WHERE g.tenant_id = $1 AND g.model_type = ANY($4::text[]) AND g.day >= $5::date AND g.day <= $6::date
  ) agg
  JOIN tenant_channels ct ON ct.tenant_id = $1 AND ct.code = agg.channel_code
  GROUP BY ct.code, agg.currency, agg.model_type
  ORDER BY ct.code, agg.currency, agg.model_type`;

export interface ComparisonLine {
  channel: string;
  currency: string;
  models: Record<string, { attributed_cents: number; attributed_conversions: number; mean_confidence: number | null }>;
}

export async function comparisonReport(client: Queryable, tenantId: string, from: Date, to: Date): Promise<ComparisonLine[]> {
  checkPeriod(from, to);
  const r = await client.query<{ channel: string; currency: string; model_type: string; cents: string; attributed_conversions: string; mean_confidence: number | null }>(
    COMPARISON_SQL,
    [tenantId, formatInstant(from), formatInstant(to), [...MODEL_TYPES], ...(utcDaysStartingIn(from, to) ?? ['infinity', '-infinity'])],
  );
  const lines = new Map<string, ComparisonLine>();
  for (const x of r.rows) {
    const key = `${x.channel}\u0000${x.currency}`;
    const line = lines.get(key) ?? { channel: x.channel, currency: x.currency, models: {} };
    line.models[x.model_type] = {
      attributed_cents: money(x.cents),
      attributed_conversions: Number(x.attributed_conversions),
      mean_confidence: x.mean_confidence === null ? null : Math.round(x.mean_confidence * 1000) / 1000,
    };
    lines.set(key, line);
  }
  return [...lines.values()];
}

/** A channel report's lines with their totals' intervals (API and CLI alike); `aggregated`: part of the period came from daily aggregates, which hold no draws. */
export function withTotalIntervals(lines: readonly ChannelFigure[], t: TotalIntervals, aggregated: boolean) {
  return {
    channels: lines.map((l) => ({ ...l, total_interval: aggregated ? null : intervalFor(t, l.channel, '', l.currency, l.attributed_cents) })),
    total_intervals: { run_id: aggregated ? null : t.run_id, note: aggregated ? 'part of the period comes from daily aggregates, which hold no draws' : t.note },
  };
}
