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
 */
export function checkSpendRow(raw: RawSpendRow, pointer: string): SpendRow {
  const bad = (field: string, message: string): never => {
    throw new SpendError('spend_row_invalid', `${field}: ${message}`, { field: `${pointer}/${field}` });
  };
  const text = (field: keyof RawSpendRow, max: number, required: boolean): string | null => {
    const v = raw[field];
    if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) return required ? bad(field, 'is required') : null;
    if (typeof v !== 'string') return bad(field, 'must be text');
    // Names may have been wrapped by whoever typed them: runs of white space (line breaks too) are one space.
    const t = field.endsWith('_name') ? v.trim().replace(/\s+/g, ' ') : v.trim();
    if (t.length > max) return bad(field, `is longer than ${max} characters`);
    if (CONTROL.test(t)) return bad(field, 'contains a control character');
    return t;
  };
  const count = (field: 'impressions' | 'clicks' | 'spend_cents', required: boolean): bigint | null => {
    const v = raw[field];
    if (v === undefined || v === null) return required ? bad(field, 'is required') : null;
    const n = typeof v === 'bigint' ? v : typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : null;
    if (n === null) return bad(field, 'must be a whole number');
    if (n < 0n) return bad(field, 'must not be negative');
    if (n > MAX_ROW_UNITS) return bad(field, `must be at most ${MAX_ROW_UNITS}`);
    return n;
  };
  const day = text('day', 10, true)!;
  const dp = dayProblem(day);
  if (dp) bad('day', dp);
  const platform = text('platform', 20, true)!;
  if (!(AD_PLATFORMS as readonly string[]).includes(platform)) bad('platform', `must be one of ${AD_PLATFORMS.join(', ')}`);
  const cur = text('currency', 3, true)!;
  let code: string;
  try {
    code = checkCurrency(cur).code;
  } catch {
    return bad('currency', `${JSON.stringify(cur)} is not an ISO 4217 currency with minor units`);
  }
  if (code !== cur) bad('currency', 'must be upper case (ISO 4217)');
  const channel = text('channel', 100, false);
  if (channel !== null && !/^[a-z][a-z0-9_]{0,99}$/.test(channel)) bad('channel', 'must be a channel code (lower snake case)');
  return {
    day,
    platform: platform as AdPlatform,
    account_id: text('account_id', 100, false) ?? '',
    campaign_id: text('campaign_id', 255, true)!,
    campaign_name: text('campaign_name', 500, false),
    ad_group_id: text('ad_group_id', 255, false) ?? '',
    ad_group_name: text('ad_group_name', 500, false),
    ad_id: text('ad_id', 255, false) ?? '',
    ad_name: text('ad_name', 500, false),
    channel,
    currency: code,
    spend_cents: count('spend_cents', true)!,
    impressions: count('impressions', false),
    clicks: count('clicks', false),
  };
}

/** The natural key of a row: one row per (platform, account, campaign, ad group, ad, day). */
export const naturalKey = (r: SpendRow): string => [r.platform, r.account_id, r.campaign_id, r.ad_group_id, r.ad_id, r.day].join('\u0000');
