import type { Queryable } from '../db/pool.js';
import { AttributionError } from './errors.js';
import type { Touch } from './heuristics.js';

/** A conversion as the engine needs it. */
export interface Conversion {
  readonly id: string;
  readonly sessionId: string;
  readonly userId: string | null;
  /** The browser's first-party anonymous id the conversion was sent with (attribution_events.anonymous_id), null when none. */
  readonly anonymousId: string | null;
  /** Channel the conversion arrived through: one of the tenant's channels (any other code ⇒ 'unknown'). */
  readonly channel: string;
  /** Its campaign (events.campaign_id), null when none. */
  readonly campaign: string | null;
  /** Event time in ms since the epoch, with the microseconds as a fraction. */
  readonly at: number;
  /** Event time as PostgreSQL text, exact to the microsecond. */
  readonly atText: string;
  readonly valueCents: bigint;
  readonly currency: string;
}

/**
 * Loads one conversion (visible in the transaction's tenant context) and locks it against
 * concurrent recomputes (FOR NO KEY UPDATE: a second writer of the same conversion waits; other
 * work on the row, e.g. foreign keys, does not). Throws typed errors for data problems.
 */
export async function loadConversionForUpdate(client: Queryable, tenantId: string, conversionEventId: string): Promise<Conversion> {
  const r = await client.query<{
    id: string;
    event_type: string;
    session_id: string;
    user_id: string | null;
    anonymous_id: string | null;
    channel: string;
    campaign: string | null;
    at_ms: string;
    at_text: string;
    value: string | null;
    currency: string;
  }>(
    `SELECT e.id, e.event_type, e.session_id, e.user_id, e.anonymous_id, coalesce(ct.code, 'unknown') AS channel, e.campaign_id AS campaign,
            (extract(epoch FROM e.event_timestamp) * 1000)::text AS at_ms, e.event_timestamp::text AS at_text,
            e.conversion_value_cents::text AS value, e.currency
     FROM attribution_events e LEFT JOIN tenant_channels ct ON ct.tenant_id = e.tenant_id AND ct.code = e.channel
     WHERE e.tenant_id = $1 AND e.id = $2
     FOR NO KEY UPDATE OF e`,
    [tenantId, conversionEventId],
  );
  const row = r.rows[0];
  if (!row) throw new AttributionError('attribution_conversion_not_found', `event ${conversionEventId} does not exist for this tenant`, { eventId: conversionEventId });
  if (row.event_type !== 'conversion') {
    throw new AttributionError('attribution_not_a_conversion', `event ${conversionEventId} is a ${row.event_type}, not a conversion`, {
      eventId: conversionEventId,
      eventType: row.event_type,
    });
  }
  if (row.value === null) {
    throw new AttributionError('attribution_conversion_without_value', `conversion ${conversionEventId} has no conversion_value_cents`, { eventId: conversionEventId });
  }
  const valueCents = BigInt(row.value);
  if (valueCents < 0n) {
    throw new AttributionError('attribution_conversion_without_value', `conversion ${conversionEventId} has a negative value (${row.value})`, { eventId: conversionEventId });
  }
  return {
    id: row.id,
    sessionId: row.session_id,
    userId: row.user_id,
    anonymousId: row.anonymous_id,
    channel: row.channel,
    campaign: row.campaign,
    at: Number(row.at_ms),
    atText: row.at_text,
    valueCents,
    currency: row.currency,
  };
}

/**
 * The conversion's path: the tenant's touchpoints of the conversion's person with time in the
 * lookback window [conversion − lookback, conversion] (a touch at the conversion's own instant
 * counts), in time order, ties broken by event id. The person's touches are those
 * - of the same session;
 * - of the same user_id, when the conversion has one (the person's other sessions too);
 * - of every anonymous id the identity graph links to that user_id (identity_links: the
 *   person's browsers, on every device; src/identity/graph.ts);
 * - of the conversion's own anonymous id, when the server sent one (the same browser).
 * Codes that are not the tenant's channels read as 'unknown'.
 * The lookback is days × 24 h (hours, not calendar days: `make_interval(days => n)` would follow
 * the session time zone's DST changes, and window.ts counts n × 86,400,000 ms).
 * One index-served branch per kind of tie, not one OR (an OR over a subquery cannot use an
 * index): idx_attribution_events_journey (tenant, session, time), _user_journey (tenant, user,
 * time), idx_identity_links_user then _anonymous_journey (tenant, anonymous id, time), the
 * lookback in each branch's index condition. bench/journeys.bench.ts (300,000 touches, busy
 * machine): the one-OR form took 27–39× as long as this one; this one 1.1–1.7× the path query
 * before the graph, for 1.6× the touches.
 */
export async function loadPath(client: Queryable, tenantId: string, conversion: Conversion, lookbackDays: number): Promise<Touch[]> {
  const r = await client.query<{ channel: string; campaign: string | null; at_ms: string }>({
    // Named: parsed once per connection, not per conversion.
    name: 'skeldir_attribution_path',
    text: `WITH ids AS (
       SELECT s.id FROM attribution_events s
        WHERE s.tenant_id = $1 AND s.session_id = $2
          AND s.event_timestamp <= $4::timestamptz AND s.event_timestamp >= $4::timestamptz - make_interval(hours => 24 * $5)
       UNION
       SELECT u.id FROM attribution_events u
        WHERE u.tenant_id = $1 AND u.user_id = ANY($3::varchar[])
          AND u.event_timestamp <= $4::timestamptz AND u.event_timestamp >= $4::timestamptz - make_interval(hours => 24 * $5)
       UNION
       SELECT a.id FROM identity_links l JOIN attribution_events a ON a.tenant_id = l.tenant_id AND a.anonymous_id = l.anonymous_id
        WHERE l.tenant_id = $1 AND l.user_id = ANY($3::varchar[]) AND a.tenant_id = $1 AND a.anonymous_id IS NOT NULL
          AND a.event_timestamp <= $4::timestamptz AND a.event_timestamp >= $4::timestamptz - make_interval(hours => 24 * $5)
       UNION
       SELECT b.id FROM attribution_events b
        WHERE b.tenant_id = $1 AND b.anonymous_id = ANY($6::varchar[])
          AND b.event_timestamp <= $4::timestamptz AND b.event_timestamp >= $4::timestamptz - make_interval(hours => 24 * $5)
     )
     SELECT coalesce(ct.code, 'unknown') AS channel, t.campaign_id AS campaign, (extract(epoch FROM t.event_timestamp) * 1000)::text AS at_ms
     FROM attribution_events t
     JOIN ids ON ids.id = t.id
     LEFT JOIN tenant_channels ct ON ct.tenant_id = t.tenant_id AND ct.code = t.channel
     WHERE t.tenant_id = $1 AND t.event_type = 'touchpoint'
     ORDER BY t.event_timestamp, t.id`,
    // A missing user id or anonymous id is an empty list, not NULL: `x = NULL` behind row-level
    // security still plans a (parallel) scan of its branch, which cost 10 ms to start and stop.
    values: [
      tenantId,
      conversion.sessionId,
      conversion.userId === null ? [] : [conversion.userId],
      conversion.atText,
      lookbackDays,
      conversion.anonymousId === null ? [] : [conversion.anonymousId],
    ],
  });
  return r.rows.map((x) => ({ channel: x.channel, at: Number(x.at_ms), campaign: x.campaign }));
}
