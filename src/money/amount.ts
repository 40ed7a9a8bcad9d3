import { DomainError } from '../errors.js';

export class AmountError extends DomainError {}

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

/**
 * Parses a decimal string ("199.99", "-5.00", "1000") into integer minor units of a currency
 * with the given exponent, exactly: the digits are moved, never passed through a float.
 * Extra fraction digits are accepted only when they are zeros ("10.500" USD = 1050); anything
 * finer than the minor unit ("10.005" USD) is an error, never silently rounded. No exponent
 * notation, thousands separators, spaces or leading "+". A leading "-" only with `allowNegative`.
 */
export function parseDecimalAmount(text: unknown, exponent: number, options: { allowNegative?: boolean; field?: string } = {}): bigint {
  const field = options.field ?? 'amount';
  if (typeof text !== 'string') throw new AmountError('amount_invalid', `${field} must be a decimal string, got ${typeof text}`, { field });
  const m = DECIMAL.exec(text);
  if (!m) throw new AmountError('amount_invalid', `${field} ${JSON.stringify(text.slice(0, 40))} is not a plain decimal number`, { field });
  const [, sign, whole, fraction = ''] = m;
  if (sign && !options.allowNegative) throw new AmountError('amount_invalid', `${field} must not be negative (${text})`, { field });
  if (whole!.length > 30) throw new AmountError('amount_invalid', `${field} has too many digits`, { field });
  const significant = fraction.replace(/0+$/, '');
  if (significant.length > exponent) {
    throw new AmountError('amount_precision_invalid', `${field} ${text} is finer than the currency's minor unit (${exponent} decimal places)`, { field });
  }
  const minor = BigInt(whole! + significant.padEnd(exponent, '0'));
  return sign ? -minor : minor;
}

/** Integer minor units given as a JSON number (Stripe's `amount`): a non-negative safe integer. */
export function parseMinorInteger(value: unknown, options: { field?: string } = {}): bigint {
  const field = options.field ?? 'amount';
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new AmountError('amount_invalid', `${field} must be a non-negative integer number of minor units, got ${JSON.stringify(value)}`, { field });
  }
  return BigInt(value);
}

/** Minor units as a decimal string with the currency's exponent: 1050n, 2 → "10.50". */
export function formatMinor(minor: bigint, exponent: number): string {
  const negative = minor < 0n;
  const digits = (negative ? -minor : minor).toString().padStart(exponent + 1, '0');
  const whole = exponent === 0 ? digits : digits.slice(0, -exponent);
  const fraction = exponent === 0 ? '' : `.${digits.slice(-exponent)}`;
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

/** Largest amount a ledger row can hold (revenue_ledger.amount_cents is an integer column). */
export const MAX_LEDGER_MINOR = 2_147_483_647n;
