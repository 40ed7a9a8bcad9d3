import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { heuristicAllocations, touchWeights, type Touch } from './heuristics.js';
import { DAY_MS, HEURISTIC_MODELS } from './models.js';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`# fast-check seed ${seed} (FC_SEED=${seed} to replay)`);

const T = Date.UTC(2026, 2, 31, 12);
const path = (...items: Array<[string, number]>): Touch[] => items.map(([channel, daysBefore]) => ({ channel, at: T - daysBefore * DAY_MS }));
const shares = (w: number[]) => {
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / s);
};
const HALF_LIFE = 7 * DAY_MS;

describe('heuristic rules on hand-worked paths', () => {
  const p = path(['email', 28], ['google_search_paid', 14], ['facebook_paid', 7], ['direct', 0]);

  test('time decay: touches 28/14/7/0 days before with a 7-day half-life weigh 1/16 : 1/4 : 1/2 : 1', () => {
    const w = touchWeights('time_decay', p, T, HALF_LIFE);
    const expected = shares([1 / 16, 1 / 4, 1 / 2, 1]);
    shares(w).forEach((s, i) => assert.ok(Math.abs(s - expected[i]!) < 1e-15, `touch ${i}: ${s} vs ${expected[i]}`));
    // In money: 1/16 + 1/4 + 1/2 + 1 = 29/16, so 2900 cents split 100 / 400 / 800 / 1600 exactly.
    const a = heuristicAllocations(['time_decay'], p, T, 'direct', 2900n, HALF_LIFE);
    assert.deepEqual(Object.fromEntries(a.map((x) => [x.channel, x.cents])), { email: 100n, google_search_paid: 400n, facebook_paid: 800n, direct: 1600n });
  });

  test('time decay is continuous in time (Δt in milliseconds, not whole days)', () => {
    const w = touchWeights('time_decay', path(['a', 3.5], ['b', 0]), T, HALF_LIFE);
    assert.ok(Math.abs(w[0]! / w[1]! - 2 ** -0.5) < 1e-15);
    // Weights are relative to the newest touch (weight 1), so however old the path and short the
    // half-life the total never underflows to zero and the split is defined.
    const old = touchWeights('time_decay', path(['a', 365], ['b', 300]), T, 3_600_000);
    assert.equal(old[1], 1);
    const cents = heuristicAllocations(['time_decay'], path(['a', 365], ['b', 300]), T, 'x', 500n, 3_600_000);
    assert.deepEqual(cents.map((x) => [x.channel, x.cents]), [['b', 500n]]);
  });

  test('first touch, last touch, linear (per touch: a channel touched twice gets twice the credit)', () => {
    const q = path(['email', 5], ['search', 3], ['email', 1]);
    const by = (m: 'first_touch' | 'last_touch' | 'linear') => Object.fromEntries(heuristicAllocations([m], q, T, 'direct', 900n, HALF_LIFE).map((x) => [x.channel, x.cents]));
    assert.deepEqual(by('first_touch'), { email: 900n });
    assert.deepEqual(by('last_touch'), { email: 900n });
    assert.deepEqual(by('linear'), { email: 600n, search: 300n });
    assert.deepEqual(by('first_touch'), by('last_touch'));
    const r = path(['a', 5], ['b', 3], ['c', 1]);
    assert.deepEqual(heuristicAllocations(['first_touch'], r, T, 'x', 10n, HALF_LIFE).map((x) => [x.channel, x.cents]), [['a', 10n]]);
    assert.deepEqual(heuristicAllocations(['last_touch'], r, T, 'x', 10n, HALF_LIFE).map((x) => [x.channel, x.cents]), [['c', 10n]]);
  });

  test('position based: 40/20/40; one touch 100 %, two 50/50; the middle share split evenly', () => {
    assert.deepEqual(shares(touchWeights('position_based', path(['a', 1]), T, HALF_LIFE)), [1]);
    assert.deepEqual(shares(touchWeights('position_based', path(['a', 2], ['b', 1]), T, HALF_LIFE)), [0.5, 0.5]);
    assert.deepEqual(shares(touchWeights('position_based', path(['a', 3], ['b', 2], ['c', 1]), T, HALF_LIFE)), [0.4, 0.2, 0.4]);
    assert.deepEqual(shares(touchWeights('position_based', path(['a', 5], ['b', 4], ['c', 3], ['d', 2], ['e', 1]), T, HALF_LIFE)).map((x) => Math.round(x * 1e12) / 1e12), [
      0.4, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.4,
    ].map((x) => Math.round(x * 1e12) / 1e12));
    const cents = heuristicAllocations(['position_based'], path(['a', 3], ['b', 2], ['c', 1]), T, 'x', 1000n, HALF_LIFE);
    assert.deepEqual(cents.map((x) => [x.channel, x.cents, x.ratioUnits]), [['a', 400n, 40000], ['b', 200n, 20000], ['c', 400n, 40000]]);
  });

  test('a conversion without touchpoints is credited to its own channel by every rule', () => {
    const a = heuristicAllocations(HEURISTIC_MODELS, [], T, 'referral', 1234n, HALF_LIFE);
    assert.equal(a.length, 5);
    assert.ok(a.every((x) => x.channel === 'referral' && x.cents === 1234n && x.ratioUnits === 100_000 && x.confidenceMilli === 1000));
  });

  test('confidence = rule agreement: 1 on a one-channel path, lower the more the rules disagree about the channel', () => {
    const one = heuristicAllocations(['linear'], path(['a', 3], ['a', 1]), T, 'x', 100n, HALF_LIFE);
    assert.equal(one[0]!.confidenceMilli, 1000);
    // a then b: first touch gives a 100 %, last touch 0 % → spread 1 → confidence 0.
    const two = heuristicAllocations(['linear'], path(['a', 3], ['b', 1]), T, 'x', 100n, HALF_LIFE);
    assert.deepEqual(two.map((x) => x.confidenceMilli), [0, 0]);
  });
});

