/**
 * The population a window's population models (markov, shapley, bayesian) are fitted on, in
 * typed arrays: journey j is the channel ids pathChannels[pathStart[j] .. pathStart[j+1]) in
 * time order, and converted[j] says whether it ended in a conversion. Channel ids index
 * `channels` (codes in sorted order). Converting journeys come first, one per conversion, in the
 * order of the conversions; the non-converting journeys follow.
 */
export interface JourneySet {
  readonly channels: readonly string[];
  readonly pathStart: Int32Array;
  readonly pathChannels: Int32Array;
  readonly converted: Uint8Array;
}

/** Packs paths of channel ids into a JourneySet; the first `converting` paths are the converting journeys. */
export function packJourneys(channels: readonly string[], paths: readonly (readonly number[])[], converting: number): JourneySet {
  const pathStart = new Int32Array(paths.length + 1);
  const pathChannels = new Int32Array(paths.reduce((a, p) => a + p.length, 0));
  let at = 0;
  paths.forEach((p, j) => {
    pathStart[j] = at;
    for (const c of p) pathChannels[at++] = c;
  });
  pathStart[paths.length] = at;
  const converted = new Uint8Array(paths.length);
  converted.fill(1, 0, converting);
  return { channels, pathStart, pathChannels, converted };
}

/** Builds a JourneySet from paths given as channel codes (tests, benchmarks). */
export function journeySetFrom(paths: ReadonlyArray<{ path: readonly string[]; converted: boolean }>): JourneySet {
  const channels = [...new Set(paths.flatMap((p) => p.path))].sort();
  const id = new Map(channels.map((c, i) => [c, i]));
  const total = paths.reduce((a, p) => a + p.path.length, 0);
  const pathStart = new Int32Array(paths.length + 1);
  const pathChannels = new Int32Array(total);
  const converted = new Uint8Array(paths.length);
  let at = 0;
  paths.forEach((p, j) => {
    pathStart[j] = at;
    for (const c of p.path) pathChannels[at++] = id.get(c)!;
    converted[j] = p.converted ? 1 : 0;
  });
  pathStart[paths.length] = at;
  return { channels, pathStart, pathChannels, converted };
}

/** Bit mask of the distinct channels of journey j (channel ids < 31). */
export function channelMask(js: JourneySet, j: number): number {
  let m = 0;
  for (let i = js.pathStart[j]!; i < js.pathStart[j + 1]!; i++) m |= 1 << js.pathChannels[i]!;
  return m >>> 0;
}

/** Channel ids of a mask, ascending. */
export function maskChannels(mask: number): number[] {
  const out: number[] = [];
  for (let c = 0; mask !== 0; c++, mask >>>= 1) if (mask & 1) out.push(c);
  return out;
}

/** Population models work on channel bit masks: at most this many distinct channels in one window. */
export const MAX_POPULATION_CHANNELS = 30;
