import { Type, type Static } from '@sinclair/typebox';
import { TouchFields } from '../channels/schema.js';
import { ProblemBody } from '../http/openapi.js';
import { OPAQUE_ID_PATTERN } from './session-id.js';

/** Most events per batch request. */
export const MAX_BATCH = 1000;
/** Longest client idempotency key: `<tenant_id>:ext:` (41 characters) + 200 fits varchar(255). */
export const MAX_KEY_LENGTH = 200;
/** Idempotency keys: visible ASCII, no spaces (UUIDs, hashes, order numbers, ULIDs …). */
export const KEY_PATTERN = `^[\\x21-\\x7E]{1,${MAX_KEY_LENGTH}}$`;
/** RFC 3339 date-time with an explicit offset, up to microseconds (PostgreSQL's precision). */
export const TIMESTAMP_PATTERN = '^\\d{4}-\\d{2}-\\d{2}[Tt]\\d{2}:\\d{2}:\\d{2}(?:\\.\\d{1,6})?(?:[Zz]|[+-]\\d{2}:\\d{2})$';
/**
 * Identifiers and labels: no control characters (Unicode category Cc: C0, DEL and C1), no line
 * or paragraph separators (U+2028, U+2029), no leading or trailing white space. Ajv compiles
 * patterns with the `u` flag, so `\p{Cc}` is understood.
 */
const TEXT_PATTERN = '^[^\\s\\p{Cc}\\u2028\\u2029](?:[^\\p{Cc}\\u2028\\u2029]*[^\\s\\p{Cc}\\u2028\\u2029])?$';
/** Largest value of the integer columns (conversion_value_cents, revenue_cents). */
export const MAX_VALUE_CENTS = 2_147_483_647;

const text = (maxLength: number, description: string) => Type.String({ minLength: 1, maxLength, pattern: TEXT_PATTERN, description });

export const EventInput = Type.Object(
  {
    idempotency_key: Type.Optional(
      Type.String({ pattern: KEY_PATTERN, description: 'Idempotency key (or the Idempotency-Key header): 1–200 visible ASCII characters.' }),
    ),
    event_type: Type.Unsafe<'touchpoint' | 'conversion'>({ type: 'string', enum: ['touchpoint', 'conversion'], description: 'touchpoint or conversion' }),
    event_timestamp: Type.String({
      pattern: TIMESTAMP_PATTERN,
      maxLength: 35,
      description: 'When it happened: RFC 3339 with an offset (2026-03-01T12:00:00Z, …+01:00); from 2000-01-01 to 24 hours ahead.',
    }),
    session_id: Type.String({
      pattern: OPAQUE_ID_PATTERN,
      description:
        'Visitor session: the journey key. A UUID, or any other id of 1–255 visible ASCII characters (a GA client id, a platform visitor id), stored as its name-based UUID (v5; docs/ingestion.md).',
    }),
    anonymous_id: Type.Optional(
      Type.String({
        pattern: OPAQUE_ID_PATTERN,
        description: "The tracker's first-party anonymous id of the browser (skeldir('anonymousId')): the event joins that browser's journey and its identity links.",
      }),
    ),
    user_id: Type.Optional(text(255, "The sender's id of the person: stitches their sessions into one journey.")),
    ...TouchFields,
    conversion_value_cents: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_VALUE_CENTS,
        description: 'Value in minor units of `currency` (cents for USD, yen for JPY). Required on a conversion (0 is allowed); optional on a touchpoint.',
      }),
    ),
    currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217 code; required with conversion_value_cents, and only with it.' })),
    order_id: Type.Optional(text(255, 'Merchant order the conversion belongs to (links it to the payment ledger).')),
  },
  { additionalProperties: false },
);
export type EventInput = Static<typeof EventInput>;

export const BatchInput = Type.Object(
  {
    events: Type.Array(EventInput, {
      minItems: 1,
      maxItems: MAX_BATCH,
      description: `1–${MAX_BATCH} events, each with its own idempotency_key field. Items are validated one by one: a bad item is reported in its result and does not sink the others.`,
    }),
  },
  { additionalProperties: false },
);

/** The envelope of a batch alone: items are validated one by one in the handler. */
export const BatchEnvelope = Type.Object(
  { events: Type.Array(Type.Unknown(), { minItems: 1, maxItems: MAX_BATCH }) },
  { additionalProperties: false },
);

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const EventOutput = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    idempotency_key: Type.String(),
    event_type: Type.String(),
    event_timestamp: Type.String({ format: 'date-time' }),
    session_id: Type.String({ format: 'uuid' }),
    anonymous_id: Nullable(Type.String()),
    user_id: Nullable(Type.String()),
    channel: Type.String({ description: "The tenant's channel the event was classified to (docs/channels.md)." }),
    campaign_id: Nullable(Type.String()),
    conversion_value_cents: Type.Union([Type.Integer(), Type.Null()]),
    currency: Nullable(Type.String({ description: 'ISO 4217 code of the value; null when the event carries none.' })),
    order_id: Nullable(Type.String()),
    processing_status: Type.String({ description: 'pending until the worker has processed the event, then processed (or failed).' }),
    received_at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);
export type EventOutput = Static<typeof EventOutput>;

export const BatchOutput = Type.Object(
  {
    results: Type.Array(
      Type.Object(
        {
          index: Type.Integer({ description: 'Position of the item in the request.' }),
          status: Type.Integer({ description: '201 created, 200 replay, 409 key reused with a different body, 4xx invalid.' }),
          event: Type.Optional(EventOutput),
          problem: Type.Optional(ProblemBody),
        },
        { additionalProperties: false },
      ),
    ),
    created: Type.Integer(),
    replayed: Type.Integer(),
    failed: Type.Integer(),
  },
  { additionalProperties: false },
);
export type BatchOutput = Static<typeof BatchOutput>;
