import { Type } from '@sinclair/typebox';
import type { Queryable } from '../db/pool.js';
import { utcDaysStartingIn } from '../db/timestamps.js';
import type { ChannelFigure } from '../attribution/reports.js';

export interface AggregateSource {
  /** UTC days of the period read from allocation_daily_aggregates. */
  days: number;
  first_day: string;
  last_day: string;
  note: string;
}

/**
 * The days of [from, to) whose events retention removed (the days allocation_daily_aggregates holds, of any model
 * or of `model`), with `note(days, first, last)` saying what that means for the report; null when there are none.
 * One index range of pk_allocation_daily_aggregates (tenant_id, day, …).
 */
export async function prunedPeriod(
  client: Queryable,
  tenantId: string,
  from: Date,
  to: Date,
  note: (days: number, first: string, last: string) => string,
  model?: string,
): Promise<AggregateSource | null> {
  const days = utcDaysStartingIn(from, to);
  if (!days) return null;
  const { rows } = await client.query<{ days: number; first_day: string | null; last_day: string | null }>(
    `SELECT count(DISTINCT day)::int AS days, min(day)::text AS first_day, max(day)::text AS last_day FROM allocation_daily_aggregates
      WHERE tenant_id = $1 AND day >= $2::date AND day <= $3::date AND ($4::text IS NULL OR model_type = $4)`,
    [tenantId, ...days, model ?? null],
  );
  const r = rows[0]!;
  if (r.days === 0 || r.first_day === null || r.last_day === null) return null;
  return { days: r.days, first_day: r.first_day, last_day: r.last_day, note: note(r.days, r.first_day, r.last_day) };
}

/**
 * Adds to a channel report the allocations that retention folded into daily aggregates: the days whose start lies
 * in [from, to) (a day is aggregated whole, so a period cutting through one counts it only if the day starts
 * inside). Sums and conversion counts add exactly; the mean confidence of a line becomes the mean over its live
 * rows weighted by their conversions together with the aggregated rows'. Returns null as the source when no
 * aggregated day falls in the period (the report is then exactly the live one).
 */
export async function withDailyAggregates(
  client: Queryable,
  tenantId: string,
  model: string,
  from: Date,
  to: Date,
  live: ChannelFigure[],
): Promise<{ channels: ChannelFigure[]; source: AggregateSource | null }> {
  const days = utcDaysStartingIn(from, to);
  if (!days) return { channels: live, source: null };
  const { rows } = await client.query<{
    channel: string;
    display_name: string | null;
    currency: string;
    cents: string;
    attributed: string;
    conversions: number;
    allocations: number;
    confidence: number;
    ci_lower: string | null;
    ci_upper: string | null;
    with_interval: number;
  }>(
    `SELECT g.channel_code AS channel, ct.display_name, g.currency, sum(g.allocated_revenue_cents)::text AS cents,
            sum(g.attributed_conversions)::text AS attributed, sum(g.conversions)::int AS conversions, sum(g.allocations)::int AS allocations,
            sum(g.confidence_sum)::float8 AS confidence, sum(g.credible_interval_lower_cents)::text AS ci_lower,
            sum(g.credible_interval_upper_cents)::text AS ci_upper, sum(g.allocations_with_interval)::int AS with_interval
       FROM allocation_daily_aggregates g LEFT JOIN tenant_channels ct ON ct.tenant_id = g.tenant_id AND ct.code = g.channel_code
      WHERE g.tenant_id = $1 AND g.model_type = $2 AND g.day >= $3::date AND g.day <= $4::date
      GROUP BY g.channel_code, ct.display_name, g.currency`,
    [tenantId, model, ...days],
  );
  if (rows.length === 0) return { channels: live, source: null };
  const lines = new Map(live.map((f) => [`${f.channel}\u0000${f.currency}`, { ...f }]));
  for (const r of rows) {
    const key = `${r.channel}\u0000${r.currency}`;
    const f = lines.get(key);
    const aggMean = r.allocations > 0 ? r.confidence / r.allocations : null;
    const interval = r.with_interval > 0 ? { lower_cents: Number(r.ci_lower), upper_cents: Number(r.ci_upper), allocations_with_interval: r.with_interval } : null;
    if (!f) {
      lines.set(key, {
        channel: r.channel,
        display_name: r.display_name ?? r.channel,
        currency: r.currency,
        attributed_cents: Number(r.cents),
        attributed_conversions: Number(r.attributed),
        conversions: r.conversions,
        mean_confidence: aggMean === null ? null : Math.round(aggMean * 1000) / 1000,
        summed_allocation_bounds: interval,
      });
      continue;
    }
    const weight = f.conversions + r.conversions;
    const mean = f.mean_confidence === null ? aggMean : aggMean === null ? f.mean_confidence : (f.mean_confidence * f.conversions + aggMean * r.conversions) / (weight || 1);
    f.attributed_cents += Number(r.cents);
    f.attributed_conversions += Number(r.attributed);
    f.conversions += r.conversions;
    f.mean_confidence = mean === null ? null : Math.round(mean * 1000) / 1000;
    if (interval) {
      f.summed_allocation_bounds = f.summed_allocation_bounds
        ? {
            lower_cents: f.summed_allocation_bounds.lower_cents + interval.lower_cents,
            upper_cents: f.summed_allocation_bounds.upper_cents + interval.upper_cents,
            allocations_with_interval: f.summed_allocation_bounds.allocations_with_interval + interval.allocations_with_interval,
          }
        : interval;
    }
  }
  return {
    channels: [...lines.values()].sort((a, b) => (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : a.currency < b.currency ? -1 : 1)),
    source: await prunedPeriod(client, tenantId, from, to, FROM_AGGREGATES, model),
  };
}


/** The note of a report that adds the aggregated days in (the channel report, the model comparison). */
export const FROM_AGGREGATES = (days: number, first: string, last: string) =>
  `${days} day(s) of this period (${first} to ${last}) come from daily aggregates: their events were removed by the tenant's retention rule`;

/** Reconciliation cannot use the aggregates: they keep attributed revenue per day, not the orders the ledger verifies. */
export const RECONCILIATION_PRUNED = (days: number, first: string, last: string) =>
  `${days} day(s) of this period (${first} to ${last}) are left out: the tenant's retention rule removed their events, and the daily aggregates ` +
  `that keep their attributed revenue (GET /api/v1/attribution/channels) keep no orders to verify against the ledger; ` +
  `ledger revenue of those days' orders counts as unmatched`;

/** Paths cannot use the aggregates: they keep no touch sequences. */
export const PATHS_PRUNED = (days: number, first: string, last: string) =>
  `${days} day(s) of this period (${first} to ${last}) are left out: the tenant's retention rule removed their events, and daily aggregates keep no paths ` +
  `(a later conversion's path also lacks touchpoints older than the rule)`;

/** The performance report reads live allocations only; spend is never pruned. */
export const PERFORMANCE_PRUNED = (days: number, first: string, last: string) =>
  `${days} day(s) of this period (${first} to ${last}) are left out of conversions, attributed and verified revenue: the tenant's retention rule removed their events, ` +
  `and daily aggregates keep no orders to verify against the ledger; spend of those days is still counted (retention never removes spend), so their ROAS reads low`;

/** The response field of a report over a period retention pruned (null: no day of it was). */
export const PrunedSchema = (description: string) =>
  Type.Union([Type.Null(), Type.Object({ days: Type.Integer(), first_day: Type.String({ format: 'date' }), last_day: Type.String({ format: 'date' }), note: Type.String() }, { additionalProperties: false })], { description });
