/**
 * What Skeldir knows about one payment, as a join-semilattice: every provider event is a partial
 * snapshot of it, and `join` combines snapshots so that the result does not depend on the order
 * or the number of deliveries (join is commutative, associative and idempotent; tested with
 * fast-check). Cumulative figures take their maximum (Stripe's `amount_refunded`, PayPal's
 * `total_refunded_amount`), individual refunds and disputes are unions keyed by their provider
 * id, flags are ORs, and single values that could disagree take a deterministic winner.
 * The ledger row's columns are *derived* from the joined knowledge (`derive`).
 */
export type LedgerState = 'authorized' | 'captured' | 'refunded' | 'chargeback';
export const LEDGER_STATES: readonly LedgerState[] = ['authorized', 'captured', 'refunded', 'chargeback'];

export interface Knowledge {
  /** Payment amount in minor units (set by the first payment snapshot; the ledger never changes it). */
  amount: number | null;
  currency: string | null;
  /** Earliest time a provider reported for the payment (the transaction date). */
  occurredAt: string | null;
  captured: boolean;
  /**
   * A provider event reported a separate authorization before the capture (informational: every
   * row is born `authorized` and stepped forward, whatever the first snapshot says).
   */
  authorized: boolean;
  /** Individual captures by provider capture id → amount (PayPal captures of an authorization). */
  captures: Record<string, number>;
  /** Largest cumulative captured figure a snapshot reported (Stripe amount_captured / amount_received); 0 = none. */
  capturedTotal: number;
  /** Individual refunds by provider refund id → amount. */
  refunds: Record<string, number>;
  /** Largest cumulative refunded figure a snapshot reported. */
  refundedTotal: number;
  fullyRefunded: boolean;
  /** Lost disputes / reversals by id → amount. */
  chargebacks: Record<string, number>;
  /** Dispute id → latest known status (a final status outranks an open one). */
  disputes: Record<string, string>;
  voided: boolean;
  orderId: string | null;
  /** Immutable provider facts (payment intent id, order name …). */
  details: Record<string, string>;
}

export const EMPTY: Knowledge = {
  amount: null,
  currency: null,
  occurredAt: null,
  captured: false,
  authorized: false,
  captures: {},
  capturedTotal: 0,
  refunds: {},
  refundedTotal: 0,
  fullyRefunded: false,
  chargebacks: {},
  disputes: {},
  voided: false,
  orderId: null,
  details: {},
};

const FINAL_DISPUTE = new Set(['won', 'lost', 'accepted', 'charge_refunded', 'warning_closed', 'resolved', 'resolved_buyer_favour', 'resolved_seller_favour', 'resolved_with_payout', 'denied']);
const disputeRank = (s: string) => (FINAL_DISPUTE.has(s.toLowerCase()) ? 2 : 1);

/** The smaller of two optional values (deterministic winner for values that should agree). */
function minOf<T extends string | number>(a: T | null, b: T | null): T | null {
  if (a === null) return b;
  if (b === null) return a;
  return a <= b ? a : b;
}

function unionMax(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = Math.max(out[k] ?? 0, v);
  return sortKeys(out);
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
}

export function join(a: Knowledge, b: Knowledge): Knowledge {
  const disputes: Record<string, string> = { ...a.disputes };
  for (const [k, v] of Object.entries(b.disputes)) {
    const cur = disputes[k];
    disputes[k] = cur === undefined || disputeRank(v) > disputeRank(cur) || (disputeRank(v) === disputeRank(cur) && v > cur) ? v : cur;
  }
  const details: Record<string, string> = { ...a.details };
  for (const [k, v] of Object.entries(b.details)) details[k] = details[k] === undefined ? v : (minOf(details[k]!, v) as string);
  return {
    // amount and currency travel together: the pair with the smaller (currency, zero-padded
    // amount) key wins. A deterministic choice (so the join is commutative), not the earliest
    // snapshot; the ledger row's amount is fixed when the row is inserted anyway.
    ...pickPayment(a, b),
    occurredAt: minOf(a.occurredAt, b.occurredAt),
    captured: a.captured || b.captured,
    authorized: a.authorized || b.authorized,
    captures: unionMax(a.captures, b.captures),
    capturedTotal: Math.max(a.capturedTotal, b.capturedTotal),
    refunds: unionMax(a.refunds, b.refunds),
    refundedTotal: Math.max(a.refundedTotal, b.refundedTotal),
    fullyRefunded: a.fullyRefunded || b.fullyRefunded,
    chargebacks: unionMax(a.chargebacks, b.chargebacks),
    disputes: sortKeys(disputes),
    voided: a.voided || b.voided,
    orderId: minOf(a.orderId, b.orderId),
    details: sortKeys(details),
  };
}

