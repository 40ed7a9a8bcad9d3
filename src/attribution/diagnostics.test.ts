import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { argsort, ess, essBulk, essTail, qnorm, rhat, rhatAndEssBulk, rhatBasic, splitChains } from './diagnostics.js';
import { Rng } from './rng.js';

/**
 * Reference draws: the `theta` column of the four chains of Stan's bernoulli example shipped with
 * Stan's own test suite (stan-dev/stan, src/test/unit/analyze/mcmc/test_csv_files/bern1..4.csv,
 * 1000 draws each), and the values Stan's unit tests publish for them
 * (split_rank_normalized_rhat_test.cpp, split_rank_normalized_ess_test.cpp), which follow the
 * definitions of Vehtari et al. (2021) as in the R package posterior.
 */
const bern = readFileSync(new URL('./testdata/stan-bern-theta.txt', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((line) => Float64Array.from(line.split(' ').map(Number)));

describe('convergence diagnostics against published reference values', () => {
  test('the fixture is the 4 × 1000 draws of the reference', () => {
    assert.deepEqual(bern.map((c) => c.length), [1000, 1000, 1000, 1000]);
  });

  test('basic R-hat 1.0029197, rank-normalised split R-hat (max of bulk and folded) 1.0067897', () => {
    assert.ok(Math.abs(rhatBasic(bern) - 1.0029197) < 1e-7, `${rhatBasic(bern)}`);
    assert.ok(Math.abs(rhat(bern) - 1.0067897) < 1e-7, `${rhat(bern)}`);
  });

  test('bulk-ESS 1407.5124 and tail-ESS 1291.7131', () => {
    assert.ok(Math.abs(essBulk(bern) - 1407.5124) < 1e-3, `${essBulk(bern)}`);
    assert.ok(Math.abs(essTail(bern) - 1291.7131) < 1e-3, `${essTail(bern)}`);
  });

  test('the combined routine gives the same figures', () => {
    const both = rhatAndEssBulk(bern);
    assert.equal(both.rhat, rhat(bern));
    assert.equal(both.essBulk, essBulk(bern));
  });

  test('split R-hat by hand: repeated two-point cycles make every half identical', () => {
    // Chains alternate mean_k ± 1 (means 1, 2, 11, 12): both halves of a chain have its mean and
    // the sample variance 50/49 of ±1 over 50 draws; R-hat = sqrt(((n−1)/n·W + B/n) / W) over the
    // 8 half-chains, n = 50, B = n · var(half-chain means).
    const means = [1, 2, 11, 12];
    const n = 100;
    const chains = means.map((m) => Float64Array.from({ length: n }, (_, i) => m + (i % 2 === 0 ? -1 : 1)));
    const half = n / 2;
    const W = (half / (half - 1)) * 1; // sample variance of ±1 alternations
    const halfMeans = means.flatMap((m) => [m, m]);
    const mu = halfMeans.reduce((a, b) => a + b, 0) / 8;
    const B = (half * halfMeans.reduce((a, b) => a + (b - mu) ** 2, 0)) / 7;
    const expected = Math.sqrt(((half - 1) / half * W + B / half) / W);
    assert.ok(Math.abs(rhatBasic(splitChains(chains)) - expected) < 1e-12);
  });

  test('iid draws: R-hat near 1 and ESS near the draw count; AR(1) draws: ESS near S·(1−φ)/(1+φ)', () => {
    const rng = new Rng(11);
    const iid = [0, 1, 2, 3].map(() => Float64Array.from({ length: 2000 }, () => rng.normal()));
    assert.ok(Math.abs(rhat(iid) - 1) < 0.01);
    assert.ok(Math.abs(essBulk(iid) / 8000 - 1) < 0.1);
    const phi = 0.8;
    const ar = [0, 1, 2, 3].map(() => {
      const c = new Float64Array(5000);
      let x = rng.normal() / Math.sqrt(1 - phi * phi);
      for (let i = 0; i < c.length; i++) c[i] = x = phi * x + rng.normal();
      return c;
    });
    const expectedEss = (20000 * (1 - phi)) / (1 + phi);
    assert.ok(Math.abs(ess(ar) / expectedEss - 1) < 0.2, `${ess(ar)} vs ${expectedEss}`);
  });

  test('chains stuck in different places are flagged: R-hat far above 1.01', () => {
    const rng = new Rng(5);
    const shifted = [0, 0, 0, 3].map((shift) => Float64Array.from({ length: 500 }, () => shift + rng.normal()));
    assert.ok(rhat(shifted) > 1.1);
  });

  test('constant or non-finite draws have no diagnostic (NaN), as in the reference implementations', () => {
    const constant = [Float64Array.from([1, 1, 1, 1]), Float64Array.from([1, 1, 1, 1])];
    assert.ok(Number.isNaN(rhat(constant)) && Number.isNaN(essBulk(constant)));
    assert.ok(Number.isNaN(rhat([Float64Array.from([1, 2, Infinity, 4]), Float64Array.from([1, 2, 3, 4])])));
  });

  test('qnorm (AS 241) and the radix argsort', () => {
    assert.ok(Math.abs(qnorm(0.975) - 1.959963984540054) < 1e-15);
    assert.ok(Math.abs(qnorm(1e-10) + 6.361340902404056) < 1e-12);
    assert.equal(qnorm(0.5), 0);
    const x = Float64Array.from([3, -1, -0, 0, 2, -5.5, 1e-300, -1e-300, Infinity, -Infinity, 2]);
    const sorted = [...argsort(x)].map((i) => x[i]);
    assert.deepEqual(sorted, [...x].sort((a, b) => a - b));
  });
});

describe('quantileSelect', () => {
  test('equals quantileSorted of the sorted draws, for any draws and p', async () => {
    const fc = (await import('fast-check')).default;
    const { quantileSelect, quantileSorted } = await import('./diagnostics.js');
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), { minLength: 1, maxLength: 300 }), fc.double({ min: 0, max: 1, noNaN: true }), (xs, p) => {
        const sorted = Float64Array.from(xs).sort();
        const expected = quantileSorted(sorted, p);
        const got = quantileSelect(Float64Array.from(xs), p);
        return Math.abs(got - expected) <= 1e-9 * Math.max(1, Math.abs(expected));
      }),
      { numRuns: 500 },
    );
  });
});
