import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { journeySetFrom, packJourneys, type JourneySet } from './journey-set.js';
import { fitMarkov, pathTable, type PathTable } from './markov.js';

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
  test("the three-journey example of Bryl's tutorial (analyzecore, 2016): P(conv) = 1/3, RE = 0.5 / 1 / 1", () => {
    // Sergey Bryl, "Marketing Multi-Channel Attribution model with R (part 1: Markov chains concept)", analyzecore.com,
    // 3 Aug 2016 (https://analyzecore.com/2016/08/03/attribution-model-r-part-1/): C1 → C2 → C3 → conversion;
    // C1 → null; C2 → C3 → null. (Often credited to Anderl et al. 2016, the method's paper; the journeys are Bryl's.)
    // By hand: start→C1 2/3, start→C2 1/3, C1→C2 1/2, C2→C3 1, C3→conv 1/2. P(conv) = (2/3·1/2 + 1/3)·1/2 = 1/3;
    // without C1, 1/3·1/2 = 1/6 (RE 0.5); without C2 or C3 nothing converts (RE 1).
    const { f, re } = fit([['C1>C2>C3', true], ['C1', false], ['C2>C3', false]]);
    assert.ok(Math.abs(f.pConversion - 1 / 3) < 1e-15);
    assert.ok(Math.abs(re.C1! - 0.5) < 1e-15);
    assert.ok(Math.abs(re.C2! - 1) < 1e-15);
    assert.ok(Math.abs(re.C3! - 1) < 1e-15);
  });

  test("the two-channel example of Puzyrov's removal-effect explainer (Google Ads / Mailing): P(conv) = 0.8, RE 0.75 and 0.5", () => {
    // Serhii Puzyrov, "Markov Chain Attribution – Simple Explanation Of Removal Effect", July 2019
    // (https://serhiipuzyrov.com/2019/07/markov-chain-attribution-simple-explanation-of-removal-effect/): Google Ads
    // alone 2 conversions, Mailing 1, Google Ads > Mailing 1, Google Ads without conversion. Its transitions:
    // start→G 0.8, start→M 0.2, G→conv 0.5, G→M 0.25, G→null 0.25, M→conv 1. By hand: P(conv) = 0.8·(0.5 + 0.25) + 0.2
    // = 0.8; without G 0.2 (RE 0.75); without M 0.8·0.5 = 0.4 (RE 0.5).
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

/** The simple reference the integer-keyed path table replaced: one string key per journey. */
function stringPathTable(js: JourneySet): PathTable {
  const index = new Map<string, number>();
  const starts: number[] = [0];
  const chans: number[] = [];
  const conv: number[] = [];
  const count: number[] = [];
  for (let j = 0; j < js.converted.length; j++) {
    const path = Array.from(js.pathChannels.subarray(js.pathStart[j]!, js.pathStart[j + 1]!));
    const key = `${js.converted[j]}:${path.join(',')}`;
    const found = index.get(key);
    if (found !== undefined) {
      count[found]! += 1;
      continue;
    }
    index.set(key, conv.length);
    chans.push(...path);
    starts.push(chans.length);
    conv.push(js.converted[j]!);
    count.push(1);
  }
  return { k: js.channels.length, start: Int32Array.from(starts), channels: Int32Array.from(chans), converted: Uint8Array.from(conv), count: Float64Array.from(count) };
}

describe('integer-keyed path table', () => {
  // Channel counts from 1 to 30 change the chunk width (30 touches per chunk for 1 channel, 6 for
  // 30); paths up to 40 touches span several chunks; thousands of journeys grow the edge table.
  const population = fc.integer({ min: 1, max: 30 }).chain((k) =>
    fc.record({
      k: fc.constant(k),
      paths: fc.array(
        fc.record({
          path: fc.oneof(
            fc.array(fc.integer({ min: 0, max: k - 1 }), { minLength: 1, maxLength: 8 }),
            fc.array(fc.integer({ min: 0, max: Math.min(k - 1, 2) }), { minLength: 1, maxLength: 40, size: 'max' }),
          ),
          converted: fc.boolean(),
        }),
        { minLength: 1, maxLength: 3000, size: 'max' },
      ),
    }),
  );

  test('finds the same distinct paths, in the same order, with the same counts, and so the same removal effects, as a string-keyed table', () => {
    fc.assert(
      fc.property(population, ({ k, paths }) => {
        // Duplicate a slice of the journeys so repeats are common, not just chance.
        const all = [...paths, ...paths.slice(0, paths.length >> 1)];
        const channels = Array.from({ length: k }, (_, c) => `c${String(c).padStart(2, '0')}`);
        const conv = all.filter((p) => p.converted);
        const js = packJourneys(channels, [...conv, ...all.filter((p) => !p.converted)].map((p) => p.path), conv.length);
        const fast = pathTable(js);
        const ref = stringPathTable(js);
        assert.deepEqual(fast, ref);
        const a = fitMarkov(fast);
        const b = fitMarkov(ref);
        // Exactly equal: same table, same arithmetic.
        assert.equal(a.pConversion, b.pConversion);
        assert.deepEqual(a.removalEffects, b.removalEffects);
        assert.deepEqual(a.pWithout, b.pWithout);
      }),
      { seed, numRuns: 200 },
    );
  });

  test('a window without channels (every journey empty) is one path per outcome, not a hang', () => {
    const js = packJourneys([], [[], [], []], 2);
    const t = pathTable(js);
    assert.deepEqual(t, stringPathTable(js));
    assert.deepEqual([...t.count], [2, 1]);
    assert.equal(fitMarkov(t).pConversion, 2 / 3);
  });

  test('tells apart paths that differ only in length or in where a chunk ends', () => {
    // 12 channels: 7 touches per chunk. Channel 0 repeated 1..22 times (one to four chunks), the
    // same followed by channel 1, and channel 11 (the largest digit) repeated: 66 shapes, each
    // converted and not, each twice.
    const rep = (c: number, n: number) => Array(n).fill(c) as number[];
    const shapes: number[][] = [];
    for (let len = 1; len <= 22; len++) shapes.push(rep(0, len), [...rep(0, len), 1], rep(11, len));
    const channels = Array.from({ length: 12 }, (_, c) => `c${String(c).padStart(2, '0')}`);
    const js = packJourneys(channels, [...shapes, ...shapes, ...shapes, ...shapes], 2 * shapes.length);
    const t = pathTable(js);
    assert.equal(t.count.length, 2 * shapes.length);
    assert.ok(t.count.every((c) => c === 2));
    assert.deepEqual(t, stringPathTable(js));
  });
});
