import type { Queryable } from '../db/pool.js';
import { EVENTS_CHANNEL } from '../worker/channel.js';
import type { EventOutput } from './schema.js';
import pg from 'pg';
import { compareInstants, formatInstant } from '../db/timestamps.js';
import type { PreparedEvent } from './prepare.js';

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

/**
 * What an insert returns of a new event: what the database decided. The rest is the prepared event, as
 * written, and so is the timestamp (PostgreSQL stores the text's instant exactly, to the microsecond:
 * instantText prints it without reading it back, which was ~9 µs per batched event with its parse).
 */
export interface InsertedEvent {
  id: string;
  idempotency_key: string;
  created_at: Date;
}

/**
 * The statement of insertEvents; also PREPAREd by the single-event path (src/ingestion/coalescer-store.ts).
 * The raw payloads travel as ONE jsonb array ($12), zipped with the other columns' arrays by ROWS
 * FROM: the events' JSON texts joined by commas, where a text[] element needed every `"` of the
 * JSON escaped (the regex replace and the longer query text were 11 µs per batched event in the
 * server profile, bench/ingestion.bench.ts, with much of the socket write's 22).
 */
export const insertEventsSql = `WITH ins AS (
    INSERT INTO attribution_events (tenant_id, idempotency_key, event_type, event_timestamp, occurred_at, session_id, user_id,
      channel, campaign_id, conversion_value_cents, currency, order_id, raw_payload, revenue_cents, request_hash,
      processing_status, processed_at, anonymous_id)
    SELECT $1::uuid, u.k, u.t, u.ts::timestamptz, u.ts::timestamptz, u.s::uuid, u.usr, u.ch, u.cmp, u.v, u.cur, u.o,
           u.raw, coalesce(u.v, 0), decode(u.h, 'hex'), 'pending', NULL, u.anon
      FROM ROWS FROM (unnest($2::text[]), unnest($3::text[]), unnest($4::text[]), unnest($5::text[]), unnest($6::text[]),
                      unnest($7::text[]), unnest($8::text[]), unnest($9::int[]), unnest($10::text[]), unnest($11::text[]),
                      jsonb_array_elements($12::jsonb), unnest($13::text[]), unnest($14::text[]))
           WITH ORDINALITY AS u(k, t, ts, s, usr, ch, cmp, v, cur, o, raw, h, anon, n)
     ORDER BY u.n
    ON CONFLICT DO NOTHING
    RETURNING id, idempotency_key, created_at
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
  const c = columnLiterals(sorted);
  const { rows } = await client.query<InsertedEvent>({
    // A named statement is parsed and planned once per connection (the text never varies: the
    // events travel as arrays, whatever their number). It returns only what the database decides
    // (id, created_at): the other columns are the prepared event's.
    name: 'skeldir_ingest_events_v3',
    text: insertEventsSql,
    values: [tenantId, c.k, c.t, c.ts, c.s, c.usr, c.ch, c.cmp, c.v, c.cur, c.o, c.raw, c.h, c.anon],
    types: SHARED_INSTANTS,
  });
  return rows;
}

/** An element of an array literal: quoted, `"` and `\` escaped (what pg's arrayString writes), NULL for null. */
const element = (v: string | null): string => (v === null ? 'NULL' : NEEDS_ESCAPE.test(v) ? `"${v.replace(ESCAPED, '\\$&')}"` : `"${v}"`);
const NEEDS_ESCAPE = /["\\]/;
const ESCAPED = /["\\]/g;

/**
 * Type parsers for a result whose rows share one timestamptz text (created_at is now() for every
 * row of a statement): the app's parser (src/db/pool.ts), run once per distinct text in a row
 * rather than once per row, the same Instant given to the rows that repeat it.
 */
export const SHARED_INSTANTS = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (text: string) => unknown {
    const base = pg.types.getTypeParser(oid, format as 'text') as (text: string) => unknown;
    if (oid !== pg.types.builtins.TIMESTAMPTZ) return base;
    let lastText: string | undefined;
    let last: unknown;
    return (text) => (text === lastText ? last : ((lastText = text), (last = base(text))));
  },
};

/**
 * The insert's column arrays as PostgreSQL array literals, built in one pass over the events, and the
 * raw payloads as one JSON array (each is a JSON text already: joined, nothing escaped). pg
 * would build the same text from JS arrays, but through 13 map()s and two regex replaces per
 * element; here an element without `"` or `\` is copied as it is, and the columns that cannot hold
 * either (the timestamp, matched by prepareEvent's pattern; the session UUID and the hex hash, made
 * there) are not tested at all.
 */
export function columnLiterals(events: readonly PreparedEvent[]) {
  let k = '', t = '', ts = '', s = '', usr = '', ch = '', cmp = '', v = '', cur = '', o = '', raw = '', h = '', anon = '';
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    const sep = i === 0 ? '' : ',';
    k += sep + element(e.scopedKey);
    t += sep + element(e.eventType);
    ts += `${sep}"${e.timestamp}"`;
    s += `${sep}"${e.sessionId}"`;
    usr += sep + element(e.userId);
    ch += sep + element(e.channel);
    cmp += sep + element(e.campaignId);
    v += sep + (e.valueCents === null ? 'NULL' : String(e.valueCents));
    cur += sep + element(e.currency);
    o += sep + element(e.orderId);
    raw += sep + e.raw;
    h += `${sep}"${e.requestHash}"`;
    anon += sep + element(e.anonymousId);
  }
  const a = (x: string) => `{${x}}`;
  return { k: a(k), t: a(t), ts: a(ts), s: a(s), usr: a(usr), ch: a(ch), cmp: a(cmp), v: a(v), cur: a(cur), o: a(o), raw: `[${raw}]`, h: a(h), anon: a(anon) };
}

