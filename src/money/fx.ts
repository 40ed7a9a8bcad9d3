import { DomainError } from '../errors.js';
import type { Queryable } from '../db/pool.js';
import { currency } from './currencies.js';

export class FxError extends DomainError {}

/** An exact positive rational number. */
export interface Rational {
  num: bigint;
  den: bigint;
}

const RATE = /^(\d{1,20})(?:\.(\d{1,20}))?$/;

/** "1.0875" → 10875/10000, exactly. Positive decimals only (no exponent notation). */
export function parseRate(text: string, field = 'rate'): Rational {
  const m = RATE.exec(text.trim());
  if (!m) throw new FxError('fx_rate_invalid', `${field} ${JSON.stringify(text.slice(0, 40))} is not a positive decimal number`, { field });
  const fraction = m[2] ?? '';
  const r = { num: BigInt(m[1]! + fraction), den: 10n ** BigInt(fraction.length) };
  if (r.num === 0n) throw new FxError('fx_rate_invalid', `${field} must be greater than zero`, { field });
  return r;
}

/**
 * The exact rate recorded in ledger metadata: a decimal ("1.0875"), an inverse ("1/0.9194")
 * or a cross rate through a pivot ("0.8571/1.0875"). Parsing it back gives the same rational,
 * so a conversion recorded once is reproducible forever.
 */
export function parseRateExpression(text: string): Rational {
  const parts = text.split('/');
  if (parts.length === 1) return parseRate(parts[0]!);
  if (parts.length !== 2) throw new FxError('fx_rate_invalid', `rate expression ${JSON.stringify(text)} is not a or a/b`);
  const a = parseRate(parts[0]!);
  const b = parseRate(parts[1]!);
  return { num: a.num * b.den, den: a.den * b.num };
}

/**
 * Converts integer minor units of one currency into minor units of another at an exact rate
 * (1 unit of `from` = rate units of `to`), honouring both exponents, rounded once, half to
 * even (no systematic bias when many conversions are summed).
 */
export function convertMinor(amount: bigint, fromExponent: number, toExponent: number, rate: Rational): bigint {
  let num = amount * rate.num * 10n ** BigInt(Math.max(0, toExponent - fromExponent));
  let den = rate.den * 10n ** BigInt(Math.max(0, fromExponent - toExponent));
  if (den < 0n) {
    num = -num;
    den = -den;
  }
  return divideHalfEven(num, den);
}

export function divideHalfEven(num: bigint, den: bigint): bigint {
  const negative = num < 0n;
  const n = negative ? -num : num;
  let q = n / den;
  const r = n - q * den;
  if (r * 2n > den || (r * 2n === den && q % 2n === 1n)) q += 1n;
  return negative ? -q : q;
}

