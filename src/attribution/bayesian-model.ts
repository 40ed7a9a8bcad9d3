import { quantileSelect, quantileSorted, rhatAndEssBulk } from './diagnostics.js';
import type { JourneySet } from './journey-set.js';
import { maskChannels } from './journey-set.js';
import { sampleNuts, type ChainResult, type Target } from './nuts.js';
import { addToTotals, clamp01, conversionMasks, emptyTotalDraws, maskCounts, summariseTotals, type MaskAttribution, type PopulationFit, type TotalTerms } from './population.js';
import { Rng } from './rng.js';

/**
 * bayesian: a competing-hazards (noisy-OR) model of conversion given channel
 * exposure, sampled by NUTS.
 *
 *   A journey exposed to the channel set S converts with probability 1 − exp(−Λ_S),
 *   Λ_S = λ₀ + Σ_{c∈S} λ_c, where λ_c = exp(θ_c) ≥ 0 is channel c's conversion hazard and
 *   λ₀ = exp(β₀) the baseline (conversions that would happen without any listed channel).
 *   Priors: θ_c ~ Normal(−4, 1) independently, β₀ ~ Normal(−4, 1): a channel (or the baseline)
 *   adds a conversion hazard between e^−6 ≈ 0.25 % and e^−2 ≈ 13.5 % per journey with 95 % prior
 *   probability. Why these choices, measured on synthetic populations:
 *   - no hierarchical pooling: with a handful of channels the group scale is barely identified;
 *     sampling it made small windows a funnel (80 divergent transitions, R-hat 1.09), and a
 *     sampled group mean left prior-dominated windows at bulk ESS ≈ 300 of 4000 draws;
 *   - sd 1 rather than 2: a hazard the data cannot tell from zero has a long left tail on the log
 *     scale that follows the prior; with sd 2 that tail kept R-hat at 1.01–1.03 (ESS 290–600) on
 *     a 40 000-journey population with a 1 % channel, with sd 1 R-hat ≈ 1.005 (ESS ≈ 750) and the
 *     hazards are recovered to within 10 %.
 *   The likelihood is binomial over the window's journeys grouped by exposure set.
 *
 * Under competing hazards the conversion was caused by channel c with probability λ_c / Λ_S.
 * The engine splits a conversion's value over its channels by the posterior mean of
 * λ_c / Σ_{c'∈S} λ_c' (the cause, given that a listed channel caused it; the baseline's share
 * λ₀/Λ_S is reported per run). Each allocation carries the central 94 % credible interval of
 * that share times the value (3 % and 97 % posterior quantiles; lower rounded down, upper up),
 * the rank-normalised split R-hat and bulk ESS of its channel's total in the run (run.ts), and
 * confidence_score = 1 − width of that 94 % interval of the share.
 *
 * Sampling is on the unconstrained vector (θ_1..θ_k, β₀) with ≥ 4 chains. A run is
 * converged only if every parameter and every channel (and campaign) total the run stores has
 * R-hat ≤ 1.01 and bulk ESS ≥ 400; otherwise it is flagged not converged and its allocations are
 * not stored. (Until bayesian/3 every allocated share of every channel set was diagnosed: most of
 * the summary's time, for figures no report reads.)
 */
export interface BayesianParameters {
  readonly chains: number;
  readonly warmup: number;
  readonly draws: number;
  readonly seed: number;
  readonly targetAccept: number;
  readonly credibleMass: number;
  readonly priors: { hazard: [number, number]; baseline: [number, number] };
}

export const BAYESIAN_DEFAULTS: BayesianParameters = {
  chains: 4,
  warmup: 1000,
  draws: 1000,
  seed: 20211221,
  targetAccept: 0.8,
  credibleMass: 0.94,
  priors: { hazard: [-4, 1], baseline: [-4, 1] },
};

export const RHAT_MAX = 1.01;
export const ESS_MIN = 400;