// Input order (permuted events, simultaneous touches) is tested in the database: permutation.test.ts.
describe('heuristic properties', () => {
  const touches = fc
    .array(fc.record({ channel: fc.constantFrom('a', 'b', 'c', 'd', 'e'), days: fc.double({ min: 0, max: 30, noNaN: true }) }), { minLength: 0, maxLength: 12 })
    .map((xs) => xs.map((x) => ({ channel: x.channel, at: T - x.days * DAY_MS })).sort((p, q) => p.at - q.at));

  test('every rule: cents sum exactly to the value, ratios to 1, nothing negative, confidence in [0, 1]', () => {
    fc.assert(
      fc.property(touches, fc.bigInt({ min: 0n, max: 2n ** 31n - 1n }), (t, value) => {
        const all = heuristicAllocations(HEURISTIC_MODELS, t, T, 'direct', value, HALF_LIFE);
        for (const m of HEURISTIC_MODELS) {
          const mine = all.filter((x) => x.model === m);
          assert.equal(mine.reduce((a, x) => a + x.cents, 0n), value, m);
          assert.equal(mine.reduce((a, x) => a + x.ratioUnits, 0), 100_000, m);
          for (const x of mine) {
            assert.ok(x.cents >= 0n && x.ratioUnits >= 0 && x.confidenceMilli >= 0 && x.confidenceMilli <= 1000);
          }
        }
      }),
      { seed, numRuns: 1000 },
    );
  });
});

describe('campaigns', () => {
  test('a channel credited through two campaigns: split by the rule\'s per-touch weights, adding up to the channel', () => {
    const p: Touch[] = [
      { channel: 'email', at: T - 3 * DAY_MS, campaign: 'spring' },
      { channel: 'google_search_paid', at: T - 2 * DAY_MS, campaign: 'brand' },
      { channel: 'email', at: T - DAY_MS, campaign: 'autumn' },
    ];
    const linear = heuristicAllocations(['linear'], p, T, 'direct', 1000n, HALF_LIFE);
    assert.deepEqual(linear.map((a) => [a.channel, a.campaign, a.cents, a.ratioUnits]), [
      ['email', 'autumn', 334n, 33334],
      ['email', 'spring', 333n, 33333],
      ['google_search_paid', 'brand', 333n, 33333],
    ]);
    const first = heuristicAllocations(['first_touch'], p, T, 'direct', 1000n, HALF_LIFE);
    assert.deepEqual(first.map((a) => [a.channel, a.campaign, a.cents]), [['email', 'spring', 1000n]]);
    // An empty path is the conversion's own channel and campaign.
    const empty = heuristicAllocations(['linear'], [], T, 'direct', 500n, HALF_LIFE, 'summer');
    assert.deepEqual(empty.map((a) => [a.channel, a.campaign, a.cents]), [['direct', 'summer', 500n]]);
  });

  test('property: per channel the campaigns add up to exactly what the channel gets without campaigns', () => {
    const channels = ['direct', 'email', 'organic'];
    const touch = fc.record({ c: fc.integer({ min: 0, max: 2 }), d: fc.double({ min: 0, max: 30, noNaN: true }), k: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: null }) });
    fc.assert(
      fc.property(fc.array(touch, { minLength: 1, maxLength: 8 }), fc.bigInt({ min: 0n, max: 10n ** 12n }), (raw, value) => {
        const p = raw.map((t) => ({ channel: channels[t.c]!, at: T - t.d * DAY_MS, campaign: t.k })).sort((a, b) => a.at - b.at);
        const plain = p.map(({ channel, at }) => ({ channel, at }));
        const withCampaigns = heuristicAllocations(HEURISTIC_MODELS, p, T, 'direct', value, HALF_LIFE);
        const without = heuristicAllocations(HEURISTIC_MODELS, plain, T, 'direct', value, HALF_LIFE);
        for (const w of without) {
          const parts = withCampaigns.filter((a) => a.model === w.model && a.channel === w.channel);
          assert.equal(parts.reduce((s, a) => s + a.cents, 0n), w.cents, `${w.model} ${w.channel} cents`);
          assert.equal(parts.reduce((s, a) => s + a.ratioUnits, 0), w.ratioUnits, `${w.model} ${w.channel} ratio`);
          assert.ok(parts.every((a) => a.cents >= 0n && a.confidenceMilli === w.confidenceMilli));
        }
      }),
      { seed, numRuns: 500 },
    );
  });
});
