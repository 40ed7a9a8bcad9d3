/**
 * The per-event texts of ingestion (issue 17 made them faster): the request hash must stay
 * SHA-256 of canonicalJson(event without its key), since it is compared with hashes stored by
 * earlier versions (a replay must still be told from a reused key), and raw_payload must be the
 * event's JSON value.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatInstant, instantOf } from '../db/timestamps.js';
import { canonicalJson, eventTexts, instantText, IngestionError, MAX_FUTURE_MS, MIN_TIMESTAMP_MS, parseTimestamp, prepareEvent, requestHash } from './prepare.js';
import { defaultRuleSet } from '../channels/classify.js';
import { EventInput } from './schema.js';

const reference = (input: object) => {
  const { idempotency_key: _key, ...rest } = input as Record<string, unknown>;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex');
};

const FIELDS = Object.keys(EventInput.properties);
const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.constantFrom('a"b', 'back\\slash', '\u2028', 'é', '😀', ''));
const value = fc.oneof(text, fc.integer({ min: 0, max: 2_147_483_647 }));
/** A flat event of schema fields in any order, any subset. */
const flatEvent = fc
  .uniqueArray(fc.constantFrom(...FIELDS), { maxLength: FIELDS.length })
  .chain((keys) => fc.tuple(...keys.map((k) => (k === 'idempotency_key' ? text : value))).map((vs) => Object.fromEntries(keys.map((k, i) => [k, vs[i]]))));

describe('eventTexts', () => {
  test('the hash is SHA-256 of canonicalJson without the key, and raw is the event, for flat events in any key order', () => {
    fc.assert(
      fc.property(flatEvent, (e) => {
        const texts = eventTexts(e as EventInput);
        assert.equal(texts.hashed, reference(e));
        assert.equal(requestHash(e as EventInput), reference(e));
        assert.deepEqual(JSON.parse(texts.raw), e);
      }),
      { numRuns: 3000 },
    );
  });

  test('fields outside the schema, nested values and undefined fields take the general path with the same result', () => {
    const odd = fc.tuple(flatEvent, fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }), fc.constantFrom(...FIELDS)).map(([e, extra, nested]) => ({
      ...e,
      ...extra,
      [nested]: { b: [1, 'x'], a: null },
      utm_term: undefined,
    }));
    fc.assert(
      fc.property(odd, (e) => {
        const texts = eventTexts(e as unknown as EventInput);
        assert.equal(texts.hashed, reference(e));
        assert.deepEqual(JSON.parse(texts.raw), JSON.parse(JSON.stringify(e)));
      }),
      { numRuns: 1000 },
    );
  });

  test('the key does not count, key order does not count, any other field does', () => {
    const a = { idempotency_key: 'k1', event_type: 'touchpoint', session_id: 's', event_timestamp: '2026-01-01T00:00:00Z' };
    const b = { event_timestamp: '2026-01-01T00:00:00Z', session_id: 's', event_type: 'touchpoint', idempotency_key: 'k2' };
    assert.equal(requestHash(a as EventInput), requestHash(b as EventInput));
    assert.notEqual(requestHash(a as EventInput), requestHash({ ...a, user_id: 'u' } as EventInput));
    assert.equal(eventTexts({} as EventInput).raw, '{}');
    assert.equal(eventTexts({ idempotency_key: 'k' } as EventInput).raw, '{"idempotency_key":"k"}');
  });
});

describe('parseTimestamp', () => {
  // The version before issue 17's fast path, kept as the reference, with the one thing it got wrong
  // put right: it read February's length from Date.UTC(year, 2, 0), which maps years 0-99 to
  // 1900-1999, so year 0 (a leap year, as Date itself holds) lost its 29 February.
  const PATTERN = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;
  const earlier = (text: string): number | null => {
    const m = PATTERN.exec(text);
    if (!m) return null;
    const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
    const lastDay = new Date(0);
    lastDay.setUTCFullYear(year, month, 0);
    const daysInMonth = lastDay.getUTCDate();
    if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) return null;
    let offset = 0;
    if (m[8]) {
      const oh = Number(m[9]);
      const om = Number(m[10]);
      if (oh > 15 || om > 59) return null;
      offset = (m[8] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
    }
    const fraction = m[7] ? Math.floor(Number(m[7]) * 1000) : 0;
    const utc = new Date(0);
    utc.setUTCFullYear(year, month - 1, day);
    utc.setUTCHours(hour, minute, second, fraction);
    return utc.getTime() - offset;
  };
  const digits = (n: number, max: number) => fc.integer({ min: 0, max }).map((v) => String(v).padStart(n, '0'));
  const stamp = fc
    .tuple(
      fc.oneof(digits(4, 9999), fc.constantFrom('0000', '0099', '0100', '1900', '2000', '2024', '2100', '2400')),
      digits(2, 14),
      digits(2, 32),
      fc.constantFrom('T', 't', ' '),
      digits(2, 25),
      digits(2, 61),
      digits(2, 61),
      fc.oneof(fc.constant(''), fc.stringMatching(/^\.\d{1,7}$/)),
      fc.oneof(fc.constantFrom('Z', 'z', ''), fc.tuple(fc.constantFrom('+', '-'), digits(2, 17), digits(2, 61)).map(([s, h, m]) => `${s}${h}:${m}`)),
    )
    .map(([y, mo, d, t, h, mi, s, f, z]) => `${y}-${mo}-${d}${t}${h}:${mi}:${s}${f}${z}`);

  test('agrees with the earlier version on any timestamp-shaped text, real or not', () => {
    fc.assert(fc.property(fc.oneof(stamp, fc.string()), (text) => Object.is(parseTimestamp(text), earlier(text))), { numRuns: 20000 });
  });

  test('leap days, the ends of months and years before 100', () => {
    for (const text of ['2024-02-29T00:00:00Z', '2023-02-29T00:00:00Z', '1900-02-29T00:00:00Z', '2000-02-29T00:00:00Z', '2026-04-31T00:00:00Z', '2026-12-31T23:59:59.999999-15:59', '0050-06-15T00:00:00Z', '0000-01-01T00:00:00+01:00']) {
      assert.equal(parseTimestamp(text), earlier(text), text);
    }
    assert.equal(parseTimestamp('0050-06-15T00:00:00Z'), new Date('0050-06-15T00:00:00Z').getTime());
    assert.equal(parseTimestamp('0000-02-29T00:00:00Z'), new Date('0000-02-29T00:00:00Z').getTime());
  });
});

