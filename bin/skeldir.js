#!/usr/bin/env node
// The installed command. It runs the compiled CLI in dist/ (built by `npm ci` through the
// `prepare` script, and again before `npm start` / `npm test`). SKELDIR_FROM_SOURCE=1 runs
// the TypeScript sources through tsx instead, for development without a rebuild.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist', 'cli', 'main.js');

if (process.env.SKELDIR_FROM_SOURCE === '1' || !existsSync(compiled)) {
  if (!existsSync(join(root, 'node_modules', 'tsx'))) {
    process.stderr.write('skeldir: dist/ is missing and tsx is not installed; run `npm ci` (or `npm run build`) first\n');
    process.exit(2);
  }
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(join(root, 'src', 'cli', 'main.ts')).href);
} else {
  await import(pathToFileURL(compiled).href);
}
