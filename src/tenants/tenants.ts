import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { seedDefaultChannels } from '../channels/store.js';
import { DomainError } from '../errors.js';
import type { Queryable } from '../db/pool.js';
import { withTenant } from '../db/tenant-context.js';
import { generateApiKey, hashApiKey, hashesEqual } from './api-keys.js';
import { formatInstant } from '../db/timestamps.js';

export class TenantInputError extends DomainError {}
export class TenantNotFoundError extends DomainError {}

/** The WHATWG HTML "valid e-mail address", with at least one dot in the domain (deliverable addresses). */
const EMAIL = /^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** What a stored SHA-256 key hash looks like (legacy tenants carry an `unset:<id>` placeholder, revoked ones `revoked:<uuid>`). */
const KEY_HASH = /^[0-9a-f]{64}$/;

/** Default grace period of a rotated-out key: long enough to redeploy every client with the new key. */
export const DEFAULT_GRACE_MS = 24 * 3600_000;
/** Longest grace period accepted: a rotated-out key must not live on indefinitely. */
export const MAX_GRACE_MS = 30 * 24 * 3600_000;

export function validateTenantName(name: string): string {
  const trimmed = name.trim();
  if (trimmed === '') throw new TenantInputError('tenant_name_invalid', 'the tenant name must not be blank', { field: 'name' });
  if ([...trimmed].length > 255) throw new TenantInputError('tenant_name_invalid', 'the tenant name is longer than 255 characters', { field: 'name' });
  if (/[\u0000-\u001f\u007f]/.test(trimmed)) throw new TenantInputError('tenant_name_invalid', 'the tenant name contains control characters', { field: 'name' });
  return trimmed;
}

export function validateEmail(email: string): string {
  const trimmed = email.trim();
  if (trimmed.length > 254 || !EMAIL.test(trimmed) || trimmed.split('@')[0]!.length > 64) {
    throw new TenantInputError('tenant_email_invalid', `${JSON.stringify(email)} is not a valid e-mail address`, { field: 'email' });
  }
  return trimmed;
}

export function validateTenantId(id: string): string {
  if (!UUID.test(id)) throw new TenantInputError('tenant_id_invalid', `${JSON.stringify(id)} is not a tenant id (a UUID)`, { field: 'id' });
  return id.toLowerCase();
}

/** `0`, `90s`, `30m`, `24h`, `7d` → milliseconds (at most MAX_GRACE_MS). */
export function parseGrace(text: string): number {
  const match = /^(\d{1,7})([smhd]?)$/.exec(text.trim());
  const unit = match ? ({ '': 1000, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 } as const)[match[2] as '' | 's' | 'm' | 'h' | 'd'] : 0;
  const ms = match ? Number(match[1]) * unit : NaN;
  if (!match || (match[2] === '' && match[1] !== '0') || !(ms <= MAX_GRACE_MS)) {
    throw new TenantInputError('grace_invalid', `--grace ${JSON.stringify(text)}: give 0 or a duration such as 30m, 24h or 7d (at most 30d)`, {
      field: 'grace',
    });
  }
  return ms;
}

export interface CreatedTenant {
  tenant_id: string;
  /** Shown once; only its hash is stored. */
  api_key: string;
}

/**
 * Creates a tenant with a fresh API key and its default channels (the ten taxonomy codes), in one
 * transaction. Runs as the schema owner (administrative).
 */
export async function createTenant(owner: pg.Pool, input: { name: string; email: string }): Promise<CreatedTenant> {
  const name = validateTenantName(input.name);
  const email = validateEmail(input.email);
  const apiKey = generateApiKey();
  const id = randomUUID();
  await withTenant(owner, id, async (client) => {
    await client.query(`INSERT INTO tenants (id, name, api_key_hash, notification_email) VALUES ($1, $2, $3, $4)`, [id, name, hashApiKey(apiKey), email]);
    await seedDefaultChannels(client, id);
  });
  return { tenant_id: id, api_key: apiKey };
}

export interface RotatedKey {
  tenant_id: string;
  /** The new key, shown once. */
  api_key: string;
  /** Until when the previous key keeps working (ISO-8601), or null when there was no usable previous key. */
  previous_key_valid_until: string | null;
}

/**
 * Issues a new key for a tenant. The previous key (if the tenant had a usable one) moves to
 * `tenant_api_keys_retired` and keeps authenticating for `graceMs` (0 ends it at once).
 * Runs as the owner; the retired-key table's row-level security is forced, so it works inside
 * the tenant's context.
 */
export async function rotateApiKey(owner: pg.Pool, tenantId: string, graceMs = DEFAULT_GRACE_MS): Promise<RotatedKey> {
  const id = validateTenantId(tenantId);
  if (!Number.isInteger(graceMs) || graceMs < 0 || graceMs > MAX_GRACE_MS) throw new TenantInputError('grace_invalid', 'the grace period is out of range');
  return withTenant(owner, id, async (client) => {
    const current = await lockTenant(client, id);
    const apiKey = generateApiKey();
    let validUntil: string | null = null;
    if (KEY_HASH.test(current)) {
      const { rows } = await client.query<{ expires_at: Date }>(
        `INSERT INTO tenant_api_keys_retired (tenant_id, key_hash, retired_at, expires_at)
         VALUES ($1, $2, now(), now() + $3 * interval '1 millisecond') RETURNING expires_at`,
        [id, current, graceMs],
      );
      validUntil = graceMs > 0 ? formatInstant(rows[0]!.expires_at) : null;
    }
    await client.query(`UPDATE tenants SET api_key_hash = $2 WHERE id = $1`, [id, hashApiKey(apiKey)]);
    return { tenant_id: id, api_key: apiKey, previous_key_valid_until: validUntil };
  });
}

