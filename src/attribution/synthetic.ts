import { packJourneys, type JourneySet } from './journey-set.js';
import { Rng } from './rng.js';

/**
 * Synthetic journey populations for tests and benchmarks, drawn from the bayesian model's own
 * generative story so its parameters are known: each journey touches 1..maxTouches channels
 * (with repeats), and converts with probability 1 − exp(−(λ₀ + Σ_{distinct c} λ_c)).
 * Converting journeys come first, as the engine orders them.
 */
export function syntheticJourneys(options: {
  journeys: number;
  channels: number;
  seed: number;
  maxTouches?: number;
  hazards?: readonly number[];
  baseline?: number;
}): { js: JourneySet; hazards: number[]; baseline: number } {
  const rng = new Rng(options.seed);
  const k = options.channels;
  const hazards = options.hazards ? [...options.hazards] : Array.from({ length: k }, (_, c) => 0.01 + 0.03 * ((c * 7) % k) / k);
  const baseline = options.baseline ?? 0.01;
  const maxTouches = options.maxTouches ?? 5;
  // Channel popularity: skewed, so some channel sets are common and others rare.
  const popularity = Array.from({ length: k }, (_, c) => 1 / (1 + c));
  const popTotal = popularity.reduce((a, b) => a + b, 0);
  const pick = () => {
    let u = rng.uniform() * popTotal;
    for (let c = 0; c < k; c++) {
      u -= popularity[c]!;
      if (u <= 0) return c;
    }
    return k - 1;
  };
  const conv: number[][] = [];
  const nonConv: number[][] = [];
  for (let j = 0; j < options.journeys; j++) {
    const len = 1 + rng.int(maxTouches);
    const path = Array.from({ length: len }, pick);
    let L = baseline;
    for (const c of new Set(path)) L += hazards[c]!;
    (rng.uniform() < 1 - Math.exp(-L) ? conv : nonConv).push(path);
  }
  const channels = Array.from({ length: k }, (_, c) => `ch${String(c).padStart(2, '0')}`);
  return { js: packJourneys(channels, [...conv, ...nonConv], conv.length), hazards, baseline };
}
