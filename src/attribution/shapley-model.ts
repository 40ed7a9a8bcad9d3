import type { JourneySet } from './journey-set.js';
import { channelMask, maskChannels } from './journey-set.js';
import { addToTotals, bootstrapConfidence, conversionMasks, emptyTotalDraws, summariseTotals, maskCounts, proportional, type MaskAttribution, type PopulationFit, type TotalTerms } from './population.js';
import { Rng } from './rng.js';
import { TOTAL_MASS } from './models.js';
import { EXACT_SHAPLEY_MAX, exactShapley, shapley } from './shapley.js';

export interface ShapleyParameters {
  readonly bootstrap: number;
  /** Permutations sampled for paths with more than 12 distinct channels. */
  readonly permutations: number;
  readonly seed: number;
}

/** 1000 replicates for 94 % intervals of the channel totals: why, in MARKOV_DEFAULTS. */
export const SHAPLEY_DEFAULTS: ShapleyParameters = { bootstrap: 1000, permutations: 2000, seed: 20090501 };

/**
 * shapley: the players of a conversion are the distinct channels S of its path. The
 * characteristic function is v(T) = Σ_{U ⊆ T} r(U), where r(U) is the conversion rate of the
 * window's journeys whose channel set is exactly U (0 when no journey has that set): a coalition
 * is worth the conversion rates of every channel combination it can form. v is monotone, so
 * every marginal contribution — and every Shapley value — is ≥ 0; and Σ_c φ_c = v(S) > 0
 * because the conversion's own journey makes r(S) > 0. The conversion's value is split in
 * proportion to φ over S. (For this v the values equal the "simplified Shapley" closed form
 * φ_c = Σ_{U ⊆ S, c ∈ U} r(U)/|U| of Zhao et al. 2018; the engine computes them from v with the
 * generic solver — exact up to 12 channels, permutation sampling beyond — and the tests use the
 * closed form as the oracle.) confidence_score = bootstrap stability of the share: every
 * channel set's journeys and conversions are resampled as Poisson counts.
 */
/** `onReplicate` is called after each bootstrap replicate (the run's progress bar). */
export function fitShapleyModel(js: JourneySet, params: ShapleyParameters = SHAPLEY_DEFAULTS, onReplicate?: () => void, terms?: TotalTerms): PopulationFit {
  const counts = maskCounts(js);
  const observed = [...counts.entries()].map(([mask, c]) => ({ mask, n: c.n, y: c.y }));
  /** Conversion rate per observed channel set (index into `observed`); a bootstrap replicate resamples the counts. */
  const rates = (sample?: Rng): Float64Array => {
    const r = new Float64Array(observed.length);
    observed.forEach((o, i) => {
      const y = sample ? sample.poisson(o.y) : o.y;
      const n = sample ? y + sample.poisson(o.n - o.y) : o.n;
      r[i] = n > 0 ? y / n : 0;
    });
    return r;
  };
  const masks = conversionMasks(js);
  // For each conversion's channel set, the observed sets inside it (re-indexed to its players),
  // found once: replicates only change the rates (measured: re-scanning every observed set per
  // mask and replicate made 100 replicates take 10x longer).
  const games = masks.map((mask) => gameOf(mask, observed));
  const point = rates();
  const rng = new Rng(params.seed);
  const methods = new Map<number, { method: string; se?: number[] }>();
  const pointValues = new Map<number, Float64Array>();
  masks.forEach((mask, k) => {
    const res = solveGame(games[k]!, point, params, rng);
    pointValues.set(mask, res.values);
    methods.set(mask, res.method === 'exact' ? { method: 'exact' } : { method: 'sampled', se: [...res.standardErrors] });
  });
  const replicates = new Map<number, Float64Array[]>(masks.map((m) => [m, []]));
  for (let b = 0; b < params.bootstrap; b++) {
    const r = rates(rng);
    masks.forEach((mask, k) => replicates.get(mask)!.push(proportional(solveGame(games[k]!, r, params, rng).values)));
    onReplicate?.();
  }
  const byMask = new Map<number, MaskAttribution>();
  const totals = terms ? emptyTotalDraws(terms, 1, params.bootstrap) : undefined;
  for (const mask of masks) {
    const channels = maskChannels(mask);
    if (totals) replicates.get(mask)!.forEach((r, b) => addToTotals(totals, terms!.byMask.get(mask), r, b));
    byMask.set(mask, { channels, share: proportional(pointValues.get(mask)!), confidence: bootstrapConfidence(replicates.get(mask)!, channels.length) });
  }
  // Run-level summary: each channel's total Shapley value over the window's conversions.
  const total = new Float64Array(js.channels.length);
  for (let j = 0; j < js.converted.length; j++) {
    if (!js.converted[j]) continue;
    const mask = channelMask(js, j);
    const share = byMask.get(mask)!.share;
    maskChannels(mask).forEach((c, i) => (total[c]! += share[i]!));
  }
  const sampled = [...methods.values()].filter((m) => m.method === 'sampled').length;
  return {
    byMask,
    results: {
      characteristic_function: 'v(T) = sum over U subset of T of conversion_rate(U)',
      conversion_rate_by_channel_set: Object.fromEntries(observed.map((o) => [maskChannels(o.mask).map((c) => js.channels[c]).join('+'), { journeys: o.n, conversions: o.y }])),
      attributed_conversions: Object.fromEntries(js.channels.map((c, i) => [c, total[i]])),
    },
    diagnostics: { channel_sets: masks.length, sampled_channel_sets: sampled, bootstrap_replicates: params.bootstrap },
    converged: true,
    ...(totals ? { totals, totalSummaries: summariseTotals(totals, TOTAL_MASS, false) } : {}),
    maskMetadata: (mask) => {
      const m = methods.get(mask)!;
      return m.method === 'exact' ? { shapley: 'exact' } : { shapley: 'sampled', permutations: params.permutations, standard_errors: m.se };
    },
  };
}

