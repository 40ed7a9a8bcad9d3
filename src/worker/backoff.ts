/**
 * Delay before the next attempt after `failedAttempts` failed ones (≥ 1): exponential backoff
 * with "equal jitter". The ceiling doubles per failure (base, 2·base, 4·base, … capped at
 * `maxMs`); the delay is half the ceiling plus a random part of up to the other half. Jitter
 * spreads retries of events that failed together (e.g. during an outage) instead of bringing
 * them back in one wave; keeping half of it fixed makes the delays grow: until the cap, every
 * delay is at least the previous ceiling, hence at least the previous delay.
 */
export function retryDelayMs(failedAttempts: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = retryCeilingMs(failedAttempts, baseMs, maxMs);
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
}

/** The upper bound of retryDelayMs for that many failed attempts. */
export function retryCeilingMs(failedAttempts: number, baseMs: number, maxMs: number): number {
  if (!Number.isInteger(failedAttempts) || failedAttempts < 1) throw new RangeError(`failedAttempts must be a positive integer, got ${failedAttempts}`);
  // 2 ** n is Infinity for large n; min() keeps the cap.
  return Math.min(maxMs, baseMs * 2 ** (failedAttempts - 1));
}
