import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { hashesEqual } from '../tenants/api-keys.js';
import { CollectError, generatePublishableKey, hashPublishableKey, looksLikePublishableKey, normaliseOrigins, tenantOfKey } from './keys.js';
import { findActiveKeyByHash, findKey, insertKey, listKeys, revokeKey, updateKey, type KeyRow } from './store.js';
import { formatInstant, formatInstantOrNull } from '../db/timestamps.js';

/** A publishable key as the API and the CLI show it (never the key itself, except once at creation). */
export interface PublishableKeyView {
  id: string;
  name: string;
  /** `pk_…` and the key's last four characters. */
  hint: string;
  allowed_origins: string[];
  require_consent: boolean;
  honor_gpc: boolean;
  status: 'active' | 'revoked';
  created_at: string;
  revoked_at: string | null;
}

export interface CreatedPublishableKey extends PublishableKeyView {
  /** Shown once; only its hash is stored. */
  key: string;
  /** The HTML to paste into the site's pages. */
  snippet: string;
}

export interface KeySettings {
  name?: string | undefined;
  allowed_origins?: string[] | undefined;
  require_consent?: boolean | undefined;
  honor_gpc?: boolean | undefined;
}

export function view(row: KeyRow): PublishableKeyView {
  return {
    id: row.id,
    name: row.name,
    hint: `pk_…${row.key_hint}`,
    allowed_origins: row.allowed_origins,
    require_consent: row.require_consent,
    honor_gpc: row.honor_gpc,
    status: row.revoked_at ? 'revoked' : 'active',
    created_at: formatInstant(row.created_at),
    revoked_at: formatInstantOrNull(row.revoked_at),
  };
}

function validName(name: string): string {
  const trimmed = name.trim();
  if (trimmed === '' || [...trimmed].length > 255 || /[\p{Cc}]/u.test(trimmed)) {
    throw new CollectError('publishable_key_name_invalid', 'the key name must be 1-255 characters without control characters', { field: 'name' });
  }
  return trimmed;
}

/**
 * The snippet a site pastes into its pages: the tracker's stub queue (commands given before the
 * script has loaded are kept and run once it has), the script itself, and `init` with the key's
 * privacy settings (the server enforces them too).
 */
export function snippetFor(baseUrl: string, key: string, s: { require_consent: boolean; honor_gpc: boolean }): string {
  const base = baseUrl.replace(/\/+$/, '');
  const options = JSON.stringify({ requireConsent: s.require_consent, honorGpc: s.honor_gpc });
  return [
    '<script>',
    `  window.skeldir=window.skeldir||function(){(skeldir.q=skeldir.q||[]).push(arguments)};`,
    `  skeldir('init', '${key}', ${options});`,
    '</script>',
    `<script async src="${base}/sdk/v1/skeldir.js"></script>`,
  ].join('\n');
}

/** Issues a publishable key for a tenant (in the tenant's context, as the given role's pool). */
export async function createPublishableKey(pool: pg.Pool, tenantId: string, settings: KeySettings, baseUrl: string): Promise<CreatedPublishableKey> {
  const name = validName(settings.name ?? 'website');
  const origins = normaliseOrigins(settings.allowed_origins ?? []);
  const key = generatePublishableKey(tenantId);
  const row = await withTenant(pool, tenantId, (client) =>
    insertKey(client, tenantId, {
      hash: hashPublishableKey(key),
      hint: key.slice(-4),
      name,
      origins,
      requireConsent: settings.require_consent ?? false,
      honorGpc: settings.honor_gpc ?? true,
    }),
  );
  const shown = view(row);
  return { ...shown, key, snippet: snippetFor(baseUrl, key, shown) };
}

export async function listPublishableKeys(pool: pg.Pool, tenantId: string): Promise<PublishableKeyView[]> {
  return (await withTenant(pool, tenantId, (client) => listKeys(client, tenantId))).map(view);
}

/** Changes a key's name, origins or privacy settings; a revoked key cannot change. */
export async function updatePublishableKey(pool: pg.Pool, tenantId: string, id: string, settings: KeySettings): Promise<PublishableKeyView> {
  const name = settings.name === undefined ? null : validName(settings.name);
  const origins = settings.allowed_origins === undefined ? null : normaliseOrigins(settings.allowed_origins);
  return withTenant(pool, tenantId, async (client) => {
    const row = await updateKey(client, tenantId, id, {
      name,
      origins,
      requireConsent: settings.require_consent ?? null,
      honorGpc: settings.honor_gpc ?? null,
    });
    if (row) return view(row);
    const existing = await findKey(client, tenantId, id);
    if (existing) throw new CollectError('publishable_key_revoked', `publishable key ${id} is revoked; issue a new one`, { field: 'id' });
    throw new CollectError('publishable_key_not_found', `no publishable key ${id}`, { field: 'id' });
  });
}

export async function revokePublishableKey(pool: pg.Pool, tenantId: string, id: string): Promise<PublishableKeyView> {
  const row = await withTenant(pool, tenantId, (client) => revokeKey(client, tenantId, id, new Date()));
  if (!row) throw new CollectError('publishable_key_not_found', `no publishable key ${id}`, { field: 'id' });
  return view(row);
}

/** What the collect endpoint needs to know about a presented key. */
export interface ResolvedKey {
  tenantId: string;
  keyId: string;
  allowedOrigins: readonly string[];
  requireConsent: boolean;
  honorGpc: boolean;
}

/**
 * Resolves publishable keys, remembering successes for `ttlMs` (as ApiKeyAuthenticator does for
 * secret keys: a revoked key or a changed origin list takes effect within that time). Unknown
 * keys always ask the database, so a key issued a moment ago works at once. The lookup runs in
 * the tenant context the key names; the stored hash is compared again in constant time.
 */
export class PublishableKeyResolver {
  private readonly cache = new Map<string, { key: ResolvedKey; until: number }>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly ttlMs = 5_000,
    private readonly now: () => number = Date.now,
    private readonly maxEntries = 10_000,
  ) {}

  async resolve(key: string): Promise<ResolvedKey | null> {
    if (!looksLikePublishableKey(key)) return null;
    const tenantId = tenantOfKey(key);
    if (!tenantId) return null;
    const hash = hashPublishableKey(key);
    const now = this.now();
    const hit = this.cache.get(hash);
    if (hit && hit.until > now) return hit.key;
    if (hit) this.cache.delete(hash);
    const row = await withTenant(this.pool, tenantId, (client) => findActiveKeyByHash(client, tenantId, hash));
    if (!row || !hashesEqual(row.key_hash, hash)) return null;
    const resolved: ResolvedKey = {
      tenantId,
      keyId: row.id,
      allowedOrigins: row.allowed_origins,
      requireConsent: row.require_consent,
      honorGpc: row.honor_gpc,
    };
    if (this.ttlMs > 0) {
      if (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(hash, { key: resolved, until: now + this.ttlMs });
    }
    return resolved;
  }
}
