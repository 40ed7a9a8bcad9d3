import { parse } from 'csv-parse/sync';
import { type AdPlatform } from '../channels/classify.js';
import { AmountError, parseDecimalAmount } from '../money/amount.js';
import { currency as checkCurrency, exponentOf } from '../money/currencies.js';
import { SpendError } from './errors.js';
import { checkSpendRow, naturalKey, type RawSpendRow, type SpendRow } from './rows.js';

/**
 * The spend files people really export (docs/spend.md describes each):
 * - google_ads: the Google Ads campaign (or ad group, or ad) report downloaded as CSV — title lines
 *   ("Campaign report", the date range) before the header, `Day`, `Campaign`, `Campaign ID`, `Cost`,
 *   `Currency code`, `Impressions` (or `Impr.`), `Clicks`, US thousands separators ("1,234.56"),
 *   `--` for none, and "Total: …" lines after the data; "CSV for Excel" (UTF-16, tab-separated) too;
 * - meta_ads: the Meta Ads Manager export — `Reporting starts`, `Reporting ends` (one day per row:
 *   a daily breakdown), `Campaign name`, `Campaign ID`, `Amount spent (EUR)` (the currency in the
 *   header), `Impressions`, `Link clicks`, optional ad set and ad columns;
 * - generic: the documented columns (day, campaign_id, spend, …), spend in major units.
 * Parsed with csv-parse (quoted fields, embedded commas and newlines, BOM, CRLF). Every line is
 * checked; a file with any bad line throws one spend_file_invalid naming every bad line, so a bad
 * file imports nothing.
 */
export const SPEND_FORMATS = ['google_ads', 'meta_ads', 'generic'] as const;
export type SpendFormat = (typeof SPEND_FORMATS)[number];

export interface ParseOptions {
  platform: AdPlatform;
  /** Default: recognised from the header. */
  format?: SpendFormat;
  /** Account id for rows whose file names none. */
  account?: string;
  /** Currency for rows whose file names none (Google reports without `Currency code`, Meta headers without one). */
  currency?: string;
  /** Channel for every row (else the tenant's rules decide per campaign). */
  channel?: string;
}

export interface ParsedFile {
  format: SpendFormat;
  rows: { line: number; row: SpendRow }[];
  /** Lines that are not data: titles before the header, totals after it. */
  skipped: { line: number; reason: string }[];
}

/** Most bad lines listed in the error's message (all of them, up to 1,000, in details.errors). */
const LISTED = 20;

/** The file's text: UTF-8 (BOM or not) or UTF-16 with its BOM ("CSV for Excel"). */
export function decodeSpendFile(bytes: Buffer): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le');
  if (bytes[0] === 0xfe && bytes[1] === 0xff) {
    const swapped = Buffer.from(bytes.subarray(2));
    swapped.swap16();
    return swapped.toString('utf16le');
  }
  const text = bytes.toString('utf8');
  if (text.includes('\uFFFD') && !bytes.includes(Buffer.from('\uFFFD'))) {
    throw new SpendError('spend_file_invalid', 'the file is not UTF-8 (nor UTF-16 with a byte-order mark): export it as CSV (UTF-8)');
  }
  return text.replace(/^\uFEFF/, '');
}

interface Record_ {
  fields: string[];
  line: number;
}

/** The options every spend file is read with (csv-parse's names; plainRecords does the same without quotes). */
const CSV_OPTIONS = { relax_column_count: true, skip_empty_lines: true, info: true, trim: true } as const;

export function records(text: string): Record_[] {
  const head = text.split(/\r?\n/, 8).join('\n');
  const delimiter = (head.match(/\t/g)?.length ?? 0) > (head.match(/,/g)?.length ?? 0) ? '\t' : ',';
  const plain = plainRecords(text, delimiter);
  if (plain) return plain;
  try {
    const out = parse(text, { delimiter, ...CSV_OPTIONS }) as unknown as { record: string[]; info: { lines: number } }[];
    return out.map((r) => ({ fields: r.record, line: r.info.lines }));
  } catch (error) {
    const e = error as Error & { lines?: number };
    throw new SpendError('spend_file_invalid', `the file is not valid CSV${e.lines ? ` (line ${e.lines})` : ''}: ${e.message}; nothing was imported`, {
      details: { errors: [`line ${e.lines ?? '?'}: ${e.message}`] },
    });
  }
}

/** What csv-parse's trim takes off the start of an unquoted field (its "timchars"; the end is String#trimEnd). */
const LEADING_TRIM = /^[\r\n\f \t]+/;

