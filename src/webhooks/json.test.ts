import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MAX_WEBHOOK_JSON_DEPTH, parseWebhookJson, storableJson } from './json.js';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
const parse = (text: string) => parseWebhookJson(Buffer.from(text));

// JSON.stringify writes an integral double below 1e21 as plain digits: those beyond 2^53 come back as strings.
const unsafeAsString = (_k: string, v: unknown) => (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v) && Math.abs(v) < 1e21 ? String(v) : v);

test(`any JSON document nested at most ${MAX_WEBHOOK_JSON_DEPTH} deep parses as JSON.parse would, unsafe integers as strings (fast-check seed ${seed})`, () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), fc.boolean(), (value, pretty) => {
      const text = JSON.stringify(value, null, pretty ? 2 : undefined);
      assert.deepEqual(parse(text), JSON.parse(text, unsafeAsString));
    }),
    { seed, numRuns: 300 },
  );
});

test(`integers beyond 2^53 keep every digit (as strings); keys, decimals and safe integers are untouched (fast-check seed ${seed})`, () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 2n ** 53n, max: 10n ** 30n }), fc.boolean(), (n, negative) => {
      const literal = `${negative ? '-' : ''}${n}`;
      const doc = parse(`{"id": ${literal}, "list": [${literal} , 1.5e3, 42, "${literal}"], "${literal}": -7, "nested": {"12": ${literal}}}`);
      assert.deepEqual(doc, { id: literal, list: [literal, 1500, 42, literal], [literal]: -7, nested: { 12: literal } });
    }),
    { seed, numRuns: 200 },
  );
  assert.deepEqual(parse('{"order_id":820982911946154508,"amount":1e400,"ok":9007199254740991}'), { order_id: '820982911946154508', amount: Infinity, ok: 9007199254740991 });
  assert.deepEqual(parse('["a\\"12345678901234567890", 12345678901234567890]'), ['a"12345678901234567890', '12345678901234567890'], 'digits inside strings are left alone');
});

test('depth cap, bad bytes and non-JSON are typed errors; nothing else is checked', () => {
  const nested = (n: number) => '['.repeat(n) + ']'.repeat(n);
  assert.equal((parse(nested(MAX_WEBHOOK_JSON_DEPTH)) as unknown[]).length, 1);
  assert.throws(() => parse(nested(MAX_WEBHOOK_JSON_DEPTH + 1)), { code: 'too_deep' });
  assert.throws(() => parse(nested(500_000)), { code: 'too_deep' }, 'a pathological body is refused before JSON.parse');
  assert.throws(() => parseWebhookJson(Buffer.from([0x7b, 0xff, 0x7d])), { code: 'invalid_utf8' });
  assert.throws(() => parse('  '), { code: 'empty_body' });
  assert.throws(() => parse('{"a": }'), { code: 'malformed_json' });
  assert.throws(() => parse('{12345678901234567890: 1}'), { code: 'malformed_json' }, 'an unquoted key stays invalid');
  assert.deepEqual(parse('{"__proto__": {"x": 1}, "k\\u0000": "v\\u0000"}'), JSON.parse('{"__proto__": {"x": 1}, "k\\u0000": "v\\u0000"}'));
});

test('storable form: objects as they are, other bodies wrapped, NUL anywhere or non-JSON as base64 bytes', () => {
  const b = (s: string) => Buffer.from(s);
  assert.deepEqual(storableJson({ a: 1 }, b('{"a":1}')), { a: 1 });
  assert.deepEqual(storableJson(null, b('null')), { raw: null });
  assert.deepEqual(storableJson([1], b('[1]')), { raw: [1] });
  assert.deepEqual(storableJson({ a: 'x\u0000' }, b('{"a":"x\\u0000"}')), { raw_base64: b('{"a":"x\\u0000"}').toString('base64') });
  assert.deepEqual(storableJson(undefined, b('{')), { raw_base64: b('{').toString('base64') });
});

test('lone UTF-16 surrogates: replaced by U+FFFD in values (pairs kept), a key holding one is invalid_unicode', () => {
  assert.deepEqual(parse('{"a":"x\\ud800y","b":["\\udfff"],"c":"\\ud83d\\ude00"}'), { a: 'x\uFFFDy', b: ['\uFFFD'], c: '\u{1F600}' });
  assert.throws(() => parse('{"k\\udc00":1}'), { code: 'invalid_unicode' });
});
