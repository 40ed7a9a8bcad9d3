import { quantileSorted } from './diagnostics.js';
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
