import { AD_PLATFORMS, type AdPlatform } from '../channels/classify.js';
import { currency as checkCurrency } from '../money/currencies.js';
import { SpendError } from './errors.js';

/** One day of one campaign's (ad group's, ad's) spend, checked: what ad_spend stores. */
export interface SpendRow {
  day: string;
  platform: AdPlatform;
  account_id: string;
  campaign_id: string;
  campaign_name: string | null;
  ad_group_id: string;
  ad_group_name: string | null;
  ad_id: string;
  ad_name: string | null;
  /** The channel given with the row; null: the tenant's rules decide (classifySpend). */
  channel: string | null;
  currency: string;
  spend_cents: bigint;
  impressions: bigint | null;
  clicks: bigint | null;
}

/** The largest spend, impressions or clicks one row may carry (10^15: far beyond any real day, far within bigint and JSON). */
export const MAX_ROW_UNITS = 10n ** 15n;

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
/** No control characters or line separators; surrounding white space is trimmed by the parsers. */
const CONTROL = /[\p{Cc}\u2028\u2029]/u;

/** A calendar date YYYY-MM-DD between 2000-01-01 and 2999-12-31, or a message saying what is wrong. */
export function dayProblem(text: string): string | undefined {
  // A file has few distinct days (100,000 rows of a year: 365): each is checked once, not once
  // a row (the Date per row was 0.1 s of parseSpendFile's 2.3 s at 100,000 rows).
  const known = DAY_PROBLEMS.get(text);
  if (known !== undefined) return known || undefined;
  const problem = checkDay(text);
  if (DAY_PROBLEMS.size >= 10_000) DAY_PROBLEMS.clear();
  DAY_PROBLEMS.set(text, problem ?? '');
  return problem;
}
/** dayProblem's answers ('' for none), bounded: cleared when full. */
const DAY_PROBLEMS = new Map<string, string>();

function checkDay(text: string): string | undefined {
  const m = DAY.exec(text);
  if (!m) return `${JSON.stringify(text.slice(0, 40))} is not a date YYYY-MM-DD`;
  const d = new Date(`${text}T00:00:00Z`);
  if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== text) return `${text} is not a calendar date`;
  if (text < '2000-01-01' || text > '2999-12-31') return `${text} is outside 2000-01-01 … 2999-12-31`;
  return undefined;
}

export interface RawSpendRow {
  day?: unknown;
  platform?: unknown;
  account_id?: unknown;
  campaign_id?: unknown;
  campaign_name?: unknown;
  ad_group_id?: unknown;
  ad_group_name?: unknown;
  ad_id?: unknown;
  ad_name?: unknown;
  channel?: unknown;
  currency?: unknown;
  spend_cents?: unknown;
  impressions?: unknown;
  clicks?: unknown;
}

/**
 * Checks one row (from the API, or a parser that has already turned the file's text into these
 * fields); `pointer` prefixes each problem's field. Throws spend_row_invalid naming the field.
 * The helpers are module functions, not closures made per row (0.1 s of 100,000 rows).
 */
export function checkSpendRow(raw: RawSpendRow, pointer: string): SpendRow {
  const day = textField(raw, pointer, 'day', 10, true)!;
  const dp = dayProblem(day);
  if (dp) bad(pointer, 'day', dp);
  const platform = textField(raw, pointer, 'platform', 20, true)!;
  if (!(AD_PLATFORMS as readonly string[]).includes(platform)) bad(pointer, 'platform', `must be one of ${AD_PLATFORMS.join(', ')}`);
  const cur = textField(raw, pointer, 'currency', 3, true)!;
  let code: string;
  try {
    code = checkCurrency(cur).code;
  } catch {
    return bad(pointer, 'currency', `${JSON.stringify(cur)} is not an ISO 4217 currency with minor units`);
  }
  if (code !== cur) bad(pointer, 'currency', 'must be upper case (ISO 4217)');
  const channel = textField(raw, pointer, 'channel', 100, false);
  if (channel !== null && !CHANNEL.test(channel)) bad(pointer, 'channel', 'must be a channel code (lower snake case)');
  return {
    day,
    platform: platform as AdPlatform,
    account_id: textField(raw, pointer, 'account_id', 100, false) ?? '',
    campaign_id: textField(raw, pointer, 'campaign_id', 255, true)!,
    campaign_name: textField(raw, pointer, 'campaign_name', 500, false),
    ad_group_id: textField(raw, pointer, 'ad_group_id', 255, false) ?? '',
    ad_group_name: textField(raw, pointer, 'ad_group_name', 500, false),
    ad_id: textField(raw, pointer, 'ad_id', 255, false) ?? '',
    ad_name: textField(raw, pointer, 'ad_name', 500, false),
    channel,
    currency: code,
    spend_cents: countField(raw, pointer, 'spend_cents', true)!,
    impressions: countField(raw, pointer, 'impressions', false),
    clicks: countField(raw, pointer, 'clicks', false),
  };
}

const CHANNEL = /^[a-z][a-z0-9_]{0,99}$/;

function bad(pointer: string, field: string, message: string): never {
  throw new SpendError('spend_row_invalid', `${field}: ${message}`, { field: `${pointer}/${field}` });
}

function textField(raw: RawSpendRow, pointer: string, field: keyof RawSpendRow, max: number, required: boolean): string | null {
  const v = raw[field];
  if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) return required ? bad(pointer, field, 'is required') : null;
  if (typeof v !== 'string') return bad(pointer, field, 'must be text');
  // Names may have been wrapped by whoever typed them: runs of white space (line breaks too) are one space.
  const t = field.endsWith('_name') ? v.trim().replace(/\s+/g, ' ') : v.trim();
  if (t.length > max) return bad(pointer, field, `is longer than ${max} characters`);
  if (CONTROL.test(t)) return bad(pointer, field, 'contains a control character');
  return t;
}

function countField(raw: RawSpendRow, pointer: string, field: 'impressions' | 'clicks' | 'spend_cents', required: boolean): bigint | null {
  const v = raw[field];
  if (v === undefined || v === null) return required ? bad(pointer, field, 'is required') : null;
  const n = typeof v === 'bigint' ? v : typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : null;
  if (n === null) return bad(pointer, field, 'must be a whole number');
  if (n < 0n) return bad(pointer, field, 'must not be negative');
  if (n > MAX_ROW_UNITS) return bad(pointer, field, `must be at most ${MAX_ROW_UNITS}`);
  return n;
}

/** The natural key of a row: one row per (platform, account, campaign, ad group, ad, day). */
export const naturalKey = (r: SpendRow): string => [r.platform, r.account_id, r.campaign_id, r.ad_group_id, r.ad_id, r.day].join('\u0000');
