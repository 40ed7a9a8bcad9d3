import type { JourneySet } from './journey-set.js';
import { maskChannels } from './journey-set.js';
import { fitMarkov, pathTable } from './markov.js';
import { addToTotals, bootstrapConfidence, conversionMasks, emptyTotalDraws, summariseTotals, proportional, type MaskAttribution, type PopulationFit, type TotalTerms } from './population.js';
import { Rng } from './rng.js';
import { TOTAL_MASS } from './models.js';

export interface MarkovParameters {
  /** Bootstrap replicates for confidence_score (Poisson bootstrap over journeys). */
  readonly bootstrap: number;
  readonly seed: number;
}

/**
 * 1000 replicates: the channel totals' 94 % intervals are their 3 % and 97 % replicate quantiles,
 * and with B replicates the tail mass beyond an estimated 3 % quantile has a Monte Carlo sd of
 * √(0.03·0.97/B): 1.7 points at B = 100 (a "94 %" interval anywhere from ~90 % to ~97 %), 0.54 at
 * B = 1000 (Efron & Tibshirani's advice for percentile intervals). Cost: 0.65 s for 100 replicates
 * on 100,000 journeys × 12 channels (bench/results/2026-11-28-final.txt), so ~6 s for 1000.
 */
export const MARKOV_DEFAULTS: MarkovParameters = { bootstrap: 1000, seed: 20160301 };

/**
 * markov: each conversion's value is split over the distinct channels of its own path in
 * proportion to their removal effects (fitted on the window's converting and non-converting
 * journeys). confidence_score = bootstrap stability of that share (see bootstrapConfidence):
 * journeys are resampled with Poisson(1) weights (distinct paths with multiplicity m get
 * Poisson(m)), the chain refitted, the share recomputed.
 */
/** `onReplicate` is called after each bootstrap replicate (the run's progress bar: fitting is most of a run's time). */
export function fitMarkovModel(js: JourneySet, params: MarkovParameters = MARKOV_DEFAULTS, onReplicate?: () => void, terms?: TotalTerms): PopulationFit {
  const table = pathTable(js);
  const fit = fitMarkov(table);
  const masks = conversionMasks(js);
  const rng = new Rng(params.seed);
  const replicateRE: Float64Array[] = [];
  const weights = new Float64Array(table.count.length);
  for (let b = 0; b < params.bootstrap; b++) {
    for (let p = 0; p < weights.length; p++) weights[p] = rng.poisson(table.count[p]!);
    replicateRE.push(fitMarkov(table, weights).removalEffects);
    onReplicate?.();
  }
  const byMask = new Map<number, MaskAttribution>();
  const totals = terms ? emptyTotalDraws(terms, 1, params.bootstrap) : undefined;
  for (const mask of masks) {
    const channels = maskChannels(mask);
    const share = proportional(channels.map((c) => fit.removalEffects[c]!));
    const reps = replicateRE.map((re) => proportional(channels.map((c) => re[c]!)));
    if (totals) reps.forEach((r, b) => addToTotals(totals, terms!.byMask.get(mask), r, b));
    byMask.set(mask, { channels, share, confidence: bootstrapConfidence(reps, channels.length) });
  }
  const results: Record<string, unknown> = {
    p_conversion: fit.pConversion,
    removal_effects: Object.fromEntries(js.channels.map((c, i) => [c, fit.removalEffects[i]])),
    p_conversion_without: Object.fromEntries(js.channels.map((c, i) => [c, fit.pWithout[i]])),
  };
  return { byMask, results, diagnostics: { distinct_paths: table.count.length, bootstrap_replicates: params.bootstrap }, converged: true, ...(totals ? { totals, totalSummaries: summariseTotals(totals, TOTAL_MASS, false) } : {}) };
}
