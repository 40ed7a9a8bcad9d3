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
import { canonicalJson, eventTexts, requestHash } from './prepare.js';
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
