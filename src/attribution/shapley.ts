import { Rng } from './rng.js';

/**
 * Shapley values of a cooperative game on n players, for a characteristic function v given on
 * bit masks (v(∅) = 0 is assumed by the callers' games).
 *
 * - n ≤ EXACT_SHAPLEY_MAX (12): exact, by the subset formula
 *     φᵢ = Σ_{S ⊆ N∖{i}} |S|! (n−|S|−1)! / n! · (v(S ∪ {i}) − v(S)),
 *   O(2ⁿ·n) evaluations of v over a table of all 2ⁿ coalitions (4096 for 12 players).
 * - n > 12: Monte Carlo over random orderings (Castro, Gómez & Tejada 2009): for each of m
 *   uniformly random permutations, each player's marginal contribution to the players before
 *   it; φ̂ᵢ is their mean. Every permutation's contributions sum to v(N) − v(∅), so the
 *   estimates are efficient exactly (up to float rounding); with a monotone v every contribution
 *   is ≥ 0, so no estimate is negative. The standard error of φ̂ᵢ is sᵢ/√m (sᵢ the sample SD of
 *   its contributions), reported per player; by Hoeffding, |φ̂ᵢ − φᵢ| ≤ R·√(ln(2/α)/(2m)) with
 *   probability 1 − α when contributions lie in a range of width R.
 */
export const EXACT_SHAPLEY_MAX = 12;

export interface ShapleyResult {
  readonly values: Float64Array;
  readonly method: 'exact' | 'sampled';
  /** Per player standard error of the estimate (zeros when exact). */
  readonly standardErrors: Float64Array;
  readonly permutations: number;
}

export function shapley(n: number, v: (mask: number) => number, options: { permutations?: number; rng?: Rng } = {}): ShapleyResult {
  if (n <= EXACT_SHAPLEY_MAX) return { values: exactShapley(n, tabulate(n, v)), method: 'exact', standardErrors: new Float64Array(n), permutations: 0 };
  return sampledShapley(n, v, options.permutations ?? 2000, options.rng ?? new Rng(1));
}

/** v over every coalition of n players. */
export function tabulate(n: number, v: (mask: number) => number): Float64Array {
  const size = 1 << n;
  const table = new Float64Array(size);
  for (let m = 0; m < size; m++) table[m] = v(m);
  return table;
}

/** Exact Shapley values from a table of v over all 2ⁿ coalitions. */
export function exactShapley(n: number, table: Float64Array): Float64Array {
  // weight[s] = s! (n−s−1)! / n!, computed as a product to stay exact-ish in floating point.
  const weight = new Float64Array(n);
  for (let s = 0; s < n; s++) {
    let w = 1 / n;
    // 1/n · 1/C(n−1, s)
    for (let j = 1; j <= s; j++) w *= j / (n - j);
    weight[s] = w;
  }
  const phi = new Float64Array(n);
  const size = 1 << n;
  for (let m = 0; m < size; m++) {
    const s = popcount(m);
    const base = table[m]!;
    for (let i = 0; i < n; i++) {
      const bit = 1 << i;
      if (m & bit) continue;
      phi[i]! += weight[s]! * (table[m | bit]! - base);
    }
  }
  return phi;
}

function sampledShapley(n: number, v: (mask: number) => number, m: number, rng: Rng): ShapleyResult {
  const sum = new Float64Array(n);
  const sumSq = new Float64Array(n);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let p = 0; p < m; p++) {
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    let mask = 0;
    let prev = v(0);
    for (const player of order) {
      mask |= 1 << player;
      const next = v(mask >>> 0);
      const d = next - prev;
      sum[player]! += d;
      sumSq[player]! += d * d;
      prev = next;
    }
  }
  const values = new Float64Array(n);
  const standardErrors = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const mean = sum[i]! / m;
    values[i] = mean;
    const variance = m > 1 ? Math.max(0, (sumSq[i]! - m * mean * mean) / (m - 1)) : 0;
    standardErrors[i] = Math.sqrt(variance / m);
  }
  return { values, method: 'sampled', standardErrors, permutations: m };
}

/** Number of set bits of a 32-bit mask (SWAR). The one popcount of the engine. */
export function popcount(m: number): number {
  m = m - ((m >>> 1) & 0x55555555);
  m = (m & 0x33333333) + ((m >>> 2) & 0x33333333);
  return Math.imul((m + (m >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}
