import { withLocalSettings } from '../db/local-settings.js';
import type { Queryable } from '../db/pool.js';
import { compareInstants, formatInstant, inStorableYears } from '../db/timestamps.js';
import { DomainError } from '../errors.js';
import { CURRENCY_EXPONENTS } from '../money/currencies.js';
import { divideHalfEven, RATE_LOOKUP_SQL } from '../money/fx.js';

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

/** A rate expression as stored (findRates' rule, or a ledger row's metadata.fx.rate): "a", "1/a" or "b/a", decimals. */
const RATE_EXPRESSION = String.raw`^\d{1,20}(\.\d{1,20})?(/\d{1,20}(\.\d{1,20})?)?$`;

/**
 * SQL for `amount` (numeric minor units of `cur`) in minor units of the reporting currency ($5), at the rate expression
 * `rate` (text: "a", "1/a" or "b/a"), `ef` and `et` the exponents of `cur` and of $5: unchanged when already in the
 * reporting currency or zero; else rounded once, half to even, exactly as convertWithQuote does (numeric arithmetic is
 * exact; div truncates). NULL when no rate (or exponent) is known. One expression for every kind of amount.
 */
function convertedSql(amount: string, cur: string, rate: string, ef: string, et: string): string {
  return `CASE WHEN ${cur} = $5 OR ${amount} = 0 THEN ${amount} WHEN ${rate} IS NULL OR ${ef} IS NULL OR ${et} IS NULL THEN NULL ELSE (
      SELECT sign(q.n) * (div(abs(q.n), q.d) + CASE WHEN 2 * mod(abs(q.n), q.d) > q.d OR (2 * mod(abs(q.n), q.d) = q.d AND mod(div(abs(q.n), q.d), 2) = 1) THEN 1 ELSE 0 END)
        FROM (SELECT ${amount} * split_part(${rate}, '/', 1)::numeric * 10::numeric ^ greatest(0, ${et} - ${ef}) AS n,
                     coalesce(nullif(split_part(${rate}, '/', 2), ''), '1')::numeric * 10::numeric ^ greatest(0, ${ef} - ${et}) AS d) q)::bigint END`;
}

/** Net revenue of a ledger row (l): captured (else amount) − refunded − charged back, never below 0; 0 while only authorized. */
const NET_SQL = `CASE WHEN l.state = 'authorized' THEN 0 ELSE greatest(0, coalesce(l.captured_cents, l.amount_cents)::bigint - l.refunded_cents - l.chargeback_cents) END`;
/** The rate a ledger row (l) recorded in its metadata for its currency → the reporting currency, when it is a valid expression. */
const RECORDED_RATE_SQL = `CASE WHEN l.metadata->'fx'->>'base' = l.currency AND l.metadata->'fx'->>'quote' = $5 AND l.metadata->'fx'->>'rate' ~ '${RATE_EXPRESSION}' THEN l.metadata->'fx'->>'rate' END`;
/** "day currency" of an amount that could not be converted (the least of them names the missing rate). */
const missingSql = (amount: string, day: string, cur: string) => `CASE WHEN ${amount} IS NULL THEN ${day}::text || ' ' || ${cur} END`;

/** What the statement reads of a ledger row (l). */
const LEDGER_COLUMNS = `l.order_id, l.state, l.currency, (l.verification_timestamp AT TIME ZONE 'UTC')::date AS day, (${NET_SQL}) AS net, ${RECORDED_RATE_SQL} AS recorded`;

