import type { Queryable } from '../db/pool.js';
import { AttributionError } from './errors.js';
import type { Touch } from './heuristics.js';
import { MAX_POPULATION_CHANNELS, packJourneys, type JourneySet } from './journey-set.js';
import { formatInstant } from '../db/timestamps.js';

/** A conversion of the window, with the index of its journey in `journeys`. */
export interface WindowConversion {
  readonly id: string;
  readonly channel: string;
  readonly campaign: string | null;
  readonly at: number;
  readonly atText: string;
  readonly valueCents: bigint;
  readonly currency: string;
  /** Its path (touchpoints in the lookback window, time order); empty ⇒ credited to `channel`. */
  readonly touches: Touch[];
}

export interface WindowData {
  readonly conversions: WindowConversion[];
  /** Conversions in the window that have no value: skipped (they cannot be allocated). */
  readonly skippedWithoutValue: number;
  /** Converting journeys first (journey i = conversions[i]), then the non-converting journeys. */
  readonly journeys: JourneySet;
}

/**
 * Loads the window [from, to) of the tenant in the transaction's context and builds its journeys.
 *
 * - Converting journeys: for each conversion with a value, its path = the touchpoints of the same
 *   session, of the same user_id when the conversion has one, of every anonymous id the identity
 *   graph links to that user_id, and of the conversion's own anonymous id, with time in
 *   [conversion − lookback, conversion], in time order (ties: event id). An empty path is the
 *   conversion's own channel (the channel it arrived through).
 * - Non-converting journeys: the window's touchpoints (time in [from, to)) that are on no
 *   converting path, grouped by person: user_id, else the person an anonymous id is linked to
 *   (the first by user id when several), else the anonymous id (one browser), else the session;
 *   in time order.
 *
 * The same rule as the worker's per-conversion path (journeys.ts), applied to the whole window.
 */
