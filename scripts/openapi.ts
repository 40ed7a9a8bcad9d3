// `npm run openapi [-- FILE]`: writes the OpenAPI document (as GET /openapi.json serves it) to FILE
// (default openapi.json), for `npm run lint:openapi` (redocly lint) and other tools. Builds the app
// without a database (pools connect lazily).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { openApiDocument } from '../src/testing/openapi-types.js';

const out = process.argv[2] ?? 'openapi.json';
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(await openApiDocument(), null, 2) + '\n');
process.stderr.write(`wrote ${out}\n`);