/** The game of one conversion's channel set: its players and the observed channel sets inside it. */
interface Game {
  readonly players: number;
  /** Observed channel sets inside the path: indices into the rates, and their masks over the path's players. */
  readonly inside: Int32Array;
  readonly localMasks: Int32Array;
}

function gameOf(mask: number, observed: ReadonlyArray<{ mask: number }>): Game {
  const channels = maskChannels(mask);
  const local = (global: number) => {
    let l = 0;
    channels.forEach((c, i) => {
      if (global & (1 << c)) l |= 1 << i;
    });
    return l;
  };
  const inside: number[] = [];
  const localMasks: number[] = [];
  observed.forEach((o, i) => {
    if ((o.mask & ~mask) === 0) {
      inside.push(i);
      localMasks.push(local(o.mask));
    }
  });
  return { players: channels.length, inside: Int32Array.from(inside), localMasks: Int32Array.from(localMasks) };
}

/** Shapley values of a game under v(T) = Σ_{observed U ⊆ T} rate(U). */
function solveGame(game: Game, rates: Float64Array, params: Pick<ShapleyParameters, 'permutations'>, rng: Rng) {
  const s = game.players;
  if (s <= EXACT_SHAPLEY_MAX) {
    // v over all 2^s coalitions by the subset-sum (zeta) transform of the rates.
    const table = new Float64Array(1 << s);
    for (let i = 0; i < game.inside.length; i++) table[game.localMasks[i]!]! += rates[game.inside[i]!]!;
    for (let bit = 0; bit < s; bit++) for (let m = 0; m < 1 << s; m++) if (m & (1 << bit)) table[m]! += table[m ^ (1 << bit)]!;
    return { values: exactShapley(s, table), method: 'exact' as const, standardErrors: new Float64Array(s) };
  }
  const v = (m: number) => {
    let total = 0;
    for (let i = 0; i < game.inside.length; i++) if ((game.localMasks[i]! & ~m) === 0) total += rates[game.inside[i]!]!;
    return total;
  };
  return shapley(s, v, { permutations: params.permutations, rng });
}