export interface RevokedKeys {
  tenant_id: string;
  /** Keys that stopped authenticating now (the current key and/or rotated-out keys still in grace). */
  revoked: number;
  /** True when the tenant has no usable key any more (until `rotate-key` issues one). */
  current_key_revoked: boolean;
}

/**
 * Revokes a tenant's keys at once: every key (the current one and rotated-out keys still in
 * their grace period), or with `previousOnly` just the rotated-out ones. Without a current key
 * the tenant cannot authenticate until `rotateApiKey` issues a new one. The current key's hash
 * is kept in `tenant_api_keys_retired` (revoked) for the record.
 */
export async function revokeApiKeys(owner: pg.Pool, tenantId: string, options: { previousOnly?: boolean } = {}): Promise<RevokedKeys> {
  const id = validateTenantId(tenantId);
  return withTenant(owner, id, async (client) => {
    const current = await lockTenant(client, id);
    const previous = await client.query(
      `UPDATE tenant_api_keys_retired SET revoked_at = now()
        WHERE tenant_id = $1 AND revoked_at IS NULL AND expires_at > now()`,
      [id],
    );
    let revoked = previous.rowCount ?? 0;
    let currentRevoked = false;
    if (!options.previousOnly && KEY_HASH.test(current)) {
      await client.query(
        `INSERT INTO tenant_api_keys_retired (tenant_id, key_hash, retired_at, expires_at, revoked_at) VALUES ($1, $2, now(), now(), now())`,
        [id, current],
      );
      // A placeholder no SHA-256 hex digest can equal: the tenant has no usable key. The UUID comes from
      // here, not gen_random_uuid(): Citus refuses a VOLATILE function in an UPDATE of a reference table.
      await client.query(`UPDATE tenants SET api_key_hash = 'revoked:' || $2 WHERE id = $1`, [id, randomUUID()]);
      revoked += 1;
      currentRevoked = true;
    }
    return { tenant_id: id, revoked, current_key_revoked: currentRevoked || !KEY_HASH.test(current) };
  });
}

async function lockTenant(client: Queryable, id: string): Promise<string> {
  const { rows } = await client.query<{ api_key_hash: string }>(`SELECT api_key_hash FROM tenants WHERE id = $1 FOR UPDATE`, [id]);
  if (rows.length === 0) throw new TenantNotFoundError('tenant_not_found', `no tenant ${id}`, { field: 'id' });
  return rows[0]!.api_key_hash;
}

export interface TenantSummary {
  tenant_id: string;
  name: string;
  notification_email: string;
  created_at: string;
  /** `active`: the tenant has a current key; `revoked`: revoked, none issued since; `unset`: migrated legacy tenant, never issued one. */
  current_key: 'active' | 'revoked' | 'unset';
  /** Rotated-out keys still in their grace period, with the end of each. */
  keys_in_grace: string[];
}

/** Every tenant with the state of its keys (administrative: runs as the owner). */
export async function listTenants(owner: pg.Pool): Promise<TenantSummary[]> {
  const { rows } = await owner.query<{ id: string; name: string; notification_email: string; created_at: Date; api_key_hash: string }>(
    `SELECT id, name, notification_email, created_at, api_key_hash FROM tenants ORDER BY created_at, id`,
  );
  const out: TenantSummary[] = [];
  for (const row of rows) {
    out.push({
      tenant_id: row.id,
      name: row.name,
      notification_email: row.notification_email,
      created_at: formatInstant(row.created_at),
      ...(await keyState(owner, row.id, row.api_key_hash)),
    });
  }
  return out;
}

/** The state of a tenant's keys (never the keys): whether it has a current key, and the rotated-out keys still in grace. */
export async function keyState(pool: pg.Pool, tenantId: string, currentHash?: string): Promise<Pick<TenantSummary, 'current_key' | 'keys_in_grace'>> {
  return withTenant(pool, tenantId, async (client) => {
    const hash = currentHash ?? (await client.query<{ h: string }>(`SELECT api_key_hash AS h FROM tenants WHERE id = $1`, [tenantId])).rows[0]?.h;
    if (hash === undefined) throw new TenantNotFoundError('tenant_not_found', `no tenant ${tenantId}`, { field: 'id' });
    const grace = await client.query<{ expires_at: Date }>(
      `SELECT expires_at FROM tenant_api_keys_retired
        WHERE tenant_id = $1 AND revoked_at IS NULL AND expires_at > now() ORDER BY expires_at`,
      [tenantId],
    );
    return {
      current_key: KEY_HASH.test(hash) ? 'active' : hash.startsWith('revoked:') ? 'revoked' : 'unset',
      keys_in_grace: grace.rows.map((r) => formatInstant(r.expires_at)),
    };
  });
}

/**
 * The tenant whose key has this SHA-256, or null (ApiKeyAuthenticator checks the key's shape and
 * hashes it first). The lookup is by hash (timing reveals nothing about the key itself), and the
 * stored hash is compared again in constant time. `skeldir_authenticate` answers for the current
 * key and for rotated-out keys still in their grace period (not revoked).
 */
export async function lookupKeyHash(app: pg.Pool | Queryable, hash: string): Promise<string | null> {
  const { rows } = await app.query<{ tenant_id: string; key_hash: string }>('SELECT tenant_id, key_hash FROM skeldir_authenticate($1)', [hash]);
  const row = rows[0];
  return row && hashesEqual(row.key_hash, hash) ? row.tenant_id : null;
}