// Both look-ups name tenant_id although the keys are tenant-scoped and row-level security hides
// other tenants: on Citus only an explicit tenant_id routes a statement to one shard (the policy's
// current_setting() does not), so without it each replay or GET ran on every shard.
export const FIND_BY_KEYS_SQL = `SELECT ${COLUMNS} FROM attribution_events WHERE tenant_id = $1::uuid AND idempotency_key = ANY($2::text[])`;
export const FIND_BY_ID_SQL = `SELECT ${COLUMNS} FROM attribution_events WHERE tenant_id = $1::uuid AND id = $2::uuid`;

/** The stored events of the tenant with these (tenant-scoped) keys. */
export async function findByKeys(client: Queryable, tenantId: string, keys: readonly string[]): Promise<StoredEvent[]> {
  if (keys.length === 0) return [];
  const { rows } = await client.query<StoredEvent>({ name: 'skeldir_ingest_find_keys_v2', text: FIND_BY_KEYS_SQL, values: [tenantId, keys] });
  return rows;
}

/** One event of the tenant by id; another tenant's event is simply not there. */
export async function findById(client: Queryable, tenantId: string, id: string): Promise<StoredEvent | undefined> {
  const { rows } = await client.query<StoredEvent>(FIND_BY_ID_SQL, [tenantId, id]);
  return rows[0];
}

/**
 * The API's view of an event just inserted: the prepared event with what the database decided.
 * Built directly (what toOutput gives for the same row: the client key is what toOutput strips the
 * scoped key back to), and created_at, now() for every row of the statement, is printed once per
 * batch rather than per row.
 */
export function insertedOutput(e: PreparedEvent, row: InsertedEvent, _tenantId: string): EventOutput {
  return {
    id: row.id,
    idempotency_key: e.clientKey,
    event_type: e.eventType,
    event_timestamp: e.instant,
    session_id: e.sessionId,
    anonymous_id: e.anonymousId,
    user_id: e.userId,
    channel: e.channel,
    campaign_id: e.campaignId,
    conversion_value_cents: e.valueCents,
    currency: e.valueCents === null ? null : e.currency,
    order_id: e.orderId,
    processing_status: 'pending',
    received_at: formatCached(row.created_at),
  };
}

let lastInstant: Date | undefined;
let lastText = '';
/** formatInstant, remembering the last instant printed (the rows of one insert share created_at). */
function formatCached(d: Date): string {
  if (lastInstant === undefined || compareInstants(lastInstant, d) !== 0) {
    lastText = formatInstant(d);
    lastInstant = d;
  }
  return lastText;
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
