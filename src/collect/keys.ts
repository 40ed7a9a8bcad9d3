import { randomBytes } from 'node:crypto';
import { DomainError } from '../errors.js';
import { hashApiKey } from '../tenants/api-keys.js';

export class CollectError extends DomainError {}

/**
 * Publishable keys: `pk_` + the tenant id (16 bytes, 22 base64url characters) + 24 random bytes
 * (32 base64url characters, 192 bits). A publishable key is public by design (it sits in every
 * page of the site), so naming its tenant gives nothing away; it lets the key be looked up
 * inside that tenant's context (row-level security, one shard on Citus) instead of across all
 * tenants. The random part makes keys unguessable; only the SHA-256 of the whole key is stored,
 * like secret keys (src/tenants/api-keys.ts).
 */
export const PUBLISHABLE_KEY_PREFIX = 'pk_';
const KEY_PATTERN = /^pk_([A-Za-z0-9_-]{22})([A-Za-z0-9_-]{32})$/;

export function generatePublishableKey(tenantId: string): string {
  return PUBLISHABLE_KEY_PREFIX + Buffer.from(tenantId.replace(/-/g, ''), 'hex').toString('base64url') + randomBytes(24).toString('base64url');
}

/** True when `text` has the shape of a publishable key (checked before anything else). */
export function looksLikePublishableKey(text: string): boolean {
  return text.startsWith(PUBLISHABLE_KEY_PREFIX) && KEY_PATTERN.test(text);
}

/** The tenant a well-formed key names, or null (a non-canonical encoding of the id names none). */
export function tenantOfKey(key: string): string | null {
  const match = KEY_PATTERN.exec(key);
  if (!match) return null;
  const bytes = Buffer.from(match[1]!, 'base64url');
  if (bytes.length !== 16 || bytes.toString('base64url') !== match[1]) return null;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const hashPublishableKey = hashApiKey;

/** Longest origin accepted in a key's list (a host name is at most 253 characters). */
const MAX_ORIGIN = 300;
export const MAX_ORIGINS = 50;

/**
 * An allowed origin in its stored form: `scheme://host[:port]` as browsers serialise the Origin
 * header (lower-case host, default port left out), or `scheme://*.domain[:port]` for every
 * subdomain of `domain` (not `domain` itself: list it too if it serves pages). Only http and
 * https; no path, query, credentials or fragment.
 */
export function normaliseOrigin(text: string, field = 'allowed_origins'): string {
  const bad = (why: string) => new CollectError('allowed_origin_invalid', `allowed origin ${JSON.stringify(text.slice(0, 100))} ${why}`, { field });
  if (text.length > MAX_ORIGIN) throw bad(`is longer than ${MAX_ORIGIN} characters`);
  const wildcard = /^(https?):\/\/\*\.(.+)$/i.exec(text);
  let url: URL;
  try {
    url = new URL(wildcard ? `${wildcard[1]}://${wildcard[2]}` : text);
  } catch {
    throw bad('is not an origin such as https://shop.example or https://*.shop.example');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad('must use http or https');
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) {
    throw bad('must be scheme://host[:port] only, without a path, query or fragment');
  }
  const labels = url.hostname.replace(/\.$/, '').split('.');
  if (wildcard && (url.hostname.includes('*') || labels.length < 2 || labels.some((l) => l === '') || /^\d+\.\d+\.\d+\.\d+$/.test(url.hostname) || url.hostname.startsWith('['))) {
    throw bad('has a wildcard over something that is not a domain name with a dot (e.g. https://*.shop.example)');
  }
  if (url.hostname.includes('*')) throw bad('may use * only as the first label (https://*.shop.example)');
  return wildcard ? `${url.protocol}//*.${url.host}` : url.origin;
}

/** Normalises a list of origins: at least one, at most MAX_ORIGINS, duplicates folded, sorted. */
export function normaliseOrigins(list: readonly string[], field = 'allowed_origins'): string[] {
  if (list.length === 0) throw new CollectError('allowed_origin_invalid', 'give at least one allowed origin (e.g. https://shop.example)', { field });
  const out = [...new Set(list.map((o, i) => normaliseOrigin(o, `${field}/${i}`)))].sort();
  if (out.length > MAX_ORIGINS) throw new CollectError('allowed_origin_invalid', `at most ${MAX_ORIGINS} allowed origins per key`, { field });
  return out;
}

/**
 * Whether a browser's Origin header is one of `allowed`. The header is compared in the form
 * browsers send it (scheme://host[:port]); `null` (sandboxed frames, file: pages) and anything
 * unparsable match nothing.
 */
export function originAllowed(origin: string, allowed: readonly string[]): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  // Browsers send the serialised origin; anything else (a path, upper case) is not one.
  if (url.origin !== origin) return false;
  for (const entry of allowed) {
    if (entry === url.origin) return true;
    const star = entry.indexOf('//*.');
    if (star < 0) continue;
    const scheme = entry.slice(0, star);
    const [domain, port = ''] = entry.slice(star + 4).split(':') as [string, string?];
    if (url.protocol === scheme && url.port === port && url.hostname.endsWith(`.${domain}`)) return true;
  }
  return false;
}
