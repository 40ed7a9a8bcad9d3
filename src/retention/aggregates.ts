import type { Queryable } from '../db/pool.js';
import type { ChannelFigure } from '../attribution/reports.js';

const DAY_MS = 86_400_000;

const isoDay = (dayNumber: number) => new Date(dayNumber * DAY_MS).toISOString().slice(0, 10);

export interface AggregateSource {
  /** UTC days of the period read from allocation_daily_aggregates. */
  days: number;
  first_day: string;
  last_day: string;
  note: string;
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
  // The days starting in [from, to): the first at or after `from`, the last before `to` (both in years 0001-9999).
  const first = Math.ceil(from.getTime() / DAY_MS);
  const last = Math.floor((to.getTime() - 1) / DAY_MS);
  if (first > last) return { channels: live, source: null };
  const days = [isoDay(first), isoDay(last)];
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
  const span = await client.query<{ days: number; first_day: string; last_day: string }>(
    `SELECT count(DISTINCT day)::int AS days, min(day)::text AS first_day, max(day)::text AS last_day FROM allocation_daily_aggregates
      WHERE tenant_id = $1 AND model_type = $2 AND day >= $3::date AND day <= $4::date`,
    [tenantId, model, ...days],
  );
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
  const r0 = span.rows[0]!;
  return {
    channels: [...lines.values()].sort((a, b) => (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : a.currency < b.currency ? -1 : 1)),
    source: {
      days: r0.days,
      first_day: r0.first_day,
      last_day: r0.last_day,
      note: `${r0.days} day(s) of this period (${r0.first_day} to ${r0.last_day}) come from daily aggregates: their events were removed by the tenant's retention rule`,
    },
  };
}
