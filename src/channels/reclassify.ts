import type pg from 'pg';
import { attributeConversion } from '../attribution/entry.js';
import { readSettings } from '../attribution/settings.js';
import type { Queryable } from '../db/pool.js';
import { withTenant } from '../db/tenant-context.js';
import { compareInstants, formatInstantOrNull, inStorableYears } from '../db/timestamps.js';
import { classify, CLICK_IDS, type RuleSet, type Touch } from './classify.js';
import { loadRuleSet } from './cache.js';
import { ChannelError } from './errors.js';

/**
 * Re-classification of past events after a change of channels or rules: the events of [from, to)
 * in (event time, id) order, `limit` per batch, each batch one transaction. An event's touch is
 * what it was received with (raw_payload: channel, utm_*, campaign_id, referrer, landing_url, click
 * ids); an event whose payload says nothing about its channel (legacy rows, imports) keeps its
 * channel. Changed events get the new channel; the conversions whose paths they are on (same
 * session or user, within the lookback after the touch) and changed conversions themselves get
 * their per-conversion allocations recomputed in the same transaction, so the rule models never
 * disagree with the events. Population models (markov, shapley, bayesian) need a new run.
 */

export interface ReclassifyOptions {
  from?: Date;
  to?: Date;
  /** next_cursor of the previous batch. */
  cursor?: string;
  /** Events per batch, 1–5000. */
  limit?: number;
  dryRun?: boolean;
}

export interface BatchResult {
  examined: number;
  changed: number;
  /** Conversions whose rule-model allocations were recomputed. */
  reattributed: number;
  /** "from → to": events moved, this batch. */
  moves: Record<string, number>;
  next_cursor: string | null;
}

export const MAX_RECLASSIFY_BATCH = 5000;

export function encodeCursor(at: string, id: string): string {
  return Buffer.from(`${at}|${id}`).toString('base64url');
}

function decodeCursor(cursor: string): { at: string; id: string } {
  const text = Buffer.from(cursor, 'base64url').toString();
  const m = /^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?\+00)\|([0-9a-f-]{36})$/.exec(text);
  if (!m || encodeCursor(m[1]!, m[2]!) !== cursor) throw new ChannelError('reclassify_invalid', 'the cursor is not one this endpoint gave', { field: 'cursor' });
  return { at: m[1]!, id: m[2]! };
}

export function checkReclassifyOptions(o: ReclassifyOptions): void {
  for (const field of ['from', 'to'] as const) {
    const d = o[field];
    if (d !== undefined && (Number.isNaN(d.getTime()) || !inStorableYears(d))) {
      throw new ChannelError('reclassify_invalid', `${field} must be a timestamp in years 0001–9999`, { field });
    }
  }
  if (o.from && o.to && compareInstants(o.from, o.to) >= 0) throw new ChannelError('reclassify_invalid', 'to must be after from', { field: 'to' });
  if (o.limit !== undefined && !(Number.isInteger(o.limit) && o.limit >= 1 && o.limit <= MAX_RECLASSIFY_BATCH)) {
    throw new ChannelError('reclassify_invalid', `limit must be a whole number from 1 to ${MAX_RECLASSIFY_BATCH}`, { field: 'limit' });
  }
  if (o.cursor !== undefined) decodeCursor(o.cursor);
}

interface EventRow {
  id: string;
  event_type: string;
  channel: string;
  campaign_id: string | null;
  session_id: string;
  user_id: string | null;
  at: string;
  payload: Record<string, unknown> | null;
}

const TOUCH_KEYS = ['channel', 'utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term', 'campaign_id', 'referrer', 'landing_url', ...CLICK_IDS] as const;

/** The touch an event was received with (string fields of its raw payload). */
export function touchOf(payload: Record<string, unknown> | null): Touch {
  const touch: Record<string, string> = {};
  if (payload && typeof payload === 'object') for (const k of TOUCH_KEYS) if (typeof payload[k] === 'string') touch[k] = payload[k] as string;
  return touch as Touch;
}

/** One batch of events, keyset order (event time, id), as text so the cursor is exact to the microsecond. */
async function selectBatch(client: Queryable, tenantId: string, o: ReclassifyOptions, limit: number): Promise<EventRow[]> {
  const after = o.cursor ? decodeCursor(o.cursor) : null;
  const r = await client.query<EventRow>(
    `SELECT id, event_type, channel, campaign_id, session_id, user_id, event_timestamp::text AS at,
            jsonb_strip_nulls(jsonb_build_object(${TOUCH_KEYS.map((k) => `'${k}', raw_payload -> '${k}'`).join(', ')})) AS payload
       FROM attribution_events
      WHERE tenant_id = $1
        AND ($2::timestamptz IS NULL OR event_timestamp >= $2) AND ($3::timestamptz IS NULL OR event_timestamp < $3)
        AND ($4::timestamptz IS NULL OR (event_timestamp >= $4 AND (event_timestamp, id) > ($4::timestamptz, $5::uuid)))
      ORDER BY event_timestamp, id
      LIMIT $6`,
    [tenantId, formatInstantOrNull(o.from), formatInstantOrNull(o.to), after?.at ?? null, after?.id ?? null, limit],
  );
  return r.rows;
}

async function updateChannels(client: Queryable, tenantId: string, changes: { id: string; channel: string; campaign: string | null }[]): Promise<void> {
  await client.query(
    `UPDATE attribution_events e SET channel = c.channel, campaign_id = c.campaign
       FROM unnest($2::uuid[], $3::text[], $4::text[]) AS c(id, channel, campaign)
      WHERE e.tenant_id = $1 AND e.id = c.id`,
    [tenantId, changes.map((c) => c.id), changes.map((c) => c.channel), changes.map((c) => c.campaign)],
  );
}