/**
 * The whole report in one statement. Conversions of the period (the first of each order carries
 * the order's ledger rows) and the ledger rows the report reads, read once each: those of the
 * period's orders (idx_revenue_ledger_tenant_order, one look-up per order), and the period's
 * verified rows whose order no conversion claims (unmatched; idx_revenue_ledger_tenant_verified, a
 * range of the period). One filter over the tenant's whole ledger used to pick both: a Seq Scan of
 * every row the tenant ever had, growing with its history rather than with the period. The two sets
 * are disjoint (an order a conversion of the period claims is never unmatched), so UNION ALL; the rate of each (currency, day) that needs one looked up once (findRates' rule,
 * RATE_LOOKUP_SQL) and every amount converted with it (a ledger row's recorded rate first). The
 * conversion used to be written out once per kind of amount, a rate look-up per row: 28 ms of the
 * statement's 30 ms planning on 20,000 events, 2 ms without (EXPLAIN SUMMARY, docs/web.md).
 * Each conversion's claimed and verified split over its allocations by largest remainder exactly
 * as allocate() does (floor of amount·w/Σw, the units left to the largest remainders, ties to the
 * lower channel code; a conversion with one allocation, or none: `unattributed`, keeps its whole
 * amount and needs no split); summed per channel, per day and in total in one pass (GROUPING
 * SETS; `lead` marks one row of each conversion, the one that counts it per day and in total);
 * then the unmatched ledger revenue. A conversion's allocations are found by its id within the
 * period's range of created_at, which the engine sets to the conversion's time
 * (src/attribution/store.ts), as the channel report does: one index range
 * (idx_allocations_model_created) instead of the model's whole history.
 */