/** The model's log posterior over (θ_1..θ_k, β₀) and its gradient. */
export function hazardTarget(k: number, groups: ReadonlyArray<{ channels: readonly number[]; n: number; y: number }>, priors: BayesianParameters['priors']): Target {
  // The non-converting part of the likelihood, −Σ_S (n_S − y_S)·Λ_S, is linear in the hazards:
  // −Σ_c λ_c·N_c − λ₀·N with N_c the non-converting journeys exposed to c. Precomputed, so only
  // the groups with conversions are visited per gradient (measured: ~40 % fewer group visits on
  // the benchmark population, where every gradient is dominated by these loops).
  const nonConvByChannel = new Float64Array(k);
  let nonConvTotal = 0;
  const converting = groups.filter((g) => g.y > 0);
  for (const g of groups) {
    const nc = g.n - g.y;
    nonConvTotal += nc;
    for (const c of g.channels) nonConvByChannel[c]! += nc;
  }
  // Flattened converting groups for a tight loop: channel ids, offsets, conversion counts.
  const offsets = new Int32Array(converting.length + 1);
  const ids: number[] = [];
  converting.forEach((g, i) => {
    offsets[i] = ids.length;
    ids.push(...g.channels);
  });
  offsets[converting.length] = ids.length;
  const gid = Int32Array.from(ids);
  const ys = Float64Array.from(converting.map((g) => g.y));
  const lambda = new Float64Array(k);
  const [hMean, hSd] = priors.hazard;
  const [b0Mean, b0Sd] = priors.baseline;
  return {
    dim: k + 1,
    logDensityGradient(t, g) {
      g.fill(0);
      const beta0 = t[k]!;
      const lambda0 = Math.exp(beta0);
      let lp = -nonConvTotal * lambda0;
      let dLambda0 = -nonConvTotal;
      for (let c = 0; c < k; c++) {
        lambda[c] = Math.exp(t[c]!);
        lp -= nonConvByChannel[c]! * lambda[c]!;
        g[c] = -nonConvByChannel[c]!;
      }
      for (let s = 0; s < ys.length; s++) {
        let L = lambda0;
        for (let i = offsets[s]!; i < offsets[s + 1]!; i++) L += lambda[gid[i]!]!;
        const y = ys[s]!;
        // y·log(1 − e^−Λ); d/dΛ = y·e^−Λ/(1 − e^−Λ). One exp and one log per converting group.
        const e = Math.exp(-L);
        const oneMinus = L < 1e-5 ? L * (1 - L * (0.5 - L / 6)) : 1 - e; // 1 − e^−Λ without cancellation
        lp += y * Math.log(oneMinus);
        const dL = (y * e) / oneMinus;
        dLambda0 += dL;
        for (let i = offsets[s]!; i < offsets[s + 1]!; i++) g[gid[i]!]! += dL;
      }
      // Chain rule: ∂/∂θ_c = λ_c · ∂/∂λ_c; ∂/∂β₀ = λ₀ · ∂/∂λ₀.
      for (let c = 0; c < k; c++) g[c]! *= lambda[c]!;
      g[k] = dLambda0 * lambda0;
      // θ_c ~ N(hMean, hSd); β₀ ~ N(b0Mean, b0Sd).
      for (let c = 0; c < k; c++) {
        const dev = t[c]! - hMean;
        lp -= (dev * dev) / (2 * hSd * hSd);
        g[c]! -= dev / (hSd * hSd);
      }
      lp -= ((beta0 - b0Mean) ** 2) / (2 * b0Sd * b0Sd);
      g[k]! -= (beta0 - b0Mean) / (b0Sd * b0Sd);
      return lp;
    },
  };
}

export interface BayesianRun {
  readonly chains: ChainResult[];
  readonly k: number;
}