/**
 * The records of a file without quotes whose line breaks are all \n or all \r\n: what csv-parse
 * returns for it with CSV_OPTIONS (same fields, same line numbers; spend.test.ts compares the two on
 * random files), by splitting. csv-parse with `info` and `trim` took 1.2 of the 2.3 s that
 * parseSpendFile spent on 100,000 generic rows; splitting takes about 0.1 s. Anything else
 * (quotes, lone \r, mixed line breaks): undefined, and csv-parse reads it.
 */
export function plainRecords(text: string, delimiter: ',' | '\t'): Record_[] | undefined {
  if (text.includes('"')) return undefined;
  let lines: string[];
  const cr = text.indexOf('\r');
  if (cr < 0) lines = text.split('\n');
  else {
    lines = text.split('\r\n');
    for (const l of lines) if (l.includes('\r') || l.includes('\n')) return undefined;
  }
  const out: Record_[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l === '') continue;
    const fields = l.split(delimiter);
    for (let j = 0; j < fields.length; j++) {
      let f = fields[j]!;
      const c = f.charCodeAt(0);
      if (c === 32 || c === 9 || c === 12) f = f.replace(LEADING_TRIM, '');
      fields[j] = f.trimEnd();
    }
    // csv-parse skips a line with no delimiter that is empty once its leading white space is trimmed.
    if (fields.length === 1 && l.replace(LEADING_TRIM, '') === '') continue;
    out.push({ fields, line: i + 1 });
  }
  return out;
}

const norm = (h: string) => h.trim().toLowerCase().replace(/\s+/g, ' ');

