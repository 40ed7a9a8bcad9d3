import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { journeySetFrom } from './journey-set.js';
import { fitMarkov, pathTable } from './markov.js';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`# fast-check seed ${seed}`);

function fit(paths: Array<[string, boolean]>) {
  const js = journeySetFrom(paths.map(([p, c]) => ({ path: p.split('>'), converted: c })));
  const f = fitMarkov(pathTable(js));
  return { js, f, re: Object.fromEntries(js.channels.map((c, i) => [c, f.removalEffects[i]!])) };
}

/**
 * Brute-force oracle, written independently of the solver: transition probabilities from
 * string-keyed counts, absorption probability by value iteration x ← Q x + r from x = 0 (the
 * probability of converting within t steps, increasing to the limit) until it stops changing.
 */
function oracle(paths: Array<{ path: string[]; converted: boolean }>, removed?: string): number {
  const counts = new Map<string, Map<string, number>>();
  const add = (a: string, b: string) => {
    const row = counts.get(a) ?? new Map<string, number>();
    row.set(b, (row.get(b) ?? 0) + 1);
    counts.set(a, row);
  };
  for (const p of paths) {
    let prev = '(start)';
    for (const c of p.path) {
      add(prev, c);
      prev = c;
    }
    add(prev, p.converted ? '(conv)' : '(null)');
  }
  let x = new Map<string, number>();
  for (let iter = 0; iter < 200000; iter++) {
    const next = new Map<string, number>();
    let delta = 0;
    for (const [s, row] of counts) {
      if (s === removed) continue;
      let total = 0;
      for (const v of row.values()) total += v;
      let v = 0;
      for (const [to, n] of row) {
        if (to === removed || to === '(null)') continue;
        v += (n / total) * (to === '(conv)' ? 1 : (x.get(to) ?? 0));
      }
      next.set(s, v);
      delta = Math.max(delta, Math.abs(v - (x.get(s) ?? 0)));
    }
    x = next;
    if (delta < 1e-15 && iter > 10) break;
  }
  return x.get('(start)') ?? 0;
}

describe('markov removal effects', () => {
  test('the three-journey illustration of Anderl et al. (2016): P(conv) = 1/3, RE = 0.5 / 1 / 1', () => {
    // C1 → C2 → C3 → conversion; C1 → null; C2 → C3 → null.
    const { f, re } = fit([['C1>C2>C3', true], ['C1', false], ['C2>C3', false]]);
    assert.ok(Math.abs(f.pConversion - 1 / 3) < 1e-15);
    assert.ok(Math.abs(re.C1! - 0.5) < 1e-15);
    assert.ok(Math.abs(re.C2! - 1) < 1e-15);
    assert.ok(Math.abs(re.C3! - 1) < 1e-15);
  });

  test('the published two-channel example (Google Ads / Mailing): P(conv) = 0.8, RE 0.75 and 0.5', () => {
    const { f, re } = fit([['G', true], ['G', true], ['M', true], ['G>M', true], ['G', false]]);
    assert.ok(Math.abs(f.pConversion - 0.8) < 1e-15);
    assert.ok(Math.abs(re.G! - 0.75) < 1e-15);
    assert.ok(Math.abs(re.M! - 0.5) < 1e-15);
    // 4 conversions split in proportion to removal effects: 2.4 and 1.6.
    assert.ok(Math.abs((4 * re.G!) / (re.G! + re.M!) - 2.4) < 1e-12);
  });

  test('matches the brute-force oracle on random small populations (with loops and revisits)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ path: fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { minLength: 1, maxLength: 6 }), converted: fc.boolean() }), {
          minLength: 1,
          maxLength: 25,
        }),
        (paths) => {
          const js = journeySetFrom(paths);
          const f = fitMarkov(pathTable(js));
          const p = oracle(paths);
          assert.ok(Math.abs(f.pConversion - p) < 1e-9, `P(conv) ${f.pConversion} vs oracle ${p}`);
          js.channels.forEach((c, i) => {
            const without = oracle(paths, c);
            assert.ok(Math.abs(f.pWithout[i]! - without) < 1e-9, `P(conv without ${c})`);
            assert.ok(f.removalEffects[i]! >= 0 && f.removalEffects[i]! <= 1);
          });
        },
      ),
      { seed, numRuns: 150 },
    );
  });
});