function reconciliationSql(scope: 'report' | 'channels'): string {
  return `
  WITH conv AS MATERIALIZED (
    SELECT e.id, (e.event_timestamp AT TIME ZONE 'UTC')::date AS day, coalesce(e.conversion_value_cents, 0)::bigint AS value, e.currency, e.order_id,
           e.order_id IS NOT NULL AND row_number() OVER (PARTITION BY e.order_id ORDER BY e.event_timestamp, e.id) = 1 AS first_of_order
      FROM attribution_events e
     WHERE e.tenant_id = $1 AND e.event_type = 'conversion' AND e.event_timestamp >= $2 AND e.event_timestamp < $3),
  ledger AS MATERIALIZED (
    SELECT ${LEDGER_COLUMNS}, true AS of_order, false AS unmatched
      FROM revenue_ledger l
     WHERE l.tenant_id = $1 AND l.order_id = ANY (ARRAY(SELECT c.order_id FROM conv c WHERE c.first_of_order))
${scope === 'report' ? `
    UNION ALL
    SELECT ${LEDGER_COLUMNS}, false, true
      FROM revenue_ledger l
     WHERE l.tenant_id = $1 AND l.verification_timestamp >= $2 AND l.verification_timestamp < $3 AND l.state <> 'authorized'
       AND (l.order_id IS NULL OR (l.order_id NOT IN (SELECT c.order_id FROM conv c WHERE c.order_id IS NOT NULL)
            AND NOT EXISTS (SELECT 1 FROM attribution_events e WHERE e.tenant_id = $1 AND e.order_id = l.order_id AND e.event_type = 'conversion')))` : ''}),
  exponents AS (SELECT x.c, x.e FROM unnest($6::text[], $7::int[]) x(c, e)),
  rates AS MATERIALIZED (
    SELECT k.cur, k.day, xf.e AS ef, (SELECT x.e FROM exponents x WHERE x.c = $5) AS et,
           (SELECT CASE r.method WHEN 'direct' THEN r.a WHEN 'inverse' THEN '1/' || r.a ELSE r.b || '/' || r.a END
              FROM (SELECT k.cur AS base, $5::text AS quote, k.day AS day) w CROSS JOIN LATERAL (${RATE_LOOKUP_SQL}) r) AS rate
      FROM (SELECT c.currency AS cur, c.day FROM conv c WHERE c.currency <> $5 AND c.value <> 0
            UNION SELECT l.currency, l.day FROM ledger l WHERE l.currency <> $5 AND l.net <> 0 AND l.recorded IS NULL) k
      LEFT JOIN exponents xf ON xf.c = k.cur),
  ledger_amounts AS MATERIALIZED (
    SELECT l.order_id, l.state, l.currency, l.day, l.of_order, l.unmatched,
           ${convertedSql('l.net', 'l.currency', 'coalesce(l.recorded, r.rate)', 'xf.e', '(SELECT x.e FROM exponents x WHERE x.c = $5)')} AS amount
      FROM ledger l LEFT JOIN rates r ON r.cur = l.currency AND r.day = l.day LEFT JOIN exponents xf ON xf.c = l.currency),
  orders AS (
    SELECT l.order_id, sum(l.amount) AS verified, bool_or(l.state <> 'authorized') AS is_verified, min(${missingSql('l.amount', 'l.day', 'l.currency')}) AS missing
      FROM ledger_amounts l WHERE l.of_order GROUP BY l.order_id),
  per_event AS (
    SELECT a.event_id, count(*) AS n, sum(a.allocated_revenue_cents) AS total, min(a.channel_code) AS channel
      FROM conv c JOIN attribution_allocations a ON a.tenant_id = $1 AND a.model_type = $4 AND a.created_at >= $2 AND a.created_at < $3 AND a.event_id = c.id
     GROUP BY a.event_id),
  cv AS MATERIALIZED (
    SELECT c.id, c.day, c.currency, ${convertedSql('c.value', 'c.currency', 'r.rate', 'r.ef', 'r.et')} AS claimed, coalesce(o.verified, 0) AS verified,
           coalesce(o.is_verified, false) AS is_verified, o.missing AS ledger_missing, coalesce(p.n, 0) AS n, p.total, p.channel
      FROM conv c
      LEFT JOIN rates r ON r.cur = c.currency AND r.day = c.day
      LEFT JOIN orders o ON c.first_of_order AND o.order_id = c.order_id
      LEFT JOIN per_event p ON p.event_id = c.id),
  quotas AS (
    SELECT cv.id, cv.day, a.channel_code AS channel, cv.is_verified, cv.claimed, cv.verified,
           div(cv.claimed::numeric * w.w, w.total) AS c_floor, mod(cv.claimed::numeric * w.w, w.total) AS c_rem,
           div(cv.verified::numeric * w.w, w.total) AS v_floor, mod(cv.verified::numeric * w.w, w.total) AS v_rem
      FROM cv JOIN attribution_allocations a ON a.tenant_id = $1 AND a.model_type = $4 AND a.created_at >= $2 AND a.created_at < $3 AND a.event_id = cv.id
     CROSS JOIN LATERAL (SELECT CASE WHEN cv.total = 0 THEN 1 ELSE a.allocated_revenue_cents END AS w, CASE WHEN cv.total = 0 THEN cv.n ELSE cv.total END AS total) w
     WHERE cv.n > 1),
  ranked AS (
    SELECT q.*, row_number() OVER c AS c_rank, sum(q.c_floor) OVER c AS c_given
      FROM quotas q WINDOW c AS (PARTITION BY q.id ORDER BY q.c_rem DESC, q.channel ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)),
  shares AS (
    SELECT coalesce(cv.channel, '${UNATTRIBUTED}') AS channel, cv.day, true AS lead, cv.is_verified, cv.claimed, cv.verified,
           least(${missingSql('cv.claimed', 'cv.day', 'cv.currency')}, cv.ledger_missing) AS missing
      FROM cv WHERE cv.n <= 1
    UNION ALL
    SELECT r.channel, r.day, r.c_rank = 1, r.is_verified,
           r.c_floor + CASE WHEN r.c_rank <= r.claimed - r.c_given THEN 1 ELSE 0 END,
           r.v_floor + CASE WHEN row_number() OVER v <= r.verified - sum(r.v_floor) OVER v THEN 1 ELSE 0 END, NULL
      FROM ranked r WINDOW v AS (PARTITION BY r.id ORDER BY r.v_rem DESC, r.channel ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    UNION ALL
    SELECT NULL, NULL, false, false, 0, 0, least(${missingSql('cv.claimed', 'cv.day', 'cv.currency')}, cv.ledger_missing)
      FROM cv WHERE cv.n > 1 AND (cv.claimed IS NULL OR cv.ledger_missing IS NOT NULL))
  SELECT CASE WHEN GROUPING(channel) = 0 THEN 'channel' ${scope === 'report' ? "WHEN GROUPING(day) = 0 THEN 'day' " : ''}ELSE 'total' END AS kind,
         CASE WHEN GROUPING(channel) = 0 THEN channel${scope === 'report' ? ' ELSE day::text' : ''} END AS key,
         CASE WHEN GROUPING(channel) = 0 THEN count(*) ELSE count(*) FILTER (WHERE lead) END::int AS conversions,
         CASE WHEN GROUPING(channel) = 0 THEN count(*) FILTER (WHERE is_verified) ELSE count(*) FILTER (WHERE lead AND is_verified) END::int AS verified_conversions,
         coalesce(sum(claimed), 0)::text AS claimed, coalesce(sum(verified), 0)::text AS verified, min(missing) AS missing
    FROM shares GROUP BY GROUPING SETS ((channel), ${scope === 'report' ? '(day), ' : ''}())${scope === 'report' ? `
  UNION ALL
  SELECT 'unmatched', NULL, count(*)::int, 0, coalesce(sum(l.amount), 0)::text, NULL, min(${missingSql('l.amount', 'l.day', 'l.currency')})
    FROM ledger_amounts l WHERE l.unmatched` : ''}`;
}

