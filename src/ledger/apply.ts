import type { Queryable } from '../db/pool.js';
import { findRate, type FxQuote } from '../money/fx.js';
import { LedgerError } from './errors.js';
import { derive, EMPTY, fromJson, join, path, type Knowledge, type LedgerState } from './lattice.js';

export type Provider = 'stripe' | 'shopify' | 'paypal' | 'woocommerce';
export const PROVIDERS: readonly Provider[] = ['stripe', 'shopify', 'paypal', 'woocommerce'];

/**
 * One thing a provider event says about one payment. `target` is the provider's id of the
 * payment (the ledger key when it creates the row), `aliases` other ids naming the same payment.
 * A fact whose knowledge has an `amount` can create the ledger row; one without (a bare refund
 * or dispute) waits for its payment when the row does not exist yet.
 */
export interface Fact {
  target: string;
  aliases: string[];
  knowledge: Knowledge;
}

/** The tenant-scoped form every provider id is stored in (SPEC §1.2): no tenant can collide with another. */
export function scopedId(tenantId: string, provider: Provider, id: string): string {
  return `${tenantId}:${provider}:${id}`;
}

export function unscopedId(stored: string): string {
  const m = /^[0-9a-f-]{36}:[a-z]+:(.*)$/s.exec(stored);
  return m ? m[1]! : stored;
}

const PROVIDER_ID = /^[\x21-\x7e]{1,200}$/;

export function checkProviderId(id: unknown, field: string): string {
  if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return String(id);
  if (typeof id !== 'string' || !PROVIDER_ID.test(id)) {
    throw new LedgerError('ledger_fact_invalid', `${field} must be a provider id of 1-200 printable characters, got ${JSON.stringify(id)?.slice(0, 60)}`, { field });
  }
  return id;
}

export interface ApplyContext {
  tenantId: string;
  provider: Provider;
  /** Why (recorded as each transition's reason), e.g. "stripe charge.refunded evt_123". */
  reason: string;
  /** The tenant's reporting currency (FX rate recorded in metadata when it differs). */
  reportingCurrency: string;
}

export type ApplyResult =
  | { status: 'applied'; transactionId: string; ledgerId: string; state: LedgerState; changed: boolean }
  | { status: 'pending'; reference: string };

interface LedgerRow {
  id: string;
  transaction_id: string;
  state: LedgerState;
  amount_cents: number;
  currency: string;
  order_id: string | null;
  refunded_cents: number;
  captured_cents: number | null;
  chargeback_cents: number;
  verification_timestamp: Date;
  metadata: Record<string, unknown> | null;
}

/**
 * Applies one fact to the ledger inside the caller's transaction (tenant context set):
 * serialises on the fact's ids (transaction-scoped advisory locks, in sorted order), finds the
 * row any of them names, creates it when the fact can, joins the knowledge, walks the state
 * machine one legal step at a time (the database writes each transition), registers new ids,
 * applies facts that were waiting for any of the row's ids, and marks the allocations of the
 * order's conversions verified.
 */
