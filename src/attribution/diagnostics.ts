/**
 * MCMC convergence diagnostics of Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021),
 * "Rank-normalization, folding, and localization: An improved R-hat for assessing convergence
 * of MCMC", Bayesian Analysis 16(2), as implemented by the R package `posterior` (rhat,
 * ess_bulk, ess_tail) and Stan (split_rank_normalized_rhat / _ess):
 *
 * - chains are split in halves (an odd draw count drops the middle draw);
 * - rank normalisation: the pooled draws' average ranks r become Φ⁻¹((r − 3/8) / (S + 1/4));
 * - R-hat = max(bulk, tail): basic R-hat of the rank-normalised split chains, and of the
 *   rank-normalised split chains of |x − median(x)| (folded);
 * - ESS: Geyer's initial positive and monotone sequences over the chains' mean biased
 *   autocovariance, with the antithetic improvement and the cap S·log10(S);
 *   bulk-ESS = ESS of the rank-normalised split chains; tail-ESS = min of the ESS of the
 *   indicators x ≤ q5 % and x ≤ q95 %.
 *
 * Draws are given as chains (one Float64Array per chain, equal lengths). Non-finite or constant
 * draws give NaN, as in the reference implementations.
 */
export type Chains = readonly Float64Array[];

export function splitChains(chains: Chains): Float64Array[] {
  const out: Float64Array[] = [];
  for (const c of chains) {
    const n = c.length;
    if (n < 2) {
      out.push(c);
      continue;
    }
    const half = Math.floor(n / 2);
    out.push(c.subarray(0, half), c.subarray(n - half));
  }
  return out;
}

function pooled(chains: Chains): Float64Array {
  const total = chains.reduce((a, c) => a + c.length, 0);
  const all = new Float64Array(total);
  let at = 0;
  for (const c of chains) {
    all.set(c, at);
    at += c.length;
  }
  return all;
}

function finiteAndVaries(chains: Chains): boolean {
  let min = Infinity;
  let max = -Infinity;
  for (const c of chains) {
    for (const x of c) {
      if (!Number.isFinite(x)) return false;
      if (x < min) min = x;
      if (x > max) max = x;
    }
  }
  return max - min >= Number.EPSILON * Math.max(1, Math.abs(max));
}

/** Rank normalisation of the pooled draws (average ranks for ties), back in chain shape. */
export function zScale(chains: Chains): Float64Array[] {
  const all = pooled(chains);
  const z = zScalePooled(all);
  const out: Float64Array[] = [];
  let at = 0;
  for (const c of chains) {
    out.push(z.subarray(at, at + c.length));
    at += c.length;
  }
  return out;
}

/**
 * Rank normalisation of pooled draws: average ranks (ties share the mean of their ranks) via a
 * radix argsort, then Φ⁻¹((r − 3/8) / (S + 1/4)); integer ranks read Φ⁻¹ from a table cached
 * per draw count. (Measured: the comparator sort this replaced took ~10x longer; diagnostics of
 * every allocated share dominate a bayesian run's summary.)
 */
function zScalePooled(all: Float64Array): Float64Array {
  return zScaleOrdered(all, argsort(all));
}

function zScaleOrdered(all: Float64Array, order: Uint32Array): Float64Array {
  const S = all.length;
  const table = normalScores(S);
  const z = new Float64Array(S);
  for (let i = 0; i < S; ) {
    let j = i + 1;
    const v = all[order[i]!]!;
    while (j < S && all[order[j]!] === v) j++;
    // Ranks i+1 .. j share their average.
    const score = j === i + 1 ? table[i]! : qnorm(((i + 1 + j) / 2 - 0.375) / (S + 0.25));
    for (let k = i; k < j; k++) z[order[k]!] = score;
    i = j;
  }
  return z;
}

/**
 * Indices that sort `x` ascending: stable LSD radix sort on order-preserving 64-bit keys, 11
 * bits per pass (6 passes). Measured ~8x faster than an index sort with a comparator for 4000
 * draws.
 */
