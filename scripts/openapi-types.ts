// `npm run web:api`: writes web/src/api-schema.d.ts, the TypeScript types of every route of the
// OpenAPI document (openapi-typescript), which the web app's client (openapi-fetch) is typed by.
// src/testing/openapi-types.test.ts fails when the file is stale, so a route change shows in review.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateApiTypes } from '../src/testing/openapi-types.js';

const out = join(import.meta.dirname, '..', 'web', 'src', 'api-schema.d.ts');
writeFileSync(out, await generateApiTypes());
process.stdout.write(`wrote ${out}\n`);
