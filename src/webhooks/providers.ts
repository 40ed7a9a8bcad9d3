import { createHash } from 'node:crypto';
import { AmountError, MAX_LEDGER_MINOR, parseDecimalAmount, parseMinorInteger } from '../money/amount.js';
import { currency } from '../money/currencies.js';
import { checkProviderId, type Fact, type Provider } from '../ledger/apply.js';
import { LedgerError } from '../ledger/errors.js';
import { EMPTY, type Knowledge } from '../ledger/lattice.js';
import { printable } from './json.js';

/**
 * Providers' payment lifecycle events → ledger facts. Each function reads one provider's real
 * payload shapes (documented in docs/ledger.md with the field each fact comes from) and throws
 * a typed error (LedgerError / AmountError / CurrencyError) for a payload it cannot use: the
 * webhook then dead-letters it. Events that are not about money are `ignored`.
 */
export interface ParsedEvent {
  /** What the event says about one payment (every provider event is about at most one), or null. */
  fact: Fact | null;
  /** Why the event changes nothing (not a payment lifecycle event). */
  ignored?: string;
}

const result = (fact: Fact | null, ignored?: string): ParsedEvent => ({ fact, ...(ignored ? { ignored } : {}) });

type Json = Record<string, unknown>;
const obj = (v: unknown, field: string): Json => {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new LedgerError('ledger_fact_invalid', `${field} must be an object`, { field });
  return v as Json;
};
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const idOf = (v: unknown): string | null => (typeof v === 'string' ? v : v && typeof v === 'object' && typeof (v as Json).id === 'string' ? ((v as Json).id as string) : null);

function toNumber(minor: bigint, field: string): number {
  if (minor > MAX_LEDGER_MINOR || minor < -MAX_LEDGER_MINOR) {
    throw new AmountError('amount_out_of_range', `${field} ${minor} minor units exceeds the ledger's range (2^31 - 1)`, { field });
  }
  return Number(minor);
}

function decimal(value: unknown, cur: string, field: string, allowNegative = false): number {
  return toNumber(parseDecimalAmount(value, currency(cur).exponent, { field, allowNegative }), field);
}

/** 1970-01-01 and 10000-01-01 UTC in ms: a provider time outside is no usable time (and an ISO string cannot print it). */
const EARLIEST_MS = 0;
const AFTER_LATEST_MS = Date.UTC(10000, 0, 1);

/** A provider time (Unix seconds, or a date-time string) as ISO 8601, or null when unusable or outside years 1970-9999. */
export function isoTime(v: unknown): string | null {
  const ms = typeof v === 'number' && Number.isFinite(v) ? v * 1000 : typeof v === 'string' ? Date.parse(v) : NaN;
  return Number.isFinite(ms) && ms >= EARLIEST_MS && ms < AFTER_LATEST_MS ? new Date(ms).toISOString() : null;
}

function orderIdOf(v: unknown): string | null {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  if (typeof v === 'string' && v.trim() !== '' && v.length <= 255) {
    // PostgreSQL text cannot hold NUL: such an order id cannot be recorded (the event is dead-lettered).
    if (v.includes('\u0000')) throw new LedgerError('ledger_fact_invalid', 'the order id contains a NUL character', { field: 'order_id' });
    return v.trim();
  }
  return null;
}

/** A provider label (status, order name) as stored in metadata: printable, bounded. */
const label = (v: unknown, max = 100): string => printable(String(v ?? ''), max);

function knowledge(k: Partial<Knowledge>): Knowledge {
  return { ...EMPTY, ...k };
}

