import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { compareInstants, formatInstant, readInstant } from '../db/timestamps.js';
import { DATASETS, pageSql, type DatasetName } from './datasets.js';
import { encoderFor, type Format, type TextRow } from './encode.js';
import { ExportError } from './errors.js';

export interface ExportRequest {
  tenantId: string;
  dataset: DatasetName;
  format: Format;
  /** Inclusive start and exclusive end of the dataset's period column; unbounded when absent. */
  from?: Date;
  to?: Date;
  /** Rows per keyset page (each page is one short transaction). */
  pageSize?: number;
}

/**
 * 5,000 rows a page: about 1.5 MB of text for allocations, so memory stays flat whatever the export's size,
 * and a 1,000,000-row export is 200 short transactions (bench/exports.bench.ts).
 */
export const PAGE_SIZE = 5_000;

/** A `from` / `to` as a request or flag gives it (src/db/timestamps.ts); undefined when absent. */
export function periodBound(field: 'from' | 'to', text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const d = readInstant(field, text);
  if (typeof d === 'string') throw new ExportError('export_period_invalid', d, field);
  return d;
}

export function checkPeriod(from: Date | undefined, to: Date | undefined, timeKind: 'timestamp' | 'date' = 'timestamp'): void {
  if (timeKind === 'date') {
    // Spend comes in whole days (as GET /spend takes them): a bound inside a day would select half of nothing.
    for (const [field, d] of [['from', from], ['to', to]] as const) {
      if (d && formatInstant(d).slice(10) !== 'T00:00:00.000000Z') {
        throw new ExportError('export_period_invalid', `${field} must be a whole day (YYYY-MM-DD, or its midnight UTC) for this dataset, got ${formatInstant(d)}`, field);
      }
    }
  }
  if (from && to && compareInstants(from, to) >= 0) {
    throw new ExportError('export_period_invalid', `to (${formatInstant(to)}) must be after from (${formatInstant(from)})`, 'to');
  }
}

/** A bound as the page statement takes it: the instant, or its day for a dataset of days; ±infinity when absent. */
function boundText(d: Date | undefined, timeKind: 'timestamp' | 'date', absent: string): string {
  if (!d) return absent;
  return timeKind === 'date' ? formatInstant(d).slice(0, 10) : formatInstant(d);
}

/**
 * The export as chunks of text: the header and the first page, then one chunk per page. Each page is read in its
 * own transaction in the tenant's context (and with an explicit tenant predicate), strictly after the last row
 * of the page before in (time, id) order, so no transaction stays open while the client reads, a row is never
 * sent twice, and rows are never held beyond one page. Rows written while an export runs appear if they sort
 * after the point reached. The first page is read before anything is yielded, so a failure to start is an error
 * the caller can still report properly.
 */
export async function* exportChunks(pool: pg.Pool, req: ExportRequest, stats?: { rows: number }): AsyncGenerator<string> {
  const dataset = DATASETS[req.dataset];
  const timeKind = dataset.timeKind ?? 'timestamp';
  checkPeriod(req.from, req.to, timeKind);
  const encoder = encoderFor(req.format, dataset.columns);
  const pageSize = req.pageSize ?? PAGE_SIZE;
  const text = pageSql(dataset);
  const name = `skeldir_export_${dataset.name}`;
  const from = boundText(req.from, timeKind, '-infinity');
  const to = boundText(req.to, timeKind, 'infinity');
  let after: [string, string] = ['-infinity', '00000000-0000-0000-0000-000000000000'];
  let prefix = encoder.header;
  const n = dataset.columns.length;
  for (;;) {
    const { rows } = await withTenant(pool, req.tenantId, (client) =>
      client.query<TextRow>({ name, text, values: [req.tenantId, from, to, after[0], after[1], pageSize], rowMode: 'array' }),
    );
    let chunk = prefix;
    prefix = '';
    for (const row of rows) chunk += encoder.line(row);
    if (stats) stats.rows += rows.length;
    if (rows.length > 0) {
      const last = rows[rows.length - 1]!;
      after = [last[n]!, last[n + 1]!];
    }
    if (chunk !== '') yield chunk;
    if (rows.length < pageSize) return;
  }
}
