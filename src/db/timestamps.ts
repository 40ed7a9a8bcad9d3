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

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:\d{2}))?$/;

/**
 * Reads a `from`/`to` instant as requests and flags give it: an RFC 3339 date-time with its offset, or a date
 * (midnight UTC), in years 0001–9999. Syntactically valid date-times can also be no instant at all: the leap
 * second `23:59:60`, which JS cannot represent. Returns the Date, or the message of what is wrong (naming `field`),
 * which each domain throws as its own typed error.
 */
export function readInstant(field: string, text: string): Date | string {
  const m = DATE_TIME.exec(text);
  const t = m ? Date.parse(text.replace(/[t ]/, 'T').toUpperCase()) : NaN;
  const [y, mo, d, h, mi, sec] = (m ?? []).slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  const calendar = m !== null && mo! >= 1 && mo! <= 12 && d! >= 1 && d! <= new Date(Date.UTC(y!, mo!, 0)).getUTCDate() && h! <= 23 && mi! <= 59 && sec! <= 59;
  if (Number.isNaN(t) || !calendar) {
    return (
      `${field} must be an RFC 3339 date-time with an offset (or a date, UTC), e.g. 2026-11-01T00:00:00Z, got ${JSON.stringify(text)}` +
      (sec === 60 ? ' (leap seconds are not accepted: use 23:59:59.999)' : '')
    );
  }
  if (!inStorableYears(new Date(t))) return `${field} must be in years 0001–9999 (UTC), got ${JSON.stringify(text)}`;
  return new Date(t);
}
