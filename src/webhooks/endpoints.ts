import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { DomainError } from '../errors.js';
import { PROVIDERS, type Provider } from '../ledger/apply.js';
import { encryptSecret, secretAad, type SecretKey } from './secret-key.js';
import { formatInstant, formatInstantOrNull } from '../db/timestamps.js';

export class WebhookInputError extends DomainError {}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SECRET = /^[\x21-\x7e]{8,500}$/;

export const urlPath = (provider: string, endpointId: string) => `/api/v1/webhooks/${provider}/${endpointId}`;

export function checkProvider(p: string): Provider {
  if (!(PROVIDERS as readonly string[]).includes(p)) {
    throw new WebhookInputError('webhook_provider_invalid', `provider must be one of ${PROVIDERS.join(', ')}, got ${JSON.stringify(p)}`, { field: 'provider' });
  }
  return p as Provider;
}

export function checkUuid(value: string, field: string): string {
  if (!UUID.test(value)) throw new WebhookInputError(`${field}_invalid`, `${field} must be a UUID, got ${JSON.stringify(value)}`, { field });
  return value.toLowerCase();
}

function checkSecret(secret: string | undefined, provider: Provider): string {
  if (secret === undefined) {
    if (provider === 'paypal') {
      throw new WebhookInputError('webhook_secret_invalid', 'a PayPal endpoint needs --secret <the webhook ID PayPal shows for this URL>', { field: 'secret' });
    }
    // Providers that let the merchant type a secret (WooCommerce) use this one; for Stripe and
    // Shopify, rotate to the secret they show once the URL is registered with them.
    return `skd_whsec_${randomBytes(32).toString('base64url')}`;
  }
  if (!SECRET.test(secret)) throw new WebhookInputError('webhook_secret_invalid', 'the secret must be 8-500 printable characters without spaces', { field: 'secret' });
  return secret;
}

/** In the tenant's own context, so it works for the schema owner (CLI) and the application role (web app) alike. */
async function tenantMustExist(pool: pg.Pool, tenantId: string): Promise<void> {
  const { rowCount } = await withTenant(pool, tenantId, (c) => c.query('SELECT 1 FROM tenants WHERE id = $1', [tenantId]));
  if (!rowCount) throw new WebhookInputError('tenant_not_found', `no tenant ${tenantId}`, { field: 'tenant' });
}

/** Administrative (schema owner, tenant context set): creates an endpoint; the secret is shown once. */
export async function createEndpoint(
  owner: pg.Pool,
  key: SecretKey,
  input: { tenantId: string; provider: string; secret?: string; description?: string },
): Promise<{ endpoint_id: string; provider: Provider; url_path: string; secret: string }> {
  const tenantId = checkUuid(input.tenantId, 'tenant');
  const provider = checkProvider(input.provider);
  const secret = checkSecret(input.secret, provider);
  await tenantMustExist(owner, tenantId);
  return withTenant(owner, tenantId, async (client) => {
    const id = (await client.query<{ id: string }>('SELECT gen_random_uuid() AS id')).rows[0]!.id;
    await client.query(
      `INSERT INTO webhook_endpoints (id, tenant_id, provider, secret_ciphertext, description) VALUES ($1, $2, $3, $4, $5)`,
      [id, tenantId, provider, encryptSecret(key, secret, secretAad(tenantId, id)), input.description ?? null],
    );
    return { endpoint_id: id, provider, url_path: urlPath(provider, id), secret };
  });
}

export interface EndpointSummary {
  endpoint_id: string;
  provider: string;
  url_path: string;
  description: string | null;
  created_at: string;
  rotated_at: string | null;
  previous_secret_valid_until: string | null;
  deliveries: number;
  last_delivery_at: string | null;
}

