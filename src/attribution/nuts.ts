import { Rng } from './rng.js';

/**
 * The No-U-Turn Sampler (Hoffman & Gelman 2014, Algorithm 6: slice variable, recursive tree
 * doubling, dual-averaging step size) with a dense metric adapted as Stan's dense_e does
 * (windowed warmup: initial fast interval, doubling slow windows estimating the posterior
 * covariance with Welford's algorithm and Stan's regularisation, final fast interval). Dense
 * rather than diagonal because the hazards of channels that appear together are correlated
 * (measured: a diagonal metric gave R-hat 1.013 and bulk ESS 424 of 4000 draws on a 4-channel
 * population). Pure TypeScript over Float64Arrays; dimensions are small (channels + 1), so the
 * O(d²) metric products cost little next to a gradient.
 */
export interface Target {
  readonly dim: number;
  /** Writes ∇ log p(θ) into `grad` and returns log p(θ) (up to a constant). */
  logDensityGradient(theta: Float64Array, grad: Float64Array): number;
}

export interface NutsOptions {
  readonly warmup: number;
  readonly draws: number;
  readonly seed: number;
  readonly init: Float64Array;
  readonly targetAccept?: number;
  readonly maxDepth?: number;
  /** Called after each iteration, warmup and draws alike (a run's progress bar). */
  readonly onIteration?: () => void;
}

export interface ChainResult {
  /** draws × dim, row-major. */
  readonly draws: Float64Array;
  readonly divergences: number;
  readonly maxDepthHits: number;
  readonly stepSize: number;
  readonly inverseMetric: Float64Array;
  readonly meanAcceptStat: number;
  readonly leapfrogs: number;
}

const MAX_DELTA_H = 1000;

interface State {
  theta: Float64Array;
  r: Float64Array;
  grad: Float64Array;
  logp: number;
}

