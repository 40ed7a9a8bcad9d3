import type pg from 'pg';
import { hashApiKey, looksLikeApiKey } from './api-keys.js';
import { lookupKeyHash } from './tenants.js';

/**
 * How long a successful authentication is remembered. A key revoked, rotated out of its grace
 * period or replaced keeps working in a process for at most this long. Without the cache every
 * request pays one more database round trip (skeldir_authenticate).
 */
export const AUTH_CACHE_TTL_MS = 5_000;
const MAX_ENTRIES = 10_000;

export interface AuthenticatorOptions {
  /** 0 disables the cache. */
  ttlMs?: number;
  maxEntries?: number;
  /** The clock (tests move it forward instead of waiting). */
  now?: () => number;
}

/**
 * Resolves API keys to tenants, remembering successes for a short, bounded time. Only
 * successes are cached (keyed by the key's SHA-256, never the key): an unknown key always asks
 * the database, so a key issued a moment ago works at once. The bound on revocation is the TTL.
 */
export class ApiKeyAuthenticator {
  private readonly cache = new Map<string, { tenantId: string; until: number }>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(
    private readonly pool: pg.Pool,
    options: AuthenticatorOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? AUTH_CACHE_TTL_MS;
    this.maxEntries = options.maxEntries ?? MAX_ENTRIES;
    this.now = options.now ?? Date.now;
  }

  /** Drops the cached keys of a tenant (after a revocation in this process). */
  forget(tenantId: string): void {
    for (const [hash, entry] of this.cache) if (entry.tenantId === tenantId) this.cache.delete(hash);
  }

  async authenticate(key: string): Promise<string | null> {
    if (!looksLikeApiKey(key)) return null;
    const hash = hashApiKey(key);
    const now = this.now();
    const hit = this.cache.get(hash);
    if (hit && hit.until > now) return hit.tenantId;
    if (hit) this.cache.delete(hash);
    const tenantId = await lookupKeyHash(this.pool, hash);
    if (tenantId && this.ttlMs > 0) {
      // Map keeps insertion order: evicting the first entry drops the oldest.
      if (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(hash, { tenantId, until: now + this.ttlMs });
    }
    return tenantId;
  }
}
