import type { JourneySet } from './journey-set.js';

/**
 * First-order absorbing Markov chain attribution (Anderl et al. 2016), solved exactly.
 *
 * States: START, one per channel, and the absorbing CONVERSION and NULL. Every journey is the
 * walk START → c₁ → … → c_n → (CONVERSION | NULL); transition probabilities are the observed
 * transition counts normalised per state (repeated touches of one channel are self-loops, which
 * do not change absorption probabilities). P(conv) is the probability of absorption in
 * CONVERSION from START, the solution x_START of (I − Q) x = r (Q: transient-to-transient
 * probabilities, r: transient-to-CONVERSION), by Gaussian elimination with partial pivoting —
 * a linear solve, no simulation. Removing channel c redirects every transition into c to NULL
 * (column c of Q becomes zero); RE_c = 1 − P(conv without c) / P(conv) ∈ [0, 1].
 */
export interface MarkovFit {
  /** P(conversion) from START with every channel. */
  readonly pConversion: number;
  /** Removal effect per channel id (0 for channels never visited). */
  readonly removalEffects: Float64Array;
  /** P(conversion) with each channel removed. */
  readonly pWithout: Float64Array;
}

/** Distinct journeys with multiplicities: the bootstrap reweights these. */
export interface PathTable {
  readonly k: number;
  readonly start: Int32Array;
  readonly channels: Int32Array;
  readonly converted: Uint8Array;
  readonly count: Float64Array;
}

export function pathTable(js: JourneySet): PathTable {
  const index = new Map<string, number>();
  const starts: number[] = [0];
  const chans: number[] = [];
  const conv: number[] = [];
  const count: number[] = [];
  const n = js.converted.length;
  for (let j = 0; j < n; j++) {
    const a = js.pathStart[j]!;
    const b = js.pathStart[j + 1]!;
    let key = js.converted[j] ? 'c' : 'n';
    for (let i = a; i < b; i++) key += String.fromCharCode(js.pathChannels[i]! + 48);
    const found = index.get(key);
    if (found !== undefined) {
      count[found]! += 1;
      continue;
    }
    index.set(key, conv.length);
    for (let i = a; i < b; i++) chans.push(js.pathChannels[i]!);
    starts.push(chans.length);
    conv.push(js.converted[j]!);
    count.push(1);
  }
  return {
    k: js.channels.length,
    start: Int32Array.from(starts),
    channels: Int32Array.from(chans),
    converted: Uint8Array.from(conv),
    count: Float64Array.from(count),
  };
}

/**
 * Transition counts: rows 0 = START, 1..k = channels; columns 0..k-1 = channels, k = CONV,
 * k+1 = NULL. `weights` replaces the path multiplicities (bootstrap).
 */
export function transitionCounts(t: PathTable, weights: Float64Array = t.count): Float64Array {
  const k = t.k;
  const cols = k + 2;
  const m = new Float64Array((k + 1) * cols);
  const n = t.converted.length;
  for (let p = 0; p < n; p++) {
    const w = weights[p]!;
    if (w === 0) continue;
    let from = 0;
    for (let i = t.start[p]!; i < t.start[p + 1]!; i++) {
      const c = t.channels[i]!;
      m[from * cols + c]! += w;
      from = c + 1;
    }
    m[from * cols + (t.converted[p] ? k : k + 1)]! += w;
  }
  return m;
}

export function fitMarkov(t: PathTable, weights: Float64Array = t.count): MarkovFit {
  const k = t.k;
  const counts = transitionCounts(t, weights);
  const cols = k + 2;
  const n = k + 1; // transient states
  // A = I − Q, b = r, both from row-normalised counts; unvisited states get x = 0.
  const A = new Float64Array(n * n);
  const b = new Float64Array(n);
  const visited = new Uint8Array(n);
  for (let s = 0; s < n; s++) {
    let total = 0;
    for (let c = 0; c < cols; c++) total += counts[s * cols + c]!;
    A[s * n + s] = 1;
    if (total === 0) continue;
    visited[s] = 1;
    for (let c = 0; c < k; c++) A[s * n + c + 1]! -= counts[s * cols + c]! / total;
    b[s] = counts[s * cols + k]! / total;
  }
  const pConversion = visited[0] ? solve(A, b, n, -1)[0]! : 0;
  const removalEffects = new Float64Array(k);
  const pWithout = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    if (!visited[c + 1] || pConversion === 0) {
      pWithout[c] = pConversion;
      continue;
    }
    const p = solve(A, b, n, c + 1)[0]!;
    pWithout[c] = p;
    removalEffects[c] = Math.min(1, Math.max(0, 1 - p / pConversion));
  }
  return { pConversion, removalEffects, pWithout };
}

/**
 * Solves A x = b by Gaussian elimination with partial pivoting; with `removed` ≥ 0, column
 * `removed` of A is first replaced by the unit vector (Q's column zeroed: nothing enters it).
 */
export function solve(Ain: Float64Array, bin: Float64Array, n: number, removed: number): Float64Array {
  const A = Float64Array.from(Ain);
  const x = Float64Array.from(bin);
  if (removed >= 0) for (let r = 0; r < n; r++) A[r * n + removed] = r === removed ? 1 : 0;
  for (let col = 0; col < n; col++) {
    let piv = col;
    let best = Math.abs(A[col * n + col]!);
    for (let r = col + 1; r < n; r++) {
      const v = Math.abs(A[r * n + col]!);
      if (v > best) {
        best = v;
        piv = r;
      }
    }
    if (best === 0) throw new Error('singular Markov system (a state cannot reach absorption)');
    if (piv !== col) {
      for (let c = 0; c < n; c++) {
        const tmp = A[col * n + c]!;
        A[col * n + c] = A[piv * n + c]!;
        A[piv * n + c] = tmp;
      }
      const tb = x[col]!;
      x[col] = x[piv]!;
      x[piv] = tb;
    }
    const d = A[col * n + col]!;
    for (let r = col + 1; r < n; r++) {
      const f = A[r * n + col]! / d;
      if (f === 0) continue;
      for (let c = col; c < n; c++) A[r * n + c]! -= f * A[col * n + c]!;
      x[r]! -= f * x[col]!;
    }
  }
  for (let r = n - 1; r >= 0; r--) {
    let s = x[r]!;
    for (let c = r + 1; c < n; c++) s -= A[r * n + c]! * x[c]!;
    x[r] = s / A[r * n + r]!;
  }
  return x;
}
