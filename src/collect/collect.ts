import type { RuleSet } from '../channels/classify.js';
import { prepareEvent, parseTimestamp, type PreparedEvent } from '../ingestion/prepare.js';
import type { EventInput } from '../ingestion/schema.js';
import { deviceClass, isBotTraffic, readLanding, readReferrer, type DeviceClass } from './enrich.js';
import { CollectError } from './keys.js';
import type { ResolvedKey } from './publishable-keys.js';
import type { CollectBody } from './schema.js';

/** Oldest event accepted (the tracker drops queued events older than this before sending). */
export const MAX_EVENT_AGE_MS = 7 * 86_400_000;

/** What the request says about the browser beyond its body. */
export interface BrowserSignals {
  userAgent: string | undefined;
  /** Sec-CH-UA-Mobile. */
  mobileHint: string | undefined;
  /** Sec-CH-UA (brands). */
  brandHint: string | undefined;
  /** Sec-GPC: 1. */
  gpc: boolean;
}

export interface CollectPlan {
  /** The whole request is bot traffic: nothing is stored, its events are counted as bots. */
  bot: boolean;
  touches: PreparedEvent[];
  identifies: { anonymousId: string; userId: string; at: string }[];
  /** Touches stored without an identifier (no consent, Global Privacy Control). */
  anonymousTouches: number;
  /** Identifies dropped because the visitor has not consented. */
  identifiesWithoutConsent: number;
  device: DeviceClass;
}

/**
 * May the events of this request carry identifiers? Not when the visitor refused consent (the
 * tracker says `consent: false`), not when the key requires consent and the visitor has not
 * given it, not when the key honours Global Privacy Control and the browser sends it. The
 * tracker applies the same rules before it stores or sends anything; this is the server's own
 * check, for trackers that do not.
 */
export function identifiersAllowed(key: ResolvedKey, body: Pick<CollectBody, 'consent'>, gpc: boolean): boolean {
  if (body.consent === false) return false;
  if (key.requireConsent && body.consent !== true) return false;
  if (key.honorGpc && gpc) return false;
  return true;
}

/**
 * Turns a validated collect body into what to store: touchpoint events (prepared exactly like
 * `POST /api/v1/events` events, so the same channel rules and checks apply) and identity links.
 * Throws a CollectError naming the field for input the schema cannot judge (a URL that is not
 * http(s), an event too old); nothing is stored then.
 */
export function planCollect(tenantKey: ResolvedKey, body: CollectBody, signals: BrowserSignals, rules: RuleSet, now: number): CollectPlan {
  const bot = isBotTraffic(signals.userAgent, { webdriver: body.events.some((e) => e.webdriver === true), brandHint: signals.brandHint });
  const device = deviceClass(signals.userAgent, signals.mobileHint);
  const allowed = identifiersAllowed(tenantKey, body, signals.gpc);
  const sentAt = body.sent_at === undefined ? null : parseTimestamp(body.sent_at);
  if (body.sent_at !== undefined && sentAt === null) {
    throw new CollectError('timestamp_invalid', `sent_at ${JSON.stringify(body.sent_at)} is not a real date and time`, { field: 'body/sent_at' });
  }
  // The browser's clock may be off by anything: event times are moved by the difference between
  // its clock and the server's at sending time, and never lie in the future.
  const skew = sentAt === null ? 0 : now - sentAt;
  const plan: CollectPlan = { bot, touches: [], identifies: [], anonymousTouches: 0, identifiesWithoutConsent: 0, device };
  body.events.forEach((e, i) => {
    const pointer = `body/events/${i}`;
    const ts = parseTimestamp(e.timestamp);
    if (ts === null) throw new CollectError('timestamp_invalid', `timestamp ${JSON.stringify(e.timestamp)} is not a real date and time`, { field: `${pointer}/timestamp` });
    const at = Math.min(ts + skew, now);
    if (now - at > MAX_EVENT_AGE_MS) {
      throw new CollectError('collect_event_too_old', `event ${i} happened more than 7 days ago; the tracker drops such events`, { field: `${pointer}/timestamp` });
    }
    const timestamp = new Date(at).toISOString();
    if (e.type === 'identify') {
      if (e.anonymous_id === undefined) throw new CollectError('validation_failed', 'an identify needs anonymous_id', { field: `${pointer}/anonymous_id` });
      if (e.user_id === undefined) throw new CollectError('validation_failed', 'an identify needs user_id', { field: `${pointer}/user_id` });
      if (allowed) plan.identifies.push({ anonymousId: e.anonymous_id, userId: e.user_id, at: timestamp });
      else plan.identifiesWithoutConsent++;
      return;
    }
    if (e.url === undefined) throw new CollectError('validation_failed', 'a touch needs url (the page URL)', { field: `${pointer}/url` });
    const landing = readLanding(e.url);
    if (!landing) throw new CollectError('validation_failed', 'url must be an http or https URL', { field: `${pointer}/url` });
    const referrer = readReferrer(e.referrer, landing.host);
    const identified = allowed && e.anonymous_id !== undefined;
    if (!identified) plan.anonymousTouches++;
    const input: EventInput = {
      event_type: 'touchpoint',
      event_timestamp: timestamp,
      // Without an identifier each touch is its own session, named after the event (so a resend
      // of the same event lands in the same place).
      session_id: identified && e.session_id !== undefined ? e.session_id : `collect:${e.event_id}`,
      ...(identified ? { anonymous_id: e.anonymous_id } : {}),
      // What the tenant's channel rules look at (src/channels/classify.ts): campaign parameters,
      // click ids, the referrer's origin and the landing URL, personal data already removed.
      ...landing.utm,
      ...landing.clickIds,
      ...(referrer ? { referrer: referrer.origin } : {}),
      landing_url: landing.url,
    };
    const prepared = prepareEvent(tenantKey.tenantId, input, { headerKey: `collect:${e.event_id}`, pointer, rules, now });
    plan.touches.push({
      ...prepared,
      // Tracker events have a key space of their own: no server-side key can collide with one.
      scopedKey: `${tenantKey.tenantId}:collect:${e.event_id}`,
      raw: JSON.stringify({
        ...input,
        source: 'collect',
        publishable_key_id: tenantKey.keyId,
        ...(landing.stripped.length ? { stripped_parameters: landing.stripped } : {}),
        device_class: device,
      }),
    });
  });
  return plan;
}
