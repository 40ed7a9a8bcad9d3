import { campaignWeights } from './heuristics.js';
import { channelMask, maskChannels, type JourneySet } from './journey-set.js';
import type { MaskTerms, TotalSummary, TotalTerms } from './population.js';
import type { AllocationRow } from './store.js';
import type { WindowConversion } from './window.js';

/** What one total of a run sums: a channel's allocations, or one campaign's of a channel, in one currency. */
export interface TotalKey {
  readonly level: 'channel' | 'campaign';
  readonly channel: string;
  /** '' : the touches credited had no campaign (always '' at channel level). */
  readonly campaign: string;
  readonly currency: string;
}

export interface RunTotal extends TotalKey {
  readonly totalCents: bigint;
  readonly lowerCents: bigint;
  readonly upperCents: bigint;
  readonly mass: number;
  readonly method: 'posterior_draws' | 'bootstrap';
  readonly draws: number;
  readonly rHat: number | null;
  readonly ess: number | null;
}

const keyText = (k: TotalKey) => `${k.level}\u0000${k.channel}\u0000${k.campaign}\u0000${k.currency}`;

/**
 * The totals a run stores and the linear terms that give each of them per draw: the allocation
 * of conversion j to channel c (and its campaign) is value_j × share(mask_j, c) (× the campaign's
 * part of c's touches on the path, as run.ts splits it), so a total is Σ_mask Σ_c weight × share
 * with the weights summed over the mask's conversions — computed once here, so a draw costs one
 * multiply-add per (mask, term), not one per conversion.
 */
export function buildTotalTerms(js: JourneySet, conversions: readonly WindowConversion[]): { terms: TotalTerms; keys: TotalKey[] } {
  const keys: TotalKey[] = [];
  const index = new Map<string, number>();
  const q = (k: TotalKey) => {
    const t = keyText(k);
    let i = index.get(t);
    if (i === undefined) {
      i = keys.length;
      keys.push(k);
      index.set(t, i);
    }
    return i;
  };
  // Per mask: (position, total) → weight.
  const acc = new Map<number, Map<number, { position: number; total: number; weight: number }>>();
  conversions.forEach((conv, j) => {
    const mask = channelMask(js, j);
    const channels = maskChannels(mask);
    const value = Number(conv.valueCents);
    const path = conv.touches.length > 0 ? conv.touches : [{ channel: conv.channel, at: conv.at, campaign: conv.campaign }];
    const touchChannel = path.map((t) => js.channels.indexOf(t.channel));
    const ones = path.map(() => 1);
    let m = acc.get(mask);
    if (!m) acc.set(mask, (m = new Map()));
    const add = (position: number, total: number, weight: number) => {
      const id = position * 1_000_003 + total;
      const e = m!.get(id);
      if (e) e.weight += weight;
      else m!.set(id, { position, total, weight });
    };
    channels.forEach((c, position) => {
      const channel = js.channels[c]!;
      add(position, q({ level: 'channel', channel, campaign: '', currency: conv.currency }), value);
      const byCampaign = campaignWeights(path, touchChannel, c, ones);
      const touches = byCampaign.reduce((a, [, w]) => a + w, 0);
      for (const [campaign, w] of byCampaign) add(position, q({ level: 'campaign', channel, campaign: campaign ?? '', currency: conv.currency }), (value * w) / touches);
    });
  });
  const byMask = new Map<number, MaskTerms>();
  for (const [mask, m] of acc) {
    const list = [...m.values()];
    byMask.set(mask, { position: Int32Array.from(list.map((x) => x.position)), total: Int32Array.from(list.map((x) => x.total)), weight: Float64Array.from(list.map((x) => x.weight)) });
  }
  return { terms: { count: keys.length, byMask }, keys };
}

/** Allocated cents per total key, summed from the rows a run writes (bigint: exact). */
export function addRowsToTotals(sums: Map<string, bigint>, rows: readonly AllocationRow[], currencyOf: (eventId: string) => string): void {
  for (const r of rows) {
    const currency = currencyOf(r.eventId);
    for (const k of [
      { level: 'channel' as const, channel: r.channel, campaign: '', currency },
      { level: 'campaign' as const, channel: r.channel, campaign: r.campaign ?? '', currency },
    ]) {
      const t = keyText(k);
      sums.set(t, (sums.get(t) ?? 0n) + r.cents);
    }
  }
}

/**
 * The stored totals: each key's allocated sum and the interval of its draws, lower rounded down
 * and upper up, then widened (if at all) to contain the allocated sum — the draws' quantiles are
 * of real-valued totals while the sum is of rounded allocations; for the bootstrap the full-data
 * fit can also lie a little outside its replicates' interval. A key with no finite draw has no
 * interval and is not stored.
 */
export function runTotals(keys: readonly TotalKey[], summaries: readonly TotalSummary[], sums: ReadonlyMap<string, bigint>, mass: number, method: RunTotal['method']): RunTotal[] {
  const out: RunTotal[] = [];
  keys.forEach((k, i) => {
    const s = summaries[i]!;
    const total = sums.get(keyText(k));
    if (total === undefined || s.draws === 0 || !Number.isFinite(s.lower) || !Number.isFinite(s.upper)) return;
    let lower = BigInt(Math.max(0, Math.floor(s.lower)));
    let upper = BigInt(Math.ceil(s.upper));
    if (lower > total) lower = total;
    if (upper < total) upper = total;
    out.push({
      ...k,
      totalCents: total,
      lowerCents: lower,
      upperCents: upper,
      mass,
      method,
      draws: s.draws,
      rHat: s.constant || s.rhat === null || !Number.isFinite(s.rhat) ? null : s.rhat,
      ess: s.constant || s.ess === null || !Number.isFinite(s.ess) ? null : Math.floor(s.ess),
    });
  });
  return out;
}

/** Index of the channel-level total of (channel, currency) among the keys. */
export function channelTotalIndex(keys: readonly TotalKey[]): Map<string, number> {
  const out = new Map<string, number>();
  keys.forEach((k, i) => {
    if (k.level === 'channel') out.set(`${k.channel}\u0000${k.currency}`, i);
  });
  return out;
}