/** Which export a header row is. */
export function detectFormat(header: readonly string[]): SpendFormat {
  const h = header.map(norm);
  if (h.includes('reporting starts') || h.some((x) => x.startsWith('amount spent'))) return 'meta_ads';
  if (h.includes('day') && h.includes('cost') && (h.includes('campaign id') || h.includes('campaign'))) return 'google_ads';
  return 'generic';
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** 2024-01-31, or Google's "Jan 31, 2024" / "January 31, 2024" → 2024-01-31; anything else as given (checked later). */
function isoDay(text: string): string {
  const m = /^([A-Za-z]{3,9})\.? (\d{1,2}), (\d{4})$/.exec(text.trim());
  if (!m) return text.trim();
  const month = MONTHS.indexOf(m[1]!.slice(0, 3).toLowerCase());
  if (month < 0) return text.trim();
  return `${m[3]}-${String(month + 1).padStart(2, '0')}-${m[2]!.padStart(2, '0')}`;
}

/** "1,234.56" (US thousands separators) or "1234.56" → "1234.56"; a number in another shape is refused. */
function plainDecimal(text: string, what: string): string {
  const t = text.trim();
  if (/^\d{1,3}(,\d{3})+(\.\d+)?$/.test(t)) return t.replace(/,/g, '');
  if (/^\d+(\.\d+)?$/.test(t)) return t;
  throw new Error(`${what} ${JSON.stringify(t.slice(0, 40))} is not a number (digits, "." for decimals, "," only between thousands)`);
}

/** A count ("12,345", "12345"); `--` or empty is none. */
function countOf(text: string | undefined, what: string): bigint | null {
  const t = text?.trim() ?? '';
  if (t === '' || t === '--') return null;
  const d = plainDecimal(t, what);
  if (d.includes('.')) throw new Error(`${what} ${JSON.stringify(t)} is not a whole number`);
  return BigInt(d);
}

/** A money amount in major units → minor units of `cur`, exactly; `--` or empty is 0 (nothing spent). */
function minorOf(text: string | undefined, cur: string, what: string): bigint {
  const t = text?.trim() ?? '';
  if (t === '' || t === '--') return 0n;
  try {
    return parseDecimalAmount(plainDecimal(t, what), exponentOf(cur), { field: what });
  } catch (error) {
    if (error instanceof AmountError) throw new Error(error.message);
    throw error;
  }
}

interface Columns {
  find(...names: string[]): number | undefined;
}

function columnsOf(header: readonly string[]): Columns {
  const h = header.map(norm);
  return { find: (...names) => names.map((n) => h.indexOf(n)).find((i) => i >= 0) };
}

/** Parses a spend file; throws spend_file_invalid listing every bad line. */
export function parseSpendFile(text: string, options: ParseOptions): ParsedFile {
  const all = records(text);
  const skipped: ParsedFile['skipped'] = [];
  const errors: string[] = [];
  // The header: the first record that names a day column; anything before it is a title line.
  const headerAt = all.findIndex((r) => {
    const h = r.fields.map(norm);
    return h.includes('day') || h.includes('reporting starts');
  });
  if (headerAt < 0) {
    throw new SpendError('spend_file_invalid', 'no header line found: a spend file needs a Day (Google Ads, generic) or Reporting starts (Meta) column; nothing was imported', {
      details: { errors: ['no header line'] },
    });
  }
  for (const r of all.slice(0, headerAt)) skipped.push({ line: r.line, reason: 'title line before the header' });
  const header = all[headerAt]!.fields;
  const format = options.format ?? detectFormat(header);
  const col = columnsOf(header);
  const data = all.slice(headerAt + 1);
  const rows: ParsedFile['rows'] = [];
  const seen = new Map<string, number>();

  const need = (what: string, ...names: string[]): number => {
    const i = col.find(...names);
    if (i === undefined) throw new SpendError('spend_file_invalid', `the ${format} file has no ${what} column (header line ${all[headerAt]!.line}); nothing was imported`, {
      details: { errors: [`line ${all[headerAt]!.line}: no ${what} column`] },
    });
    return i;
  };

  let toRaw: (f: string[]) => RawSpendRow | null;
  if (format === 'google_ads') {
    const day = need('Day', 'day');
    const id = need('Campaign ID', 'campaign id');
    const cost = need('Cost', 'cost');
    const name = col.find('campaign');
    const cur = col.find('currency code', 'currency');
    const impressions = col.find('impressions', 'impr.');
    const clicks = col.find('clicks');
    const account = col.find('customer id', 'account id');
    const group = col.find('ad group id');
    const groupName = col.find('ad group');
    const ad = col.find('ad id');
    if (cur === undefined && !options.currency) need('Currency code (or give --currency)', 'currency code');
    toRaw = (f) => {
      // "Total: Account", "Total: Campaigns", "Total: Search" … summarise the lines above.
      if (/^total\b/i.test(f[0] ?? '')) return null;
      const currency = (cur !== undefined ? f[cur] : undefined)?.trim() || options.currency!;
      return {
        day: isoDay(f[day] ?? ''),
        campaign_id: f[id],
        campaign_name: name !== undefined ? f[name] : undefined,
        currency,
        spend_cents: minorOf(f[cost], currency, 'Cost'),
        impressions: countOf(impressions !== undefined ? f[impressions] : undefined, 'Impressions'),
        clicks: countOf(clicks !== undefined ? f[clicks] : undefined, 'Clicks'),
        account_id: account !== undefined ? f[account]?.replace(/-/g, '') : undefined,
        ad_group_id: group !== undefined && f[group] !== '--' ? f[group] : undefined,
        ad_group_name: groupName !== undefined && f[groupName] !== '--' ? f[groupName] : undefined,
        ad_id: ad !== undefined && f[ad] !== '--' ? f[ad] : undefined,
      };
    };
  } else if (format === 'meta_ads') {
    const starts = col.find('reporting starts');
    const ends = col.find('reporting ends');
    const dayCol = col.find('day');
    if (starts === undefined && dayCol === undefined) need('Reporting starts (or Day)', 'reporting starts');
    const id = need('Campaign ID', 'campaign id');
    const spentAt = header.findIndex((h) => norm(h).startsWith('amount spent'));
    if (spentAt < 0) need('Amount spent (XXX)', 'amount spent');
    const fromHeader = /\(([A-Z]{3})\)\s*$/.exec(header[spentAt]!.trim())?.[1];
    const currency = fromHeader ?? options.currency;
    if (!currency) need('currency in Amount spent (XXX) (or give --currency)', 'amount spent (xxx)');
    const name = col.find('campaign name');
    const impressions = col.find('impressions');
    const clicks = col.find('link clicks');
    const account = col.find('account id');
    const set = col.find('ad set id');
    const setName = col.find('ad set name');
    const ad = col.find('ad id');
    const adName = col.find('ad name');
    toRaw = (f) => {
      const first = (dayCol !== undefined ? f[dayCol] : f[starts!])?.trim() ?? '';
      const last = ends !== undefined ? f[ends]?.trim() : undefined;
      if (dayCol === undefined && last !== undefined && last !== first) {
        throw new Error(`the row covers ${first} to ${last}: export with a daily breakdown (Breakdown → By time → Day)`);
      }
      return {
        day: first,
        campaign_id: f[id],
        campaign_name: name !== undefined ? f[name] : undefined,
        currency,
        spend_cents: minorOf(f[spentAt], currency!, header[spentAt]!.trim()),
        impressions: countOf(impressions !== undefined ? f[impressions] : undefined, 'Impressions'),
        clicks: countOf(clicks !== undefined ? f[clicks] : undefined, 'Link clicks'),
        account_id: account !== undefined ? f[account] : undefined,
        ad_group_id: set !== undefined ? f[set] : undefined,
        ad_group_name: setName !== undefined ? f[setName] : undefined,
        ad_id: ad !== undefined ? f[ad] : undefined,
        ad_name: adName !== undefined ? f[adName] : undefined,
      };
    };
  } else {
    const KNOWN = ['day', 'platform', 'account_id', 'campaign_id', 'campaign_name', 'ad_group_id', 'ad_group_name', 'ad_id', 'ad_name', 'channel', 'currency', 'spend', 'impressions', 'clicks'] as const;
    const unknown = header.map(norm).filter((h) => !(KNOWN as readonly string[]).includes(h));
    if (unknown.length) {
      throw new SpendError('spend_file_invalid', `the generic file has unknown column(s) ${unknown.map((u) => JSON.stringify(u)).join(', ')} (header line ${all[headerAt]!.line}; the columns: docs/spend.md); nothing was imported`, {
        details: { errors: [`line ${all[headerAt]!.line}: unknown column ${unknown[0]}`] },
      });
    }
    need('day', 'day');
    need('campaign_id', 'campaign_id');
    need('spend', 'spend');
    // Each column's index found once per file, not once per row.
    const i = Object.fromEntries(KNOWN.map((n) => [n, col.find(n)])) as Record<(typeof KNOWN)[number], number | undefined>;
    const at = (f: string[], c: number | undefined) => (c === undefined ? undefined : f[c]);
    if (i.currency === undefined && !options.currency) need('currency (or give --currency)', 'currency');
    toRaw = (f) => {
      const platform = at(f, i.platform)?.trim();
      if (platform && platform !== options.platform) throw new Error(`platform ${JSON.stringify(platform)} is not --platform ${options.platform}`);
      const currency = at(f, i.currency)?.trim() || options.currency!;
      return {
        day: at(f, i.day),
        account_id: at(f, i.account_id),
        campaign_id: at(f, i.campaign_id),
        campaign_name: at(f, i.campaign_name),
        ad_group_id: at(f, i.ad_group_id),
        ad_group_name: at(f, i.ad_group_name),
        ad_id: at(f, i.ad_id),
        ad_name: at(f, i.ad_name),
        channel: at(f, i.channel),
        currency,
        spend_cents: minorOf(at(f, i.spend), currency, 'spend'),
        impressions: countOf(at(f, i.impressions), 'impressions'),
        clicks: countOf(at(f, i.clicks), 'clicks'),
      };
    };
  }

  for (const r of data) {
    try {
      if (r.fields.length > header.length) throw new Error(`${r.fields.length} fields, the header has ${header.length}`);
      const raw = toRaw(r.fields);
      if (raw === null) {
        skipped.push({ line: r.line, reason: 'total line' });
        continue;
      }
      // The currency must be known before its amount can be read: check it first for a clear message.
      if (typeof raw.currency === 'string') checkCurrency(raw.currency.trim());
      // raw is this row's own object (toRaw made it): filled in place, not copied.
      raw.platform = options.platform;
      raw.account_id = raw.account_id || options.account;
      raw.channel = raw.channel || options.channel;
      const row = checkSpendRow(raw, '');
      const key = naturalKey(row);
      const earlier = seen.get(key);
      if (earlier !== undefined) throw new Error(`the same campaign${row.ad_group_id ? ', ad group' : ''}${row.ad_id ? ', ad' : ''} and day as line ${earlier}`);
      seen.set(key, r.line);
      rows.push({ line: r.line, row });
    } catch (error) {
      const message = (error as Error).message.replace(/^\//, '');
      errors.push(`line ${r.line}: ${message}`);
    }
  }
  if (errors.length > 0) {
    throw new SpendError(
      'spend_file_invalid',
      `${errors.length} bad line(s); nothing was imported:\n  ${errors.slice(0, LISTED).join('\n  ')}${errors.length > LISTED ? `\n  … and ${errors.length - LISTED} more` : ''}`,
      { details: { errors: errors.slice(0, 1000), bad_lines: errors.length } },
    );
  }
  if (rows.length === 0) throw new SpendError('spend_file_invalid', 'the file has no spend rows; nothing was imported', { details: { errors: [] } });
  return { format, rows, skipped };
}

/** A Google Ads report is google_ads spend and a Meta export meta_ads spend: a file given as another platform's is refused. */
export function checkFilePlatform(format: SpendFormat, platform: AdPlatform, field: string): void {
  if (format === 'google_ads' && platform !== 'google_ads') {
    throw new SpendError('spend_file_invalid', `the file is a Google Ads report, not ${field} ${platform}`, { field });
  }
  if (format === 'meta_ads' && platform !== 'meta_ads') {
    throw new SpendError('spend_file_invalid', `the file is a Meta Ads Manager export, not ${field} ${platform}`, { field });
  }
}
