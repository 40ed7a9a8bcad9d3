// The strict JSON body parser's fast check (passes) against its full walk (inspect): a body passes
// exactly when the walk finds nothing, so the fast path never lets through what inspect refuses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { HttpProblem } from './problems.js';
import { inspect, MAX_JSON_DEPTH, parseJsonBody, passes } from './json-body.js';

const walkPasses = (value: unknown): boolean => {
  try {
    inspect(value, 'body', 0);
    return true;
  } catch (error) {
    assert.ok(error instanceof HttpProblem);
    return false;
  }
};

// Strings that hit every rule: NUL, lone surrogates (both halves), a proper pair, the forbidden names.
const nasty = fc.constantFrom('\u0000', 'a\u0000b', '\ud800', 'x\udfff', '\ud83d\ude00', '__proto__', 'constructor', 'prototype', '~/', '');
const text = fc.oneof(fc.string({ unit: 'binary' }), nasty);
const json = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', maxDepth: MAX_JSON_DEPTH + 3 }, text, fc.integer(), fc.boolean(), fc.constant(null), tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.dictionary(text, tie('value'), { maxKeys: 4 }),
})).value;

test('passes() agrees with inspect() on any value, nested past the depth limit', () => {
  fc.assert(
    fc.property(json, (value) => passes(value, 0) === walkPasses(value)),
    { numRuns: 3000 },
  );
});

test('deep nesting, keys and strings: each refusal still names its place', () => {
  const deep = JSON.stringify(Array.from({ length: MAX_JSON_DEPTH + 1 }).reduce<unknown>((v) => [v], 1));
  assert.throws(() => parseJsonBody(Buffer.from(deep)), (e: HttpProblem) => e.code === 'too_deep' && e.field === `body${'/0'.repeat(MAX_JSON_DEPTH)}`);
  assert.throws(() => parseJsonBody(Buffer.from('{"a":{"b/c":"x\\u0000"}}')), (e: HttpProblem) => e.code === 'nul_character' && e.field === 'body/a/b~1c');
  assert.throws(() => parseJsonBody(Buffer.from('{"a":[1,"\\ud800"]}')), (e: HttpProblem) => e.code === 'invalid_unicode' && e.field === 'body/a/1');
  assert.throws(() => parseJsonBody(Buffer.from('{"a":{"x\\u0000":1}}')), (e: HttpProblem) => e.code === 'nul_character' && e.field === 'body/a');
  assert.deepEqual(parseJsonBody(Buffer.from('{"a":["\\ud83d\\ude00",{"b":null}]}')), { a: ['\u{1F600}', { b: null }] });
});