function pickPayment(a: Knowledge, b: Knowledge): { amount: number | null; currency: string | null } {
  if (a.amount === null) return { amount: b.amount, currency: b.currency };
  if (b.amount === null) return { amount: a.amount, currency: a.currency };
  const ka = `${a.currency}:${String(a.amount).padStart(12, '0')}`;
  const kb = `${b.currency}:${String(b.amount).padStart(12, '0')}`;
  return ka <= kb ? { amount: a.amount, currency: a.currency } : { amount: b.amount, currency: b.currency };
}

export interface Derived {
  state: LedgerState;
  /** Amount captured when a provider reported a partial figure (null: the whole amount once captured). */
  capturedCents: number | null;
  refundedCents: number;
  chargebackCents: number;
  /** Verified revenue: 0 while authorized, else (captured, else amount) − refunded − charged back (≥ 0). */
  netCents: number;
}

const sum = (o: Record<string, number>) => Object.values(o).reduce((s, v) => s + v, 0);

/** The ledger row's figures and the state the knowledge calls for. Requires a known amount. */
export function derive(k: Knowledge): Derived {
  const amount = k.amount ?? 0;
  const known = Math.max(k.capturedTotal, sum(k.captures));
  const capturedCents = known > 0 ? Math.min(amount, known) : null;
  const base = capturedCents ?? amount;
  const refunded = Math.min(amount, Math.max(k.refundedTotal, sum(k.refunds), k.fullyRefunded ? amount : 0));
  const chargeback = Math.min(amount, sum(k.chargebacks));
  const captured = k.captured || capturedCents !== null || refunded > 0 || chargeback > 0 || k.fullyRefunded;
  const state: LedgerState =
    chargeback > 0 ? 'chargeback' : k.fullyRefunded || (base > 0 && refunded >= base) ? 'refunded' : captured ? 'captured' : 'authorized';
  const netCents = state === 'authorized' ? 0 : Math.max(0, base - refunded - chargeback);
  return { state, capturedCents, refundedCents: refunded, chargebackCents: chargeback, netCents };
}

/**
 * The states to step through from `from` to reach `to` along authorized → captured →
 * refunded | chargeback; null when `to` is not reachable (a terminal state is never left:
 * the row keeps its state and the figures still converge).
 */
export function path(from: LedgerState | null, to: LedgerState): LedgerState[] | null {
  const order = (s: LedgerState) => (s === 'authorized' ? 0 : s === 'captured' ? 1 : 2);
  if (from === to) return [];
  if (from === null) return to === 'authorized' ? ['authorized'] : to === 'captured' ? ['authorized', 'captured'] : ['authorized', 'captured', to];
  if (order(from) === 2) return null;
  if (order(to) <= order(from)) return [];
  return from === 'authorized' && order(to) === 2 ? ['captured', to] : [to];
}

/** Knowledge kept in revenue_ledger.metadata.knowledge (plain JSON). */
export function fromJson(value: unknown): Knowledge {
  const v = (value && typeof value === 'object' ? value : {}) as Partial<Knowledge>;
  return { ...EMPTY, ...v, captures: { ...(v.captures ?? {}) }, refunds: { ...(v.refunds ?? {}) }, chargebacks: { ...(v.chargebacks ?? {}) }, disputes: { ...(v.disputes ?? {}) }, details: { ...(v.details ?? {}) } };
}
