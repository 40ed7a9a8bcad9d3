import type { Queryable } from '../db/pool.js';
import { convertWithQuote, findRates } from '../money/fx.js';
import { spendByDay, type SpendAggregate } from './store.js';

/** Spend of one (day, currency, platform, channel, campaign), in the reporting currency when its day has a rate. */
export interface ConvertedSpend extends SpendAggregate {
  /** null: no rate on or before the day (listed in `gaps`, never counted as 0). */
  reporting_cents: bigint | null;
}

/** A currency and day whose spend could not be converted: no rate on or before the day. */
export interface FxGap {
  currency: string;
  day: string;
  spend_cents: string;
  rows: number;
}

/**
 * The spend of [from, to) (days, `to` exclusive) per (day, currency, platform, channel, campaign),
 * each converted once into `reporting` at its day's rate (the same FX table and rule as the ledger:
 * the latest rate on or before the day; src/money/fx.ts). Days without a rate are gaps: their spend
 * is reported in its own currency and left out of every converted sum.
 */
export async function convertedSpend(client: Queryable, tenantId: string, from: string, to: string, reporting: string): Promise<{ lines: ConvertedSpend[]; gaps: FxGap[] }> {
  const lines = await spendByDay(client, tenantId, from, to);
  const pairs = [...new Map(lines.map((l) => [`${l.currency}|${l.day}`, { base: l.currency, quote: reporting, date: l.day }])).values()];
  const quotes = await findRates(client, pairs);
  const rate = new Map(pairs.map((p, i) => [`${p.base}|${p.date}`, quotes[i]!]));
  const gaps = new Map<string, FxGap>();
  const converted = lines.map((l) => {
    const q = rate.get(`${l.currency}|${l.day}`) ?? null;
    if (!q) {
      const k = `${l.currency}|${l.day}`;
      const g = gaps.get(k) ?? { currency: l.currency, day: l.day, spend_cents: '0', rows: 0 };
      g.spend_cents = (BigInt(g.spend_cents) + BigInt(l.cents)).toString();
      g.rows += l.rows;
      gaps.set(k, g);
    }
    return { ...l, reporting_cents: q ? convertWithQuote(BigInt(l.cents), q) : null };
  });
  return { lines: converted, gaps: [...gaps.values()].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : a.currency < b.currency ? -1 : 1)) };
}
