import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The tracker, served from src/collect/sdk/skeldir.js (read from the checkout: both src/collect
 * and dist/collect sit two levels below the package root). One source, two wrappers:
 * - /sdk/v1/skeldir.js, a classic script: installs window.skeldir and runs the commands the
 *   snippet's stub queued before it loaded;
 * - /sdk/v1/skeldir.mjs, an ES module: `import skeldir from '…/sdk/v1/skeldir.mjs'` (it also
 *   takes over a stub queue, so both ways can be mixed).
 * Comment lines and indentation are left out of what is served (the source stays readable).
 */
const SOURCE_URL = new URL('../../src/collect/sdk/skeldir.js', import.meta.url);

export function trackerSource(): string {
  return readFileSync(SOURCE_URL, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('//'))
    .join('\n');
}

export function classicScript(core = trackerSource()): string {
  return `/* Skeldir tracker v1 (docs/collect.md) */
(function (w) {
if (w.skeldir && w.skeldir.version) return;
${core}
var stub = w.skeldir, t = createTracker(w, (document.currentScript || {}).src), q = (stub && stub.q) || [];
w.skeldir = t;
for (var i = 0; i < q.length; i++) t.apply(null, q[i]);
})(window);
`;
}

export function moduleScript(core = trackerSource()): string {
  return `/* Skeldir tracker v1 (docs/collect.md) */
${core}
const w = window;
const stub = w.skeldir;
const ready = stub && stub.version ? stub : null;
export const skeldir = ready || createTracker(w, import.meta.url);
if (!ready) {
  w.skeldir = skeldir;
  for (const args of (stub && stub.q) || []) skeldir(...args);
}
export default skeldir;
`;
}

interface Asset {
  body: string;
  gzip: Buffer;
  etag: string;
}

function asset(body: string): Asset {
  return { body, gzip: gzipSync(body, { level: 9 }), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/** GET /sdk/v1/skeldir.js and /sdk/v1/skeldir.mjs: public, cacheable for an hour, gzip when asked for. */
export const sdkRoutes: FastifyPluginAsync = async (app) => {
  const core = trackerSource();
  const classic = asset(classicScript(core));
  const module = asset(moduleScript(core));
  const serve = (a: Asset) => async (request: FastifyRequest, reply: FastifyReply) => {
    reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .header('etag', a.etag)
      .header('vary', 'Accept-Encoding')
      // A module imported from the site's own origin is a cross-origin fetch: anyone may load it.
      .header('access-control-allow-origin', '*')
      .header('x-content-type-options', 'nosniff');
    if (request.headers['if-none-match'] === a.etag) return reply.code(304).send();
    if (/\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''))) return reply.header('content-encoding', 'gzip').send(a.gzip);
    return reply.send(a.body);
  };
  const schema = {
    tags: ['collect'],
    summary: 'The browser tracker',
    response: {
      200: { description: 'The tracker script (gzip when asked for)', content: { 'text/javascript': { schema: { type: 'string' } } } },
      304: { description: 'Not modified: If-None-Match matched the ETag', type: 'null' },
    },
  };
  app.get('/sdk/v1/skeldir.js', { schema: { ...schema, summary: 'The browser tracker (classic script: window.skeldir)' } }, serve(classic));
  app.get('/sdk/v1/skeldir.mjs', { schema: { ...schema, summary: 'The browser tracker as an ES module (export default skeldir)' } }, serve(module));
};

/** Sizes of what is served, for the benchmark and the size test. */
export function trackerSizes(): { classic: number; classicGzip: number; module: number; moduleGzip: number } {
  const core = trackerSource();
  const c = asset(classicScript(core));
  const m = asset(moduleScript(core));
  return { classic: Buffer.byteLength(c.body), classicGzip: c.gzip.length, module: Buffer.byteLength(m.body), moduleGzip: m.gzip.length };
}