describe('instantText', () => {
  const digits = (n: number, min: number, max: number) => fc.integer({ min, max }).map((v) => String(v).padStart(n, '0'));
  /** What prepareEvent accepts: real dates from 2000 to a day ahead, any offset PostgreSQL takes, 0-6 fractional digits, either case. */
  const shaped = fc
    .tuple(
      digits(4, 1999, 2027),
      digits(2, 1, 12),
      digits(2, 1, 31),
      fc.constantFrom('T', 't'),
      digits(2, 0, 23),
      digits(2, 0, 59),
      digits(2, 0, 59),
      fc.oneof(fc.constant(''), fc.stringMatching(/^\.\d{1,6}$/), fc.constantFrom('.57', '.29', '.999999', '.000001', '.1')),
      fc.oneof(fc.constantFrom('Z', 'z'), fc.tuple(fc.constantFrom('+', '-'), digits(2, 0, 15), digits(2, 0, 59)).map(([s, h, m]) => `${s}${h}:${m}`)),
    )
    .map(([y, mo, d, t, h, mi, s, f, z]) => `${y}-${mo}-${d}${t}${h}:${mi}:${s}${f}${z}`);
  const accepted = shaped.filter((text) => {
      const at = parseTimestamp(text);
      return at !== null && at >= MIN_TIMESTAMP_MS && at <= Date.now() + MAX_FUTURE_MS;
    });

  test('prints what formatInstant prints of the instant read from the text (what the insert used to read back)', () => {
    fc.assert(
      fc.property(accepted, (text) => {
        const expected = formatInstant(instantOf(text.toUpperCase()));
        assert.equal(instantText(text.toUpperCase()), expected, text);
        assert.equal(instantText(text), expected, text);
      }),
      { numRuns: 20000 },
    );
  });

  test("prepareEvent's instant is instantText of its timestamp, and it accepts exactly what parseTimestamp reads in range", () => {
    const rules = defaultRuleSet(['email', 'unknown']);
    const now = Date.now();
    fc.assert(
      fc.property(fc.oneof(accepted, shaped, fc.string()), (text) => {
        const input = { idempotency_key: 'k', event_type: 'touchpoint', event_timestamp: text, session_id: 's-1', channel: 'email' } as EventInput;
        const at = parseTimestamp(text);
        if (at === null || at < MIN_TIMESTAMP_MS || at > now + MAX_FUTURE_MS) {
          assert.throws(() => prepareEvent('t', input, { pointer: 'body', rules, now }), (e: IngestionError) => e.code === (at === null ? 'timestamp_invalid' : 'timestamp_out_of_range'));
        } else {
          assert.equal(prepareEvent('t', input, { pointer: 'body', rules, now }).instant, instantText(text), text);
        }
      }),
      { numRuns: 20000 },
    );
  });

  test('fractions that a float would misread, offsets across midnight and the year', () => {
    assert.equal(instantText('2026-03-01T12:00:00.57Z'), '2026-03-01T12:00:00.570000Z');
    assert.equal(instantText('2026-03-01T12:00:00.123456+01:00'), '2026-03-01T11:00:00.123456Z');
    assert.equal(instantText('2026-01-01T00:30:00.000001+15:59'), '2025-12-31T08:31:00.000001Z');
    assert.equal(instantText('2025-12-31T23:59:59.999999-15:59'), '2026-01-01T15:58:59.999999Z');
    assert.throws(() => instantText('yesterday'), RangeError);
  });
});