export function argsort(x: Float64Array): Uint32Array {
  const n = x.length;
  const copy = new Float64Array(n);
  for (let i = 0; i < n; i++) copy[i] = x[i]! === 0 ? 0 : x[i]!; // −0 sorts with +0
  const words = new Uint32Array(copy.buffer); // little-endian: word 2i low, 2i+1 high
  const lo = new Uint32Array(n);
  const hi = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let h = words[2 * i + 1]!;
    let l = words[2 * i]!;
    if (h & 0x80000000) {
      h = ~h >>> 0;
      l = ~l >>> 0;
    } else h = (h | 0x80000000) >>> 0;
    hi[i] = h;
    lo[i] = l;
  }
  let idx = new Uint32Array(n);
  let tmp = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  const count = new Uint32Array(2049);
  // 64 key bits as 6 digits of 11 bits: bits 0-10, 11-21, 22-31 (10 bits) of lo, then of hi.
  const digits: Array<[Uint32Array, number, number]> = [
    [lo, 0, 2047], [lo, 11, 2047], [lo, 22, 1023],
    [hi, 0, 2047], [hi, 11, 2047], [hi, 22, 1023],
  ];
  for (const [keys, shift, mask] of digits) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[((keys[i]! >>> shift) & mask) + 1]!++;
    for (let b = 0; b < 2048; b++) count[b + 1]! += count[b]!;
    for (let i = 0; i < n; i++) {
      const id = idx[i]!;
      tmp[count[(keys[id]! >>> shift) & mask]!++] = id;
    }
    const t = idx;
    idx = tmp;
    tmp = t;
  }
  return idx;
}

const scoreCache = new Map<number, Float64Array>();
function normalScores(S: number): Float64Array {
  let t = scoreCache.get(S);
  if (!t) {
    t = new Float64Array(S);
    for (let r = 1; r <= S; r++) t[r - 1] = qnorm((r - 0.375) / (S + 0.25));
    if (scoreCache.size > 16) scoreCache.clear();
    scoreCache.set(S, t);
  }
  return t;
}

/**
 * R-hat and bulk-ESS together, sharing the work (one sort for the ranks, one for the folded
 * ranks): identical to `rhat(chains)` and `essBulk(chains)`.
 */
export function rhatAndEssBulk(chains: Chains): { rhat: number; essBulk: number } {
  if (!finiteAndVaries(chains)) return { rhat: NaN, essBulk: NaN };
  const split = splitChains(chains);
  const all = pooled(split);
  const order = argsort(all);
  const zs = reshape(zScaleOrdered(all, order), split);
  const bulk = rhatBasic(zs);
  const essB = ess(zs);
  // Folded around the median of all draws (with even chain lengths, the split draws are all of them).
  const S = all.length;
  const med = chains.every((c) => c.length % 2 === 0)
    ? S % 2 === 1
      ? all[order[(S - 1) / 2]!]!
      : (all[order[S / 2 - 1]!]! + all[order[S / 2]!]!) / 2
    : median(chains);
  const folded = all.map((x) => Math.abs(x - med));
  const tail = rhatBasic(reshape(zScalePooled(folded), split));
  return { rhat: Math.max(bulk, tail), essBulk: essB };
}

function reshape(flat: Float64Array, like: Chains): Float64Array[] {
  const out: Float64Array[] = [];
  let at = 0;
  for (const c of like) {
    out.push(flat.subarray(at, at + c.length));
    at += c.length;
  }
  return out;
}

function mean(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]!;
  return s / x.length;
}

function variance(x: ArrayLike<number>): number {
  const m = mean(x);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i]! - m) ** 2;
  return s / (x.length - 1);
}

/** Basic (unsplit) R-hat of the chains as given. */
export function rhatBasic(chains: Chains): number {
  if (!finiteAndVaries(chains) || chains.length < 2) return NaN;
  const n = chains[0]!.length;
  const means = chains.map(mean);
  const between = n * variance(means);
  const within = mean(chains.map(variance));
  return Math.sqrt((between / within + n - 1) / n);
}