/** `onIteration` is called after each NUTS iteration of each chain, warmup included (the run's progress bar). */
export function fitBayesianModel(js: JourneySet, params: BayesianParameters = BAYESIAN_DEFAULTS, onIteration?: () => void, terms?: TotalTerms): PopulationFit {
  const k = js.channels.length;
  const counts = maskCounts(js);
  const groups = [...counts.entries()].sort((a, b) => a[0] - b[0]).map(([mask, c]) => ({ channels: maskChannels(mask), n: c.n, y: c.y }));
  const target = hazardTarget(k, groups, params.priors);
  // Inits: around the hazard that explains the overall conversion rate, dispersed per chain.
  const total = groups.reduce((a, g) => a + g.n, 0);
  const conv = groups.reduce((a, g) => a + g.y, 0);
  const base = Math.log(-Math.log(1 - Math.min(0.99, Math.max(1e-6, conv / Math.max(1, total)))));
  const chains: ChainResult[] = [];
  for (let c = 0; c < params.chains; c++) {
    const rng = new Rng(params.seed + 7919 * c);
    const init = new Float64Array(k + 1);
    for (let i = 0; i < k; i++) init[i] = base + rng.uniform() * 2 - 1;
    init[k] = base + rng.uniform() * 2 - 1;
    chains.push(sampleNuts(target, { warmup: params.warmup, draws: params.draws, seed: params.seed + 104729 * (c + 1), init, targetAccept: params.targetAccept, onIteration }));
  }
  return summarise(js, chains, params, terms);
}