/** A rate found for a conversion: what to record in `metadata.fx` of a ledger row. */
export interface FxQuote {
  base: string;
  quote: string;
  /** Exact rate expression (see parseRateExpression). */
  rate: string;
  /** Date of the rate used (the latest on or before the transaction date). */
  rate_date: string;
  source: string;
  method: 'identity' | 'direct' | 'inverse' | 'cross';
  pivot?: string;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * The rate for converting `base` into `quote` at `date` (YYYY-MM-DD, UTC): the most recent
 * imported rate on or before that date, taken directly (base→quote), inverted (quote→base),
 * or crossed through a common base currency with both legs on the same date (ECB-style tables
 * quote everything against EUR). The most recent date wins; on equal dates direct beats
 * inverse beats cross. Null when no rate exists on or before the date.
 */
export async function findRate(client: Queryable, base: string, quote: string, date: string): Promise<FxQuote | null> {
  return (await findRates(client, [{ base, quote, date }]))[0]!;
}

/**
 * The rate rule of findRates as a subquery over `w.base`, `w.quote`, `w.day` (for a CROSS/LEFT
 * JOIN LATERAL): at most one row (method, rate_date, a, b, source, pivot); 1 base = a quote
 * (direct), 1/a (inverse) or b/a (cross). Reports that convert in SQL use it too, so there is one rule.
 */
export const RATE_LOOKUP_SQL = `
         (SELECT 'direct' AS method, rate_date::text, rate::text AS a, NULL::text AS b, source, NULL::text AS pivot, 1 AS rank
            FROM fx_rates WHERE base_currency = w.base AND quote_currency = w.quote AND rate_date <= w.day
           ORDER BY rate_date DESC LIMIT 1)
         UNION ALL
         (SELECT 'inverse', rate_date::text, rate::text, NULL, source, NULL, 2
            FROM fx_rates WHERE base_currency = w.quote AND quote_currency = w.base AND rate_date <= w.day
           ORDER BY rate_date DESC LIMIT 1)
         UNION ALL
         (SELECT 'cross', x.rate_date::text, x.rate::text, y.rate::text,
                 CASE WHEN x.source = y.source THEN x.source ELSE x.source || '+' || y.source END, x.base_currency, 3
            FROM fx_rates x
            JOIN fx_rates y ON y.rate_date = x.rate_date AND y.base_currency = x.base_currency AND y.quote_currency = w.quote
           WHERE x.quote_currency = w.base AND x.rate_date <= w.day
           ORDER BY x.rate_date DESC, x.base_currency LIMIT 1)
         ORDER BY rate_date DESC, rank LIMIT 1
`;

/**
 * findRate for many (base, quote, date) at once, in one statement (a report converts every day
 * of every currency it sums: one round trip instead of one per day). Same rule, same order of
 * preference; results in the order asked, null where no rate exists.
 */
export async function findRates(client: Queryable, wanted: readonly { base: string; quote: string; date: string }[]): Promise<(FxQuote | null)[]> {
  for (const w of wanted) if (!DATE.test(w.date)) throw new FxError('fx_date_invalid', `date ${JSON.stringify(w.date)} is not YYYY-MM-DD`);
  const lookup = wanted.map((w, i) => ({ ...w, i })).filter((w) => w.base !== w.quote);
  const out: (FxQuote | null)[] = wanted.map((w) => (w.base === w.quote ? { base: w.base, quote: w.quote, rate: '1', rate_date: w.date, source: 'identity', method: 'identity' } : null));
  if (lookup.length === 0) return out;
  const { rows } = await client.query<{ i: number; method: FxQuote['method']; rate_date: string; a: string; b: string | null; source: string; pivot: string | null }>(
    `SELECT w.i, r.method, r.rate_date, r.a, r.b, r.source, r.pivot
       FROM unnest($1::int[], $2::text[], $3::text[], $4::date[]) AS w(i, base, quote, day)
       CROSS JOIN LATERAL (${RATE_LOOKUP_SQL}) r`,
    [lookup.map((w) => w.i), lookup.map((w) => w.base), lookup.map((w) => w.quote), lookup.map((w) => w.date)],
  );
  for (const r of rows) {
    const w = wanted[r.i]!;
    const rate = r.method === 'direct' ? trimRate(r.a) : r.method === 'inverse' ? `1/${trimRate(r.a)}` : `${trimRate(r.b!)}/${trimRate(r.a)}`;
    out[r.i] = { base: w.base, quote: w.quote, rate, rate_date: r.rate_date, source: r.source, method: r.method, ...(r.pivot ? { pivot: r.pivot } : {}) };
  }
  return out;
}

/** numeric text without trailing fraction zeros ("1.087500" → "1.0875"). */
function trimRate(text: string): string {
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}

/** Converts with a found quote; the exponents come from the ISO table. */
export function convertWithQuote(amount: bigint, q: FxQuote): bigint {
  return convertMinor(amount, currency(q.base).exponent, currency(q.quote).exponent, parseRateExpression(q.rate));
}

export interface FxRow {
  date: string;
  base: string;
  quote: string;
  rate: string;
  line: number;
}

/**
 * Parses an FX CSV: `date,base,quote,rate` per line (a header line with those names is
 * optional; blank lines are skipped). 1 base = rate quote. Every line is checked; all errors
 * are reported together (up to 20) and nothing is imported when there is any.
 */
export function parseFxCsv(text: string): FxRow[] {
  const rows: FxRow[] = [];
  const errors: string[] = [];
  const seen = new Map<string, FxRow>();
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    const fields = raw.split(',').map((f) => f.trim().replace(/^"(.*)"$/, '$1'));
    if (line === 1 && fields[0]?.toLowerCase() === 'date') {
      if (fields.join(',').toLowerCase() !== 'date,base,quote,rate') errors.push(`line 1: the header must be date,base,quote,rate`);
      return;
    }
    if (fields.length !== 4) return void errors.push(`line ${line}: expected 4 fields (date,base,quote,rate), got ${fields.length}`);
    const [date, base, quote, rate] = fields as [string, string, string, string];
    try {
      if (!DATE.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`)) || new Date(`${date}T00:00:00Z`).toISOString().slice(0, 10) !== date) {
        throw new FxError('fx_date_invalid', `date ${JSON.stringify(date)} is not a calendar date YYYY-MM-DD`);
      }
      const b = currency(base, 'base').code;
      const q = currency(quote, 'quote').code;
      if (b !== base || q !== quote) throw new FxError('fx_currency_invalid', `currency codes must be upper case (${base}, ${quote})`);
      if (b === q) throw new FxError('fx_currency_invalid', `base and quote are both ${b}`);
      parseRate(rate);
      const key = `${date}|${b}|${q}`;
      const row = { date, base: b, quote: q, rate, line };
      const before = seen.get(key);
      if (before && parseRate(before.rate).num * parseRate(rate).den !== parseRate(rate).num * parseRate(before.rate).den) {
        throw new FxError('fx_duplicate', `${b}/${q} on ${date} is also on line ${before.line} with another rate`);
      }
      if (!before) {
        seen.set(key, row);
        rows.push(row);
      }
    } catch (error) {
      errors.push(`line ${line}: ${(error as Error).message}`);
    }
  });
  if (errors.length) {
    throw new FxError('fx_file_invalid', `the FX file has ${errors.length} invalid line(s); nothing was imported:\n  ${errors.slice(0, 20).join('\n  ')}`, {
      details: { errors: errors.slice(0, 100) },
    });
  }
  if (rows.length === 0) throw new FxError('fx_file_invalid', 'the FX file has no rates');
  return rows;
}

/**
 * Imports rates (administrative: runs as the schema owner). A rate already present for the
 * same date and pair is replaced when it differs; the counts say what happened.
 */
export async function importFxRates(owner: Queryable, rows: readonly FxRow[], source: string): Promise<{ inserted: number; updated: number; unchanged: number }> {
  const { rows: r } = await owner.query<{ inserted: string; updated: string }>(
    `WITH input AS (
       SELECT * FROM unnest($1::date[], $2::text[], $3::text[], $4::numeric[]) AS i(rate_date, base, quote, rate)
     ), upserted AS (
       INSERT INTO fx_rates (rate_date, base_currency, quote_currency, rate, source)
       SELECT rate_date, base, quote, rate, $5 FROM input
       ON CONFLICT (base_currency, quote_currency, rate_date) DO UPDATE
         SET rate = EXCLUDED.rate, source = EXCLUDED.source, imported_at = $6::timestamptz
         WHERE fx_rates.rate <> EXCLUDED.rate OR fx_rates.source <> EXCLUDED.source
       RETURNING (xmax = 0) AS inserted
     )
     SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated FROM upserted`,
    // The time from here, not now(): Citus refuses a non-IMMUTABLE function in ON CONFLICT DO UPDATE.
    [rows.map((x) => x.date), rows.map((x) => x.base), rows.map((x) => x.quote), rows.map((x) => x.rate), source, new Date()],
  );
  const inserted = Number(r[0]!.inserted);
  const updated = Number(r[0]!.updated);
  return { inserted, updated, unchanged: rows.length - inserted - updated };
}
