import { quantileSorted, rhatAndEssBulk } from './diagnostics.js';
import { channelMask, maskChannels, type JourneySet } from './journey-set.js';

/**
 * What a population model (markov, shapley, bayesian) yields: for every distinct set of
 * channels on a conversion's path (a bit mask), each of those channels' share of the conversion,
 * and how sure the model is of it. All three models split a conversion over the distinct
 * channels of its path by a rule that depends only on that set, so conversions with the same
 * set get the same shares.
 */
export interface MaskAttribution {
  /** Channel ids of the mask, ascending (the canonical order: channel codes sorted). */
  readonly channels: readonly number[];
  /** Share of the conversion per channel; sums to 1. */
  readonly share: Float64Array;
  /** confidence_score per channel, in [0, 1]. */
  readonly confidence: Float64Array;
  /** Central credible interval of the share (bayesian only). */
  readonly shareLower?: Float64Array;
  readonly shareUpper?: Float64Array;
  /** Rank-normalised split R-hat and bulk ESS of the share's draws (bayesian only). */
  readonly rHat?: Float64Array;
  readonly ess?: Float64Array;
}

export interface PopulationFit {
  readonly byMask: Map<number, MaskAttribution>;
  /** Fitted quantities stored with the run (removal effects, Shapley values, posterior summaries), by channel code. */
  readonly results: Record<string, unknown>;
  readonly diagnostics: Record<string, unknown>;
  /** False when the fit must not be stored as good (MCMC not converged). */
  readonly converged: boolean;
  /** Per-mask extra metadata for allocation rows (e.g. Shapley method). */
  readonly maskMetadata?: (mask: number) => Record<string, unknown>;
  /** The draws of the totals asked for (TotalTerms): posterior draws (bayesian) or bootstrap replicates (markov, shapley). */
  readonly totals?: TotalDraws;
  /** Their summaries, in the order of the terms. */
  readonly totalSummaries?: TotalSummary[];
}

/**
 * Linear totals of the shares that a run asks a population model for, so their intervals come
 * from the draws of the total itself (sum per draw, then quantiles) and not from adding up each
 * allocation's bounds, which is no interval of the sum. Total q = Σ over masks Σ over terms of
 * the mask: weight × share(mask, position). run.ts builds them (one per channel and currency, one
 * per channel, campaign and currency): the weight of a term is the value of the mask's
 * conversions crediting that channel (times the campaign's part of the channel's touches).
 */
export interface TotalTerms {
  readonly count: number;
  readonly byMask: ReadonlyMap<number, MaskTerms>;
}
export interface MaskTerms {
  /** Position of the channel in the mask's channel list (MaskAttribution.channels). */
  readonly position: Int32Array;
  /** The total the term adds to. */
  readonly total: Int32Array;
  readonly weight: Float64Array;
}

/**
 * Draws of the totals: total q's draw d at values[q * chains * perChain + d], d = chain * perChain
 * + s. Bootstrap replicates are one chain.
 */
export interface TotalDraws {
  readonly chains: number;
  readonly perChain: number;
  readonly values: Float64Array;
}

export function emptyTotalDraws(terms: TotalTerms, chains: number, perChain: number): TotalDraws {
  return { chains, perChain, values: new Float64Array(terms.count * chains * perChain) };
}

/** Adds draw d's shares of one mask to the totals (the mask's terms only). */
export function addToTotals(out: TotalDraws, terms: MaskTerms | undefined, share: ArrayLike<number>, d: number): void {
  if (!terms) return;
  const n = out.chains * out.perChain;
  for (let t = 0; t < terms.total.length; t++) out.values[terms.total[t]! * n + d]! += terms.weight[t]! * share[terms.position[t]!]!;
}

/** Distinct channel masks of the converting journeys. */
export function conversionMasks(js: JourneySet): number[] {
  const set = new Set<number>();
  for (let j = 0; j < js.converted.length; j++) if (js.converted[j]) set.add(channelMask(js, j));
  return [...set].sort((a, b) => a - b);
}

/** Journeys and conversions per channel mask. */
export function maskCounts(js: JourneySet): Map<number, { n: number; y: number }> {
  const out = new Map<number, { n: number; y: number }>();
  for (let j = 0; j < js.converted.length; j++) {
    const m = channelMask(js, j);
    const e = out.get(m) ?? { n: 0, y: 0 };
    e.n += 1;
    e.y += js.converted[j]!;
    out.set(m, e);
  }
  return out;
}

/**
 * Confidence from resampled shares: 1 − (q95 − q05) of the share across bootstrap replicates,
 * i.e. one minus the width of the 90 % bootstrap interval of the channel's share of the
 * conversion. 1: the share is the same in every replicate; 0.8: the 90 % interval is 20
 * percentage points wide.
 */
export function bootstrapConfidence(replicates: Float64Array[], channels: number): Float64Array {
  const out = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const values = Float64Array.from(replicates.map((r) => r[c]!).filter((x) => Number.isFinite(x))).sort();
    if (values.length < 2) {
      out[c] = 0;
      continue;
    }
    out[c] = clamp01(1 - (quantileSorted(values, 0.95) - quantileSorted(values, 0.05)));
  }
  return out;
}

export function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/** Shares proportional to non-negative scores; NaN shares when every score is zero. */
export function proportional(scores: ArrayLike<number>): Float64Array {
  let total = 0;
  for (let i = 0; i < scores.length; i++) total += scores[i]!;
  const out = new Float64Array(scores.length);
  for (let i = 0; i < scores.length; i++) out[i] = total > 0 ? scores[i]! / total : NaN;
  return out;
}

export { maskChannels };

/** One total's draws summarised: the central interval of mass `mass` (type-7 quantiles) and, for MCMC, R-hat and bulk ESS. */
export interface TotalSummary {
  readonly mean: number;
  readonly lower: number;
  readonly upper: number;
  /** Rank-normalised split R-hat and bulk ESS over the chains (null: bootstrap replicates, where they mean nothing). */
  readonly rhat: number | null;
  readonly ess: number | null;
  /** Draws with a finite value (a bootstrap replicate in which a channel set's channels all scored 0 has none). */
  readonly draws: number;
  /** Every draw the same (e.g. a channel only ever alone on its paths). */
  readonly constant: boolean;
}

export function summariseTotals(totals: TotalDraws, mass: number, diagnose: boolean): TotalSummary[] {
  const n = totals.chains * totals.perChain;
  const q = n === 0 ? 0 : totals.values.length / n;
  const lo = (1 - mass) / 2;
  const out: TotalSummary[] = [];
  for (let t = 0; t < q; t++) {
    const all = totals.values.subarray(t * n, (t + 1) * n);
    const finite = all.filter((x) => Number.isFinite(x)).sort();
    let sum = 0;
    for (const x of finite) sum += x;
    const constant = finite.length > 0 && finite[finite.length - 1]! - finite[0]! <= Number.EPSILON * Math.max(1, Math.abs(finite[0]!)) * 16;
    let rhat: number | null = null;
    let ess: number | null = null;
    if (diagnose) {
      const chains = Array.from({ length: totals.chains }, (_, c) => all.subarray(c * totals.perChain, (c + 1) * totals.perChain));
      const d = rhatAndEssBulk(chains);
      rhat = d.rhat;
      ess = d.essBulk;
    }
    out.push({ mean: finite.length ? sum / finite.length : NaN, lower: quantileSorted(finite, lo), upper: quantileSorted(finite, 1 - lo), rhat, ess, draws: finite.length, constant });
  }
  return out;
}
