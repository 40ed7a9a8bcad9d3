import { DomainError } from '../errors.js';

/**
 * Deepest nesting a provider payload may have. Real payloads are far deeper than the ingestion
 * API's 8 levels: a Shopify order nests `refunds/0/refund_line_items/0/line_item/tax_lines/0/
 * price_set/shop_money` (9 containers), a Stripe payment intent before API 2022-11-15 nests
 * `data/object/charges/data/0/payment_method_details/card/checks` (9). 64 leaves room for what
 * providers add later while still refusing a pathological body (the 1 MiB limit applies first).
 */
export const MAX_WEBHOOK_JSON_DEPTH = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A verified body that is not usable JSON: the delivery is dead-lettered with this code. */
export class WebhookBodyError extends DomainError {}

/**
 * Parses a webhook body *after* its signature was verified. Unlike the ingestion API's parser
 * it applies no key or NUL rules (the payload is the provider's, not an attacker's input to the
 * ingestion schema): the provider parsers read only the fields they use and check those, and a
 * NUL character is dealt with where a value is stored (see `storableJson`). Integers beyond
 * 2^53 (provider ids) arrive as strings with all their digits.
 */
export function parseWebhookJson(raw: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw new WebhookBodyError('invalid_utf8', 'the webhook body is not valid UTF-8');
  }
  if (text.trim() === '') throw new WebhookBodyError('empty_body', 'the webhook body is empty');
  let value: unknown;
  try {
    value = JSON.parse(preserveLargeIntegers(text), wellFormed);
  } catch (error) {
    if (error instanceof WebhookBodyError) throw error;
    throw new WebhookBodyError('malformed_json', `the webhook body is not valid JSON: ${(error as Error).message.slice(0, 200)}`);
  }
  return value;
}

/**
 * JSON may escape a lone UTF-16 surrogate (`"\ud800"`), which is not text: PostgreSQL refuses it
 * in jsonb and text, so storing the payload (or a label or error message quoting it) would fail
 * the whole delivery with a 500. String values get U+FFFD in its place, as the provider's own
 * UTF-8 encoders would; a key holding one makes the body unusable (dead-lettered as base64).
 */
// In `u` mode a surrogate pair is one code point, so these match lone halves only.
const LONE_SURROGATE = /\p{Cs}/u;
const LONE_SURROGATES = /\p{Cs}/gu;
function wellFormed(key: string, value: unknown): unknown {
  if (LONE_SURROGATE.test(key)) throw new WebhookBodyError('invalid_unicode', 'the webhook body has a key with an unpaired UTF-16 surrogate');
  return typeof value === 'string' ? value.replace(LONE_SURROGATES, '\uFFFD') : value;
}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
const SPACE = /[ \t\n\r]*/y;
const [QUOTE, BACKSLASH, OPEN_ARRAY, OPEN_OBJECT, CLOSE_ARRAY, CLOSE_OBJECT, MINUS, COLON] = [34, 92, 91, 123, 93, 125, 45, 58];

/**
 * One pass over the text, outside strings: refuses nesting deeper than the cap (before
 * JSON.parse builds anything), and turns integer literals a JavaScript number cannot hold
 * exactly into strings. Provider ids are JSON numbers (Shopify's order, refund and transaction
 * ids; its documented examples use 18-digit ids such as 820982911946154508, beyond 2^53) and
 * must keep every digit; amounts are never that large. Keys are left alone. Invalid JSON is
 * left for JSON.parse to report.
 */
function preserveLargeIntegers(text: string): string {
  let out = '';
  let copied = 0;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      for (i++; i < text.length && text.charCodeAt(i) !== QUOTE; i++) if (text.charCodeAt(i) === BACKSLASH) i++;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > MAX_WEBHOOK_JSON_DEPTH) throw new WebhookBodyError('too_deep', `the webhook body is nested more than ${MAX_WEBHOOK_JSON_DEPTH} levels deep`);
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--;
    } else if (c === MINUS || (c >= 48 && c <= 57)) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (!m) continue;
      const end = i + m[0].length;
      SPACE.lastIndex = end;
      SPACE.exec(text);
      const isKey = text.charCodeAt(SPACE.lastIndex) === COLON;
      if (m[1] === undefined && m[2] === undefined && !isKey && !Number.isSafeInteger(Number(m[0]))) {
        out += `${text.slice(copied, i)}"${m[0]}"`;
        copied = end;
      }
      i = end - 1;
    }
  }
  return copied === 0 ? text : out + text.slice(copied);
}

/**
 * The form a payload is stored in (dead_events.raw_payload, jsonb NOT NULL): the parsed object
 * itself when PostgreSQL can hold it; `{raw: value}` for a body that is not an object (`null`,
 * a number, a string, an array); the bytes in base64 when the body is not JSON or holds a NUL
 * character anywhere (jsonb cannot store U+0000).
 */
export function storableJson(parsed: unknown, body: Buffer): unknown {
  if (parsed === undefined || JSON.stringify(parsed).includes('\\u0000')) return { raw_base64: body.toString('base64') };
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { raw: parsed };
  return parsed;
}

/** A text value safe to store: no control characters (NUL cannot be stored at all), at most `max` characters. */
export function printable(value: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, max);
}
