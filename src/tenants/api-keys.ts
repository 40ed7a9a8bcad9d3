import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API keys: `skd_` followed by 43 base64url characters (32 random bytes = 256 bits). The
 * prefix makes a leaked key recognisable (secret scanners, logs). Only the SHA-256 of the key
 * is stored: a key has 256 bits of entropy, so a fast hash cannot be brute-forced, and lookup
 * by hash is one index probe. (Slow password hashes exist for low-entropy secrets.)
 */
export const API_KEY_PREFIX = 'skd_';
const KEY_PATTERN = /^skd_[A-Za-z0-9_-]{43}$/;

export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(32).toString('base64url');
}

/** True when `key` has the shape of a Skeldir key (checked before any database work). */
export function looksLikeApiKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

/**
 * The stored form: lower-case hex SHA-256 (never matches a legacy `unset:<id>` placeholder).
 * One-shot crypto.hash rather than createHash().update().digest(): every API request hashes its
 * key (the cache is keyed by the hash), and the Hash object cost 16 µs of the 20 µs that
 * authentication took per request (server profile of bench/ingestion.bench.ts, single events).
 */
export function hashApiKey(key: string): string {
  return hash('sha256', key, 'hex');
}

/** Compares two hex hashes in constant time. */
export function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
