import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The web app (web/, built by `npm run build` into dist/web): its hashed assets served by
 * @fastify/static under /assets/ (cached for a year: a new build has new names), and index.html
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

export async function registerWeb(app: FastifyInstance, root = WEB_ROOT): Promise<void> {
  const index = join(root, 'index.html');
  const built = existsSync(index);
  if (built) {
    await app.register(fastifyStatic, {
      root: join(root, 'assets'),
      prefix: '/assets/',
      immutable: true,
      maxAge: '365d',
      index: false,
    });
  }
  const html = built ? readFileSync(index) : null;
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
