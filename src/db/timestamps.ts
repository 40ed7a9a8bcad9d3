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
 * (midnight UTC), in years 0001–9999, to the microsecond (an Instant). Syntactically valid date-times can also be no instant at all: the leap
 * second `23:59:60`, which JS cannot represent. Returns the Instant, or the message of what is wrong (naming `field`),
 * which each domain throws as its own typed error.
 */
export function readInstant(field: string, text: string): Instant | string {
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
  return withFraction(new Date(t), text);
}

/**
 * An instant to the microsecond. PostgreSQL's timestamptz holds microseconds; a JS Date holds
 * milliseconds, so a Date read from the database loses the last three digits and printing it
 * (toISOString) gives a time that does not find its own row again. `micros` keeps them: 0–999
 * microseconds past the Date's millisecond. toISOString() stays the standard 3-digit form (code
 * compares those strings); every response, CLI --json output and export prints formatInstant().
 */
export class Instant extends Date {
  readonly micros: number;
  constructor(ms: number, micros = 0) {
    super(ms);
    this.micros = micros;
  }
  override toJSON(): string {
    return Number.isNaN(this.getTime()) ? super.toJSON() : formatInstant(this);
  }
}

/**
 * The one way Skeldir prints an instant (HTTP responses, CLI --json, exports): RFC 3339 in UTC
 * with exactly six fractional digits, `2026-11-01T09:30:00.123456Z`, which is what timestamptz
 * holds, so a printed time given back as `from`/`to` means exactly that row's time. A plain Date
 * prints its milliseconds followed by 000.
 */
export function formatInstant(d: Date): string {
  const iso = Date.prototype.toISOString.call(d);
  const micros = d instanceof Instant ? d.micros : 0;
  return `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}

/** formatInstant of a value that may be absent. */
export function formatInstantOrNull(d: Date | null | undefined): string | null {
  return d === null || d === undefined ? null : formatInstant(d);
}

/** The fraction of a seconds field, up to nine digits: the first three are milliseconds, the next three microseconds. */
const SECONDS_FRACTION = /:\d{2}\.(\d{1,9})/;

/** Sets `d`'s millisecond and microsecond parts from the fraction written in `text` (later digits are dropped). */
function withFraction(d: Date, text: string): Instant {
  const digits = (SECONDS_FRACTION.exec(text)?.[1] ?? '').padEnd(6, '0');
  const t = d.getTime();
  if (Number.isNaN(t)) return new Instant(t);
  return new Instant(t - d.getUTCMilliseconds() + Number(digits.slice(0, 3)), Number(digits.slice(3, 6)));
}

/**
 * pg's parser of timestamptz (OID 1184) text, `2026-11-01 09:30:00.123456+00`: the Date that pg's
 * own parser reads (it truncates to milliseconds, through a float), as an Instant with the exact
 * milliseconds and microseconds of the text. ±infinity stay what pg returns (±Infinity).
 */
export function timestamptzParser(base: (text: string) => unknown): (text: string) => unknown {
  return (text) => {
    const parsed = base(text);
    return parsed instanceof Date ? withFraction(parsed, text) : parsed;
  };
}

/** An RFC 3339 text the request schema already checked (`format: date-time`), as an Instant to the microsecond. */
export function instantOf(text: string): Instant {
  return withFraction(new Date(text), text);
}

/**
 * A JSON.stringify replacer for CLI --json output: every Date as formatInstant, including plain
 * Dates made in JS, whose own toJSON prints milliseconds.
 */
export function instantsReplacer(this: unknown, key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown>)[key];
  return raw instanceof Date && !Number.isNaN(raw.getTime()) ? formatInstant(raw) : value;
}

/** Negative, zero or positive as `a` is before, at or after `b`, to the microsecond. */
export function compareInstants(a: Date, b: Date): number {
  return a.getTime() - b.getTime() || (a instanceof Instant ? a.micros : 0) - (b instanceof Instant ? b.micros : 0);
}

/** What formatInstant prints, for the tests that check every printed instant. */
export const INSTANT_TEXT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

const DAY_MS = 86_400_000;

/**
 * The UTC days that start in [from, to), as the first and last YYYY-MM-DD, or null when none does: what a report
 * over the period reads of data kept per whole day (retention's daily aggregates), which counts a day only if the
 * period holds its start.
 */
export function utcDaysStartingIn(from: Date, to: Date): [string, string] | null {
  const first = Math.ceil(from.getTime() / DAY_MS);
  const last = Math.floor((to.getTime() - 1) / DAY_MS);
  const iso = (n: number) => new Date(n * DAY_MS).toISOString().slice(0, 10);
  return first > last ? null : [iso(first), iso(last)];
}
