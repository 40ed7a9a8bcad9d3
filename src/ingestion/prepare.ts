import { hash } from 'node:crypto';
import { DomainError } from '../errors.js';
import { isCurrency } from '../money/currencies.js';
import { classify, type RuleSet } from '../channels/classify.js';
import { urlProblem } from '../channels/schema.js';
import { sessionUuid } from './session-id.js';
import { EventInput } from './schema.js';

export class IngestionError extends DomainError {}

/** Events may be at most this far ahead of the server's clock (senders' clocks drift). */
export const MAX_FUTURE_MS = 24 * 3600_000;
/** Nothing Skeldir attributes happened before this. */
export const MIN_TIMESTAMP_MS = Date.UTC(2000, 0, 1);

/** An event checked and normalised, ready to insert. */
export interface PreparedEvent {
  /** The client's key, as given. */
  clientKey: string;
  /** Where the key came from, for problems about it: `headers/idempotency-key` or `<pointer>/idempotency_key`. */
  keyField: string;
  /** The stored, tenant-scoped form: `<tenant_id>:ext:<client key>` (SPEC §1.2). */
  scopedKey: string;
  eventType: 'touchpoint' | 'conversion';
  /** The timestamp text as given (PostgreSQL parses it, keeping microseconds). */
  timestamp: string;
  /**
   * Its instant as the API prints a stored one (instantText), from prepareEvent's one match of the
   * text: the insert's output no longer matches the pattern a second time.
   */
  instant: string;
  sessionId: string;
  anonymousId: string | null;
  userId: string | null;
  channel: string;
  campaignId: string | null;
  valueCents: number | null;
  currency: string;
  orderId: string | null;
  /** The event exactly as received (JSON text), for raw_payload. */
  raw: string;
  /** SHA-256 (hex) of the canonical event without its key: tells a replay from a reused key. */
  requestHash: string;
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/** Days in each month of a common year; February gains one in a leap year (the Gregorian rule, as Date's). */
const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;

/**
 * Milliseconds since the epoch of an RFC 3339 timestamp, or null when it names no real instant.
 * Fields are read by position from the match and the instant is one Date.UTC (years 0-99, which
 * Date.UTC would take for 1900-1999, through setUTCFullYear): the slice/map and the two Date objects
 * before cost 9 µs per single-event request (server profile, bench/ingestion.bench.ts). A property
 * test holds it to the earlier version (prepare.test.ts).
 */
export function parseTimestamp(text: string): number | null {
  const m = TIMESTAMP.exec(text);
  return m ? matchedMs(m) : null;
}

/** parseTimestamp of a TIMESTAMP match (prepareEvent keeps the match for instantText's part). */
function matchedMs(m: RegExpExecArray): number | null {
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  if (day > (month === 2 && isLeap(year) ? 29 : MONTH_DAYS[month - 1]!)) return null;
  let offset = 0;
  if (m[8]) {
    const oh = Number(m[9]);
    const om = Number(m[10]);
    // PostgreSQL accepts offsets up to ±15:59.
    if (oh > 15 || om > 59) return null;
    offset = (m[8] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  const fraction = m[7] ? Math.floor(Number(m[7]) * 1000) : 0;
  if (year >= 100) return Date.UTC(year, month - 1, day, hour, minute, second, fraction) - offset;
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(hour, minute, second, fraction);
  return utc.getTime() - offset;
}

/**
 * The instant of a timestamp that prepareEvent accepted (a real date and time: nothing to
 * normalise), printed as formatInstant prints what
 * PostgreSQL stores of it (UTC, six fractional digits: timestamptz keeps the text's microseconds
 * exactly), so an insert need not return and parse it (postgres-date, then formatInstant: ~9 µs
 * per batched event in the server profile). The fraction is read as digits, not through a float
 * (parseTimestamp's `.57` is 569 ms; it only bounds the range). A property test holds it to
 * formatInstant(instantOf(text)) (prepare.test.ts) and the ingestion tests to the stored row.
 */
export function instantText(text: string): string {
  const m = TIMESTAMP.exec(text);
  if (!m) throw new RangeError(`not an RFC 3339 timestamp: ${JSON.stringify(text)}`);
  return matchedInstant(m);
}

/** instantText of a TIMESTAMP match of an accepted timestamp. */
function matchedInstant(m: RegExpExecArray): string {
  const digits = m[7] ? `${m[7].slice(1)}00000`.slice(0, 6) : '000000';
  // In UTC already (a real date: prepareEvent checked the calendar): the fields as written, no Date.
  if (!m[8]) return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${digits}Z`;
  const offset = (m[8] === '-' ? -1 : 1) * (Number(m[9]) * 60 + Number(m[10])) * 60_000;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), Number(digits.slice(0, 3))) - offset;
  return `${new Date(ms).toISOString().slice(0, -1)}${digits.slice(3)}Z`;
}

/** JSON with object keys sorted at every level: equal data, equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.keys(value as object)
    .sort()
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

export function requestHash(input: EventInput): string {
  return eventTexts(input).hashed;
}

/** The event's fields but its key, in key order, each with its quoted name: the canonical text is built from these. */
const HASHED_FIELDS = Object.keys(EventInput.properties)
  .filter((k) => k !== 'idempotency_key')
  .sort()
  .map((k) => ({ name: k, prefix: `${JSON.stringify(k)}:`, beforeKey: k < 'idempotency_key' }));
const KEY_PREFIX = `${JSON.stringify('idempotency_key')}:`;

/**
 * The request hash (SHA-256 hex of canonicalJson of the event without its key) and the text stored
 * as raw_payload (the event as received: a jsonb, which keeps neither key order nor spacing, so the
 * canonical text with the key is the same value as JSON.stringify(input)). A validated event is
 * flat (strings and integers) with only the schema's fields: both texts are written in one pass over
 * the schema's fields in key order, without sorting or copying the event; anything else (never
 * from the routes) takes canonicalJson. One-shot crypto.hash instead of createHash: together
 * 8.5 + 2.0 (JSON.stringify) → 3.8 ms per 1,000 of the benchmark's events (load ~20).
 */
export function eventTexts(input: EventInput): { hashed: string; raw: string } {
  const record = input as unknown as Record<string, unknown>;
  let before = '';
  let after = '';
  let fields = 0;
  for (const f of HASHED_FIELDS) {
    const value = record[f.name];
    if (value === undefined) continue;
    if (value !== null && typeof value === 'object') return generalTexts(input);
    const part = f.prefix + JSON.stringify(value);
    if (f.beforeKey) before = before === '' ? part : `${before},${part}`;
    else after = after === '' ? part : `${after},${part}`;
    fields++;
  }
  let present = 0;
  for (const k of Object.keys(record)) if (k !== 'idempotency_key' && record[k] !== undefined) present++;
  // A field outside the schema: the general path, so the hash is canonicalJson's whatever the input.
  if (present !== fields) return generalTexts(input);
  const body = before === '' ? after : after === '' ? before : `${before},${after}`;
  const key = input.idempotency_key === undefined ? undefined : KEY_PREFIX + JSON.stringify(input.idempotency_key);
  const raw = key === undefined ? body : before === '' ? (after === '' ? key : `${key},${after}`) : after === '' ? `${before},${key}` : `${before},${key},${after}`;
  return { hashed: hash('sha256', `{${body}}`, 'hex'), raw: `{${raw}}` };
}

function generalTexts(input: EventInput): { hashed: string; raw: string } {
  const { idempotency_key: _key, ...rest } = input;
  return { hashed: hash('sha256', canonicalJson(rest), 'hex'), raw: JSON.stringify(input) };
}

export function scopedKey(tenantId: string, clientKey: string): string {
  return `${tenantId}:ext:${clientKey}`;
}

function checkUrl(field: 'referrer' | 'landing_url', value: string, pointer: string): void {
  const problem = urlProblem(value);
  if (problem) throw new IngestionError('url_invalid', `${field} ${problem}`, { field: `${pointer}/${field}` });
}

/**
 * Checks what the schema cannot (which key applies, calendar and range of the timestamp,
 * the currency) and normalises the channel. `pointer` locates the event in the request
 * (`body`, or `body/events/3` in a batch) so every problem names its field.
 */
export function prepareEvent(
  tenantId: string,
  input: EventInput,
  options: { headerKey?: string | undefined; pointer: string; rules: RuleSet; now: number },
): PreparedEvent {
  const { pointer } = options;
  const fieldKey = input.idempotency_key;
  if (options.headerKey !== undefined && fieldKey !== undefined && options.headerKey !== fieldKey) {
    throw new IngestionError('idempotency_key_mismatch', 'the Idempotency-Key header and the idempotency_key field differ; send one, or the same in both', {
      field: `${pointer}/idempotency_key`,
    });
  }
  const clientKey = options.headerKey ?? fieldKey;
  if (clientKey === undefined) {
    throw new IngestionError('idempotency_key_missing', 'an idempotency key is required: the Idempotency-Key header or the idempotency_key field', {
      field: `${pointer}/idempotency_key`,
    });
  }

  const match = TIMESTAMP.exec(input.event_timestamp);
  const at = match ? matchedMs(match) : null;
  if (at === null) {
    throw new IngestionError('timestamp_invalid', `event_timestamp ${JSON.stringify(input.event_timestamp)} is not a real date and time`, {
      field: `${pointer}/event_timestamp`,
    });
  }
  if (at < MIN_TIMESTAMP_MS || at > options.now + MAX_FUTURE_MS) {
    throw new IngestionError(
      'timestamp_out_of_range',
      `event_timestamp ${JSON.stringify(input.event_timestamp)} is outside the accepted range (2000-01-01 to 24 hours from now)`,
      { field: `${pointer}/event_timestamp` },
    );
  }

  // Most events carry neither URL: no array, no loop, no parse for them.
  if (input.referrer !== undefined) checkUrl('referrer', input.referrer, pointer);
  if (input.landing_url !== undefined) checkUrl('landing_url', input.landing_url, pointer);

  if (input.currency !== undefined && !isCurrency(input.currency)) {
    throw new IngestionError('currency_invalid', `currency ${JSON.stringify(input.currency)} is not an ISO 4217 currency with minor units`, {
      field: `${pointer}/currency`,
    });
  }
  if (input.conversion_value_cents !== undefined && input.currency === undefined) {
    throw new IngestionError('currency_required', 'conversion_value_cents needs a currency (ISO 4217)', { field: `${pointer}/currency` });
  }
  // A conversion without a value cannot be attributed (the worker would dead-letter it after a
  // 201), and a currency without a value would be silently dropped: both are refused here.
  if (input.conversion_value_cents === undefined && (input.event_type === 'conversion' || input.currency !== undefined)) {
    throw new IngestionError(
      'conversion_value_required',
      input.event_type === 'conversion'
        ? 'a conversion needs conversion_value_cents (integer minor units; 0 is allowed) and its currency'
        : 'currency is given without conversion_value_cents: send the value with it, or neither',
      { field: `${pointer}/conversion_value_cents` },
    );
  }

  // The tenant's channel rules decide the channel (src/channels/classify.ts); the campaign is
  // campaign_id, else utm_campaign (from the field or the landing URL).
  const classified = classify(input, options.rules);
  const texts = eventTexts(input);
  return {
    clientKey,
    keyField: options.headerKey !== undefined ? 'headers/idempotency-key' : `${pointer}/idempotency_key`,
    scopedKey: scopedKey(tenantId, clientKey),
    eventType: input.event_type,
    timestamp: input.event_timestamp.toUpperCase(),
    instant: matchedInstant(match!),
    sessionId: sessionUuid(input.session_id),
    anonymousId: input.anonymous_id ?? null,
    userId: input.user_id ?? null,
    channel: classified.channel,
    campaignId: classified.campaign,
    valueCents: input.conversion_value_cents ?? null,
    // The column is NOT NULL DEFAULT 'USD'; only a touchpoint comes without a value (and then without a
    // currency): the stored USD means nothing and is shown as null.
    currency: input.currency ?? 'USD',
    orderId: input.order_id ?? null,
    raw: texts.raw,
    requestHash: texts.hashed,
  };
}
