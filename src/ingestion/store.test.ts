/**
 * The insert's parameters (columnLiterals). Issue 17 sent the raw payloads as one JSON array
 * instead of a text[] literal whose every `"` was escaped: the other columns must stay exactly
 * the literals they were, and the array must hold each event's raw JSON text, in the same order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parse as parseArray } from 'postgres-array';
import type { PreparedEvent } from './prepare.js';
import { columnLiterals } from './store.js';

/** columnLiterals as it was before the raw payloads became one JSON array (commit 2468e89). */
function earlierLiterals(events: readonly PreparedEvent[]) {
  const NEEDS_ESCAPE = /["\\]/;
  const ESCAPED = /["\\]/g;
  const element = (v: string | null): string => (v === null ? 'NULL' : NEEDS_ESCAPE.test(v) ? `"${v.replace(ESCAPED, '\\$&')}"` : `"${v}"`);
  let k = '', t = '', ts = '', s = '', usr = '', ch = '', cmp = '', v = '', cur = '', o = '', raw = '', h = '', anon = '';
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    const sep = i === 0 ? '' : ',';
    k += sep + element(e.scopedKey);
    t += sep + element(e.eventType);
    ts += `${sep}"${e.timestamp}"`;
    s += `${sep}"${e.sessionId}"`;
    usr += sep + element(e.userId);
    ch += sep + element(e.channel);
    cmp += sep + element(e.campaignId);
    v += sep + (e.valueCents === null ? 'NULL' : String(e.valueCents));
    cur += sep + element(e.currency);
    o += sep + element(e.orderId);
    raw += sep + element(e.raw);
    h += `${sep}"${e.requestHash}"`;
    anon += sep + element(e.anonymousId);
  }
  const a = (x: string) => `{${x}}`;
  return { k: a(k), t: a(t), ts: a(ts), s: a(s), usr: a(usr), ch: a(ch), cmp: a(cmp), v: a(v), cur: a(cur), o: a(o), raw: a(raw), h: a(h), anon: a(anon) };
}

const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.constantFrom('a"b', 'back\\slash', '{x,y}', 'NULL', ' ', '', '😀'));
const maybe = fc.option(text, { nil: null });
/** A prepared event; raw is the JSON text of an object, as eventTexts writes it (any JSON value inside). */
const prepared: fc.Arbitrary<PreparedEvent> = fc.record({
  clientKey: text,
  keyField: fc.constant('body/idempotency_key'),
  scopedKey: text,
  eventType: fc.constantFrom('touchpoint' as const, 'conversion' as const),
  timestamp: fc.constantFrom('2026-01-01T00:00:00Z', '2026-03-01T12:00:00.123456+01:00'),
  instant: fc.constantFrom('2026-01-01T00:00:00.000000Z'),
  sessionId: fc.uuid(),
  anonymousId: maybe,
  userId: maybe,
  channel: text,
  campaignId: maybe,
  valueCents: fc.option(fc.integer({ min: 0, max: 2_147_483_647 }), { nil: null }),
  currency: text,
  orderId: maybe,
  raw: fc.dictionary(fc.string(), fc.jsonValue()).map((o) => JSON.stringify(o)),
  requestHash: fc.stringMatching(/^[0-9a-f]{64}$/),
});

test('columnLiterals: every column as before; the raw payloads one JSON array of the same texts, in order', () => {
  fc.assert(
    fc.property(fc.array(prepared, { minLength: 1, maxLength: 20 }), (events) => {
      const now = columnLiterals(events);
      const before = earlierLiterals(events);
      const { raw: rawNow, ...restNow } = now;
      const { raw: rawBefore, ...restBefore } = before;
      assert.deepEqual(restNow, restBefore);
      const texts = parseArray(rawBefore, (x) => x);
      assert.deepEqual(texts, events.map((e) => e.raw));
      // The same JSON values (jsonb keeps values, not text): element by element.
      assert.deepEqual(JSON.parse(rawNow), texts.map((t) => JSON.parse(t as string)));
    }),
    { numRuns: 3000 },
  );
});
