import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The web app (web/, built by `npm run build` into dist/web): its hashed assets served from
 * memory under /assets/ (cached for a year: a new build has new names), and index.html
 * for every other GET of a page (Accept: text/html) that is not an API path (the app routes in
 * the browser), never cached. Other unknown paths stay route_not_found problems.
 */
export const WEB_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'web');

/** Paths the server answers itself; everything else that a browser GETs is the app. */
const SERVER_PATHS = /^\/(api|docs|openapi\.json|health|ready|metrics|problems)(\/|$|\?)/;

/**
 * Content-Security-Policy of the app: scripts only from Skeldir itself (no inline script, so an
 * injected string can never run), styles inline too (ECharts positions its tooltip with style
 * attributes), no framing (clickjacking), forms and requests only to Skeldir.
 */
export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY');
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/**
 * Every file of the build, read once at start-up (the whole app is ~1 MB): a rebuild of dist/web
 * under a running server (npm run build empties the folder first) neither breaks the pages it is
 * serving nor mixes two builds; the server keeps serving the build it started with until it
 * restarts. Subfolders are not used by the build and not read.
 */
function readAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(dir)) return assets;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const body = readFileSync(join(dir, entry.name));
    assets.set(entry.name, { body, type: TYPES[extname(entry.name)] ?? 'application/octet-stream', etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` });
  }
  return assets;
}

export async function registerWeb(app: FastifyInstance, root = WEB_ROOT): Promise<void> {
  const index = join(root, 'index.html');
  const html = existsSync(index) ? readFileSync(index) : null;
  const assets = html ? readAssets(join(root, 'assets')) : new Map<string, Asset>();
  if (html) {
    app.get<{ Params: { '*': string } }>('/assets/*', { schema: { hide: true } }, (request, reply) => {
      const asset = assets.get(request.params['*']);
      if (!asset) return reply.callNotFound();
      // Content-hashed names: a new build has new names, so an asset never changes under its name.
      reply.header('cache-control', 'public, max-age=31536000, immutable').header('etag', asset.etag).header('x-content-type-options', 'nosniff');
      if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
      return reply.type(asset.type).send(asset.body);
    });
  }
  app.decorate('webIndex', (request: FastifyRequest, reply: FastifyReply) => {
    securityHeaders(reply).header('cache-control', 'no-cache');
    if (!html) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send('The web app is not built: run `npm run build` (npm start does it for you).\n');
    }
    return reply.type('text/html; charset=utf-8').send(html);
  });
}

/** True when a request that matched no route is the browser asking for a page of the app. */
export function isAppPage(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return (
    (request.method === 'GET' || request.method === 'HEAD') && accept.includes('text/html') && !SERVER_PATHS.test(request.url) && !request.url.startsWith('/assets/')
  );
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Sends the app's index.html (or a 503 saying how to build it). */
    webIndex(request: FastifyRequest, reply: FastifyReply): FastifyReply;
  }
}
