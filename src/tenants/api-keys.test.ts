// The stored form of a key must not change with its implementation: keys issued before (hashed
// with createHash) must still be found.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { generateApiKey, hashApiKey } from './api-keys.js';

test('hashApiKey is the hex SHA-256 of the key as UTF-8, as createHash computed it', () => {
  const old = (key: string) => createHash('sha256').update(key, 'utf8').digest('hex');
  for (let i = 0; i < 50; i++) {
    const key = generateApiKey();
    assert.equal(hashApiKey(key), old(key));
  }
  fc.assert(fc.property(fc.string({ unit: 'grapheme' }), (s) => hashApiKey(s) === old(s)), { numRuns: 2000 });
});
