import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { PoolClient } from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { DomainError } from '../errors.js';
import { applyFact, unscopedId, type Provider } from '../ledger/apply.js';
import { PayPalVerifier } from './paypal.js';
import { UUID } from './endpoints.js';
import { parseWebhookJson, printable, storableJson } from './json.js';
import { bodyId, isWooCommercePing, parseEvent, type ParsedEvent } from './providers.js';
import { decryptSecret, secretAad, type SecretKey } from './secret-key.js';
import { verifyBase64Hmac, verifyStripe } from './signatures.js';

/** Every verification failure: one answer, whatever the cause. */
export class WebhookUnauthorized extends DomainError {
  constructor() {
    super('webhook_signature_invalid', 'the webhook signature could not be verified for this endpoint');
  }
}

export interface DeliveryDeps {
  pool: pg.Pool;
  key: SecretKey;
  paypal: PayPalVerifier;
  now?: () => number;
  /** Logs a server-side problem (never the secret). */
  warn?: (message: string, detail?: Record<string, unknown>) => void;
}

export type Headers = Record<string, string | string[] | undefined>;

export interface DeliveryOutcome {
  status: 'applied' | 'duplicate' | 'ignored' | 'pending' | 'dead_lettered' | 'ping';
  event_id?: string;
  event_type?: string;
  transaction_id?: string;
  state?: string;
  dead_event_id?: string;
  detail?: string;
}

