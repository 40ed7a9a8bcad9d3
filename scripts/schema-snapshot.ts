// `npm run schema:snapshot`: migrates a fresh database to head and writes the normalised
// catalogue to schema/head.txt. The file is committed; a test fails when it is stale, so
// every schema change shows up in review as a diff of this file.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { asPostgres15, catalogueSnapshot } from '../src/db/catalogue.js';
import { createTestDatabase, stopTestServer, superClient } from '../src/testing/db.js';

const db = await createTestDatabase('head');
const client = await superClient(db);
try {
  const lines = asPostgres15(await catalogueSnapshot(client));
  const file = join(import.meta.dirname, '..', 'schema', 'head.txt');
  writeFileSync(file, `# Skeldir schema at head, normalised (npm run schema:snapshot). Do not edit by hand.\n${lines.join('\n')}\n`);
  console.log(`wrote ${file} (${lines.length} lines)`);
} finally {
  await client.end();
  await db.drop();
  await stopTestServer();
}