export const RECONCILIATION_SQL = reconciliationSql('report');
/**
 * What GET /attribution/channels shows of the reconciliation: the per-channel and total lines, without the days and
 * the unmatched ledger revenue, so without reading the period's ledger rows (only those of its conversions' orders).
 */
export const RECONCILIATION_CHANNELS_SQL = reconciliationSql('channels');

/**
 * What the statement runs with (for it alone: withLocalSettings restores the caller's values).
 * - work_mem: its sorts and hashes hold ~70,000 rows for a month of a busy tenant: in memory rather than spilled to
 *   disk (4 MB default).
 * - enable_nestloop off: every join of the statement is of one period's rows to another's (conversions, their
 *   allocations, their orders' ledger rows), which hash joins do in one pass. When the planner misjudges a CTE's
 *   size (the materialized ones have no statistics) it can pick a nested loop whose inner side is an index range of
 *   the whole period, once per conversion: quadratic on a busy tenant. With nested loops ruled out only the joins
 *   that need one remain so (the LATERAL rate look-ups, one row each). Hash and merge joins are switched on in
 *   case the session turned them off. Measured in docs/web.md.
 */
export const RECONCILIATION_SETTINGS = { work_mem: '64MB', enable_nestloop: 'off', enable_hashjoin: 'on', enable_mergejoin: 'on' } as const;

/** The statement's parameters ($1 … $7 of RECONCILIATION_SQL). */
export function reconciliationParams(tenantId: string, from: Date, to: Date, model: string, reporting: string): unknown[] {
  return [tenantId, formatInstant(from), formatInstant(to), model, reporting, [...CURRENCY_EXPONENTS.keys()], [...CURRENCY_EXPONENTS.values()]];
}

