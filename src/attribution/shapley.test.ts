import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { journeySetFrom } from './journey-set.js';
import { Rng } from './rng.js';
import { fitShapleyModel } from './shapley-model.js';
import { exactShapley, popcount, shapley, tabulate } from './shapley.js';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`# fast-check seed ${seed} (FC_SEED=${seed} to replay)`);

/** Shapley by its permutation definition: the mean marginal contribution over all n! orders. */
function bruteForce(n: number, v: (m: number) => number): number[] {
  const phi = new Array<number>(n).fill(0);
  let count = 0;
  const perm = (prefix: number[], rest: number[]) => {
    if (rest.length === 0) {
      let mask = 0;
      for (const p of prefix) {
        phi[p]! += v(mask | (1 << p)) - v(mask);
        mask |= 1 << p;
      }
      count++;
      return;
    }
    rest.forEach((r, i) => perm([...prefix, r], [...rest.slice(0, i), ...rest.slice(i + 1)]));
  };
  perm([], Array.from({ length: n }, (_, i) => i));
  return phi.map((x) => x / count);
}

describe('shapley solver', () => {
  test('exact 2^n subset formula equals the n! permutation definition on random games; efficiency holds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 7 }), fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { minLength: 128, maxLength: 128 }), (n, values) => {
        const v = (m: number) => (m === 0 ? 0 : values[m % 128]!);
        const exact = shapley(n, v);
        assert.equal(exact.method, 'exact');
        const brute = bruteForce(n, v);
        exact.values.forEach((x, i) => assert.ok(Math.abs(x - brute[i]!) < 1e-9, `player ${i}: ${x} vs ${brute[i]}`));
        const sum = exact.values.reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - (v((1 << n) - 1) - v(0))) < 1e-9);
      }),
      { seed, numRuns: 200 },
    );
  });

  test('beyond 12 players: permutation sampling, efficient and within its reported error of the exact value', () => {
    // A game with a closed form: v(S) = Σ_{U⊆S} d(U) for random dividends d ⇒ φᵢ = Σ_{U∋i} d(U)/|U|.
    const rng = new Rng(seed);
    const n = 14;
    const dividends: Array<{ mask: number; d: number }> = [];
    for (let k = 0; k < 60; k++) {
      let m = 0;
      while (m === 0) m = (rng.nextU32() & rng.nextU32()) & ((1 << n) - 1);
      dividends.push({ mask: m, d: rng.uniform() });
    }
    const v = (s: number) => dividends.reduce((a, x) => ((x.mask & ~s) === 0 ? a + x.d : a), 0);
    const closed = Array.from({ length: n }, (_, i) => dividends.reduce((a, x) => (x.mask & (1 << i) ? a + x.d / popcount(x.mask) : a), 0));
    const est = shapley(n, v, { permutations: 4000, rng: new Rng(seed + 1) });
    assert.equal(est.method, 'sampled');
    const sum = est.values.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - v((1 << n) - 1)) < 1e-9, 'each permutation sums to v(N), so the mean does');
    est.values.forEach((x, i) => {
      assert.ok(x >= 0, 'monotone game: no negative estimate');
      // 5 standard errors: fails by chance with probability < 1e-5 per player.
      assert.ok(Math.abs(x - closed[i]!) <= 5 * est.standardErrors[i]! + 1e-12, `player ${i}: ${x} vs ${closed[i]} (se ${est.standardErrors[i]})`);
    });
  });

  test('exactShapley on the glove game: one left glove, two right gloves → 2/3, 1/6, 1/6 (worked by hand)', () => {
    // v(S) = 1 when S holds player 0 (the left glove) and at least one of players 1, 2. Of the 3! orders, player 0
    // completes a pair in the 4 where it is not first (φ₀ = 4/6); player 1 only in "0, 1, 2" (φ₁ = 1/6); likewise 2.
    const v = (m: number) => (m & 1 && m & 0b110 ? 1 : 0);
    const phi = exactShapley(3, tabulate(3, v));
    [2 / 3, 1 / 6, 1 / 6].forEach((x, i) => assert.ok(Math.abs(phi[i]! - x) < 1e-15, `player ${i}: ${phi[i]} vs ${x}`));
  });
});

