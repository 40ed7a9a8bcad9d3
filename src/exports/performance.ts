import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { performanceReport, type PerformanceGroup, type PerformanceOptions } from '../performance/report.js';
import type { ColumnKind } from './datasets.js';
import { encoderFor, type Format, type TextRow } from './encode.js';

/**
 * The performance export: GET /api/v1/performance's lines, one row per group, in the report's order. The report
 * is computed whole (one row per channel, campaign, platform or day of the period, so its size is bounded by the
 * groups, not by the events), then encoded: no keyset pages are needed.
 */

interface PerformanceColumn {
  name: string;
  kind: ColumnKind;
  description: string;
}

type Line = Awaited<ReturnType<typeof performanceReport>>['lines'][number];
type Report = Awaited<ReturnType<typeof performanceReport>>;

const k = (name: string, description: string): PerformanceColumn => ({ name, kind: 'string', description });

/** The key columns of each grouping, as the report's `key` (docs/exports.md lists them in this order). */
export const PERFORMANCE_KEY_COLUMNS: Record<PerformanceGroup, PerformanceColumn[]> = {
  channel: [k('channel', 'Channel credited (`unattributed`: conversions without an allocation of the model).')],
  campaign: [
    k('channel', 'Channel credited (`unattributed`: conversions without an allocation of the model).'),
    k('campaign_id', 'Campaign; null when the touches credited named none.'),
    k('platform', 'Ad platform of the campaign\'s spend rows; null when no spend row of the period names it.'),
    k('campaign_name', 'Name of the campaign in its spend rows; null when none.'),
  ],
  platform: [k('platform', 'Ad platform of the channel credited; null: revenue of channels without one.')],
  day: [k('day', 'The day (YYYY-MM-DD) in the tenant\'s reporting time zone.')],
};
/** Every key column once, in the order docs/exports.md lists them. */
export const PERFORMANCE_ALL_KEY_COLUMNS = ['channel', 'campaign_id', 'platform', 'campaign_name', 'day'];

const v = (name: string, kind: ColumnKind, description: string, value: (l: Line, r: Report) => string | number | null) => ({ name, kind, description, value });

/** The value columns of every row, after the key columns. Amounts are integer minor units of `currency`. */
export const PERFORMANCE_VALUE_COLUMNS = [
  v('currency', 'string', 'The tenant\'s reporting currency (ISO 4217) of every amount of the row.', (_l, r) => r.currency),
  v('spend_cents', 'integer', 'Spend converted at each day\'s rate; 0 when none.', (l) => l.spend_cents),
  v('spend_rows', 'integer', 'Spend rows counted.', (l) => l.spend_rows),
  v('conversions', 'integer', 'Conversions credited to the group at all.', (l) => l.conversions),
  v('credited_conversions', 'decimal', 'Sum of the allocation ratios (5 decimals).', (l) => l.credited_conversions),
  v('attributed_cents', 'integer', 'Claimed revenue: the model\'s allocations, converted at the conversion day\'s rate.', (l) => l.attributed_cents),
  v('verified_cents', 'integer', 'Ledger-verified revenue: captured − refunded − charged back of the conversions\' orders, split like the allocations.', (l) => l.verified_cents),
  v('captured_cents', 'integer', 'Captured of those orders, split likewise.', (l) => l.captured_cents),
  v('refunded_cents', 'integer', 'Refunded, split likewise.', (l) => l.refunded_cents),
  v('chargeback_cents', 'integer', 'Charged back, split likewise.', (l) => l.chargeback_cents),
  v('roas_claimed', 'decimal', 'attributed / spend (6 decimals); null when no spend.', (l) => l.roas.claimed),
  v('roas_verified', 'decimal', 'verified / spend (6 decimals); null when no spend.', (l) => l.roas.verified),
  v('total_lower_cents', 'integer', 'Lower bound of the 94 % interval of attributed_cents (population models whose run covers exactly the period; channel and campaign groupings); null otherwise.', (l) => l.total_interval?.lower_cents ?? null),
  v('total_upper_cents', 'integer', 'Upper bound of that interval; null otherwise.', (l) => l.total_interval?.upper_cents ?? null),
  v('interval_method', 'string', '`posterior_draws` (bayesian) or `bootstrap` (markov, shapley); null without an interval.', (l) => l.total_interval?.method ?? null),
  v('roas_lower', 'decimal', 'total_lower_cents / spend: lower bound of claimed ROAS; null without an interval or spend.', (l) => l.roas_interval?.lower ?? null),
  v('roas_upper', 'decimal', 'total_upper_cents / spend; null likewise.', (l) => l.roas_interval?.upper ?? null),
  v('cpa_cents', 'integer', 'spend / credited conversions, half to even; null without spend or conversions.', (l) => l.cpa_cents),
  v('refund_rate', 'decimal', 'refunded / captured (6 decimals); null when nothing captured.', (l) => l.refund_rate),
  v('chargeback_rate', 'decimal', 'charged back / captured; null likewise.', (l) => l.chargeback_rate),
  v('unconverted_buckets', 'integer', 'Spend rows and revenue buckets left out for want of an FX rate (the report\'s fx_gaps lists them).', (l) => l.unconverted_buckets),
];

/** The columns of a grouping's export, in order. */
export function performanceColumns(groupBy: PerformanceGroup): { name: string; kind: ColumnKind }[] {
  return [...PERFORMANCE_KEY_COLUMNS[groupBy], ...PERFORMANCE_VALUE_COLUMNS];
}

/** The report's lines as export rows: numbers as JS prints them (valid JSON), keys and strings as they are. */
export function performanceRows(report: Report, groupBy: PerformanceGroup): TextRow[] {
  const keys = PERFORMANCE_KEY_COLUMNS[groupBy].map((c) => c.name);
  return report.lines.map((l) => [
    ...keys.map((key) => l.key[key] ?? null),
    ...PERFORMANCE_VALUE_COLUMNS.map((c) => {
      const x = c.value(l, report);
      return x === null ? null : String(x);
    }),
  ]);
}

/** The whole export as text (header and rows), computed in the tenant's context as GET /api/v1/performance does. */
export async function performanceExport(pool: pg.Pool, tenantId: string, options: PerformanceOptions, format: Format): Promise<{ text: string; rows: number }> {
  const report = await withTenant(pool, tenantId, (c) => performanceReport(c, tenantId, options));
  const encoder = encoderFor(format, performanceColumns(options.groupBy));
  const rows = performanceRows(report, options.groupBy);
  return { text: encoder.header + rows.map((r) => encoder.line(r)).join(''), rows: rows.length };
}
