import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateApiTypes } from './openapi-types.js';
import { ROOT } from './cli.js';

test('web/src/api-schema.d.ts is generated from the current OpenAPI document (npm run web:api)', async () => {
  const committed = readFileSync(join(ROOT, 'web', 'src', 'api-schema.d.ts'), 'utf8');
  assert.ok(committed === (await generateApiTypes()), 'stale: run `npm run web:api` and commit web/src/api-schema.d.ts');
});
