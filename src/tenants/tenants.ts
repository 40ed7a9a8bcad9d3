import type pg from 'pg';
import { DomainError } from '../errors.js';
import type { Queryable } from '../db/pool.js';
import { generateApiKey, hashApiKey, hashesEqual, looksLikeApiKey } from './api-keys.js';

export class TenantInputError extends DomainError {}

/** The WHATWG HTML "valid e-mail address", with at least one dot in the domain (deliverable addresses). */
const EMAIL = /^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+$/;

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

export interface CreatedTenant {
  tenant_id: string;
  /** Shown once; only its hash is stored. */
  api_key: string;
}

/** Creates a tenant with a fresh API key. Runs as the schema owner (administrative). */
export async function createTenant(owner: Queryable, input: { name: string; email: string }): Promise<CreatedTenant> {
  const name = validateTenantName(input.name);
  const email = validateEmail(input.email);
  const apiKey = generateApiKey();
  const { rows } = await owner.query<{ id: string }>(
    `INSERT INTO tenants (name, api_key_hash, notification_email) VALUES ($1, $2, $3) RETURNING id`,
    [name, hashApiKey(apiKey), email],
  );
  return { tenant_id: rows[0]!.id, api_key: apiKey };
}

/**
 * The tenant an API key belongs to, or null. A key of the wrong shape is refused before any
 * query. The lookup is by the key's SHA-256 (timing reveals nothing about the key itself),
 * and the stored hash is compared again in constant time.
 */
export async function authenticateApiKey(app: pg.Pool | Queryable, key: string): Promise<string | null> {
  if (!looksLikeApiKey(key)) return null;
  const hash = hashApiKey(key);
  const { rows } = await app.query<{ tenant_id: string; key_hash: string }>('SELECT tenant_id, key_hash FROM skeldir_authenticate($1)', [hash]);
  const row = rows[0];
  return row && hashesEqual(row.key_hash, hash) ? row.tenant_id : null;
}
