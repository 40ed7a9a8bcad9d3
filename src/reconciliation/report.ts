import type { Queryable } from '../db/pool.js';
import { compareInstants, formatInstant, inStorableYears } from '../db/timestamps.js';
import { DomainError } from '../errors.js';
import { allocate } from '../money/allocate.js';
import { convertWithQuote, divideHalfEven, findRate, type FxQuote } from '../money/fx.js';

export class ReconciliationError extends DomainError {}

export const RECONCILIATION_MODELS = ['first_touch', 'last_touch', 'last_non_direct', 'linear', 'time_decay', 'position_based', 'markov', 'shapley', 'bayesian'] as const;
export const DEFAULT_RECONCILIATION_MODEL = 'last_touch';
/** Channel of conversions that have no allocation of the chosen model (not attributed yet). */
export const UNATTRIBUTED = 'unattributed';

export interface Line {
  conversions: number;
  verified_conversions: number;
  claimed_cents: number;
  verified_cents: number;
  gap_cents: number;
  /** gap / claimed in basis points (half-even), null when nothing is claimed. */
  gap_bps: number | null;
}

export interface Report {
  from: string;
  to: string;
  model: string;
  currency: string;
  channels: (Line & { channel: string })[];
  total: Line & { unmatched_ledger_cents: number; unmatched_ledger_transactions: number };
  /** The same totals per UTC day of the conversions (days without conversions are absent). */
  days: (Line & { date: string })[];
}

interface Acc {
  conversions: number;
  verified_conversions: number;
  claimed: bigint;
  verified: bigint;
}

const line = (a: Acc): Line => {
  const gap = a.claimed - a.verified;
  return {
    conversions: a.conversions,
    verified_conversions: a.verified_conversions,
    claimed_cents: safe(a.claimed),
    verified_cents: safe(a.verified),
    gap_cents: safe(gap),
    gap_bps: a.claimed > 0n ? safe(divideHalfEven(gap * 10000n, a.claimed)) : null,
  };
};

function safe(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ReconciliationError('reconciliation_overflow', 'a sum exceeds 2^53 minor units; narrow the period');
  }
  return Number(v);
}

/**
 * Reconciliation for the tenant in context, over conversions whose event time is in [from, to):
 * - claimed: each conversion's value, converted to the reporting currency at the rate of the
 *   conversion's date;
 * - verified: the net revenue (captured − refunded − charged back) of the ledger transactions
 *   with the conversion's order_id, each converted at its transaction date (the rate recorded
 *   in the row's metadata when there is one), counted once per order (first conversion);
 * - per channel: both split over the channels by the conversion's allocations of `model`
 *   (largest remainder, exact sums); conversions without allocations are `unattributed`;
 * - gap = claimed − verified, also in basis points of claimed;
 * - unmatched ledger revenue: verified transactions of the period whose order no conversion
 *   claims (or without an order id).
 */
/** A period starts and ends at valid instants in years 0001–9999 UTC (src/db/timestamps.ts), as attribution windows do. */
function checkInstant(field: 'from' | 'to', d: Date): void {
  if (Number.isNaN(d.getTime())) throw new ReconciliationError('reconciliation_window_invalid', `\`${field}\` must be a timestamp`, { field });
  if (!inStorableYears(d)) {
    throw new ReconciliationError('reconciliation_window_invalid', `\`${field}\` must be in years 0001–9999 (UTC), got ${formatInstant(d)}`, { field });
  }
}

