import { isbot } from 'isbot';
import { CLICK_IDS, type ClickId } from '../channels/classify.js';
import { MAX_URL_LENGTH } from '../channels/schema.js';

/**
 * Server-side enrichment of what a browser sends to POST /api/v1/collect: campaign parameters
 * read from the landing URL, the URL with anything that looks like personal data removed, the
 * referrer reduced to its origin, the user agent reduced to a device class, and bot traffic
 * recognised. Pure functions: the tests call them directly (src/collect/enrich.test.ts).
 */

/** The campaign parameters of a landing URL Skeldir keeps (and classifies the channel by). */
export const UTM_PARAMETERS = ['utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term'] as const;

export type UtmParameter = (typeof UTM_PARAMETERS)[number];

export interface Landing {
  /** The landing URL without personal data (and without its fragment). */
  url: string;
  /** Host of the landing page (lower case). */
  host: string;
  utm: Partial<Record<UtmParameter, string>>;
  clickIds: Partial<Record<ClickId, string>>;
  /** Names of the query parameters removed as personal data (never their values). */
  stripped: string[];
}

/** Longest value kept of a campaign parameter or click id (the width of the event columns). */
const MAX_PARAMETER = 255;

/**
 * Parameter names that carry personal data or credentials, whatever their value: contact data
 * (e-mail, phone, name, address), secrets (password, token, key, OAuth codes and states), session
 * and account identifiers. Matched on the lower-cased name with `-` read as `_`, as a whole name
 * or as its last `_` segment (`customer_email`, `user_phone`).
 */
const PII_NAMES = new Set([
  'email', 'e_mail', 'mail', 'emailaddress', 'email_address', 'phone', 'phonenumber', 'phone_number', 'tel', 'mobile', 'msisdn',
  'name', 'fullname', 'full_name', 'firstname', 'first_name', 'lastname', 'last_name', 'fname', 'lname', 'surname',
  'address', 'street', 'zip', 'zipcode', 'postcode', 'postal_code', 'city', 'dob', 'birthdate', 'birthday', 'ssn',
  'password', 'passwd', 'pass', 'pwd', 'secret', 'client_secret', 'token', 'access_token', 'id_token', 'refresh_token', 'auth',
  'authorization', 'api_key', 'apikey', 'key', 'code', 'state', 'otp', 'nonce', 'signature', 'sig', 'hash',
  'session', 'sessionid', 'session_id', 'sid', 'jsessionid', 'phpsessid', 'user', 'username', 'userid', 'user_id', 'login',
  'customer', 'customer_id', 'account', 'card', 'cc', 'cardnumber', 'card_number', 'cvv', 'iban',
]);
const PII_SUFFIXES = new Set(['email', 'mail', 'phone', 'name', 'password', 'token', 'secret', 'address', 'key', 'ssn']);

/** Anything shaped like an e-mail address (the local part may hold any of !#$%&'*+/=?^`{|}~). */
const EMAIL = /[^\s@]+@[^\s@]+\.[a-z]{2,}/i;
/** A JSON Web Token: three base64url parts, the first a JSON header ("eyJ" is `{"` in base64). */
const JWT = /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/;
/** A phone number: optional +, 7–15 digits with the usual separators. */
const PHONE = /^\+?[\d\s().-]{7,20}$/;
/** A card number: 13–19 digits, with spaces or dashes. */
const CARD = /^(?:\d[ -]?){12,18}\d$/;
/**
 * A credential-like token: 32 or more characters of base64/hex with both letters and digits.
 * Click ids look exactly like that, which is why they are read by name before this check.
 */
const TOKEN = /^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9+/=_-]{32,}$/;

/** Why a query parameter must go, or null when it may stay. Campaign parameters and click ids always stay. */
export function piiReason(name: string, value: string): string | null {
  const lower = name.toLowerCase().replace(/-/g, '_');
  if ((UTM_PARAMETERS as readonly string[]).includes(lower) || (CLICK_IDS as readonly string[]).includes(lower)) {
    return EMAIL.test(value) ? 'email' : null;
  }
  const last = lower.slice(lower.lastIndexOf('_') + 1);
  if (PII_NAMES.has(lower) || PII_SUFFIXES.has(last)) return 'name';
  if (EMAIL.test(value)) return 'email';
  if (JWT.test(value)) return 'token';
  if (TOKEN.test(value)) return 'token';
  const digits = value.replace(/\D/g, '').length;
  if (CARD.test(value) && luhn(value.replace(/\D/g, ''))) return 'card';
  if (PHONE.test(value) && digits >= 7 && digits <= 15 && /[\s().+-]/.test(value)) return 'phone';
  return null;
}

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 === 0;
}

