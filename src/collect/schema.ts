import { Type, type Static } from '@sinclair/typebox';
import { TIMESTAMP_PATTERN } from '../ingestion/schema.js';
import { OPAQUE_ID_PATTERN } from '../ingestion/session-id.js';
import { MAX_URL_LENGTH } from '../channels/schema.js';

/** Most events in one collect request (the tracker sends its queue in chunks of this size). */
export const MAX_COLLECT_EVENTS = 20;
/** A collect request is small: 20 events with 4 KiB URLs and referrers fit. */
export const COLLECT_BODY_LIMIT = 256 * 1024;

/** Same rule as ingestion's labels: no control characters, no leading or trailing white space. */
const TEXT_PATTERN = '^[^\\s\\p{Cc}\\u2028\\u2029](?:[^\\p{Cc}\\u2028\\u2029]*[^\\s\\p{Cc}\\u2028\\u2029])?$';

export const CollectEvent = Type.Object(
  {
    type: Type.Unsafe<'touch' | 'identify'>({
      type: 'string',
      enum: ['touch', 'identify'],
      description: 'touch: a page view that starts a visit (the landing page, or a page reached through a new campaign); identify: the visitor is this user.',
    }),
    event_id: Type.String({ pattern: '^[A-Za-z0-9_-]{8,64}$', description: 'Random id of the event, chosen by the tracker: a resend of the same event is stored once.' }),
    timestamp: Type.String({ pattern: TIMESTAMP_PATTERN, maxLength: 35, description: "When it happened, by the browser's clock (corrected with sent_at)." }),
    anonymous_id: Type.Optional(Type.String({ pattern: OPAQUE_ID_PATTERN, description: "The tracker's first-party anonymous id; absent without consent." })),
    session_id: Type.Optional(Type.String({ pattern: OPAQUE_ID_PATTERN, description: "The tracker's session id (stored as its name-based UUID); absent without consent." })),
    url: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_URL_LENGTH, description: 'touch: the page URL (campaign parameters and click ids are read from it).' })),
    referrer: Type.Optional(Type.String({ maxLength: MAX_URL_LENGTH, description: 'touch: document.referrer (only its origin is kept).' })),
    user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: TEXT_PATTERN, description: 'identify: the user id of the visitor.' })),
    webdriver: Type.Optional(Type.Boolean({ description: 'navigator.webdriver: the page runs under automation (the event is treated as a bot).' })),
  },
  { additionalProperties: false },
);
export type CollectEvent = Static<typeof CollectEvent>;

export const CollectBody = Type.Object(
  {
    sent_at: Type.Optional(
      Type.String({ pattern: TIMESTAMP_PATTERN, maxLength: 35, description: "When the tracker sent the request, by the browser's clock: event times are corrected by the difference to the server's clock." }),
    ),
    consent: Type.Optional(Type.Boolean({ description: 'True when the visitor consented (or consent is not required); identifiers are dropped otherwise when the key requires consent.' })),
    events: Type.Array(CollectEvent, { minItems: 1, maxItems: MAX_COLLECT_EVENTS }),
  },
  { additionalProperties: false },
);
export type CollectBody = Static<typeof CollectBody>;
