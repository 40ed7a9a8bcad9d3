import type { Queryable } from '../db/pool.js';
import { withLocalSettings } from '../db/local-settings.js';
import { formatInstant } from '../db/timestamps.js';
import { intervalFor, totalIntervals, type TotalIntervals } from '../attribution/reports.js';
import type { ModelType } from '../attribution/models.js';
import { convertWithQuote, divideHalfEven, findRates, type FxQuote } from '../money/fx.js';
import { convertedSpend } from '../spend/report.js';
import { PerformanceError } from './errors.js';
import { PERFORMANCE_PRUNED, prunedPeriod } from '../retention/aggregates.js';

export const PERFORMANCE_GROUPS = ['channel', 'campaign', 'platform', 'day'] as const;
export type PerformanceGroup = (typeof PERFORMANCE_GROUPS)[number];
/** The channel of conversions that have no allocation of the chosen model. */
export const UNATTRIBUTED = 'unattributed';

/**
 * The revenue side of the performance report in one statement and one aggregate pass, in native
 * currencies, per (group key, currency, UTC day of the rate): the caller converts each bucket once
 * at its day's rate (findRates, the ledger's FX rule) and lists the buckets without a rate as gaps.
 *
 * - conv: conversions with event time in [$2, $3) (the period's days in the tenant's reporting
 *   time zone $5), the first of each order carrying the order's ledger rows (as reconciliation).
 * - alloc: the model's allocations of the same period (the engine stores the conversion time in
 *   created_at); a row's share of its conversion is wn / wd: its cents over the conversion's (1/n
 *   when all are 0); a conversion without allocations is `unattributed` with share 1/1. One
 *   window w (the conversion's rows ordered by the group key RANK) gives the conversion's total
 *   and marks its first row (first_of_event) and its first row per key (first_in_key), so a
 *   conversion counts once per key without a count(DISTINCT) (one WindowAgg: 31 ms of 16,439
 *   conversions' 32,878 rows, where a second window partitioned by (event, key) took 50).
 * - rows: each allocation (or unattributed conversion) LEFT JOINed LATERAL to its order's ledger
 *   rows (not authorized; idx_revenue_ledger_tenant_order, first-of-order conversions only): a
 *   hash join read the tenant's whole ledger instead (1,000,000 rows for 82,192 orders of 30
 *   days: 2.5 s of 3.2 s). `once` marks the row's first ledger row, so claimed, conversions and
 *   credited count once however many ledger rows an order has.
 * - agg: one GROUP BY over those rows per (key, conversion currency and day, ledger currency and
 *   day, wd): claimed cents, conversions, credited (Σ allocation_ratio) and the ledger's integer
 *   numerators Σ amount × wn (int4 × int4 fits bigint, sum(bigint) is exact): captured,
 *   refunded, charged back and verified = max(0, captured − refunded − charged back) per ledger
 *   row. The outer GROUP BYs regroup its few hundred rows: revenue per conversion currency/day,
 *   ledger per ledger currency/day dividing each numerator once per (bucket, wd) at 30 decimals
 *   (rounded half to even per bucket by the caller); 'count': the period's conversions.
 * Measured at 200,000 conversions (30 days = 16,439 conversions, 32,878 allocations; statement
 * alone, best of 3, load 1.9–2.1): channel 228 ms, campaign 255, platform 256, day 249, against
 * 457, 477, 477, 451 ms for the previous shape (separate materialized CTEs joined twice, a GROUP BY
 * per order's ledger lookup, the lookup made per allocation, count(DISTINCT) sorts).
 * At 1,000,000 conversions (bench, 30 days = 82,192, the whole report, load 1–2.4): 1.23–1.91 s by
 * grouping, still above the 1 s target (docs/spend.md: a rollup kept on write is the next step).
 * KEY1/KEY2 are the group's key expressions (GROUP_KEYS) over s (the allocation's channel and
 * campaign), c (the conversion) and p (tenant_channels of the channel); RANK the same key on the
 * allocation side; platform: the ad platform of the allocation's channel
 * (tenant_channels.ad_platform, '' when it has none), as docs/channels.md says.
 */