describe('shapley attribution model', () => {
  test('matches the closed form Σ_{U ⊆ S, c ∈ U} r(U)/|U| of its characteristic function', () => {
    // Channel sets {a}: 1 of 2 convert; {b}: 0 of 1; {a,b}: 2 of 2.
    const js = journeySetFrom([
      { path: ['a'], converted: true },
      { path: ['a', 'b'], converted: true },
      { path: ['b', 'a'], converted: true },
      { path: ['a'], converted: false },
      { path: ['b'], converted: false },
    ]);
    const fit = fitShapleyModel(js, { bootstrap: 20, permutations: 100, seed: 1 });
    const ab = fit.byMask.get(0b11)!;
    // φa = r(a) + r(ab)/2 = 0.5 + 0.5 = 1; φb = r(b) + r(ab)/2 = 0 + 0.5 → shares 2/3, 1/3.
    assert.ok(Math.abs(ab.share[0]! - 2 / 3) < 1e-12 && Math.abs(ab.share[1]! - 1 / 3) < 1e-12);
    assert.deepEqual([...fit.byMask.get(0b01)!.share], [1]);
  });

  test('properties: shares ≥ 0 summing to 1, equal to the closed form Σ r(U)/|U|, and independent of journey order', () => {
    const journeys = fc.array(
      fc.record({ path: fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), { minLength: 1, maxLength: 5 }), converted: fc.boolean() }),
      { minLength: 1, maxLength: 40 },
    );
    fc.assert(
      fc.property(journeys, (list) => {
        fc.pre(list.some((j) => j.converted));
        const sorted = [...list].sort((x, y) => Number(y.converted) - Number(x.converted));
        const js = journeySetFrom(sorted);
        const fit = fitShapleyModel(js, { bootstrap: 0, permutations: 100, seed: 3 });
        const reversed = fitShapleyModel(journeySetFrom([...sorted.filter((j) => j.converted)].reverse().concat(sorted.filter((j) => !j.converted).reverse())), {
          bootstrap: 0,
          permutations: 100,
          seed: 3,
        });
        // The oracle, from the journey list itself: r(U) = conversion rate of the journeys whose distinct channels are
        // exactly U; φ_c = Σ_{U ⊆ S, c ∈ U} r(U)/|U| for the conversion's channel set S.
        const bySet = new Map<string, { n: number; y: number; set: string[] }>();
        for (const j of list) {
          const set = [...new Set(j.path)].sort();
          const e = bySet.get(set.join('+')) ?? { n: 0, y: 0, set };
          e.n++;
          e.y += j.converted ? 1 : 0;
          bySet.set(set.join('+'), e);
        }
        for (const [mask, attr] of fit.byMask) {
          const sum = attr.share.reduce((a, b) => a + b, 0);
          assert.ok(Math.abs(sum - 1) < 1e-12);
          attr.share.forEach((s) => assert.ok(s >= 0));
          assert.deepEqual([...attr.share], [...reversed.byMask.get(mask)!.share]);
          const S = attr.channels.map((c) => js.channels[c]!);
          const phi = S.map((c) => [...bySet.values()].filter((u) => u.set.includes(c) && u.set.every((x) => S.includes(x))).reduce((a, u) => a + u.y / u.n / u.set.length, 0));
          const total = phi.reduce((a, b) => a + b, 0);
          phi.forEach((x, i) => assert.ok(Math.abs(attr.share[i]! - x / total) < 1e-12, `${S[i]}: ${attr.share[i]} vs closed form ${x / total} (mask ${mask})`));
        }
      }),
      { seed, numRuns: 150 },
    );
  });

  test('exact up to 12 distinct channels on a path, sampled (with standard errors) beyond', () => {
    const channels = Array.from({ length: 13 }, (_, i) => `c${String(i).padStart(2, '0')}`);
    const js = journeySetFrom([
      { path: channels.slice(0, 12), converted: true },
      { path: channels, converted: true },
      { path: ['c00'], converted: false },
    ]);
    const fit = fitShapleyModel(js, { bootstrap: 0, permutations: 50, seed: 5 });
    const twelve = (1 << 12) - 1;
    const thirteen = (1 << 13) - 1;
    assert.deepEqual(fit.maskMetadata!(twelve), { shapley: 'exact' });
    const sampled = fit.maskMetadata!(thirteen) as { shapley: string; permutations: number; standard_errors: number[] };
    assert.equal(sampled.shapley, 'sampled');
    assert.equal(sampled.permutations, 50);
    assert.equal(sampled.standard_errors.length, 13);
    assert.deepEqual(fit.diagnostics, { channel_sets: 2, sampled_channel_sets: 1, bootstrap_replicates: 0 });
  });
});