/** Keeps printable text only, trimmed and cut to the column width. */
function cleanValue(value: string): string | undefined {
  const text = value.replace(/[\p{Cc}\u2028\u2029]/gu, '').trim().slice(0, MAX_PARAMETER).trim();
  return text === '' ? undefined : text;
}

/**
 * Reads a landing URL: its campaign parameters and click ids, and the URL itself with the
 * fragment, any user:password, and every query parameter that looks like personal data
 * removed (e-mail addresses in the path are replaced by `redacted`). Null when the text is not
 * an http(s) URL.
 */
export function readLanding(text: string): Landing | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  const utm: Landing['utm'] = {};
  const clickIds: Landing['clickIds'] = {};
  const stripped: string[] = [];
  const kept = new URLSearchParams();
  for (const [name, value] of url.searchParams) {
    const lower = name.toLowerCase();
    if ((UTM_PARAMETERS as readonly string[]).includes(lower)) {
      const v = cleanValue(value);
      if (v !== undefined && piiReason(lower, v) === null) utm[lower as UtmParameter] ??= v;
    } else if ((CLICK_IDS as readonly string[]).includes(lower)) {
      const v = cleanValue(value);
      if (v !== undefined) clickIds[lower as ClickId] ??= v;
    }
    if (piiReason(name, value) !== null) {
      if (!stripped.includes(name)) stripped.push(name);
      continue;
    }
    kept.append(name, value);
  }
  url.search = kept.toString();
  url.hash = '';
  url.username = '';
  url.password = '';
  url.pathname = url.pathname
    .split('/')
    .map((segment) => (EMAIL.test(safeDecode(segment)) ? 'redacted' : segment))
    .join('/');
  return { url: url.toString().slice(0, MAX_URL_LENGTH), host: url.hostname, utm, clickIds, stripped };
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * The referrer as Skeldir keeps it: its origin (scheme://host), nothing of its path or query
 * (search terms, ids). Null when absent, not http(s), or the landing page's own host (a visitor
 * moving inside the site is not referred).
 */
export function readReferrer(text: string | undefined, landingHost: string | undefined): { origin: string; host: string } | null {
  if (!text) return null;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (landingHost !== undefined && url.hostname === landingHost) return null;
  return { origin: url.origin, host: url.hostname };
}

export type DeviceClass = 'mobile' | 'tablet' | 'desktop' | 'other';

/**
 * The user agent reduced to a device class; the user agent itself is never stored. Client Hints
 * (`Sec-CH-UA-Mobile: ?1`) win when sent. Tablets before phones: an Android tablet has no
 * "Mobile" token, an iPad says iPad (iPadOS 13+ says Macintosh, and is counted as a desktop).
 * A dozen patterns do not justify a user-agent parsing library.
 */
export function deviceClass(userAgent: string | undefined, mobileHint?: string): DeviceClass {
  if (mobileHint === '?1') return 'mobile';
  const ua = userAgent ?? '';
  if (/iPad|Tablet|Kindle|Silk\/|PlayBook|Nexus (7|9|10)\b|SM-T\d|\bTab\b/i.test(ua) || (/Android/i.test(ua) && !/Mobile/i.test(ua))) return 'tablet';
  if (/Mobi|iPhone|iPod|Android|Windows Phone|BlackBerry|BB10|Opera Mini|IEMobile/i.test(ua)) return 'mobile';
  if (/Windows NT|Macintosh|Mac OS X|X11|Linux|CrOS/i.test(ua)) return 'desktop';
  return 'other';
}

/**
 * Bot and crawler traffic: no user agent, a user agent the `isbot` list recognises (crawlers,
 * link previewers, monitoring, HTTP libraries, HeadlessChrome, PhantomJS, Lighthouse …), the
 * Client Hints brand of a headless browser, or the tracker's report that the page runs under
 * automation (navigator.webdriver). Such events are counted, never stored.
 */
export function isBotTraffic(userAgent: string | undefined, signals: { webdriver?: boolean | undefined; brandHint?: string | undefined }): boolean {
  if (!userAgent || userAgent.trim() === '') return true;
  if (signals.webdriver === true) return true;
  if (signals.brandHint && /Headless/i.test(signals.brandHint)) return true;
  return isbot(userAgent);
}