/** Processed conversions whose path holds one of these touchpoints (same session, or same user, within the lookback after it). */
async function conversionsOnPaths(client: Queryable, tenantId: string, touches: EventRow[], lookbackDays: number): Promise<string[]> {
  if (touches.length === 0) return [];
  const r = await client.query<{ id: string }>(
    `WITH t AS (SELECT * FROM unnest($2::uuid[], $3::text[], $4::timestamptz[]) AS t(session_id, user_id, at))
     SELECT c.id FROM t JOIN attribution_events c
         ON c.tenant_id = $1 AND c.session_id = t.session_id
        AND c.event_timestamp >= t.at AND c.event_timestamp <= t.at + make_interval(hours => 24 * $5)
      WHERE c.event_type = 'conversion' AND c.processing_status = 'processed'
     UNION
     SELECT c.id FROM t JOIN attribution_events c
         ON c.tenant_id = $1 AND c.user_id = t.user_id
        AND c.event_timestamp >= t.at AND c.event_timestamp <= t.at + make_interval(hours => 24 * $5)
      WHERE t.user_id IS NOT NULL AND c.event_type = 'conversion' AND c.processing_status = 'processed'`,
    [tenantId, touches.map((t) => t.session_id), touches.map((t) => t.user_id), touches.map((t) => t.at), lookbackDays],
  );
  return r.rows.map((x) => x.id);
}

/** One batch in the caller's tenant transaction, with the given rules. */
export async function reclassifyBatch(client: pg.ClientBase, tenantId: string, rules: RuleSet, o: ReclassifyOptions): Promise<BatchResult> {
  checkReclassifyOptions(o);
  const limit = o.limit ?? 1000;
  const rows = await selectBatch(client, tenantId, o, limit);
  const changes: { id: string; channel: string; campaign: string | null }[] = [];
  const moves: Record<string, number> = {};
  const changedTouches: EventRow[] = [];
  const changedConversions: string[] = [];
  for (const row of rows) {
    const touch = touchOf(row.payload);
    const result = classify(touch, rules);
    if (!result.touch.informative) continue;
    if (result.channel === row.channel && result.campaign === row.campaign_id) continue;
    changes.push({ id: row.id, channel: result.channel, campaign: result.campaign });
    if (result.channel !== row.channel) {
      const move = `${row.channel} → ${result.channel}`;
      moves[move] = (moves[move] ?? 0) + 1;
    }
    if (row.event_type === 'conversion') changedConversions.push(row.id);
    else changedTouches.push(row);
  }
  let reattributed = 0;
  if (changes.length > 0 && !o.dryRun) {
    await updateChannels(client, tenantId, changes);
    const settings = await readSettings(client, tenantId);
    const conversions = new Set([...changedConversions, ...(await conversionsOnPaths(client, tenantId, changedTouches, settings.lookbackDays))]);
    // In id order: two writers of overlapping conversions lock them in the same order.
    for (const id of [...conversions].sort()) {
      const processed = await client.query(`SELECT 1 FROM attribution_events WHERE tenant_id = $1 AND id = $2 AND processing_status = 'processed'`, [tenantId, id]);
      if (processed.rowCount === 0) continue;
      await attributeConversion(client, tenantId, id);
      reattributed++;
    }
  }
  const last = rows[rows.length - 1];
  return {
    examined: rows.length,
    changed: changes.length,
    reattributed,
    moves,
    next_cursor: rows.length === limit && last ? encodeCursor(last.at, last.id) : null,
  };
}

/** How many events [from, to) holds (for a progress bar). */
export async function countEvents(client: Queryable, tenantId: string, o: Pick<ReclassifyOptions, 'from' | 'to'>): Promise<number> {
  const r = await client.query<{ n: string }>(
    `SELECT count(*) AS n FROM attribution_events WHERE tenant_id = $1
        AND ($2::timestamptz IS NULL OR event_timestamp >= $2) AND ($3::timestamptz IS NULL OR event_timestamp < $3)`,
    [tenantId, formatInstantOrNull(o.from), formatInstantOrNull(o.to)],
  );
  return Number(r.rows[0]!.n);
}

/** The whole range, batch after batch (each its own transaction), reporting progress; the totals. */
export async function reclassifyAll(
  pool: pg.Pool,
  tenantId: string,
  o: Omit<ReclassifyOptions, 'cursor'>,
  onBatch: (b: BatchResult) => void = () => {},
): Promise<Omit<BatchResult, 'next_cursor'>> {
  const rules = await withTenant(pool, tenantId, (c) => loadRuleSet(c, tenantId));
  const total: Omit<BatchResult, 'next_cursor'> = { examined: 0, changed: 0, reattributed: 0, moves: {} };
  let cursor: string | undefined;
  do {
    const b = await withTenant(pool, tenantId, (c) => reclassifyBatch(c, tenantId, rules, { ...o, ...(cursor ? { cursor } : {}) }));
    total.examined += b.examined;
    total.changed += b.changed;
    total.reattributed += b.reattributed;
    for (const [k, v] of Object.entries(b.moves)) total.moves[k] = (total.moves[k] ?? 0) + v;
    onBatch(b);
    cursor = b.next_cursor ?? undefined;
  } while (cursor);
  return total;
}