/** The plan the statement (or RECONCILIATION_CHANNELS_SQL) gets (EXPLAIN, FORMAT JSON), with the settings it runs with: for tests and for operators. */
export async function explainReconciliation(client: Queryable, tenantId: string, from: Date, to: Date, model: string, reporting: string, sql = RECONCILIATION_SQL): Promise<unknown> {
  return withLocalSettings(client, RECONCILIATION_SETTINGS, async () =>
    (await client.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${sql}`, reconciliationParams(tenantId, from, to, model, reporting))).rows[0]!['QUERY PLAN'],
  );
}

type Row = { kind: 'channel' | 'day' | 'total' | 'unmatched'; key: string | null; conversions: number; verified_conversions: number; claimed: string | null; verified: string | null; missing: string | null };

/** Checks the period and model, runs `sql` (RECONCILIATION_SQL or RECONCILIATION_CHANNELS_SQL), refuses a missing rate; the rows and the reporting currency. */
async function run(client: Queryable, sql: string, tenantId: string, from: Date, to: Date, model: string): Promise<{ reporting: string; rows: Row[] }> {
  checkInstant('from', from);
  checkInstant('to', to);
  if (compareInstants(from, to) >= 0) throw new ReconciliationError('reconciliation_window_invalid', '`from` must be before `to`', { field: 'from' });
  if (!(RECONCILIATION_MODELS as readonly string[]).includes(model)) {
    throw new ReconciliationError('reconciliation_model_invalid', `model must be one of ${RECONCILIATION_MODELS.join(', ')}`, { field: 'model' });
  }
  const reporting = (await client.query<{ c: string }>(`SELECT reporting_currency AS c FROM tenants WHERE id = $1`, [tenantId])).rows[0]!.c;
  const { rows } = await withLocalSettings(client, RECONCILIATION_SETTINGS, () => client.query<Row>(sql, reconciliationParams(tenantId, from, to, model, reporting)));
  const missing = rows.map((r) => r.missing).filter((m): m is string => m !== null).sort()[0];
  if (missing) {
    const [date, base] = missing.split(' ');
    throw new ReconciliationError('fx_rate_missing', `no ${base}→${reporting} rate on or before ${date}; import one with skeldir fx import`, {
      details: { base, quote: reporting, date },
    });
  }
  return { reporting, rows };
}

const acc = (r: Row): Acc => ({ conversions: r.conversions, verified_conversions: r.verified_conversions, claimed: BigInt(r.claimed ?? 0), verified: BigInt(r.verified ?? 0) });
const channelLines = (rows: Row[]) =>
  rows
    .filter((r) => r.kind === 'channel')
    .map((r) => [r.key!, acc(r)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([channel, a]) => ({ channel, ...line(a) }));

export async function reconciliation(client: Queryable, tenantId: string, from: Date, to: Date, model: string): Promise<Report> {
  const { reporting, rows } = await run(client, RECONCILIATION_SQL, tenantId, from, to, model);
  const days = rows.filter((r) => r.kind === 'day').map((r) => [r.key!, acc(r)] as const);
  const total = acc(rows.find((r) => r.kind === 'total')!);
  const unmatched = rows.find((r) => r.kind === 'unmatched')!;
  const unmatchedCents = BigInt(unmatched.claimed ?? 0);

  return {
    from: formatInstant(from),
    to: formatInstant(to),
    model,
    currency: reporting,
    channels: channelLines(rows),
    total: { ...line(total), unmatched_ledger_cents: safe(unmatchedCents), unmatched_ledger_transactions: unmatched.conversions },
    days: [...days].sort(([a], [b]) => (a < b ? -1 : 1)).map(([date, acc]) => ({ date, ...line(acc) })),
  };
}

/**
 * The reconciliation's channel lines and total, as reconciliation() gives them, for GET /attribution/channels: one
 * statement without the days and the unmatched ledger revenue (RECONCILIATION_CHANNELS_SQL). A rate missing only for
 * an unmatched ledger row, which enters no channel's figures, fails reconciliation() but not this.
 */
export async function reconciliationChannels(client: Queryable, tenantId: string, from: Date, to: Date, model: string): Promise<Pick<Report, 'currency' | 'channels'> & { total: Line }> {
  const { reporting, rows } = await run(client, RECONCILIATION_CHANNELS_SQL, tenantId, from, to, model);
  return { currency: reporting, channels: channelLines(rows), total: line(acc(rows.find((r) => r.kind === 'total')!)) };
}