/** The tenant's endpoints (never their secrets). */
export async function listEndpoints(owner: pg.Pool, tenantIdInput: string): Promise<EndpointSummary[]> {
  const tenantId = checkUuid(tenantIdInput, 'tenant');
  await tenantMustExist(owner, tenantId);
  return withTenant(owner, tenantId, async (client) => {
    const { rows } = await client.query(
      `SELECT e.id, e.provider, e.description, e.created_at, e.rotated_at,
              CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret_expires_at END AS previous_until,
              coalesce(d.deliveries, 0) AS deliveries, d.last_delivery_at
         FROM webhook_endpoints e
         LEFT JOIN (SELECT endpoint_id, count(*) AS deliveries, max(received_at) AS last_delivery_at
                      FROM webhook_deliveries WHERE tenant_id = $1 GROUP BY endpoint_id) d ON d.endpoint_id = e.id
        WHERE e.tenant_id = $1
        ORDER BY e.created_at, e.id`,
      // An aggregate joined, not correlated subqueries, and tenant_id explicit: on Citus the deliveries
      // are one shard's router query (a correlated subquery next to a reference table is refused).
      [tenantId],
    );
    return rows.map((r) => ({
      endpoint_id: r.id,
      provider: r.provider,
      url_path: urlPath(r.provider, r.id),
      description: r.description,
      created_at: formatInstant(r.created_at),
      rotated_at: formatInstantOrNull(r.rotated_at),
      previous_secret_valid_until: formatInstantOrNull(r.previous_until),
      deliveries: Number(r.deliveries),
      last_delivery_at: formatInstantOrNull(r.last_delivery_at),
    }));
  });
}

/**
 * Rotates the secret: the new one (given or generated) becomes current and the old one stays
 * accepted for `graceHours` (0 = refused at once), so deliveries signed with either verify
 * while the provider switches over.
 */
export async function rotateEndpoint(
  owner: pg.Pool,
  key: SecretKey,
  input: { tenantId: string; endpointId: string; secret?: string; graceHours: number },
): Promise<{ endpoint_id: string; url_path: string; secret: string; previous_secret_valid_until: string | null }> {
  const tenantId = checkUuid(input.tenantId, 'tenant');
  const endpointId = checkUuid(input.endpointId, 'endpoint');
  if (!Number.isFinite(input.graceHours) || input.graceHours < 0 || input.graceHours > 24 * 30) {
    throw new WebhookInputError('webhook_grace_invalid', 'the grace period must be between 0 and 720 hours', { field: 'grace-hours' });
  }
  await tenantMustExist(owner, tenantId);
  return withTenant(owner, tenantId, async (client) => {
    const found = await client.query<{ provider: Provider; secret_ciphertext: string }>(
      `SELECT provider, secret_ciphertext FROM webhook_endpoints WHERE id = $1 FOR UPDATE`,
      [endpointId],
    );
    const row = found.rows[0];
    if (!row) throw new WebhookInputError('webhook_endpoint_not_found', `no endpoint ${endpointId} for tenant ${tenantId}`, { field: 'endpoint' });
    const secret = checkSecret(input.secret, row.provider);
    const grace = input.graceHours > 0;
    // The times come from here: Citus refuses now() inside CASE in an UPDATE of a reference table.
    const now = new Date();
    const { rows } = await client.query<{ until: Date | null }>(
      `UPDATE webhook_endpoints
          SET secret_ciphertext = $2, rotated_at = $4,
              previous_secret_ciphertext = CASE WHEN $3 THEN secret_ciphertext END,
              previous_secret_expires_at = $5
        WHERE id = $1
        RETURNING previous_secret_expires_at AS until`,
      [endpointId, encryptSecret(key, secret, secretAad(tenantId, endpointId)), grace, now, grace ? new Date(now.getTime() + input.graceHours * 3_600_000) : null],
    );
    return { endpoint_id: endpointId, url_path: urlPath(row.provider, endpointId), secret, previous_secret_valid_until: formatInstantOrNull(rows[0]!.until) };
  });
}

export async function deleteEndpoint(owner: pg.Pool, input: { tenantId: string; endpointId: string }): Promise<{ endpoint_id: string; deleted: true }> {
  const tenantId = checkUuid(input.tenantId, 'tenant');
  const endpointId = checkUuid(input.endpointId, 'endpoint');
  await tenantMustExist(owner, tenantId);
  return withTenant(owner, tenantId, async (client) => {
    const { rowCount } = await client.query('DELETE FROM webhook_endpoints WHERE id = $1', [endpointId]);
    if (!rowCount) throw new WebhookInputError('webhook_endpoint_not_found', `no endpoint ${endpointId} for tenant ${tenantId}`, { field: 'endpoint' });
    return { endpoint_id: endpointId, deleted: true as const };
  });
}
