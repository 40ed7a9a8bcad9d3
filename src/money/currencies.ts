import { DomainError } from '../errors.js';

/**
 * ISO 4217 currencies and their minor-unit exponents (how many decimal places the minor unit
 * is: USD 2 → 1 cent = 0.01 USD; JPY 0; KWD 3; CLF 4).
 *
 * Source: ISO 4217 "List One" (current currency & funds code list) as published by the
 * maintenance agency, SIX Financial Information:
 *   https://www.six-group.com/dam/download/financial-information/data-center/iso-currrency/lists/list-one.xml
 * Every alphabetic code of that list with a numeric minor unit is here, with that minor unit.
 * The entries whose minor unit is "N.A." (precious metals XAU XAG XPT XPD, bond-market units
 * XBA XBB XBC XBD, XDR, XSU, XUA, and the testing/no-currency codes XTS XXX) are listed in
 * NO_MINOR_UNIT: they are valid ISO codes but have no minor unit, so no amount in minor units
 * can be expressed in them and Skeldir refuses them for money.
 *
 * Recent changes reflected: XCG (Caribbean guilder, 2025) next to ANG during its transition,
 * ZWG (Zimbabwe Gold, 2024), SLE (2022), VED (2021); HRK (2023), ZWL and SLL (withdrawn) are not
 * in List One any more.
 */
const BY_EXPONENT: Record<0 | 2 | 3 | 4, string> = {
  0: 'BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF',
  2: [
    'AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD',
    'CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS',
    'GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL',
    'MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK',
    'PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS',
    'TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG',
  ].join(' '),
  3: 'BHD IQD JOD KWD LYD OMR TND',
  4: 'CLF UYW',
};

export const NO_MINOR_UNIT: ReadonlySet<string> = new Set(
  'XAG XAU XBA XBB XBC XBD XDR XPD XPT XSU XTS XUA XXX'.split(' '),
);

/** Code → minor-unit exponent, for every currency money can be expressed in. */
export const CURRENCY_EXPONENTS: ReadonlyMap<string, number> = new Map(
  Object.entries(BY_EXPONENT).flatMap(([exp, codes]) => codes.split(' ').map((c) => [c, Number(exp)] as const)),
);

export class CurrencyError extends DomainError {}

/** True for an ISO 4217 code with a minor unit (upper case only). */
export function isCurrency(code: unknown): code is string {
  return typeof code === 'string' && CURRENCY_EXPONENTS.has(code);
}

/**
 * The exponent of a currency. Accepts lower case (Stripe sends `usd`) and returns the
 * canonical upper-case code with it; anything else is a `currency_invalid` error.
 */
export function currency(code: unknown, field = 'currency'): { code: string; exponent: number } {
  const upper = typeof code === 'string' ? code.trim().toUpperCase() : '';
  const exponent = CURRENCY_EXPONENTS.get(upper);
  if (exponent === undefined) {
    const why = NO_MINOR_UNIT.has(upper) ? 'has no minor unit (ISO 4217 N.A.)' : 'is not an ISO 4217 currency code';
    throw new CurrencyError('currency_invalid', `${JSON.stringify(code)} ${why}`, { field });
  }
  return { code: upper, exponent };
}

export function exponentOf(code: string): number {
  return currency(code).exponent;
}