export function median(chains: Chains): number {
  const s = pooled(chains).sort();
  return quantileSorted(s, 0.5);
}

/** Linear-interpolation quantile (R type 7) of a sorted array; NaN when empty. */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/**
 * quantileSorted(sorted copy of x, p) without sorting: x is reordered in place by quickselect so
 * that the two order statistics the interpolation needs are found in O(n). Measured on a bayesian
 * summary (818 channel sets × their channels, 4000 draws each): 2.4 s with a full sort per share,
 * see the commit introducing it for the figure with this.
 */
export function quantileSelect(x: Float64Array, p: number): number {
  const n = x.length;
  if (n === 0) return NaN;
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  const a = select(x, lo, 0, n - 1);
  if (lo + 1 >= n || h === lo) return a;
  // After select, everything right of lo is ≥ x[lo]: the next order statistic is their minimum.
  let b = Infinity;
  for (let i = lo + 1; i < n; i++) if (x[i]! < b) b = x[i]!;
  return a + (h - lo) * (b - a);
}

/** The k-th smallest of x[left..right] (Hoare partition, median-of-three pivot), x reordered in place. */
function select(x: Float64Array, k: number, left: number, right: number): number {
  while (right > left) {
    const mid = (left + right) >>> 1;
    // Median of three as pivot: sorted data (draws of a share are often near-sorted) stays O(n).
    const a = x[left]!, b = x[mid]!, c = x[right]!;
    const pivot = a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
    let i = left;
    let j = right;
    while (i <= j) {
      while (x[i]! < pivot) i++;
      while (x[j]! > pivot) j--;
      if (i <= j) {
        const t = x[i]!;
        x[i] = x[j]!;
        x[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else return x[k]!;
  }
  return x[k]!;
}

/** Rank-normalised split R-hat: max of bulk and folded (tail) R-hat. */
export function rhat(chains: Chains): number {
  if (!finiteAndVaries(chains)) return NaN;
  const bulk = rhatBasic(zScale(splitChains(chains)));
  const med = median(chains);
  const folded = chains.map((c) => c.map((x) => Math.abs(x - med)));
  const tail = rhatBasic(zScale(splitChains(folded)));
  return Math.max(bulk, tail);
}

/** Effective sample size of the chains as given (posterior's `.ess`). */
export function ess(chains: Chains): number {
  const m = chains.length;
  const n = chains[0]?.length ?? 0;
  if (n < 3 || !finiteAndVaries(chains)) return NaN;
  const centred = chains.map((c) => {
    const mu = mean(c);
    return c.map((x) => x - mu);
  });
  // Mean over chains of the biased autocovariance at lag t, computed lazily: Geyer's sequence
  // usually stops after a few lags, so this is O(n · lags) instead of an FFT.
  // This is the exact biased autocovariance (Vehtari et al.'s definition); `posterior` computes it
  // by an FFT padded to a length 2^a·3^b·5^c, so when the split length is not of that form its
  // figures differ from these, negligibly (the reference test's split length, 500, is of that form).
  const acovAt = (t: number) => {
    let s = 0;
    for (const c of centred) {
      let a = 0;
      for (let i = 0; i + t < n; i++) a += c[i]! * c[i + t]!;
      s += a / n;
    }
    return s / m;
  };
  const acov0 = acovAt(0);
  const meanVar = (acov0 * n) / (n - 1);
  let varPlus = (meanVar * (n - 1)) / n;
  if (m > 1) varPlus += variance(chains.map(mean));
  const rho = new Float64Array(n);
  let t = 0;
  let rhoEven = 1;
  rho[0] = rhoEven;
  let rhoOdd = 1 - (meanVar - acovAt(1)) / varPlus;
  rho[1] = rhoOdd;
  while (t < n - 5 && !Number.isNaN(rhoEven + rhoOdd) && rhoEven + rhoOdd > 0) {
    t += 2;
    rhoEven = 1 - (meanVar - acovAt(t)) / varPlus;
    rhoOdd = 1 - (meanVar - acovAt(t + 1)) / varPlus;
    if (rhoEven + rhoOdd >= 0) {
      rho[t] = rhoEven;
      rho[t + 1] = rhoOdd;
    }
  }
  const maxT = t;
  if (rhoEven > 0) rho[maxT] = rhoEven;
  // Geyer's initial monotone sequence.
  t = 0;
  while (t <= maxT - 4) {
    t += 2;
    if (rho[t]! + rho[t + 1]! > rho[t - 2]! + rho[t - 1]!) {
      rho[t] = (rho[t - 2]! + rho[t - 1]!) / 2;
      rho[t + 1] = rho[t]!;
    }
  }
  const S = m * n;
  let sum = 0;
  for (let i = 0; i < maxT; i++) sum += rho[i]!;
  let tau = -1 + 2 * sum + rho[maxT]!;
  tau = Math.max(tau, 1 / Math.log10(S));
  return S / tau;
}

export function essBulk(chains: Chains): number {
  if (!finiteAndVaries(chains)) return NaN;
  return ess(zScale(splitChains(chains)));
}

export function essTail(chains: Chains): number {
  if (!finiteAndVaries(chains)) return NaN;
  const s = pooled(chains).sort();
  const q05 = quantileSorted(s, 0.05);
  const q95 = quantileSorted(s, 0.95);
  const ind = (q: number) => splitChains(chains.map((c) => c.map((x) => (x <= q ? 1 : 0))));
  return Math.min(ess(ind(q05)), ess(ind(q95)));
}

/**
 * Φ⁻¹(p): Wichura's algorithm AS 241 (PPND16), relative accuracy about 1e-16 — the algorithm
 * behind R's qnorm.
 */
export function qnorm(p: number): number {
  if (!(p > 0 && p < 1)) return p === 0 ? -Infinity : p === 1 ? Infinity : NaN;
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    return (
      (q *
        (((((((r * 2509.0809287301226727 + 33430.575583588128105) * r + 67265.770927008700853) * r + 45921.953931549871457) * r +
          13731.693765509461125) *
          r +
          1971.5909503065514427) *
          r +
          133.14166789178437745) *
          r +
          3.387132872796366608)) /
      (((((((r * 5226.495278852545925 + 28729.085735721942674) * r + 39307.89580009271061) * r + 21213.794301586595867) * r +
        5394.1960214247511077) *
        r +
        687.1870074920579083) *
        r +
        42.313330701600911252) *
        r +
        1)
    );
  }
  let r = q < 0 ? p : 1 - p;
  r = Math.sqrt(-Math.log(r));
  let val: number;
  if (r <= 5) {
    r -= 1.6;
    val =
      (((((((r * 7.7454501427834140764e-4 + 0.0227238449892691845833) * r + 0.24178072517745061177) * r + 1.27045825245236838258) * r +
        3.64784832476320460504) *
        r +
        5.7694972214606914055) *
        r +
        4.6303378461565452959) *
        r +
        1.42343711074968357734) /
      (((((((r * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * r + 0.0151986665636164571966) * r + 0.14810397642748007459) * r +
        0.68976733498510000455) *
        r +
        1.6763848301838038494) *
        r +
        2.05319162663775882187) *
        r +
        1);
  } else {
    r -= 5;
    val =
      (((((((r * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * r + 0.0012426609473880784386) * r + 0.026532189526576123093) * r +
        0.29656057182850489123) *
        r +
        1.7848265399172913358) *
        r +
        5.4637849111641143699) *
        r +
        6.6579046435011037772) /
      (((((((r * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r + 7.868691311456132591e-4) * r +
        0.0148753612908506148525) *
        r +
        0.13692988092273580531) *
        r +
        0.59983220655588793769) *
        r +
        1);
  }
  return q < 0 ? -val : val;
}
