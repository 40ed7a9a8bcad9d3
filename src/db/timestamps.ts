/**
 * The instants a request may name and Skeldir can store and print: years 0001–9999 in UTC. A
 * syntactically valid RFC 3339 text can name a JS Date outside them (`0000-01-01T00:00:00Z`;
 * `9999-12-31T23:59:59-23:59` is year 10000 in UTC), which PostgreSQL's timestamptz refuses or
 * reads differently and toISOString() prints as `+010000-…`. Each domain turns a miss into its
 * own typed error.
 */
export const FIRST_INSTANT = Date.parse('0001-01-01T00:00:00.000Z');
export const LAST_INSTANT = Date.parse('9999-12-31T23:59:59.999Z');

/** True when `d` is a valid instant (not NaN) in years 0001–9999 UTC. */
export function inStorableYears(d: Date): boolean {
  const t = d.getTime();
  return t >= FIRST_INSTANT && t <= LAST_INSTANT;
}