/** Event id of last resort: the body's SHA-256 (an exact replay is then still a duplicate). */
export function bodyId(body: Buffer): string {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

// --- Stripe ------------------------------------------------------------------------------------

/**
 * Stripe's amounts are integers in the currency's smallest unit, which is ISO 4217's minor unit
 * except for Stripe's documented special cases: MGA is zero-decimal at Stripe (ISO: 2) and ISK
 * is sent as a two-decimal amount (ISO: 0; the amount is a multiple of 100).
 */
const STRIPE_EXPONENT: Record<string, number> = { MGA: 0, ISK: 2 };

export function stripeAmount(value: unknown, cur: string, field: string): number {
  const c = currency(cur);
  const raw = parseMinorInteger(value, { field });
  const se = STRIPE_EXPONENT[c.code] ?? c.exponent;
  if (se === c.exponent) return toNumber(raw, field);
  if (se < c.exponent) return toNumber(raw * 10n ** BigInt(c.exponent - se), field);
  const f = 10n ** BigInt(se - c.exponent);
  if (raw % f !== 0n) throw new AmountError('amount_precision_invalid', `${field} ${raw} ${c.code} is not a whole number of ISO minor units`, { field });
  return toNumber(raw / f, field);
}

export function parseStripe(event: unknown): ParsedEvent {
  const e = obj(event, 'event');
  const eventType = typeof e.type === 'string' ? e.type : '';
  const o = obj(obj(e.data, 'data').object, 'data.object');

  if (o.object === 'charge' && eventType.startsWith('charge.') && !eventType.startsWith('charge.dispute.')) {
    if (o.status === 'failed' || o.status === 'pending') return result(null, `charge status ${String(o.status)} is no revenue`);
    const cur = currency(o.currency).code;
    const amount = stripeAmount(o.amount, cur, 'data.object.amount');
    const pi = idOf(o.payment_intent);
    const refunds: Record<string, number> = {};
    const list = o.refunds && typeof o.refunds === 'object' ? (o.refunds as Json).data : undefined;
    if (Array.isArray(list)) {
      for (const r of list) {
        const rr = obj(r, 'data.object.refunds.data[]');
        if (rr.status === 'succeeded') refunds[checkProviderId(rr.id, 'refund id')] = stripeAmount(rr.amount, cur, 'refund amount');
      }
    }
    return result(
      {
        target: checkProviderId(o.id, 'data.object.id'),
        aliases: pi ? [checkProviderId(pi, 'data.object.payment_intent')] : [],
        knowledge: knowledge({
          amount,
          currency: cur,
          occurredAt: isoTime(o.created),
          captured: o.captured === true,
          // What was captured of the amount (a partial capture captures less).
          capturedTotal: o.captured === true && o.amount_captured !== undefined ? stripeAmount(o.amount_captured, cur, 'data.object.amount_captured') : 0,
          // charge.captured is sent only for a charge captured after a separate authorization.
          authorized: o.captured !== true || eventType === 'charge.captured',
          refundedTotal: o.amount_refunded === undefined ? 0 : stripeAmount(o.amount_refunded, cur, 'data.object.amount_refunded'),
          fullyRefunded: o.refunded === true,
          refunds,
          voided: eventType === 'charge.expired',
          orderId: orderIdOf((o.metadata as Json | undefined)?.order_id),
          details: pi ? { payment_intent: pi } : {},
        }),
      },
    );
  }
  if (o.object === 'refund') {
    const charge = idOf(o.charge);
    if (!charge) return result(null, 'refund without a charge');
    if (o.status !== 'succeeded') return result(null, `refund status ${String(o.status)}`);
    const cur = currency(o.currency).code;
    return result(
      {
        target: checkProviderId(charge, 'data.object.charge'),
        aliases: [],
        knowledge: knowledge({ currency: cur, refunds: { [checkProviderId(o.id, 'data.object.id')]: stripeAmount(o.amount, cur, 'data.object.amount') } }),
      },
    );
  }
  if (o.object === 'dispute') {
    const charge = checkProviderId(idOf(o.charge), 'data.object.charge');
    const cur = currency(o.currency).code;
    const id = checkProviderId(o.id, 'data.object.id');
    const status = typeof o.status === 'string' ? label(o.status, 50) || 'unknown' : 'unknown';
    return result(
      {
        target: charge,
        aliases: [],
        knowledge: knowledge({
          currency: cur,
          disputes: { [id]: status },
          chargebacks: status === 'lost' ? { [id]: stripeAmount(o.amount, cur, 'data.object.amount') } : {},
        }),
      },
    );
  }
  if (o.object === 'payment_intent') {
    const charge = idOf(o.latest_charge) ?? idOf(((o.charges as Json | undefined)?.data as unknown[] | undefined)?.[0]);
    if (!charge) return result(null, 'payment intent without a charge');
    const cur = currency(o.currency).code;
    const status = o.status;
    const captured = status === 'succeeded';
    if (!captured && status !== 'requires_capture' && status !== 'canceled') return result(null, `payment intent status ${String(status)}`);
    return result(
      {
        target: checkProviderId(charge, 'data.object.latest_charge'),
        aliases: [checkProviderId(o.id, 'data.object.id')],
        knowledge: knowledge({
          amount: stripeAmount(o.amount, cur, 'data.object.amount'),
          currency: cur,
          occurredAt: isoTime(o.created),
          captured,
          capturedTotal: captured && o.amount_received !== undefined ? stripeAmount(o.amount_received, cur, 'data.object.amount_received') : 0,
          authorized: status === 'requires_capture',
          voided: status === 'canceled',
          orderId: orderIdOf((o.metadata as Json | undefined)?.order_id),
          details: { payment_intent: o.id as string },
        }),
      },
    );
  }
  return result(null, `event type ${eventType || '(none)'} is not a payment lifecycle event`);
}

// --- Shopify -------------------------------------------------------------------------------------

const SHOPIFY_CAPTURED = new Set(['paid', 'partially_paid', 'partially_refunded', 'refunded']);

/**
 * Successful refund transactions by id. Their amounts are in the transaction's `currency` (the
 * presentment currency of a multi-currency order); one in another currency than the payment's
 * is refused (it would be counted in the wrong unit).
 */
function shopifyRefunds(transactions: unknown, cur: string | null, field: string): { refunds: Record<string, number>; currency: string | null } {
  const refunds: Record<string, number> = {};
  let c = cur;
  if (!Array.isArray(transactions)) return { refunds, currency: c };
  for (const t of transactions) {
    const tx = obj(t, field);
    if (tx.kind !== 'refund' || tx.status !== 'success') continue;
    const tc = tx.currency === undefined || tx.currency === null ? c : currency(tx.currency, `${field}.currency`).code;
    if (tc === null) throw new LedgerError('ledger_fact_invalid', `${field}.currency is missing`, { field: `${field}.currency` });
    if (c !== null && tc !== c) {
      throw new LedgerError('ledger_currency_mismatch', `a refund transaction is in ${tc} but its order is in ${c}`, { field: `${field}.currency` });
    }
    c = tc;
    refunds[`transaction:${checkProviderId(tx.id, `${field}.id`)}`] = decimal(tx.amount, tc, `${field}.amount`);
  }
  return { refunds, currency: c };
}

/**
 * An order's total in the currency the buyer paid in: `total_price_set.presentment_money` (a
 * multi-currency order's refunds and transactions are in that currency; `total_price` and
 * `currency` are the shop's), else `total_price` in `currency`.
 */
function shopifyTotal(o: Json): { amount: number; currency: string } {
  const set = o.total_price_set && typeof o.total_price_set === 'object' ? (o.total_price_set as Json).presentment_money : undefined;
  if (set && typeof set === 'object') {
    const p = set as Json;
    const cur = currency(p.currency_code, 'total_price_set.presentment_money.currency_code').code;
    return { amount: decimal(p.amount, cur, 'total_price_set.presentment_money.amount'), currency: cur };
  }
  const cur = currency(o.currency).code;
  return { amount: decimal(o.total_price, cur, 'total_price'), currency: cur };
}

export function parseShopify(topic: string, event: unknown): ParsedEvent {
  const o = obj(event, 'body');
  if (topic.startsWith('orders/')) {
    const status = String(o.financial_status ?? '');
    // Shopify ids are JSON numbers; the GraphQL id string carries the same id without the
    // precision a JavaScript number loses beyond 2^53.
    const gid = typeof o.admin_graphql_api_id === 'string' ? /^gid:\/\/shopify\/Order\/(\d+)$/.exec(o.admin_graphql_api_id)?.[1] : undefined;
    const target = gid ?? checkProviderId(o.id, 'id');
    const total = shopifyTotal(o);
    const cur = total.currency;
    const refunds: Record<string, number> = {};
    if (Array.isArray(o.refunds)) for (const r of o.refunds) Object.assign(refunds, shopifyRefunds(obj(r, 'refunds[]').transactions, cur, 'refunds[].transactions[]').refunds);
    if (!SHOPIFY_CAPTURED.has(status) && status !== 'authorized' && status !== 'voided') {
      return result(null, `order financial_status ${status || '(none)'} is no payment yet`);
    }
    return result(
      {
        target,
        aliases: [],
        knowledge: knowledge({
          amount: total.amount,
          currency: cur,
          occurredAt: isoTime(o.processed_at) ?? isoTime(o.created_at),
          captured: SHOPIFY_CAPTURED.has(status),
          // What was paid is the total minus what is outstanding (both in the shop's currency; a
          // partially_paid order counts only what was paid, a later paid snapshot raises it).
          capturedTotal:
            SHOPIFY_CAPTURED.has(status) && typeof o.total_outstanding === 'string' && cur === currency(o.currency).code
              ? Math.max(0, total.amount - decimal(o.total_outstanding, cur, 'total_outstanding'))
              : 0,
          authorized: status === 'authorized',
          fullyRefunded: status === 'refunded',
          voided: status === 'voided',
          refunds,
          orderId: target,
          details: typeof o.name === 'string' ? { name: label(o.name) } : {},
        }),
      },
    );
  }
  if (topic === 'refunds/create') {
    const target = checkProviderId(o.order_id, 'order_id');
    const { refunds, currency: c } = shopifyRefunds(o.transactions, null, 'transactions[]');
    if (Object.keys(refunds).length === 0) return result(null, 'refund without a successful refund transaction (restock only)');
    return result({ target, aliases: [], knowledge: knowledge({ currency: c, refunds }) });
  }
  if (topic === 'order_transactions/create') {
    if (o.status !== 'success') return result(null, `transaction status ${String(o.status)}`);
    const target = checkProviderId(o.order_id, 'order_id');
    const kind = o.kind;
    const cur = currency(o.currency).code;
    if (kind === 'refund') {
      return result({ target, aliases: [], knowledge: knowledge({ currency: cur, refunds: { [`transaction:${checkProviderId(o.id, 'id')}`]: decimal(o.amount, cur, 'amount') } }) });
    }
    if (kind === 'capture' || kind === 'sale') return result({ target, aliases: [], knowledge: knowledge({ currency: cur, captured: true, authorized: kind === 'capture' }) });
    if (kind === 'authorization') return result({ target, aliases: [], knowledge: knowledge({ currency: cur, authorized: true }) });
    if (kind === 'void') return result({ target, aliases: [], knowledge: knowledge({ currency: cur, voided: true }) });
    return result(null, `transaction kind ${String(kind)} changes nothing`);
  }
  if (topic === 'disputes/create' || topic === 'disputes/update') {
    if (o.order_id === null || o.order_id === undefined) return result(null, 'dispute without an order');
    const target = checkProviderId(o.order_id, 'order_id');
    const id = checkProviderId(o.id, 'id');
    const status = label(o.status, 50) || 'unknown';
    const cur = currency(o.currency).code;
    const lost = o.type === 'chargeback' && (status === 'lost' || status === 'accepted');
    return result(
      { target, aliases: [], knowledge: knowledge({ currency: cur, disputes: { [id]: status }, chargebacks: lost ? { [id]: decimal(o.amount, cur, 'amount') } : {} }) },
    );
  }
  return result(null, `topic ${topic || '(none)'} is not a payment lifecycle event`);
}

// --- WooCommerce ------------------------------------------------------------------------------------

export function parseWooCommerce(topic: string, event: unknown): ParsedEvent {
  const o = obj(event, 'body');
  if (topic !== 'order.created' && topic !== 'order.updated' && topic !== 'order.restored') {
    return result(null, `topic ${topic || '(none)'} is not a payment lifecycle event`);
  }
  const status = String(o.status ?? '');
  const captured = status === 'processing' || status === 'completed' || status === 'refunded';
  if (!captured && status !== 'on-hold' && status !== 'cancelled') return result(null, `order status ${status || '(none)'} is no payment`);
  const target = checkProviderId(o.id, 'id');
  const cur = currency(o.currency).code;
  const refunds: Record<string, number> = {};
  if (Array.isArray(o.refunds)) {
    for (const r of o.refunds) {
      const rr = obj(r, 'refunds[]');
      const v = decimal(rr.total, cur, 'refunds[].total', true);
      refunds[`refund:${checkProviderId(rr.id, 'refunds[].id')}`] = Math.abs(v);
    }
  }
  return result(
    {
      target,
      aliases: [],
      knowledge: knowledge({
        amount: decimal(o.total, cur, 'total'),
        currency: cur,
        occurredAt: isoTime(o.date_paid_gmt ? `${o.date_paid_gmt}Z` : null) ?? isoTime(o.date_created_gmt ? `${o.date_created_gmt}Z` : null),
        captured,
        authorized: status === 'on-hold',
        fullyRefunded: status === 'refunded',
        voided: status === 'cancelled',
        refunds,
        orderId: target,
        details: o.number !== undefined ? { number: label(o.number) } : {},
      }),
    },
  );
}

/** WooCommerce's creation ping: `webhook_id=<n>`, form-encoded and unsigned. */
export function isWooCommercePing(body: Buffer): boolean {
  return body.length < 64 && /^webhook_id=\d+$/.test(body.toString('latin1'));
}

// --- PayPal -------------------------------------------------------------------------------------------

function paypalMoney(m: unknown, field: string): { amount: number; currency: string } {
  const money = obj(m, field);
  const cur = currency(money.currency_code, `${field}.currency_code`).code;
  return { amount: decimal(money.value, cur, `${field}.value`), currency: cur };
}

function upLink(resource: Json, kind: string): string | null {
  if (!Array.isArray(resource.links)) return null;
  for (const l of resource.links) {
    const link = l as Json;
    const href = typeof link.href === 'string' ? link.href : '';
    const m = new RegExp(`/${kind}/([^/?#]+)$`).exec(href);
    if (link.rel === 'up' && m) return m[1]!;
  }
  return null;
}

const PAYPAL_EVENTS = new Set([
  'PAYMENT.AUTHORIZATION.CREATED', 'PAYMENT.AUTHORIZATION.VOIDED', 'PAYMENT.CAPTURE.COMPLETED', 'PAYMENT.CAPTURE.REFUNDED',
  'PAYMENT.CAPTURE.REVERSED', 'CUSTOMER.DISPUTE.CREATED', 'CUSTOMER.DISPUTE.UPDATED', 'CUSTOMER.DISPUTE.RESOLVED',
]);

export function parsePayPal(event: unknown): ParsedEvent {
  const e = obj(event, 'body');
  const eventType = typeof e.event_type === 'string' ? e.event_type : '';
  // Only these events move money on a payment; the rest (CHECKOUT.ORDER.* among them: an order's
  // captures arrive as PAYMENT.CAPTURE.* events of their own) are ignored before anything is read.
  if (!PAYPAL_EVENTS.has(eventType)) return result(null, `event type ${label(eventType) || '(none)'} is not a payment lifecycle event`);
  const r = obj(e.resource, 'resource');
  const related = ((r.supplementary_data as Json | undefined)?.related_ids ?? {}) as Json;
  const orderId = orderIdOf(r.invoice_id) ?? orderIdOf(r.custom_id) ?? orderIdOf(related.order_id);
  const when = isoTime(r.create_time) ?? isoTime(e.create_time);

  switch (eventType) {
    case 'PAYMENT.AUTHORIZATION.CREATED':
    case 'PAYMENT.AUTHORIZATION.VOIDED': {
      const money = paypalMoney(r.amount, 'resource.amount');
      return result(
        {
          target: checkProviderId(r.id, 'resource.id'),
          aliases: [],
          knowledge: knowledge({ ...money, occurredAt: when, authorized: true, voided: eventType.endsWith('VOIDED'), orderId }),
        },
      );
    }
    case 'PAYMENT.CAPTURE.COMPLETED': {
      const money = paypalMoney(r.amount, 'resource.amount');
      const capture = checkProviderId(r.id, 'resource.id');
      const auth = str(related.authorization_id);
      return result(
        {
          target: auth ? checkProviderId(auth, 'resource.supplementary_data.related_ids.authorization_id') : capture,
          aliases: auth ? [capture] : [],
          knowledge: knowledge({ ...money, occurredAt: when, captured: true, captures: { [capture]: money.amount }, authorized: auth !== null, orderId }),
        },
      );
    }
    case 'PAYMENT.CAPTURE.REFUNDED':
    case 'PAYMENT.CAPTURE.REVERSED': {
      const capture = upLink(r, 'captures');
      if (!capture) throw new LedgerError('ledger_fact_invalid', 'the refund has no "up" link to its capture', { field: 'resource.links' });
      const money = paypalMoney(r.amount, 'resource.amount');
      const id = checkProviderId(r.id, 'resource.id');
      const total = (r.seller_payable_breakdown as Json | undefined)?.total_refunded_amount;
      const k: Partial<Knowledge> = { currency: money.currency };
      if (eventType.endsWith('REVERSED')) k.chargebacks = { [id]: money.amount };
      else {
        if (r.status !== 'COMPLETED') return result(null, `refund status ${String(r.status)}`);
        k.refunds = { [id]: money.amount };
        if (total) k.refundedTotal = paypalMoney(total, 'resource.seller_payable_breakdown.total_refunded_amount').amount;
      }
      return result({ target: checkProviderId(capture, 'resource.links[up]'), aliases: [], knowledge: knowledge(k) });
    }
    case 'CUSTOMER.DISPUTE.CREATED':
    case 'CUSTOMER.DISPUTE.UPDATED':
    case 'CUSTOMER.DISPUTE.RESOLVED': {
      const txs = Array.isArray(r.disputed_transactions) ? r.disputed_transactions : [];
      const capture = str((txs[0] as Json | undefined)?.seller_transaction_id);
      if (!capture) return result(null, 'dispute without a seller transaction');
      const id = checkProviderId(r.dispute_id, 'resource.dispute_id');
      const money = paypalMoney(r.dispute_amount, 'resource.dispute_amount');
      const outcome = str((r.dispute_outcome as Json | undefined)?.outcome_code);
      const status = label(outcome ?? str(r.status) ?? 'unknown', 50).toLowerCase();
      // A dispute's outcome is recorded as its status only. The money moves in events of its own,
      // keyed by their own ids: an accepted claim is refunded (PAYMENT.CAPTURE.REFUNDED), a
      // dispute lost to the buyer reverses the capture (PAYMENT.CAPTURE.REVERSED, a chargeback
      // here). Counting RESOLVED_BUYER_FAVOUR as a chargeback too would count the loss twice.
      return result(
        {
          target: checkProviderId(capture, 'resource.disputed_transactions[0].seller_transaction_id'),
          aliases: [],
          knowledge: knowledge({ currency: money.currency, disputes: { [id]: status } }),
        },
      );
    }
  }
  return result(null, `event type ${eventType || '(none)'} is not a payment lifecycle event`);
}

export function parseEvent(provider: Provider, body: unknown, topic: string): ParsedEvent {
  switch (provider) {
    case 'stripe':
      return parseStripe(body);
    case 'shopify':
      return parseShopify(topic, body);
    case 'woocommerce':
      return parseWooCommerce(topic, body);
    case 'paypal':
      return parsePayPal(body);
  }
}