function summarise(js: JourneySet, chains: ChainResult[], params: BayesianParameters, terms?: TotalTerms): PopulationFit {
  const k = js.channels.length;
  const d = k + 1;
  const nd = params.draws;
  const nc = chains.length;
  const paramChains = (i: number, f: (x: number) => number = (x) => x) => chains.map((ch) => Float64Array.from({ length: nd }, (_, s) => f(ch.draws[s * d + i]!)));
  const names = [...js.channels.map((c) => `theta[${c}]`), 'beta0'];
  const paramDiag = names.map((name, i) => {
    const x = paramChains(i);
    const pooled = concat(x).sort();
    const diag = rhatAndEssBulk(x);
    return { name, mean: pooled.reduce((a, b) => a + b, 0) / pooled.length, q03: quantileSorted(pooled, 0.03), q97: quantileSorted(pooled, 0.97), rhat: diag.rhat, essBulk: diag.essBulk };
  });
  const lo = (1 - params.credibleMass) / 2;
  const hi = 1 - lo;
  const paramMaxRhat = Math.max(...paramDiag.map((p) => (Number.isNaN(p.rhat) ? Infinity : p.rhat)));
  const paramMinEss = Math.min(...paramDiag.map((p) => (Number.isNaN(p.essBulk) ? 0 : p.essBulk)));
  const byMask = new Map<number, MaskAttribution>();
  const totals = terms ? emptyTotalDraws(terms, nc, nd) : undefined;
  // λ_c draws, all chains one after the other (draw index ci·nd + s), exponentiated once.
  const lambdas = new Float64Array(nc * nd * k);
  chains.forEach((ch, ci) => {
    for (let s = 0; s < nd; s++) for (let c = 0; c < k; c++) lambdas[(ci * nd + s) * k + c] = Math.exp(ch.draws[s * d + c]!);
  });
  // One pass per channel set over the draws: each share draw is computed once and used for the
  // share's mean and quantiles (the allocation's interval and confidence) and added to the totals.
  // R-hat and ESS are not computed per share (that was most of the summary: measured in the commit
  // that made this change); they are computed on the parameters and on the totals reports use.
  const N = nc * nd;
  const shareDraw = new Float64Array(32);
  for (const mask of conversionMasks(js)) {
    const channels = maskChannels(mask);
    const m = channels.length;
    const draws = channels.map(() => new Float64Array(N));
    const maskTerms = terms?.byMask.get(mask);
    for (let t = 0; t < N; t++) {
      let sum = 0;
      for (let i = 0; i < m; i++) sum += lambdas[t * k + channels[i]!]!;
      for (let i = 0; i < m; i++) draws[i]![t] = shareDraw[i] = lambdas[t * k + channels[i]!]! / sum;
      if (totals) addToTotals(totals, maskTerms, shareDraw, t);
    }
    const share = new Float64Array(m);
    const lower = new Float64Array(m);
    const upper = new Float64Array(m);
    const confidence = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      const x = draws[i]!;
      let sum = 0;
      for (let t = 0; t < N; t++) sum += x[t]!;
      share[i] = sum / N;
      lower[i] = quantileSelect(x, lo);
      upper[i] = quantileSelect(x, hi);
      confidence[i] = clamp01(1 - (upper[i]! - lower[i]!));
    }
    // Per row, the parameters' worst R-hat and ESS; run.ts puts the row's channel total's instead.
    byMask.set(mask, { channels, share, confidence, shareLower: lower, shareUpper: upper, rHat: new Float64Array(m).fill(paramMaxRhat), ess: new Float64Array(m).fill(paramMinEss) });
  }
  const totalSummaries = totals ? summariseTotals(totals, params.credibleMass, true) : undefined;
  // Totals whose draws are all the same (a channel only ever alone on its paths: share 1) have no
  // diagnostic and need none.
  const varying = (totalSummaries ?? []).filter((t) => !t.constant);
  const maxRhat = Math.max(paramMaxRhat, ...varying.map((t) => (t.rhat === null || Number.isNaN(t.rhat) ? Infinity : t.rhat)));
  const minEss = Math.min(paramMinEss, ...varying.map((t) => (t.ess === null || Number.isNaN(t.ess) ? 0 : t.ess)));
  const converged = maxRhat <= RHAT_MAX && minEss >= ESS_MIN;
  // Per channel, the hazard λ_c = exp(θ_c) itself: its mean and 3 %/97 % quantiles are all taken
  // over the λ draws (the θ-scale summaries are in `parameters`).
  const hazards = Object.fromEntries(
    js.channels.map((c, i) => {
      const lam = concat(paramChains(i, Math.exp)).sort();
      return [c, { mean: lam.reduce((a, b) => a + b, 0) / lam.length, q03: quantileSorted(lam, 0.03), q97: quantileSorted(lam, 0.97), rhat: paramDiag[i]!.rhat, ess_bulk: paramDiag[i]!.essBulk }];
    }),
  );
  return {
    byMask,
    results: {
      model: 'conversion ~ 1 - exp(-(lambda0 + sum_{c in S} lambda_c)); log lambda_c ~ N(-4, 1); log lambda0 ~ N(-4, 1)',
      credible_mass: params.credibleMass,
      hazards_note: 'hazards: lambda_c = exp(theta_c) per channel (mean, q03, q97 of lambda_c); parameters: theta_c = log lambda_c and beta0 = log lambda0',
      hazards,
      parameters: paramDiag,
    },
    diagnostics: {
      converged,
      max_rhat: maxRhat,
      min_ess_bulk: minEss,
      diagnosed: 'R-hat and bulk ESS of the model parameters and of the channel (and campaign) totals of the run',
      totals_diagnosed: varying.length,
      rhat_threshold: RHAT_MAX,
      ess_threshold: ESS_MIN,
      divergences: chains.reduce((a, c) => a + c.divergences, 0),
      max_treedepth_hits: chains.reduce((a, c) => a + c.maxDepthHits, 0),
      step_sizes: chains.map((c) => c.stepSize),
      mean_accept_stat: chains.map((c) => c.meanAcceptStat),
      leapfrog_steps: chains.reduce((a, c) => a + c.leapfrogs, 0),
    },
    converged,
    ...(totals ? { totals, totalSummaries } : {}),
  };
}

/** The chains' draws in one array (typed-array copies; spreading them into JS arrays was the summary's main cost). */
function concat(chains: readonly Float64Array[]): Float64Array {
  const out = new Float64Array(chains.reduce((a, c) => a + c.length, 0));
  let at = 0;
  for (const c of chains) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
