import type { Queryable } from '../db/pool.js';
import { DomainError } from '../errors.js';
import { inStorableYears } from '../db/timestamps.js';

export class ReportError extends DomainError {}

export interface PathLine {
  /** Channel codes in touch order, e.g. ["facebook_paid", "email"]; [] for a conversion without touchpoints. */
  path: string[];
  currency: string;
  conversions: number;
  revenue_cents: number;
}

export const MAX_PATHS = 100;

/**
 * The most common conversion paths of [from, to): for each conversion, the channels of its
 * session's touchpoints within the tenant's lookback window before it, in time order (repeats
 * kept: "email > email" is a path), grouped with their conversions and value (minor units of the
 * conversion's currency; one line per currency). Sessions only: touchpoints joined through a
 * user_id on another session are not in these paths (the attribution models do use them).
 */
export async function conversionPaths(client: Queryable, tenantId: string, from: Date, to: Date, limit: number, lookbackDays: number): Promise<PathLine[]> {
  for (const [field, d] of [['from', from], ['to', to]] as const) {
    if (Number.isNaN(d.getTime()) || !inStorableYears(d)) throw new ReportError('report_window_invalid', `\`${field}\` must be a timestamp in years 0001–9999`, { field });
  }
  if (!(from < to)) throw new ReportError('report_window_invalid', '`from` must be before `to`', { field: 'from' });
  const { rows } = await client.query<{ path: string[] | null; currency: string; conversions: number; revenue: string }>(
    `SELECT p.path, c.currency, count(*)::int AS conversions, sum(coalesce(c.conversion_value_cents, 0))::text AS revenue
       FROM attribution_events c
       CROSS JOIN LATERAL (
         SELECT array_agg(coalesce(t.channel, 'unknown') ORDER BY t.event_timestamp, t.id) AS path
           FROM attribution_events t
          WHERE t.tenant_id = $1 AND t.session_id = c.session_id AND t.event_type = 'touchpoint'
            AND t.event_timestamp <= c.event_timestamp AND t.event_timestamp > c.event_timestamp - make_interval(days => $4)
       ) p
      WHERE c.tenant_id = $1 AND c.event_type = 'conversion' AND c.event_timestamp >= $2 AND c.event_timestamp < $3
      GROUP BY p.path, c.currency
      ORDER BY count(*) DESC, sum(coalesce(c.conversion_value_cents, 0)) DESC, p.path
      LIMIT $5`,
    [tenantId, from, to, lookbackDays, limit],
  );
  return rows.map((r) => ({ path: r.path ?? [], currency: r.currency, conversions: r.conversions, revenue_cents: Number(r.revenue) }));
}