const revenueSql = (key1: string, key2: string, rank: string) => `
  WITH conv AS (
    SELECT e.id, (e.event_timestamp AT TIME ZONE $5)::date AS day, (e.event_timestamp AT TIME ZONE 'UTC')::date AS fx_day, e.currency,
           coalesce(e.conversion_value_cents, 0)::bigint AS value, e.order_id,
           e.order_id IS NOT NULL AND row_number() OVER (PARTITION BY e.order_id ORDER BY e.event_timestamp, e.id) = 1 AS first_of_order
      FROM attribution_events e
     WHERE e.tenant_id = $1 AND e.event_type = 'conversion' AND e.event_timestamp >= $2 AND e.event_timestamp < $3),
  conv_ledger AS (
    SELECT c.*, l.currency AS l_currency, l.fx_day AS l_fx_day, l.captured, l.refunded, l.chargeback, l.lo
      FROM conv c LEFT JOIN LATERAL (
        SELECT l.currency, (l.verification_timestamp AT TIME ZONE 'UTC')::date AS fx_day, coalesce(l.captured_cents, l.amount_cents)::bigint AS captured,
               l.refunded_cents::bigint AS refunded, l.chargeback_cents::bigint AS chargeback, row_number() OVER () AS lo
          FROM revenue_ledger l
         WHERE c.first_of_order AND l.tenant_id = $1 AND l.order_id = c.order_id AND l.state <> 'authorized') l ON true),
  alloc AS (
    SELECT a.event_id, a.channel_code, coalesce(a.campaign_id, '') AS campaign, a.allocated_revenue_cents::bigint AS cents, a.allocation_ratio AS ratio,
           sum(a.allocated_revenue_cents) OVER w AS total, count(*) OVER w AS n,
           lag(${rank}) OVER w IS DISTINCT FROM ${rank} AS first_in_key, row_number() OVER w = 1 AS first_of_event
      FROM attribution_allocations a LEFT JOIN tenant_channels p ON p.tenant_id = $1 AND p.code = a.channel_code
     WHERE a.tenant_id = $1 AND a.model_type = $4 AND a.created_at >= $2 AND a.created_at < $3
    WINDOW w AS (PARTITION BY a.event_id ORDER BY ${rank} ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)),
  rows AS (
    SELECT ${key1} AS k1, ${key2} AS k2, c.currency, c.fx_day, c.l_currency, c.l_fx_day,
           CASE WHEN a.event_id IS NULL THEN 1 WHEN a.total > 0 THEN a.total ELSE a.n END AS wd,
           c.lo IS NULL OR c.lo = 1 AS once, coalesce(a.first_in_key, true) AS first_in_key, coalesce(a.first_of_event, true) AS first_of_event,
           coalesce(a.cents, c.value) AS claimed, coalesce(a.ratio, 1) AS credited,
           CASE WHEN a.event_id IS NULL THEN 1 WHEN a.total > 0 THEN a.cents ELSE 1 END AS wn,
           c.captured, c.refunded, c.chargeback, greatest(0, c.captured - c.refunded - c.chargeback) AS verified
      FROM conv_ledger c LEFT JOIN alloc a ON a.event_id = c.id
     CROSS JOIN LATERAL (SELECT coalesce(a.channel_code, '${UNATTRIBUTED}') AS channel, coalesce(a.campaign, '') AS campaign) s
      LEFT JOIN tenant_channels p ON p.tenant_id = $1 AND p.code = s.channel),
  agg AS MATERIALIZED (
    SELECT k1, k2, currency, fx_day, l_currency, l_fx_day, wd,
           sum(claimed) FILTER (WHERE once) AS claimed, count(*) FILTER (WHERE once AND first_in_key) AS conversions,
           count(*) FILTER (WHERE once AND first_of_event) AS events, sum(credited) FILTER (WHERE once) AS credited,
           sum(verified * wn) AS verified, sum(captured * wn) AS captured, sum(refunded * wn) AS refunded, sum(chargeback * wn) AS chargeback
      FROM rows GROUP BY 1, 2, 3, 4, 5, 6, 7)
  SELECT 'revenue' AS kind, k1, k2, currency, fx_day::text AS fx_day,
         sum(claimed)::text AS claimed, NULL AS verified, NULL AS captured, NULL AS refunded, NULL AS chargeback,
         sum(conversions)::int AS conversions, sum(credited)::text AS credited
    FROM agg GROUP BY k1, k2, currency, fx_day HAVING sum(conversions) > 0
  UNION ALL
  SELECT 'ledger', k1, k2, l_currency, l_fx_day::text, NULL,
         sum(verified::numeric(60, 30) / wd)::text, sum(captured::numeric(60, 30) / wd)::text,
         sum(refunded::numeric(60, 30) / wd)::text, sum(chargeback::numeric(60, 30) / wd)::text, 0, NULL
    FROM agg WHERE l_currency IS NOT NULL GROUP BY k1, k2, l_currency, l_fx_day
  UNION ALL
  SELECT 'count', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, coalesce(sum(events), 0)::int, NULL FROM agg`;

