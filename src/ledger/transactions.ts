import type { Queryable } from '../db/pool.js';
import { LedgerError } from './errors.js';
import { PROVIDERS, scopedId, unscopedId, type Provider } from './apply.js';
import { formatInstant } from '../db/timestamps.js';

export interface TransactionView {
  transaction_id: string;
  ledger_key: string;
  provider: string;
  order_id: string | null;
  state: string;
  previous_state: string | null;
  amount_cents: number;
  captured_cents: number | null;
  refunded_cents: number;
  chargeback_cents: number;
  net_cents: number;
  currency: string;
  verification_source: string;
  verification_timestamp: string;
  metadata: unknown;
  created_at: string;
  updated_at: string;
  transitions: { from_state: string | null; to_state: string; reason: string | null; transitioned_at: string }[];
}

/**
 * A ledger row of the tenant in context by the provider's id (ch_…, a Shopify order id, a PayPal
 * capture or authorization id …) or its stored `legacy_<uuid>` id, with its transitions oldest
 * first. The provider's id is resolved within the tenant only (row-level security), through
 * every id that names the row; `provider` narrows it when two providers use the same id. Each
 * query names tenant_id too: on Citus that routes it to the tenant's shard instead of all of them.
 * The transitions' subquery names the parameter, not `l.tenant_id`: correlated through the outer
 * row only, Citus ran the whole statement on every shard (src/citus/routing.test.ts found it).
 */
export async function getTransaction(client: Queryable, tenantId: string, id: string, provider?: Provider): Promise<TransactionView> {
  const candidates = id.startsWith('legacy_') ? [id] : (provider ? [provider] : PROVIDERS).map((p) => scopedId(tenantId, p, id));
  const found = await client.query<{ ledger_id: string }>(
    `SELECT id AS ledger_id FROM revenue_ledger WHERE tenant_id = $2 AND transaction_id = ANY($1::text[])
     UNION SELECT ledger_id FROM revenue_ledger_references WHERE tenant_id = $2 AND reference = ANY($1::text[])`,
    [candidates, tenantId],
  );
  if (found.rows.length === 0) throw new LedgerError('transaction_not_found', `no transaction ${JSON.stringify(id)}`, { field: 'transaction_id' });
  if (found.rows.length > 1) {
    throw new LedgerError('transaction_ambiguous', `${JSON.stringify(id)} names ${found.rows.length} transactions; add ?provider=`, { field: 'provider' });
  }
  const { rows } = await client.query(
    `SELECT l.*, COALESCE((SELECT json_agg(json_build_object('from_state', t.from_state, 'to_state', t.to_state, 'reason', t.reason,
                                   'transitioned_at', to_char(t.transitioned_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
                                   ORDER BY t.transitioned_at, t.id)
                        FROM revenue_state_transitions t WHERE t.tenant_id = $2 AND t.ledger_id = l.id), '[]') AS transitions
       FROM revenue_ledger l WHERE l.tenant_id = $2 AND l.id = $1`,
    [found.rows[0]!.ledger_id, tenantId],
  );
  const r = rows[0];
  const net = r.state === 'authorized' ? 0 : Math.max(0, (r.captured_cents ?? r.amount_cents) - r.refunded_cents - r.chargeback_cents);
  return {
    transaction_id: unscopedId(r.transaction_id),
    ledger_key: r.transaction_id,
    provider: r.verification_source,
    order_id: r.order_id,
    state: r.state,
    previous_state: r.previous_state,
    amount_cents: r.amount_cents,
    captured_cents: r.captured_cents ?? null,
    refunded_cents: r.refunded_cents,
    chargeback_cents: r.chargeback_cents,
    net_cents: net,
    currency: r.currency,
    verification_source: r.verification_source,
    verification_timestamp: formatInstant(r.verification_timestamp),
    metadata: r.metadata,
    created_at: formatInstant(r.created_at),
    updated_at: formatInstant(r.updated_at),
    transitions: r.transitions,
  };
}