export async function applyFact(client: Queryable, ctx: ApplyContext, fact: Fact): Promise<ApplyResult> {
  const ids = [...new Set([fact.target, ...fact.aliases])];
  const refs = ids.map((id) => scopedId(ctx.tenantId, ctx.provider, id)).sort();
  // The transition reason for the triggers of this transaction: SET LOCAL, not set_config(), because
  // on Citus the triggers run on the shards and only a SET LOCAL reaches them (as the tenant context,
  // src/db/tenant-context.ts). Then the locks, in sorted order (no deadlock between two facts sharing
  // ids); these advisory locks are the coordinator's on Citus, where every statement of the API starts
  // (the order's lock, below, is not: see verifyOrderAllocations).
  await client.query(transitionReasonSql(ctx.reason));
  await client.query(
    `SELECT count(pg_advisory_xact_lock(hashtextextended(r, 7))) FROM (SELECT r FROM unnest($1::text[]) AS r ORDER BY r) AS s`,
    [refs],
  );
  // Every statement below names tenant_id: on Citus that routes it to the tenant's shard (a FOR UPDATE
  // across shards is refused); on one server it is the policy's own condition, written out.
  const found = await client.query<{ ledger_id: string }>(
    `SELECT DISTINCT ledger_id FROM revenue_ledger_references WHERE tenant_id = $2 AND reference = ANY($1::text[])`,
    [refs, ctx.tenantId],
  );
  if (found.rows.length > 1) {
    throw new LedgerError('ledger_reference_conflict', `the ids ${ids.join(', ')} name ${found.rows.length} different ledger rows`);
  }
  let row: LedgerRow;
  let created = false;
  if (found.rows.length === 0) {
    if (fact.knowledge.amount === null) return { status: 'pending', reference: scopedId(ctx.tenantId, ctx.provider, fact.target) };
    row = await insertRow(client, ctx, fact);
    created = true;
  } else {
    const r = await client.query<LedgerRow>(`SELECT ${ROW_COLUMNS} FROM revenue_ledger WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, [ctx.tenantId, found.rows[0]!.ledger_id]);
    row = r.rows[0]!;
  }
  // Every id of the fact now names this row (all are locked: none can name another meanwhile);
  // then the facts that waited for any id of the row are taken.
  await insertReferences(client, ctx.tenantId, row.id, refs);
  const pending = await client.query<{ id: string; pending_fact: Knowledge }>(
    `SELECT id, pending_fact FROM webhook_deliveries
      WHERE tenant_id = $2 AND status = 'pending'
        AND pending_reference IN (SELECT reference FROM revenue_ledger_references WHERE tenant_id = $2 AND ledger_id = $1)
      ORDER BY received_at, id FOR UPDATE`,
    [row.id, ctx.tenantId],
  );

  let knowledge = join(fromJson(row.metadata?.knowledge), fact.knowledge);
  checkCurrency(row, fact.knowledge);
  const taken: string[] = [];
  for (const p of pending.rows) {
    const k = fromJson(p.pending_fact);
    if (k.currency !== null && k.currency !== row.currency) {
      // A waiting fact that cannot apply to this payment is dead-lettered on its own: the payment
      // (and every later event of it) still goes through.
      await deadLetterPending(client, ctx.tenantId, p.id, `the event is in ${k.currency} but its payment ${unscopedId(row.transaction_id)} is in ${row.currency}`);
      continue;
    }
    knowledge = join(knowledge, k);
    taken.push(p.id);
  }
  // The row's amount and currency are authoritative (immutable in the database).
  knowledge = { ...knowledge, amount: row.amount_cents, currency: row.currency };

  const after = await writeKnowledge(client, ctx, row, knowledge, created);
  if (taken.length) {
    await client.query(
      `UPDATE webhook_deliveries SET status = 'applied', applied_at = now(), transaction_id = $2, pending_reference = NULL, pending_fact = NULL,
              detail = 'applied when its payment arrived'
        WHERE tenant_id = $3 AND id = ANY($1::uuid[])`,
      [taken, row.transaction_id, ctx.tenantId],
    );
  }
  if (after.changed && after.order_id && after.state !== 'authorized') {
    await verifyOrderAllocations(client, { id: row.id, tenant_id: ctx.tenantId, order_id: after.order_id, verification_timestamp: after.verification_timestamp, provider: ctx.provider });
  }
  return {
    status: 'applied',
    transactionId: row.transaction_id,
    ledgerId: row.id,
    state: after.state,
    changed: after.changed,
  };
}

/**
 * The SET LOCAL of the reason every transition of this transaction records (the transition
 * trigger reads skeldir.transition_reason). SET takes no parameters: a quoted literal, at most 500
 * characters.
 */
export function transitionReasonSql(reason: string): string {
  return `SET LOCAL skeldir.transition_reason = '${reason.slice(0, 500).replace(/'/g, "''")}'`;
}

/**
 * Registers ids of a ledger row (those already registered are left as they are). A multi-row
 * VALUES, not INSERT … SELECT unnest(…): Citus runs an INSERT … SELECT that reads no distributed
 * table as COPY, which row-level security refuses.
 */
async function insertReferences(client: Queryable, tenantId: string, ledgerId: string, refs: readonly string[]): Promise<void> {
  const values = refs.map((_r, i) => `($${i + 3}, $1::uuid, $2::uuid)`).join(', ');
  await client.query(
    `INSERT INTO revenue_ledger_references (reference, tenant_id, ledger_id) VALUES ${values} ON CONFLICT (tenant_id, reference) DO NOTHING`,
    [tenantId, ledgerId, ...refs],
  );
}

/**
 * A waiting delivery that turned out unusable when its payment arrived: its own dead event (source
 * webhook). Read, then written (three router statements): Citus refuses the STABLE
 * jsonb_build_object of columns in a distributed INSERT … SELECT.
 */
