#!/usr/bin/env node
// Builds the web app (web/) into dist/web with esbuild: one minified ES module bundle of the
// app (Preact, the pages, ECharts' used parts only), its CSS, and index.html naming the
// content-hashed files; ECharts is a chunk of its own, loaded with the first chart. esbuild runs on Node 20.15 (Vite 7 needs 20.19+) and is already in the
// tree through tsx. Prints the size of what a first visit loads (gzipped), which
// bench/web.bench.ts measures against the 250 KB goal.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';

const root = join(import.meta.dirname, '..');
const out = join(root, 'dist', 'web');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await build({
  entryPoints: [join(root, 'web', 'src', 'main.tsx'), join(root, 'web', 'src', 'styles.css')],
  bundle: true,
  minify: true,
  format: 'esm',
  splitting: true,
  chunkNames: 'chunk-[hash]',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'linked',
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((f) => /^main-.*\.js$/.test(f));
const css = outputs.find((f) => /^styles-.*\.css$/.test(f));
// What a first visit loads: the entry, the chunks it imports statically (preloaded), the CSS.
const byName = new Map(Object.entries(result.metafile.outputs).map(([p, o]) => [basename(p), o]));
const firstLoad = new Set([js]);
for (const f of firstLoad) for (const i of byName.get(f).imports) if (i.kind === 'import-statement') firstLoad.add(basename(i.path));
const preload = [...firstLoad].filter((f) => f !== js).map((f) => `<link rel="modulepreload" href="/assets/${f}" />`).join('\n    ');
const html = readFileSync(join(root, 'web', 'index.html'), 'utf8')
  .replace('%SCRIPT%', `/assets/${js}`)
  .replace('%STYLES%', `/assets/${css}`)
  .replace('%PRELOAD%', preload);
writeFileSync(join(out, 'first-load.json'), JSON.stringify({ js: [...firstLoad], css: [css] }));
writeFileSync(join(out, 'index.html'), html);
writeFileSync(join(out, 'meta.json'), JSON.stringify(result.metafile));
const gz = (f) => gzipSync(readFileSync(join(out, 'assets', f)), { level: 9 }).length;
const lazy = outputs.filter((f) => f.endsWith('.js') && !firstLoad.has(f));
const kib = (files) => (files.reduce((n, f) => n + gz(f), 0) / 1024).toFixed(1);
process.stdout.write(`web: first load ${kib([...firstLoad])} KiB of JavaScript + ${kib([css])} KiB of CSS gzipped; charts on demand ${kib(lazy)} KiB\n`);
