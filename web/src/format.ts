/**
 * Money is integer minor units end to end: formatting splits them with integer arithmetic (the
 * currency's exponent from Intl), never through a float of the amount.
 */
const digitsCache = new Map<string, number>();
export function exponent(currency: string): number {
  let d = digitsCache.get(currency);
  if (d === undefined) {
    try {
      d = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
    } catch {
      d = 2;
    }
    digitsCache.set(currency, d);
  }
  return d;
}

export function money(cents: number | null | undefined, currency: string): string {
  if (cents === null || cents === undefined) return '—';
  const d = exponent(currency);
  const scale = 10 ** d;
  const negative = cents < 0;
  const abs = Math.abs(cents);
  const whole = Math.floor(abs / scale);
  const fraction = abs - whole * scale;
  const symbolFmt = new Intl.NumberFormat('en', { style: 'currency', currency, minimumFractionDigits: 0, maximumFractionDigits: 0 });
  const text = symbolFmt.format(whole);
  const withFraction = d > 0 ? insertFraction(text, String(fraction).padStart(d, '0')) : text;
  return negative ? `−${withFraction}` : withFraction;
}

function insertFraction(formatted: string, fraction: string): string {
  // Put ".xx" right after the last digit of the integer part.
  const lastDigit = formatted.search(/\d(?!.*\d)/);
  return formatted.slice(0, lastDigit + 1) + '.' + fraction + formatted.slice(lastDigit + 1);
}

/** Minor units as a plain decimal string for CSV files (e.g. 1234 USD → "12.34"). */
export function decimal(cents: number, currency: string): string {
  const d = exponent(currency);
  if (d === 0) return String(cents);
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  const scale = 10 ** d;
  return `${sign}${Math.floor(abs / scale)}.${String(abs % scale).padStart(d, '0')}`;
}

/** Minor units → major units as a number, for chart axes only (never stored or summed). */
export function major(cents: number, currency: string): number {
  return cents / 10 ** exponent(currency);
}

export function count(n: number, digits = 0): string {
  return new Intl.NumberFormat('en', { maximumFractionDigits: digits }).format(n);
}

export function percent(bps: number | null): string {
  return bps === null ? '—' : `${(bps / 100).toFixed(1)} %`;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 16)} UTC`;
}

export function channelName(code: string): string {
  const names: Record<string, string> = {
    facebook_paid: 'Facebook (paid)',
    facebook_brand: 'Facebook (brand)',
    google_search_paid: 'Google Search (paid)',
    google_display_paid: 'Google Display (paid)',
    tiktok_paid: 'TikTok (paid)',
    direct: 'Direct',
    organic: 'Organic',
    referral: 'Referral',
    email: 'E-mail',
    unknown: 'Unknown',
    unattributed: 'Not attributed yet',
  };
  return names[code] ?? code;
}

export const MODEL_NAMES: Record<string, string> = {
  first_touch: 'First touch',
  last_touch: 'Last touch',
  linear: 'Linear',
  time_decay: 'Time decay',
  position_based: 'Position based (40/20/40)',
  markov: 'Markov (removal effect)',
  shapley: 'Shapley',
  bayesian: 'Bayesian (with intervals)',
};

/** The models fitted over a whole window: the only ones whose totals have intervals (rule models are deterministic). */
export const POPULATION_MODELS: readonly string[] = ['markov', 'shapley', 'bayesian'];

/** An ad platform (the API's code, as in ad_spend.platform) by the name its users know. */
export function platformName(code: string): string {
  const names: Record<string, string> = {
    google_ads: 'Google Ads',
    meta_ads: 'Meta Ads',
    tiktok_ads: 'TikTok Ads',
    microsoft_ads: 'Microsoft Ads',
    linkedin_ads: 'LinkedIn Ads',
    other: 'Other',
  };
  return names[code] ?? code;
}

/** A ratio the API computed (ROAS): "1.73×"; a dash when there is none (no spend). */
export function ratio(x: number | null): string {
  return x === null ? '—' : `${x.toFixed(2)}×`;
}

/** Return on ad spend: revenue / spend as "2.35×" (both integer minor units of one currency); "—" without spend. */
export function roas(revenueCents: number, spendCents: number): string {
  return spendCents > 0 ? `${(revenueCents / spendCents).toFixed(2)}×` : '—';
}