async function deadLetterPending(client: Queryable, tenantId: string, deliveryId: string, message: string): Promise<void> {
  const { rows } = await client.query<{ provider: string; endpoint_id: string | null; provider_event_id: string; event_type: string; pending_fact: unknown }>(
    `SELECT provider, endpoint_id, provider_event_id, event_type, pending_fact FROM webhook_deliveries WHERE tenant_id = $1 AND id = $2`,
    [tenantId, deliveryId],
  );
  const d = rows[0]!;
  const dead = await client.query<{ id: string }>(
    `INSERT INTO dead_events (tenant_id, source, error_code, error_detail, raw_payload, event_type, error_type, error_message)
     VALUES ($1, 'webhook', 'ledger_currency_mismatch', $2, $3, $4, 'webhook_payload', $5) RETURNING id`,
    [
      tenantId,
      { provider: d.provider, endpoint_id: d.endpoint_id, event_id: d.provider_event_id, event_type: d.event_type, field: null, message },
      { pending_fact: d.pending_fact },
      [...d.event_type].slice(0, 50).join(''),
      message,
    ],
  );
  await client.query(
    `UPDATE webhook_deliveries SET status = 'dead_lettered', dead_event_id = $3, pending_reference = NULL, pending_fact = NULL, detail = $4
      WHERE tenant_id = $1 AND id = $2`,
    [tenantId, deliveryId, dead.rows[0]!.id, message],
  );
}

const ROW_COLUMNS = `id, transaction_id, state, amount_cents, currency, order_id, refunded_cents, captured_cents, chargeback_cents, verification_timestamp, metadata`;

function checkCurrency(row: LedgerRow, k: Knowledge): void {
  if (k.currency !== null && k.currency !== row.currency) {
    throw new LedgerError('ledger_currency_mismatch', `the event is in ${k.currency} but its payment ${row.transaction_id} is in ${row.currency}`);
  }
}

async function insertRow(client: Queryable, ctx: ApplyContext, fact: Fact): Promise<LedgerRow> {
  const k = fact.knowledge;
  // Every row is born `authorized` and stepped forward: the first snapshot of a payment may be
  // any of its later states (a capture, a partial refund), and which one arrives first must not
  // change the row's previous_state or history. Every card or wallet payment is authorized
  // before it is captured (an automatic capture does both at once).
  const initial: LedgerState = 'authorized';
  const transactionId = scopedId(ctx.tenantId, ctx.provider, fact.target);
  const occurredAt = k.occurredAt ?? new Date().toISOString();
  const { rows } = await client.query<LedgerRow>(
    `INSERT INTO revenue_ledger (tenant_id, transaction_id, order_id, state, amount_cents, currency, revenue_cents,
                                 verification_source, verification_timestamp, metadata)
     VALUES ($1, $2, $3, $4, $5, $6, $5, $7, $8, $9)
     RETURNING ${ROW_COLUMNS}`,
    [ctx.tenantId, transactionId, k.orderId, initial, k.amount, k.currency, ctx.provider, occurredAt, { provider: ctx.provider, provider_transaction_id: fact.target, knowledge: EMPTY }],
  );
  return rows[0]!;
}

interface Written {
  changed: boolean;
  state: LedgerState;
  order_id: string | null;
  verification_timestamp: Date;
}

/** Writes the derived figures, stepping the state one legal transition per UPDATE. */
async function writeKnowledge(client: Queryable, ctx: ApplyContext, row: LedgerRow, k: Knowledge, created: boolean): Promise<Written> {
  const d = derive(k);
  const steps = path(row.state, d.state);
  const conflict = steps === null ? `${row.state} is final; the provider now reports ${d.state}` : null;
  const occurredAt = k.occurredAt && k.occurredAt < row.verification_timestamp.toISOString() ? k.occurredAt : row.verification_timestamp.toISOString();
  const metadata: Record<string, unknown> = {
    ...(row.metadata ?? {}),
    provider: ctx.provider,
    knowledge: k,
    ...(k.voided && !k.captured ? { voided: true } : {}),
    ...(conflict ? { state_conflict: conflict } : {}),
  };
  const fx = await fxFor(client, row.currency, ctx.reportingCurrency, occurredAt.slice(0, 10), metadata.fx as FxQuote | undefined);
  if (fx !== undefined) metadata.fx = fx;
  // The joined knowledge decides (deterministic whatever the order of deliveries).
  const orderId = k.orderId ?? row.order_id;
  const same =
    (steps === null || steps.length === 0) &&
    row.refunded_cents === d.refundedCents &&
    (d.capturedCents === null || row.captured_cents === d.capturedCents) &&
    row.chargeback_cents === d.chargebackCents &&
    row.order_id === orderId &&
    row.verification_timestamp.toISOString() === occurredAt &&
    canonical(row.metadata) === canonical(metadata);
  const result = (changed: boolean): Written => ({
    changed,
    state: steps && steps.length ? steps[steps.length - 1]! : row.state,
    order_id: orderId,
    verification_timestamp: new Date(occurredAt),
  });
  if (same && !created) return result(false);
  // Figures first (in the current state), then one UPDATE per state step: the database checks
  // each step and writes its transition.
  await client.query(
    `UPDATE revenue_ledger SET refunded_cents = GREATEST(refunded_cents, $2), chargeback_cents = GREATEST(chargeback_cents, $3),
            captured_cents = GREATEST(captured_cents, $7::int),
            order_id = $4, verification_timestamp = $5, metadata = $6
      WHERE tenant_id = $8 AND id = $1`,
    [row.id, d.refundedCents, d.chargebackCents, orderId, occurredAt, metadata, d.capturedCents, ctx.tenantId],
  );
  for (const state of steps ?? []) {
    await client.query(`UPDATE revenue_ledger SET state = $3 WHERE tenant_id = $1 AND id = $2`, [ctx.tenantId, row.id, state]);
  }
  return result(true);
}