const GROUP_KEYS: Record<PerformanceGroup, [string, string, string]> = {
  channel: ['s.channel', `''`, 'a.channel_code'],
  campaign: ['s.channel', 's.campaign', `ROW(a.channel_code, coalesce(a.campaign_id, ''))`],
  platform: [`coalesce(p.ad_platform, '')`, `''`, `coalesce(p.ad_platform, '')`],
  day: ['c.day::text', `''`, '0'],
};
export const PERFORMANCE_SQL = Object.fromEntries(PERFORMANCE_GROUPS.map((g) => [g, revenueSql(...GROUP_KEYS[g])])) as Record<PerformanceGroup, string>;

interface Bucket {
  kind: 'revenue' | 'ledger' | 'count';
  k1: string | null;
  k2: string | null;
  currency: string | null;
  fx_day: string | null;
  claimed: string | null;
  verified: string | null;
  captured: string | null;
  refunded: string | null;
  chargeback: string | null;
  conversions: number;
  credited: string | null;
}

export interface FxGap {
  source: 'spend' | 'conversions' | 'ledger';
  currency: string;
  day: string;
  amount_cents: number;
  rows: number;
}

interface Acc {
  key: Record<string, string | null>;
  spend: bigint;
  spendRows: number;
  conversions: number;
  /** Σ allocation_ratio in units of 10^-5 (numeric(6,5) sums exactly). */
  creditedUnits: bigint;
  claimed: bigint;
  verified: bigint;
  captured: bigint;
  refunded: bigint;
  chargeback: bigint;
  /** Currencies of the claimed revenue (the ROAS interval needs it all in the reporting currency). */
  currencies: Set<string>;
  unconverted: number;
}

/** A decimal text (numeric) rounded to an integer, half to even (as every money rounding here). */
export function roundHalfEven(text: string): bigint {
  const negative = text.startsWith('-');
  const [whole, frac = ''] = (negative ? text.slice(1) : text).split('.');
  const scale = 10n ** BigInt(frac.length);
  const n = BigInt(whole! + frac);
  const q = divideHalfEven(n, scale);
  return negative ? -q : q;
}

/** Exact units of 10^-digits of a decimal text with at most `digits` decimals (Σ of numeric(6,5)). */
function decimalUnits(text: string, digits: number): bigint {
  const [whole, frac = ''] = text.split('.');
  return BigInt(whole!) * 10n ** BigInt(digits) + BigInt(frac.padEnd(digits, '0').slice(0, digits) || '0');
}

function safe(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw new PerformanceError('performance_overflow', 'a sum exceeds 2^53 minor units; narrow the period');
  return Number(v);
}

const ratio = (a: bigint, b: bigint): number | null => (b === 0n ? null : Math.round((Number(a) / Number(b)) * 1e6) / 1e6);

export interface PerformanceOptions {
  from: string;
  to: string;
  model: ModelType;
  groupBy: PerformanceGroup;
}

/**
 * The performance report of [from, to) (days in the tenant's reporting time zone), every amount in
 * the reporting currency: per group, spend, conversions, attributed (claimed) and ledger-verified
 * revenue, ROAS on both, the ROAS interval that follows from the total's interval (spend is
 * known), CPA, refund and chargeback rates; MER for the period; FX gaps listed, never counted as 0.
 */