export function sampleNuts(target: Target, options: NutsOptions): ChainResult {
  const d = target.dim;
  const rng = new Rng(options.seed);
  const delta = options.targetAccept ?? 0.8;
  const maxDepth = options.maxDepth ?? 10;
  // Inverse metric Σ (the posterior covariance estimate) and its Cholesky factor L (Σ = L Lᵀ).
  let invM = identity(d);
  let chol = identity(d);
  let leapfrogs = 0;

  const evaluate = (theta: Float64Array): State => {
    const grad = new Float64Array(d);
    const logp = target.logDensityGradient(theta, grad);
    return { theta, r: new Float64Array(d), grad, logp };
  };
  /** Velocity Σ r. */
  const velocity = (r: Float64Array) => {
    const v = new Float64Array(d);
    for (let i = 0; i < d; i++) {
      let x = 0;
      for (let j = 0; j < d; j++) x += invM[i * d + j]! * r[j]!;
      v[i] = x;
    }
    return v;
  };
  const kinetic = (r: Float64Array) => {
    const v = velocity(r);
    let k = 0;
    for (let i = 0; i < d; i++) k += v[i]! * r[i]!;
    return 0.5 * k;
  };
  const leapfrog = (s: State, eps: number): State => {
    leapfrogs++;
    const r = new Float64Array(d);
    const theta = new Float64Array(d);
    for (let i = 0; i < d; i++) r[i] = s.r[i]! + 0.5 * eps * s.grad[i]!;
    const v = velocity(r);
    for (let i = 0; i < d; i++) theta[i] = s.theta[i]! + eps * v[i]!;
    const grad = new Float64Array(d);
    const logp = target.logDensityGradient(theta, grad);
    for (let i = 0; i < d; i++) r[i]! += 0.5 * eps * grad[i]!;
    return { theta, r, grad, logp };
  };
  /** r ~ N(0, Σ⁻¹): solve Lᵀ r = z for standard normal z. */
  const momentum = () => {
    const z = new Float64Array(d);
    for (let i = 0; i < d; i++) z[i] = rng.normal();
    const r = new Float64Array(d);
    for (let i = d - 1; i >= 0; i--) {
      let x = z[i]!;
      for (let j = i + 1; j < d; j++) x -= chol[j * d + i]! * r[j]!;
      r[i] = x / chol[i * d + i]!;
    }
    return r;
  };
  /** No U-turn between the two ends (velocities Σ r). */
  const noUturn = (minus: State, plus: State) => {
    const vm = velocity(minus.r);
    const vp = velocity(plus.r);
    let a = 0;
    let b = 0;
    for (let i = 0; i < d; i++) {
      const dt = plus.theta[i]! - minus.theta[i]!;
      a += dt * vm[i]!;
      b += dt * vp[i]!;
    }
    return a >= 0 && b >= 0;
  };

  let current = evaluate(Float64Array.from(options.init));
  if (!Number.isFinite(current.logp)) throw new Error('NUTS: initial point has no finite log density');

  // Algorithm 4: a step size whose single leapfrog acceptance crosses 1/2.
  const reasonableStepSize = (s0: State, eps0: number) => {
    let eps = eps0;
    const start = { ...s0, r: momentum() };
    const h0 = start.logp - kinetic(start.r);
    const logRatioAt = (e: number) => {
      const next = leapfrog(start, e);
      const x = next.logp - kinetic(next.r) - h0;
      return Number.isNaN(x) ? -Infinity : x;
    };
    let logRatio = logRatioAt(eps);
    const a = logRatio > Math.log(0.5) ? 1 : -1;
    for (let i = 0; i < 60 && a * logRatio > -a * Math.LN2; i++) {
      eps = a === 1 ? eps * 2 : eps / 2;
      logRatio = logRatioAt(eps);
    }
    return eps;
  };

  let eps = reasonableStepSize(current, 1);
  // Dual averaging state (Hoffman & Gelman §3.2; Stan's constants).
  const gamma = 0.05;
  const t0 = 10;
  const kappa = 0.75;
  let mu = Math.log(10 * eps);
  let hBar = 0;
  let logEpsBar = 0;
  let adaptCount = 0;
  const restartDualAveraging = () => {
    mu = Math.log(10 * eps);
    hBar = 0;
    logEpsBar = 0;
    adaptCount = 0;
  };

  // Stan's windowed adaptation schedule.
  const W = options.warmup;
  let initBuffer = 75;
  let termBuffer = 50;
  let baseWindow = 25;
  if (initBuffer + baseWindow + termBuffer > W) {
    initBuffer = Math.floor(0.15 * W);
    termBuffer = Math.floor(0.1 * W);
    baseWindow = W - (initBuffer + termBuffer);
  }
  const windowEnds: number[] = [];
  if (W >= 20) {
    let windowSize = baseWindow;
    let end = initBuffer + windowSize;
    while (end <= W - termBuffer) {
      const nextSize = windowSize * 2;
      // A window that would leave less than its successor before the term buffer absorbs the rest.
      if (end + nextSize > W - termBuffer) end = W - termBuffer;
      windowEnds.push(end);
      if (end === W - termBuffer) break;
      windowSize = nextSize;
      end += windowSize;
    }
  }
  let wN = 0;
  let wMean = new Float64Array(d);
  let wM2 = new Float64Array(d * d);

  const draws = new Float64Array(options.draws * d);
  let divergences = 0;
  let maxDepthHits = 0;
  let acceptSum = 0;

  for (let iter = 0; iter < W + options.draws; iter++) {
    const warming = iter < W;
    const r0 = momentum();
    const start: State = { ...current, r: r0 };
    const h0 = start.logp - kinetic(r0);
    const logu = h0 + Math.log(rng.uniform() || Number.MIN_VALUE);
    let minus = start;
    let plus = start;
    let proposal = current;
    let n = 1;
    let keepGoing = true;
    let depth = 0;
    let alphaSum = 0;
    let alphaCount = 0;
    let diverged = false;

    const buildTree = (s: State, v: number, j: number): { minus: State; plus: State; prop: State; n: number; ok: boolean; alpha: number; nAlpha: number } => {
      if (j === 0) {
        const next = leapfrog(s, v * eps);
        const h = next.logp - kinetic(next.r);
        const finite = Number.isFinite(h);
        const nOk = finite && logu <= h ? 1 : 0;
        const ok = finite && logu < MAX_DELTA_H + h;
        if (!ok) diverged = true;
        const alpha = finite ? Math.min(1, Math.exp(h - h0)) : 0;
        return { minus: next, plus: next, prop: next, n: nOk, ok, alpha, nAlpha: 1 };
      }
      const first = buildTree(s, v, j - 1);
      if (!first.ok) return first;
      const second = buildTree(v === -1 ? first.minus : first.plus, v, j - 1);
      const treeMinus = v === -1 ? second.minus : first.minus;
      const treePlus = v === -1 ? first.plus : second.plus;
      let prop = first.prop;
      const total = first.n + second.n;
      if (total > 0 && rng.uniform() < second.n / total) prop = second.prop;
      return {
        minus: treeMinus,
        plus: treePlus,
        prop,
        n: total,
        ok: second.ok && noUturn(treeMinus, treePlus),
        alpha: first.alpha + second.alpha,
        nAlpha: first.nAlpha + second.nAlpha,
      };
    };

    while (keepGoing && depth < maxDepth) {
      const v = rng.uniform() < 0.5 ? -1 : 1;
      const sub = buildTree(v === -1 ? minus : plus, v, depth);
      if (v === -1) minus = sub.minus;
      else plus = sub.plus;
      if (sub.ok && rng.uniform() < Math.min(1, sub.n / n)) proposal = sub.prop;
      n += sub.n;
      alphaSum += sub.alpha;
      alphaCount += sub.nAlpha;
      keepGoing = sub.ok && noUturn(minus, plus);
      depth++;
    }
    if (keepGoing && depth >= maxDepth) maxDepthHits++;
    current = { ...proposal, r: new Float64Array(d) };
    const acceptStat = alphaCount > 0 ? alphaSum / alphaCount : 0;

    if (warming) {
      adaptCount++;
      const eta = 1 / (adaptCount + t0);
      hBar = (1 - eta) * hBar + eta * (delta - acceptStat);
      const logEps = mu - (Math.sqrt(adaptCount) / gamma) * hBar;
      const weight = adaptCount ** -kappa;
      logEpsBar = weight * logEps + (1 - weight) * logEpsBar;
      eps = Math.exp(logEps);
      // Slow windows: accumulate variances, update the metric at each window's end.
      if (iter >= initBuffer && iter < W - termBuffer) {
        wN++;
        const dlt = new Float64Array(d);
        for (let i = 0; i < d; i++) {
          dlt[i] = current.theta[i]! - wMean[i]!;
          wMean[i]! += dlt[i]! / wN;
        }
        for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) wM2[i * d + j]! += dlt[i]! * (current.theta[j]! - wMean[j]!);
        if (windowEnds.includes(iter + 1)) {
          // Stan's regularisation: shrink the sample covariance towards 1e-3 · I.
          const next = new Float64Array(d * d);
          for (let i = 0; i < d; i++) {
            for (let j = 0; j < d; j++) next[i * d + j] = (wN / (wN + 5)) * (wM2[i * d + j]! / (wN - 1));
            next[i * d + i]! += 1e-3 * (5 / (wN + 5));
          }
          const L = cholesky(next, d);
          if (L) {
            invM = next;
            chol = L;
          }
          wN = 0;
          wMean = new Float64Array(d);
          wM2 = new Float64Array(d * d);
          eps = reasonableStepSize(current, eps);
          restartDualAveraging();
        }
      }
      if (iter === W - 1) eps = Math.exp(logEpsBar);
    } else {
      const row = (iter - W) * d;
      for (let i = 0; i < d; i++) draws[row + i] = current.theta[i]!;
      if (diverged) divergences++;
      acceptSum += acceptStat;
    }
    options.onIteration?.();
  }
  return {
    draws,
    divergences,
    maxDepthHits,
    stepSize: eps,
    inverseMetric: invM,
    meanAcceptStat: options.draws > 0 ? acceptSum / options.draws : 0,
    leapfrogs,
  };
}

function identity(d: number): Float64Array {
  const m = new Float64Array(d * d);
  for (let i = 0; i < d; i++) m[i * d + i] = 1;
  return m;
}

/** Lower Cholesky factor of a symmetric positive-definite matrix, or null if it is not one. */
export function cholesky(a: Float64Array, d: number): Float64Array | null {
  const L = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * d + j]!;
      for (let k = 0; k < j; k++) s -= L[i * d + k]! * L[j * d + k]!;
      if (i === j) {
        if (!(s > 0)) return null;
        L[i * d + i] = Math.sqrt(s);
      } else L[i * d + j] = s / L[j * d + j]!;
    }
  }
  return L;
}
