import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { allocate, AllocationError, allocateNumber, exactIntegers } from './allocate.js';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`# fast-check seed ${seed} (FC_SEED=${seed} to replay)`);

const amount = fc.bigInt({ min: 0n, max: 10n ** 15n });
const weight = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.double({ min: 0, max: 1e6, noNaN: true }), fc.double({ min: 0, max: 1e-200, noNaN: true }));
const weights = fc.array(weight, { minLength: 1, maxLength: 12 }).filter((w) => w.some((x) => x > 0));

describe('allocate (largest remainder, exact)', () => {
  test('parts are integers ≥ 0 that sum exactly to the amount, each within one unit of its exact quota', () => {
    fc.assert(
      fc.property(amount, weights, (a, w) => {
        const parts = allocate(a, w);
        assert.equal(parts.length, w.length);
        assert.equal(parts.reduce((x, y) => x + y, 0n), a);
        // Exact quota comparison in rationals: |part·Σw − a·wᵢ| < Σw.
        const W = exactIntegers(w);
        const sum = W.reduce((x, y) => x + y, 0n);
        parts.forEach((p, i) => {
          assert.ok(p >= 0n);
          const diff = p * sum - a * W[i]!;
          assert.ok(diff > -sum && diff < sum, `part ${i} is more than one unit from its quota`);
          if (W[i] === 0n) assert.equal(p, 0n);
        });
      }),
      { seed, numRuns: 2000 },
    );
  });

  test('a leftover unit goes to the larger remainder; equal remainders go to the lower index (deterministic)', () => {
    assert.deepEqual(allocate(10n, [1, 1, 1]), [4n, 3n, 3n]);
    assert.deepEqual(allocate(11n, [1, 1, 1]), [4n, 4n, 3n]);
    assert.deepEqual(allocate(100n, [1, 2]), [33n, 67n]); // 33.3 / 66.7
    assert.deepEqual(allocate(1n, [1, 1]), [1n, 0n]);
    assert.deepEqual(allocate(7n, [0.5, 0.25, 0.25]), [3n, 2n, 2n]); // 3.5 / 1.75 / 1.75: the .75 remainders win
    assert.deepEqual(allocate(0n, [3, 1]), [0n, 0n]);
  });

  test('permuting parts permutes the result when remainders are distinct', () => {
    fc.assert(
      fc.property(amount, fc.uniqueArray(fc.integer({ min: 1, max: 10_000 }), { minLength: 2, maxLength: 8 }), (a, w) => {
        const W = w.map(BigInt);
        const sum = W.reduce((x, y) => x + y, 0n);
        const rems = W.map((x) => (a * x) % sum);
        fc.pre(new Set(rems).size === rems.length);
        const base = allocate(a, w);
        const order = w.map((_, i) => i).reverse();
        const permuted = allocate(a, order.map((i) => w[i]!));
        assert.deepEqual(permuted, order.map((i) => base[i]!));
      }),
      { seed, numRuns: 500 },
    );
  });

  test('float weights are split exactly (no rounding drift), including huge amounts and tiny weights', () => {
    // 10^18 · 0.1 is not representable as a double; the bigint path still sums exactly.
    const parts = allocate(10n ** 18n, [0.1, 0.2, 0.7]);
    assert.equal(parts.reduce((x, y) => x + y, 0n), 10n ** 18n);
    assert.deepEqual(allocate(3n, [1e-300, 2e-300]), [1n, 2n]);
  });

  test('bad input is a typed error', () => {
    const code = (f: () => unknown) => {
      try {
        f();
        return 'ok';
      } catch (e) {
        assert.ok(e instanceof AllocationError);
        return e.code;
      }
    };
    assert.equal(code(() => allocate(-1n, [1])), 'allocation_negative_amount');
    assert.equal(code(() => allocate(1n, [])), 'allocation_no_parts');
    assert.equal(code(() => allocate(1n, [0, 0])), 'allocation_zero_weights');
    assert.equal(code(() => allocate(1n, [1, -1])), 'allocation_invalid_weight');
    assert.equal(code(() => allocate(1n, [Number.NaN])), 'allocation_invalid_weight');
    assert.equal(code(() => allocate(1n, [Infinity])), 'allocation_invalid_weight');
    assert.equal(code(() => allocateNumber(2 ** 53, [1, 1])), 'allocation_invalid_amount');
    assert.equal(code(() => allocateNumber(0.5, [1, 1])), 'allocation_invalid_amount');
    assert.equal(code(() => allocateNumber(-1, [1, 1])), 'allocation_negative_amount');
  });
});