/** JSON with object keys sorted (jsonb does not keep key order). */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v));
}

/**
 * The FX quote to record: kept when already recorded for this currency pair and date (so a
 * report is reproducible), looked up otherwise; null when no rate is known yet (reports look
 * it up again), undefined when nothing needs recording (same currency).
 */
async function fxFor(client: Queryable, currency: string, reporting: string, date: string, recorded: FxQuote | undefined): Promise<FxQuote | null | undefined> {
  if (currency === reporting) return recorded === undefined ? undefined : null;
  if (recorded && recorded.base === currency && recorded.quote === reporting && recorded.rate_date <= date && recorded.method !== 'identity') {
    // Keep the recorded quote unless a rate for a later date (still on or before the transaction date) is now known.
    const now = await findRate(client, currency, reporting, date);
    if (!now || now.rate_date <= recorded.rate_date) return recorded;
    return now;
  }
  return findRate(client, currency, reporting, date);
}

/**
 * Marks the allocations of the order's conversions verified (those not yet marked). Takes the
 * order's advisory lock exclusively first (the allocation trigger takes it shared, revision
 * 202611280318): a conversion written concurrently is then either seen here or sees this
 * payment once it commits. Rows another transaction holds are skipped: they are being replaced,
 * and the trigger checks their replacements after this transaction commits.
 * The lock is taken by a statement reading the payment's own ledger row (tenant_id named): its
 * key has a column argument, so on Citus the statement is routed to the tenant's shard and the
 * lock is taken on the worker holding it, where the shards' allocation trigger takes it too
 * (skeldir_allocations_verify_shard, src/citus/distribute.ts); on one server it is the same lock.
 */
export async function verifyOrderAllocations(
  client: Queryable,
  row: { id: string; tenant_id: string; order_id: string; verification_timestamp: Date; provider: Provider },
): Promise<number> {
  await lockOrder(client, row.tenant_id, row.id, row.order_id);
  const r = await client.query(
    `UPDATE attribution_allocations a
        SET verified = true, verification_source = $2, verification_timestamp = $3
      WHERE a.tenant_id = $4
        AND a.id IN (SELECT x.id FROM attribution_allocations x
                       JOIN attribution_events e ON e.id = x.event_id AND e.tenant_id = x.tenant_id
                      WHERE x.tenant_id = $4 AND e.tenant_id = $4 AND e.event_type = 'conversion' AND e.order_id = $1 AND NOT x.verified
                        FOR UPDATE OF x SKIP LOCKED)`,
    [row.order_id, row.provider, row.verification_timestamp, row.tenant_id],
  );
  return r.rowCount ?? 0;
}

/** The order's advisory lock (exclusive), on the node holding the tenant's shard of the ledger row `ledgerId` (which must exist: it is the payment's). */
async function lockOrder(client: Queryable, tenantId: string, ledgerId: string, orderId: string): Promise<void> {
  const r = await client.query<{ n: string }>(
    `SELECT count(pg_advisory_xact_lock(hashtextextended(l.tenant_id::text || ':order:' || $3::text, 0))) AS n
       FROM revenue_ledger l WHERE l.tenant_id = $1 AND l.id = $2`,
    [tenantId, ledgerId, orderId],
  );
  if (Number(r.rows[0]?.n) !== 1) throw new Error(`the order lock was not taken: ledger row ${ledgerId} not found`);
}