export async function loadWindow(client: Queryable, tenantId: string, from: Date, to: Date, lookbackDays: number): Promise<WindowData> {
  const r = await client.query<{
    id: string;
    event_type: string;
    session_id: string;
    user_id: string | null;
    anonymous_id: string | null;
    channel: string;
    campaign: string | null;
    at_ms: number;
    at_text: string | null;
    value: number | null;
    currency: string;
  }>(
    // Only conversions need the exact text of their time (it becomes their allocations' created_at).
    `SELECT e.id, e.event_type, e.session_id, e.user_id, e.anonymous_id, coalesce(ct.code, 'unknown') AS channel, e.campaign_id AS campaign,
            (extract(epoch FROM e.event_timestamp) * 1000)::float8 AS at_ms,
            CASE WHEN e.event_type = 'conversion' THEN e.event_timestamp::text END AS at_text,
            e.conversion_value_cents AS value, e.currency
     FROM attribution_events e LEFT JOIN tenant_channels ct ON ct.tenant_id = e.tenant_id AND ct.code = e.channel
     WHERE e.tenant_id = $1
       AND e.event_timestamp >= $2::timestamptz - make_interval(hours => 24 * $4) AND e.event_timestamp < $3
       AND (e.event_type = 'touchpoint' OR (e.event_type = 'conversion' AND e.event_timestamp >= $2))
     ORDER BY e.event_timestamp, e.id`,
    [tenantId, formatInstant(from), formatInstant(to), lookbackDays],
  );
  const links = await loadLinks(client, tenantId);
  // The same lookback as the SQL above and journeys.ts: days × 24 h, whatever the session's zone.
  const lookbackMs = lookbackDays * 86_400_000;
  const fromMs = from.getTime();
  // Touches in time order; index = order.
  const tChannel: string[] = [];
  const tCampaign: (string | null)[] = [];
  const tAt: number[] = [];
  const tKey: string[] = [];
  const bySession = new Map<string, number[]>();
  const byUser = new Map<string, number[]>();
  const byAnonymous = new Map<string, number[]>();
  const convRows: typeof r.rows = [];
  for (const row of r.rows) {
    if (row.event_type !== 'touchpoint') {
      convRows.push(row);
      continue;
    }
    const i = tChannel.length;
    tChannel.push(row.channel);
    tCampaign.push(row.campaign);
    tAt.push(Number(row.at_ms));
    const linked = row.anonymous_id === null ? undefined : links.usersOf.get(row.anonymous_id);
    tKey.push(
      row.user_id !== null ? `u:${row.user_id}` : linked !== undefined ? `u:${linked[0]}` : row.anonymous_id !== null ? `a:${row.anonymous_id}` : `s:${row.session_id}`,
    );
    push(bySession, row.session_id, i);
    if (row.user_id !== null) push(byUser, row.user_id, i);
    if (row.anonymous_id !== null) push(byAnonymous, row.anonymous_id, i);
  }
  const used = new Uint8Array(tChannel.length);
  const conversions: WindowConversion[] = [];
  let skipped = 0;
  for (const row of convRows) {
    if (row.value === null || row.value < 0) {
      skipped++;
      continue;
    }
    const at = Number(row.at_ms);
    const picked = new Set<number>();
    for (const i of inWindow(bySession.get(row.session_id), tAt, at - lookbackMs, at)) picked.add(i);
    if (row.user_id !== null) {
      for (const i of inWindow(byUser.get(row.user_id), tAt, at - lookbackMs, at)) picked.add(i);
      for (const anonymous of links.anonymousOf.get(row.user_id) ?? []) for (const i of inWindow(byAnonymous.get(anonymous), tAt, at - lookbackMs, at)) picked.add(i);
    }
    if (row.anonymous_id !== null) for (const i of inWindow(byAnonymous.get(row.anonymous_id), tAt, at - lookbackMs, at)) picked.add(i);
    const order = [...picked].sort((a, b) => a - b);
    for (const i of order) used[i] = 1;
    conversions.push({
      id: row.id,
      channel: row.channel,
      campaign: row.campaign,
      at,
      atText: row.at_text!,
      valueCents: BigInt(row.value),
      currency: row.currency,
      touches: order.map((i) => ({ channel: tChannel[i]!, at: tAt[i]!, campaign: tCampaign[i]! })),
    });
  }
  // Non-converting journeys: unused touches inside [from, to), grouped by person.
  const nonConverting = new Map<string, number[]>();
  for (let i = 0; i < tChannel.length; i++) if (!used[i] && tAt[i]! >= fromMs) push(nonConverting, tKey[i]!, i);

  const codes = new Set<string>();
  for (const c of conversions) {
    if (c.touches.length === 0) codes.add(c.channel);
    for (const t of c.touches) codes.add(t.channel);
  }
  for (const list of nonConverting.values()) for (const i of list) codes.add(tChannel[i]!);
  const channels = [...codes].sort();
  if (channels.length > MAX_POPULATION_CHANNELS) {
    throw new AttributionError('attribution_window_invalid', `the window has ${channels.length} distinct channels; population models handle at most ${MAX_POPULATION_CHANNELS}`);
  }
  const id = new Map(channels.map((c, i) => [c, i]));
  const paths: number[][] = conversions.map((c) => (c.touches.length ? c.touches.map((t) => id.get(t.channel)!) : [id.get(c.channel)!]));
  for (const list of nonConverting.values()) paths.push(list.map((i) => id.get(tChannel[i]!)!));
  return { conversions, skippedWithoutValue: skipped, journeys: packJourneys(channels, paths, conversions.length) };
}

/**
 * The tenant's identity graph, both ways (user id → anonymous ids, anonymous id → user ids in
 * user id order). The whole graph: a window's touches may belong to any person.
 */
async function loadLinks(client: Queryable, tenantId: string): Promise<{ anonymousOf: Map<string, string[]>; usersOf: Map<string, string[]> }> {
  const r = await client.query<{ anonymous_id: string; user_id: string }>(
    `SELECT anonymous_id, user_id FROM identity_links WHERE tenant_id = $1 ORDER BY user_id, anonymous_id`,
    [tenantId],
  );
  const anonymousOf = new Map<string, string[]>();
  const usersOf = new Map<string, string[]>();
  for (const l of r.rows) {
    push(anonymousOf, l.user_id, l.anonymous_id);
    push(usersOf, l.anonymous_id, l.user_id);
  }
  return { anonymousOf, usersOf };
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

/** Touch indices of `list` (time-ordered) with time in [lo, hi]. */
function inWindow(list: number[] | undefined, at: number[], lo: number, hi: number): number[] {
  if (!list) return [];
  // Binary search for the first touch at or after lo.
  let a = 0;
  let b = list.length;
  while (a < b) {
    const mid = (a + b) >>> 1;
    if (at[list[mid]!]! < lo) a = mid + 1;
    else b = mid;
  }
  const out: number[] = [];
  for (let i = a; i < list.length && at[list[i]!]! <= hi; i++) out.push(list[i]!);
  return out;
}
