import type { Queryable } from '../db/pool.js';
import { EVENTS_CHANNEL } from '../worker/channel.js';
import type { PreparedEvent } from './prepare.js';
import type { EventOutput } from './schema.js';
import { formatInstant } from '../db/timestamps.js';

/**
 * The SQL of ingestion, one function per statement. Every statement runs inside the request's
 * tenant transaction (row-level security isolates; the tenant_id written is checked by the
 * policy's WITH CHECK against the context).
 */

export interface StoredEvent {
  id: string;
  idempotency_key: string;
  event_type: string;
  event_timestamp: Date;
  session_id: string;
  anonymous_id: string | null;
  user_id: string | null;
  channel: string;
  campaign_id: string | null;
  conversion_value_cents: number | null;
  currency: string;
  order_id: string | null;
  processing_status: string;
  created_at: Date;
  request_hash: string | null;
}

const COLUMNS = `id, idempotency_key, event_type, event_timestamp, session_id, anonymous_id, user_id, channel, campaign_id,
  conversion_value_cents, currency, order_id, processing_status, created_at, encode(request_hash, 'hex') AS request_hash`;

/** What an insert returns of a new event: what the database decided. The rest is the prepared event, as written. */
export interface InsertedEvent {
  id: string;
  idempotency_key: string;
  event_timestamp: Date;
  created_at: Date;
}

/** The statement of insertEvents; also PREPAREd by the single-event path (src/ingestion/coalescer-store.ts). */
export const insertEventsSql = `WITH ins AS (
    INSERT INTO attribution_events (tenant_id, idempotency_key, event_type, event_timestamp, occurred_at, session_id, user_id,
      channel, campaign_id, conversion_value_cents, currency, order_id, raw_payload, revenue_cents, request_hash,
      processing_status, processed_at, anonymous_id)
    SELECT $1::uuid, u.k, u.t, u.ts::timestamptz, u.ts::timestamptz, u.s::uuid, u.usr, u.ch, u.cmp, u.v, u.cur, u.o,
           u.raw::jsonb, coalesce(u.v, 0), decode(u.h, 'hex'), 'pending', NULL, u.anon
      FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[],
                  $10::text[], $11::text[], $12::text[], $13::text[], $14::text[])
           WITH ORDINALITY AS u(k, t, ts, s, usr, ch, cmp, v, cur, o, raw, h, anon, n)
     ORDER BY u.n
    ON CONFLICT DO NOTHING
    RETURNING id, idempotency_key, event_timestamp, created_at
  ),
  -- One wake-up for the worker when anything was inserted (a volatile CTE runs exactly once). count():
  -- Citus refuses a CTE column of pseudo-type void ("column pg_notify has pseudo-type void").
  notified AS (SELECT count(pg_notify('${EVENTS_CHANNEL}', $1::text)) FROM (SELECT 1 FROM ins LIMIT 1) AS one)
  SELECT ins.* FROM ins LEFT JOIN notified ON true`;

/**
 * Inserts events (sorted by key, so two batches sharing keys lock them in the same order and
 * cannot deadlock) and returns the rows that were new; a key that exists already (or is being
 * inserted by a concurrent transaction, which ON CONFLICT waits for) is skipped. New events are
 * `pending` with `processed_at` NULL for the worker, which is woken by one NOTIFY per statement
 * (PostgreSQL delivers it at commit and folds duplicates). The legacy NOT NULL columns are
 * filled: occurred_at = event_timestamp, raw_payload = the event as received, revenue_cents =
 * the value or 0. The ON CONFLICT names no target: the key is unique through idx_events_idempotency
 * on one server and through (tenant_id, idempotency_key) on Citus (docs/scaling.md).
 */
export async function insertEvents(client: Queryable, tenantId: string, events: readonly PreparedEvent[]): Promise<InsertedEvent[]> {
  if (events.length === 0) return [];
  const sorted = [...events].sort((a, b) => (a.scopedKey < b.scopedKey ? -1 : a.scopedKey > b.scopedKey ? 1 : 0));
  const col = <T>(f: (e: PreparedEvent) => T) => sorted.map(f);
  const { rows } = await client.query<InsertedEvent>({
    // A named statement is parsed and planned once per connection (the text never varies: the
    // events travel as arrays, whatever their number). It returns only what the database decides
    // (id, the timestamp as stored, created_at): the other columns are the prepared event's.
    name: 'skeldir_ingest_events_v2',
    text: insertEventsSql,
    values: [
      tenantId,
      col((e) => e.scopedKey),
      col((e) => e.eventType),
      col((e) => e.timestamp),
      col((e) => e.sessionId),
      col((e) => e.userId),
      col((e) => e.channel),
      col((e) => e.campaignId),
      col((e) => e.valueCents),
      col((e) => e.currency),
      col((e) => e.orderId),
      col((e) => e.raw),
      col((e) => e.requestHash),
      col((e) => e.anonymousId),
    ],
  });
  return rows;
}

/** The stored events with these (tenant-scoped) keys. */
export async function findByKeys(client: Queryable, keys: readonly string[]): Promise<StoredEvent[]> {
  if (keys.length === 0) return [];
  const { rows } = await client.query<StoredEvent>({
    name: 'skeldir_ingest_find_keys',
    text: `SELECT ${COLUMNS} FROM attribution_events WHERE idempotency_key = ANY($1::text[])`,
    values: [keys],
  });
  return rows;
}

/** One event by id; another tenant's event is simply not there. */
export async function findById(client: Queryable, id: string): Promise<StoredEvent | undefined> {
  const { rows } = await client.query<StoredEvent>(`SELECT ${COLUMNS} FROM attribution_events WHERE id = $1`, [id]);
  return rows[0];
}

/** The API's view of an event just inserted: the prepared event with what the database decided. */
export function insertedOutput(e: PreparedEvent, row: InsertedEvent, tenantId: string): EventOutput {
  return toOutput(
    {
      id: row.id,
      idempotency_key: row.idempotency_key,
      event_type: e.eventType,
      event_timestamp: row.event_timestamp,
      session_id: e.sessionId,
      anonymous_id: e.anonymousId,
      user_id: e.userId,
      channel: e.channel,
      campaign_id: e.campaignId,
      conversion_value_cents: e.valueCents,
      currency: e.currency,
      order_id: e.orderId,
      processing_status: 'pending',
      created_at: row.created_at,
      request_hash: e.requestHash,
    },
    tenantId,
  );
}

/** The API's view of a stored event. */
export function toOutput(row: StoredEvent, tenantId: string): EventOutput {
  const prefix = `${tenantId}:`;
  let key = row.idempotency_key.startsWith(prefix) ? row.idempotency_key.slice(prefix.length) : row.idempotency_key;
  if (key.startsWith('ext:')) key = key.slice(4);
  return {
    id: row.id,
    idempotency_key: key,
    event_type: row.event_type,
    event_timestamp: formatInstant(row.event_timestamp),
    session_id: row.session_id,
    anonymous_id: row.anonymous_id,
    user_id: row.user_id,
    channel: row.channel,
    campaign_id: row.campaign_id,
    conversion_value_cents: row.conversion_value_cents,
    currency: row.conversion_value_cents === null ? null : row.currency,
    order_id: row.order_id,
    processing_status: row.processing_status,
    received_at: formatInstant(row.created_at),
  };
}