export async function reconciliation(client: Queryable, tenantId: string, from: Date, to: Date, model: string): Promise<Report> {
  checkInstant('from', from);
  checkInstant('to', to);
  if (compareInstants(from, to) >= 0) throw new ReconciliationError('reconciliation_window_invalid', '`from` must be before `to`', { field: 'from' });
  if (!(RECONCILIATION_MODELS as readonly string[]).includes(model)) {
    throw new ReconciliationError('reconciliation_model_invalid', `model must be one of ${RECONCILIATION_MODELS.join(', ')}`, { field: 'model' });
  }
  const reporting = (await client.query<{ c: string }>(`SELECT reporting_currency AS c FROM tenants WHERE id = $1`, [tenantId])).rows[0]!.c;
  const rates = new Map<string, FxQuote>();
  const convert = async (amount: bigint, cur: string, at: Date, recorded?: FxQuote | null): Promise<bigint> => {
    if (cur === reporting || amount === 0n) return amount;
    if (recorded && recorded.base === cur && recorded.quote === reporting) return convertWithQuote(amount, recorded);
    const date = at.toISOString().slice(0, 10);
    const k = `${cur}|${date}`;
    let q = rates.get(k);
    if (!q) {
      const found = await findRate(client, cur, reporting, date);
      if (!found) {
        throw new ReconciliationError('fx_rate_missing', `no ${cur}→${reporting} rate on or before ${date}; import one with skeldir fx import`, {
          details: { base: cur, quote: reporting, date },
        });
      }
      rates.set(k, (q = found));
    }
    return convertWithQuote(amount, q);
  };

  const conversions = (
    await client.query<{ id: string; at: Date; value: number | null; currency: string; order_id: string | null }>(
      `SELECT id, event_timestamp AS at, conversion_value_cents AS value, currency, order_id
         FROM attribution_events
        WHERE tenant_id = $1 AND event_type = 'conversion' AND event_timestamp >= $2 AND event_timestamp < $3
        ORDER BY event_timestamp, id`,
      [tenantId, formatInstant(from), formatInstant(to)],
    )
  ).rows;
  const ids = conversions.map((c) => c.id);
  const allocations = new Map<string, { channel: string; cents: number }[]>();
  for (const a of (
    await client.query<{ event_id: string; channel: string; cents: number }>(
      `SELECT event_id, channel_code AS channel, allocated_revenue_cents AS cents FROM attribution_allocations
        WHERE tenant_id = $1 AND model_type = $2 AND event_id = ANY($3::uuid[]) ORDER BY event_id, channel_code`,
      [tenantId, model, ids],
    )
  ).rows) {
    const list = allocations.get(a.event_id) ?? [];
    list.push({ channel: a.channel, cents: a.cents });
    allocations.set(a.event_id, list);
  }
  const orders = [...new Set(conversions.map((c) => c.order_id).filter((o): o is string => o !== null))];
  const ledger = new Map<string, { state: string; net: bigint; currency: string; at: Date; fx: FxQuote | null }[]>();
  for (const r of (
    await client.query<{ order_id: string; state: string; amount: number; refunded: number; chargeback: number; currency: string; at: Date; fx: FxQuote | null }>(
      `SELECT order_id, state, COALESCE(captured_cents, amount_cents) AS amount, refunded_cents AS refunded, chargeback_cents AS chargeback, currency,
              verification_timestamp AS at, metadata->'fx' AS fx
         FROM revenue_ledger WHERE tenant_id = $1 AND order_id = ANY($2::text[])`,
      [tenantId, orders],
    )
  ).rows) {
    const net = r.state === 'authorized' ? 0n : BigInt(Math.max(0, r.amount - r.refunded - r.chargeback));
    const list = ledger.get(r.order_id) ?? [];
    list.push({ state: r.state, net, currency: r.currency, at: r.at, fx: r.fx });
    ledger.set(r.order_id, list);
  }

  const channels = new Map<string, Acc>();
  const total: Acc = { conversions: 0, verified_conversions: 0, claimed: 0n, verified: 0n };
  const seenOrders = new Set<string>();
  const days = new Map<string, Acc>();
  for (const c of conversions) {
    const claimed = await convert(BigInt(c.value ?? 0), c.currency, c.at);
    let verified = 0n;
    let isVerified = false;
    if (c.order_id && !seenOrders.has(c.order_id)) {
      seenOrders.add(c.order_id);
      for (const l of ledger.get(c.order_id) ?? []) {
        verified += await convert(l.net, l.currency, l.at, l.fx);
        // An authorization alone verifies nothing: only a captured (or later) payment does.
        if (l.state !== 'authorized') isVerified = true;
      }
    }
    const day = c.at.toISOString().slice(0, 10);
    const dayAcc = days.get(day) ?? { conversions: 0, verified_conversions: 0, claimed: 0n, verified: 0n };
    days.set(day, dayAcc);
    for (const acc of [total, dayAcc]) {
      acc.conversions++;
      acc.claimed += claimed;
      acc.verified += verified;
      if (isVerified) acc.verified_conversions++;
    }
    const allocs = allocations.get(c.id) ?? [];
    const parts = allocs.length === 0 ? [{ channel: UNATTRIBUTED, cents: 1 }] : allocs;
    const weights = parts.every((p) => p.cents === 0) ? parts.map(() => 1) : parts.map((p) => p.cents);
    const claimedSplit = allocate(claimed, weights);
    const verifiedSplit = allocate(verified, weights);
    parts.forEach((p, i) => {
      const acc = channels.get(p.channel) ?? { conversions: 0, verified_conversions: 0, claimed: 0n, verified: 0n };
      acc.conversions++;
      if (isVerified) acc.verified_conversions++;
      acc.claimed += claimedSplit[i]!;
      acc.verified += verifiedSplit[i]!;
      channels.set(p.channel, acc);
    });
  }

  const unmatched = (
    await client.query<{ amount: number; refunded: number; chargeback: number; currency: string; at: Date; fx: FxQuote | null }>(
      `SELECT COALESCE(l.captured_cents, l.amount_cents) AS amount, l.refunded_cents AS refunded, l.chargeback_cents AS chargeback, l.currency,
              l.verification_timestamp AS at, l.metadata->'fx' AS fx
         FROM revenue_ledger l
        WHERE l.tenant_id = $1 AND l.state <> 'authorized' AND l.verification_timestamp >= $2 AND l.verification_timestamp < $3
          AND (l.order_id IS NULL OR NOT EXISTS (SELECT 1 FROM attribution_events e
                WHERE e.tenant_id = l.tenant_id AND e.order_id = l.order_id AND e.event_type = 'conversion'))`,
      [tenantId, formatInstant(from), formatInstant(to)],
    )
  ).rows;
  let unmatchedCents = 0n;
  for (const u of unmatched) unmatchedCents += await convert(BigInt(Math.max(0, u.amount - u.refunded - u.chargeback)), u.currency, u.at, u.fx);

  return {
    from: formatInstant(from),
    to: formatInstant(to),
    model,
    currency: reporting,
    channels: [...channels.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([channel, acc]) => ({ channel, ...line(acc) })),
    total: { ...line(total), unmatched_ledger_cents: safe(unmatchedCents), unmatched_ledger_transactions: unmatched.length },
    days: [...days.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([date, acc]) => ({ date, ...line(acc) })),
  };
}