const header = (h: Headers, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

/**
 * A Shopify header by its name without prefix: Shopify sends `X-Shopify-Hmac-Sha256`,
 * `X-Shopify-Topic`, … and, in its newer deliveries, the same names without `X-`
 * (`Shopify-Hmac-Sha256`); either is read, the classic one first.
 */
const shopifyHeader = (h: Headers, name: string): string | undefined => header(h, `x-shopify-${name}`) ?? header(h, `shopify-${name}`);

interface Endpoint {
  tenant_id: string;
  provider: Provider;
  secret_ciphertext: string;
  previous_secret_ciphertext: string | null;
  previous_secret_expires_at: Date | null;
}

/**
 * Handles one webhook delivery: finds the endpoint (the only tenant-less step, through the
 * SECURITY DEFINER lookup), verifies the provider's signature over the raw bytes with the
 * current secret and, during a rotation window, the previous one, and only then parses the body
 * and records it in the endpoint's tenant, in one transaction: the dedup row on the provider's
 * event id, the ledger change (or the pending fact, or the dead letter).
 */
export async function deliverWebhook(deps: DeliveryDeps, provider: Provider, endpointId: string, body: Buffer, headers: Headers): Promise<DeliveryOutcome> {
  const nowMs = deps.now?.() ?? Date.now();
  const endpoint = UUID.test(endpointId) ? await lookup(deps.pool, endpointId) : null;
  if (!endpoint || endpoint.provider !== provider) {
    // Spend the same HMAC work as a real check so an unknown endpoint is not told apart by timing.
    verifyBase64Hmac(body, shopifyHeader(headers, 'hmac-sha256') ?? 'A'.repeat(43) + '=', randomBytes(32).toString('hex'));
    throw new WebhookUnauthorized();
  }
  if (provider === 'woocommerce' && header(headers, 'x-wc-webhook-signature') === undefined && isWooCommercePing(body)) {
    return { status: 'ping', detail: 'WooCommerce creation ping acknowledged; nothing recorded' };
  }
  const secrets = secretsOf(deps, endpoint, endpointId, nowMs);
  if (!(await verified(deps, provider, body, headers, secrets, nowMs))) throw new WebhookUnauthorized();

  let parsedBody: unknown;
  let bodyProblem: DomainError | undefined;
  try {
    parsedBody = parseWebhookJson(body);
  } catch (error) {
    bodyProblem = error as DomainError;
  }
  const eventIdHeader =
    provider === 'shopify' ? shopifyHeader(headers, 'webhook-id') ?? shopifyHeader(headers, 'event-id') :
    provider === 'woocommerce' ? header(headers, 'x-wc-webhook-delivery-id') : undefined;
  const topic = (provider === 'shopify' ? shopifyHeader(headers, 'topic') : provider === 'woocommerce' ? header(headers, 'x-wc-webhook-topic') : undefined) ?? '';
  const bodyEventId = parsedBody && typeof parsedBody === 'object' ? (parsedBody as { id?: unknown }).id : undefined;
  const rawEventId = provider === 'stripe' || provider === 'paypal' ? bodyEventId : eventIdHeader;
  const eventId = typeof rawEventId === 'string' && /^[\x21-\x7e]{1,200}$/.test(rawEventId) ? rawEventId : bodyId(body);
  const eventTypeGuess =
    (provider === 'stripe' ? (parsedBody as { type?: unknown })?.type : provider === 'paypal' ? (parsedBody as { event_type?: unknown })?.event_type : topic) ?? '';
  const eventType = (typeof eventTypeGuess === 'string' && printable(eventTypeGuess, 100)) || 'unknown';

  return withTenant(deps.pool, endpoint.tenant_id, async (client) => {
    // The dedup row first: a concurrent delivery of the same event waits here for this
    // transaction, then finds the row and answers `duplicate`. A redelivery of an event that was
    // dead-lettered takes its row over and is processed again (the provider's resend is the way
    // back once the cause is gone, e.g. a parser that now reads the payload); its dead event is
    // updated in place, or resolved when the event now goes through. received_at of a takeover is the
    // new row's default (now()): Citus refuses now() itself in ON CONFLICT DO UPDATE. Every
    // statement of the transaction names tenant_id (routed to the tenant's shard on Citus).
    const inserted = await client.query<{ id: string | null; dead_event_id: string | null; reporting: string }>(
      `WITH ins AS (
         INSERT INTO webhook_deliveries (tenant_id, endpoint_id, provider, provider_event_id, event_type, status)
         VALUES ($1, $2, $3, $4, $5, 'applied')
         ON CONFLICT (tenant_id, provider, provider_event_id) DO UPDATE
           SET status = 'applied', endpoint_id = EXCLUDED.endpoint_id, event_type = EXCLUDED.event_type, detail = NULL, received_at = EXCLUDED.received_at
           WHERE webhook_deliveries.status = 'dead_lettered'
         RETURNING id, dead_event_id
       )
       SELECT (SELECT id FROM ins) AS id, (SELECT dead_event_id FROM ins) AS dead_event_id,
              (SELECT reporting_currency FROM tenants WHERE id = $1) AS reporting`,
      [endpoint.tenant_id, endpointId, provider, eventId, eventType],
    );
    const deliveryId = inserted.rows[0]?.id;
    const previousDead = inserted.rows[0]?.dead_event_id ?? null;
    const reporting = inserted.rows[0]!.reporting;
    if (!deliveryId) return { status: 'duplicate', event_id: eventId, event_type: eventType, detail: 'this event was already received' };

    const dead = async (error: DomainError): Promise<DeliveryOutcome> => {
      const raw = storableJson(bodyProblem ? undefined : parsedBody, body);
      // Messages may quote payload text: stored without control characters (jsonb and text refuse NUL).
      const message = printable(error.message, 1000);
      const field = error.field === undefined ? null : printable(error.field, 200);
      const detail = { provider, endpoint_id: endpointId, event_id: eventId, event_type: eventType, field, message };
      const again = previousDead
        ? await client.query<{ id: string }>(
            `UPDATE dead_events SET error_code = $2, error_detail = $3, raw_payload = $4, error_message = $5,
                    retry_count = retry_count + 1, last_retry_at = now()
              WHERE tenant_id = $6 AND id = $1 RETURNING id`,
            [previousDead, error.code, detail, raw, message, endpoint.tenant_id],
          )
        : { rows: [] };
      const { rows } = again.rows.length
        ? again
        : await client.query<{ id: string }>(
            `INSERT INTO dead_events (tenant_id, source, error_code, error_detail, raw_payload, event_type, error_type, error_message)
             VALUES ($1, 'webhook', $2, $3, $4, $5, 'webhook_payload', $6) RETURNING id`,
            [endpoint.tenant_id, error.code, detail, raw, eventType.slice(0, 50), message],
          );
      await client.query(`UPDATE webhook_deliveries SET status = 'dead_lettered', dead_event_id = $2, detail = $3 WHERE tenant_id = $4 AND id = $1`, [
        deliveryId,
        rows[0]!.id,
        message,
        endpoint.tenant_id,
      ]);
      return { status: 'dead_lettered', event_id: eventId, event_type: eventType, dead_event_id: rows[0]!.id, detail: message };
    };

    const outcome = await process(client, deliveryId, reporting, dead);
    if (previousDead && outcome.status !== 'dead_lettered') {
      await client.query(
        // text || rather than concat_ws(): Citus refuses a STABLE function of a column in an UPDATE.
        `UPDATE dead_events SET remediation_status = 'resolved', resolved_at = now(), retry_count = retry_count + 1, last_retry_at = now(),
                remediation_notes = COALESCE(remediation_notes || E'\n', '') || $2::text
          WHERE tenant_id = $3 AND id = $1 AND remediation_status IN ('pending', 'in_progress')`,
        [previousDead, `redelivered by ${provider} and ${outcome.status}`, endpoint.tenant_id],
      );
    }
    return outcome;
  });

  async function process(client: PoolClient, deliveryId: string, reporting: string, dead: (error: DomainError) => Promise<DeliveryOutcome>): Promise<DeliveryOutcome> {
    if (bodyProblem) return dead(bodyProblem);
    let parsed: ParsedEvent;
    try {
      parsed = parseEvent(provider, parsedBody, topic);
    } catch (error) {
      if (error instanceof DomainError) return dead(error);
      throw error;
    }
    // WooCommerce order ids are per-site integers: two stores of one tenant would share them. Each
    // store has its own endpoint, so its ids are keyed by the endpoint (the order id that matches
    // conversions stays the store's own).
    const fact = parsed.fact && provider === 'woocommerce' ? { ...parsed.fact, target: `${endpointId}:${parsed.fact.target}` } : parsed.fact;
    if (!fact) {
      const detail = printable(parsed.ignored ?? 'nothing to record', 1000);
      await client.query(`UPDATE webhook_deliveries SET status = 'ignored', detail = $2 WHERE tenant_id = $3 AND id = $1`, [deliveryId, detail, endpoint!.tenant_id]);
      return { status: 'ignored', event_id: eventId, event_type: eventType, detail };
    }
    const reason = `${provider} ${eventType} ${eventId}`;
    await client.query('SAVEPOINT skeldir_fact');
    try {
      const r = await applyFact(client, { tenantId: endpoint!.tenant_id, provider, reason, reportingCurrency: reporting }, fact);
      await client.query('RELEASE SAVEPOINT skeldir_fact');
      if (r.status === 'pending') {
        await client.query(`UPDATE webhook_deliveries SET status = 'pending', pending_reference = $2, pending_fact = $3, detail = $4 WHERE tenant_id = $5 AND id = $1`, [
          deliveryId,
          r.reference,
          fact.knowledge,
          `waits for payment ${fact.target}`,
          endpoint!.tenant_id,
        ]);
        return { status: 'pending', event_id: eventId, event_type: eventType, transaction_id: fact.target, detail: `recorded; applied when payment ${fact.target} arrives` };
      }
      await client.query(`UPDATE webhook_deliveries SET status = 'applied', transaction_id = $2, applied_at = now() WHERE tenant_id = $3 AND id = $1`, [
        deliveryId,
        r.transactionId,
        endpoint!.tenant_id,
      ]);
      return { status: 'applied', event_id: eventId, event_type: eventType, transaction_id: unscopedId(r.transactionId), state: r.state };
    } catch (error) {
      // The ledger work is undone; the dedup row stays and records the dead letter.
      await client.query('ROLLBACK TO SAVEPOINT skeldir_fact');
      if (error instanceof DomainError) return dead(error);
      throw error;
    }
  }
}

async function lookup(pool: pg.Pool, endpointId: string): Promise<Endpoint | null> {
  const { rows } = await pool.query<Endpoint>(`SELECT * FROM skeldir_webhook_endpoint($1)`, [endpointId]);
  return rows[0] ?? null;
}

function secretsOf(deps: DeliveryDeps, e: Endpoint, endpointId: string, nowMs: number): string[] {
  const aad = secretAad(e.tenant_id, endpointId);
  const out: string[] = [];
  const slots: [string, string | null][] = [
    ['current', e.secret_ciphertext],
    ['previous', e.previous_secret_expires_at && e.previous_secret_expires_at.getTime() > nowMs ? e.previous_secret_ciphertext : null],
  ];
  for (const [slot, ct] of slots) {
    if (!ct) continue;
    try {
      out.push(decryptSecret(deps.key, ct, aad));
    } catch (error) {
      deps.warn?.('webhook secret cannot be decrypted', { endpoint_id: endpointId, slot, reason: (error as Error).message });
    }
  }
  return out;
}

async function verified(deps: DeliveryDeps, provider: Provider, body: Buffer, headers: Headers, secrets: string[], nowMs: number): Promise<boolean> {
  let ok = false;
  for (const secret of secrets) {
    switch (provider) {
      case 'stripe':
        ok = verifyStripe(body, header(headers, 'stripe-signature'), secret, Math.floor(nowMs / 1000)) || ok;
        break;
      case 'shopify':
        ok = verifyBase64Hmac(body, shopifyHeader(headers, 'hmac-sha256'), secret) || ok;
        break;
      case 'woocommerce':
        ok = verifyBase64Hmac(body, header(headers, 'x-wc-webhook-signature'), secret) || ok;
        break;
      case 'paypal':
        ok =
          (await deps.paypal.verify(
            body,
            {
              transmissionId: header(headers, 'paypal-transmission-id'),
              transmissionTime: header(headers, 'paypal-transmission-time'),
              transmissionSig: header(headers, 'paypal-transmission-sig'),
              certUrl: header(headers, 'paypal-cert-url'),
              authAlgo: header(headers, 'paypal-auth-algo'),
            },
            secret,
            nowMs,
          )) || ok;
        break;
    }
  }
  return ok;
}