export async function performanceReport(client: Queryable, tenantId: string, o: PerformanceOptions) {
  const t = (
    await client.query<{ currency: string; zone: string; from_at: Date; to_at: Date }>(
      `SELECT reporting_currency AS currency, reporting_time_zone AS zone,
              ($2::date::timestamp AT TIME ZONE reporting_time_zone) AS from_at, ($3::date::timestamp AT TIME ZONE reporting_time_zone) AS to_at
         FROM tenants WHERE id = $1`,
      [tenantId, o.from, o.to],
    )
  ).rows[0]!;
  // work_mem for the grouping statement alone (withLocalSettings), not for the lookups after it.
  const buckets = (
    await withLocalSettings(client, { work_mem: '64MB' }, () =>
      client.query<Bucket>(PERFORMANCE_SQL[o.groupBy], [tenantId, formatInstant(t.from_at), formatInstant(t.to_at), o.model, t.zone]),
    )
  ).rows;
  const spend = await convertedSpend(client, tenantId, o.from, o.to, t.currency);
  const revenue = buckets.filter((b) => b.kind !== 'count');
  const pairs = [...new Map(revenue.map((b) => [`${b.currency}|${b.fx_day}`, { base: b.currency!, quote: t.currency, date: b.fx_day! }])).values()];
  const quotes = new Map<string, FxQuote | null>();
  (await findRates(client, pairs)).forEach((q, i) => quotes.set(`${pairs[i]!.base}|${pairs[i]!.date}`, q));

  const lines = new Map<string, Acc>();
  const line = (k1: string, k2: string, key: () => Record<string, string | null>) => {
    const id = `${k1}\u0000${k2}`;
    let a = lines.get(id);
    if (!a) {
      a = { key: key(), spend: 0n, spendRows: 0, conversions: 0, creditedUnits: 0n, claimed: 0n, verified: 0n, captured: 0n, refunded: 0n, chargeback: 0n, currencies: new Set(), unconverted: 0 };
      lines.set(id, a);
    }
    return a;
  };
  const keyOf = (k1: string, k2: string): Record<string, string | null> =>
    o.groupBy === 'channel' ? { channel: k1 }
    : o.groupBy === 'campaign' ? { channel: k1, campaign_id: k2 === '' ? null : k2, platform: null, campaign_name: null }
    : o.groupBy === 'platform' ? { platform: k1 === '' ? null : k1 }
    : { day: k1 };
  const gaps = new Map<string, FxGap>();
  const gap = (source: FxGap['source'], currency: string, day: string, amount: bigint, rows: number) => {
    const k = `${source}|${currency}|${day}`;
    const g = gaps.get(k) ?? { source, currency, day, amount_cents: 0, rows: 0 };
    g.amount_cents = safe(BigInt(g.amount_cents) + amount);
    g.rows += rows;
    gaps.set(k, g);
  };
  // Spend, converted per (day, currency, platform, channel, campaign) by convertedSpend.
  for (const s of spend.lines) {
    const [k1, k2] =
      o.groupBy === 'channel' ? [s.channel_code, ''] : o.groupBy === 'campaign' ? [s.channel_code, s.campaign_id] : o.groupBy === 'platform' ? [s.platform, ''] : [s.day, ''];
    const a = line(k1, k2, () => keyOf(k1, k2));
    if (o.groupBy === 'campaign') {
      a.key.platform ??= s.platform;
      a.key.campaign_name ??= s.campaign_name ?? null;
    }
    a.spendRows += s.rows;
    if (s.reporting_cents === null) a.unconverted += s.rows;
    else a.spend += s.reporting_cents;
  }
  for (const g of spend.gaps) gap('spend', g.currency, g.day, BigInt(g.spend_cents), g.rows);
  let conversions = 0;
  for (const b of buckets) {
    if (b.kind === 'count') {
      conversions = b.conversions;
      continue;
    }
    const a = line(b.k1!, b.k2!, () => keyOf(b.k1!, b.k2!));
    const q = quotes.get(`${b.currency}|${b.fx_day}`) ?? null;
    const convert = (text: string | null) => {
      const native = roundHalfEven(text ?? '0');
      return q ? convertWithQuote(native, q) : null;
    };
    if (b.kind === 'revenue') {
      a.conversions += b.conversions;
      a.creditedUnits += decimalUnits(b.credited ?? '0', 5);
      a.currencies.add(b.currency!);
      const claimed = convert(b.claimed);
      if (claimed === null) {
        a.unconverted += 1;
        gap('conversions', b.currency!, b.fx_day!, roundHalfEven(b.claimed ?? '0'), b.conversions);
      } else a.claimed += claimed;
    } else {
      const verified = convert(b.verified);
      if (verified === null) {
        a.unconverted += 1;
        gap('ledger', b.currency!, b.fx_day!, roundHalfEven(b.verified ?? '0'), 1);
        continue;
      }
      a.verified += verified;
      a.captured += convert(b.captured)!;
      a.refunded += convert(b.refunded)!;
      a.chargeback += convert(b.chargeback)!;
    }
  }
  const intervals: TotalIntervals | null =
    o.groupBy === 'channel' || o.groupBy === 'campaign' ? await totalIntervals(client, tenantId, o.model, t.from_at, t.to_at, o.groupBy) : null;
  let totalSpend = 0n;
  let totalClaimed = 0n;
  let totalVerified = 0n;
  const out = [...lines.values()]
    .sort((x, y) => {
      const a = JSON.stringify(Object.values(x.key));
      const b = JSON.stringify(Object.values(y.key));
      return a < b ? -1 : a > b ? 1 : 0;
    })
    .map((a) => {
      totalSpend += a.spend;
      totalClaimed += a.claimed;
      totalVerified += a.verified;
      const channel = a.key.channel ?? null;
      // The ROAS interval: the total's interval over the spend, when the line's revenue is all in
      // the reporting currency (the stored totals are per conversion currency) and the run applies.
      const onlyReporting = a.currencies.size === 1 && a.currencies.has(t.currency);
      const iv =
        intervals && channel && channel !== UNATTRIBUTED && onlyReporting && a.unconverted === 0
          ? intervalFor(intervals, channel, o.groupBy === 'campaign' ? (a.key.campaign_id ?? '') : '', t.currency, safe(a.claimed))
          : null;
      return {
        key: a.key,
        spend_cents: safe(a.spend),
        spend_rows: a.spendRows,
        conversions: a.conversions,
        credited_conversions: Number(a.creditedUnits) / 1e5,
        attributed_cents: safe(a.claimed),
        verified_cents: safe(a.verified),
        captured_cents: safe(a.captured),
        refunded_cents: safe(a.refunded),
        chargeback_cents: safe(a.chargeback),
        roas: { claimed: ratio(a.claimed, a.spend), verified: ratio(a.verified, a.spend) },
        total_interval: iv,
        roas_interval: iv && a.spend > 0n ? { lower: ratio(BigInt(iv.lower_cents), a.spend)!, upper: ratio(BigInt(iv.upper_cents), a.spend)!, basis: 'claimed' as const } : null,
        cpa_cents: a.creditedUnits > 0n && a.spend > 0n ? safe(divideHalfEven(a.spend * 100000n, a.creditedUnits)) : null,
        refund_rate: ratio(a.refunded, a.captured),
        chargeback_rate: ratio(a.chargeback, a.captured),
        unconverted_buckets: a.unconverted,
      };
    });
  return {
    from: o.from,
    to: o.to,
    time_zone: t.zone,
    period: { from: formatInstant(t.from_at), to: formatInstant(t.to_at) },
    model: o.model,
    group_by: o.groupBy,
    currency: t.currency,
    lines: out,
    totals: {
      spend_cents: safe(totalSpend),
      conversions,
      attributed_cents: safe(totalClaimed),
      verified_cents: safe(totalVerified),
      mer: ratio(totalVerified, totalSpend),
      mer_claimed: ratio(totalClaimed, totalSpend),
    },
    total_intervals: intervals ? { run_id: intervals.run_id, note: intervals.note } : { run_id: null, note: `no interval per ${o.groupBy}: intervals are stored per channel and campaign` },
    pruned: await prunedPeriod(client, tenantId, t.from_at, t.to_at, PERFORMANCE_PRUNED),
    fx_gaps: [...gaps.values()].sort((x, y) => (x.day < y.day ? -1 : x.day > y.day ? 1 : x.source < y.source ? -1 : x.source > y.source ? 1 : x.currency < y.currency ? -1 : 1)),
  };
}
