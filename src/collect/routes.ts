import rateLimit from '@fastify/rate-limit';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { withTenant } from '../db/tenant-context.js';
import { parseJsonBody } from '../http/json-body.js';
import { HttpProblem, type ProblemCode } from '../http/problems.js';
import { IngestCoalescer } from '../ingestion/coalescer.js';
import { ingestEvents } from '../ingestion/ingest.js';
import { linkIdentities } from '../identity/graph.js';
import { planCollect } from './collect.js';
import type { CollectCounter } from './counts.js';
import { originAllowed } from './keys.js';
import { PublishableKeyResolver, type ResolvedKey } from './publishable-keys.js';
import { COLLECT_BODY_LIMIT, CollectBody } from './schema.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The publishable key of a collect request (set by its onRequest hook). */
    collectKey: ResolvedKey | null;
  }
  interface FastifyInstance {
    /** Per-key collect counts, written every few seconds (src/http/routes.ts creates it). */
    collectCounter: CollectCounter;
  }
}

/** How long a browser may cache a preflight answer (Chromium caps it at 2 hours). */
const PREFLIGHT_MAX_AGE_S = 7200;
const COLLECT_PROBLEMS: ProblemCode[] = ['collect_event_too_old', 'timestamp_invalid'];

/**
 * POST /api/v1/collect (and its CORS preflight): the browser endpoint (docs/collect.md).
 *
 * Authentication, origin and limits are settled in onRequest, before the body is read: the
 * publishable key comes in the query string (`?key=pk_…`) because a preflight carries no body
 * and navigator.sendBeacon no headers; then the Origin must be one of the key's allowed origins
 * (no Origin, no entry: a publishable key is for browsers). CORS headers are answered by hand
 * rather than with @fastify/cors because the allowed origins depend on the key, known only after
 * it has been looked up, and a refused origin gets a 403 problem rather than a silent answer.
 * Bodies are JSON, sent as text/plain by the tracker (a CORS-safelisted type: no preflight,
 * and the only kind sendBeacon can send cross-origin) or as application/json.
 * The answer is 204 with no body: the endpoint reads nothing.
 */
export const collectRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const resolver = new PublishableKeyResolver(app.appPool);
  const counter = app.collectCounter;
  const coalescer = new IngestCoalescer((tenantId, events) => withTenant(app.appPool, tenantId, (client) => ingestEvents(client, tenantId, events)));

  app.addContentTypeParser('text/plain', { parseAs: 'buffer' }, (_req, raw: Buffer | string, done) => {
    try {
      done(null, parseJsonBody(Buffer.isBuffer(raw) ? raw : Buffer.from(raw)));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  const limits = app.skeldir.collectRateLimit;
  await app.register(rateLimit, { global: false, cache: 20_000 });
  const window = limits.timeWindowMs ?? 60_000;
  const byAddress = limits.perAddress > 0 ? app.createRateLimit({ max: limits.perAddress, timeWindow: window, keyGenerator: (r) => `a:${r.ip}` }) : null;
  const byKey = limits.perKey > 0 ? app.createRateLimit({ max: limits.perKey, timeWindow: window, keyGenerator: (r) => `k:${r.collectKey!.keyId}` }) : null;
  const refuseIfOver = async (check: typeof byAddress, request: FastifyRequest, reply: FastifyReply, what: string) => {
    if (!check) return;
    const r = await check(request);
    if (r.isAllowed || !r.isExceeded) return;
    reply.header('retry-after', String(r.ttlInSeconds));
    throw new HttpProblem('rate_limited', `more than ${r.max} collect requests a minute from ${what}; retry in ${r.ttlInSeconds} s`);
  };

  app.decorateRequest('collectKey', null);
  const admit = async (request: FastifyRequest, reply: FastifyReply) => {
    await refuseIfOver(byAddress, request, reply, 'this address');
    const key = (request.query as { key?: unknown }).key;
    const resolved = typeof key === 'string' ? await resolver.resolve(key) : null;
    if (!resolved) throw new HttpProblem('publishable_key_invalid', 'a valid publishable key is required in the query string: /api/v1/collect?key=pk_…', { field: 'query/key' });
    const origin = request.headers.origin;
    if (typeof origin !== 'string' || !originAllowed(origin, resolved.allowedOrigins)) {
      throw new HttpProblem(
        'origin_not_allowed',
        typeof origin === 'string'
          ? `origin ${JSON.stringify(origin.slice(0, 200))} is not allowed for this publishable key; add it to the key's allowed origins`
          : 'requests with a publishable key come from a browser page and carry an Origin header',
        { field: 'headers/origin' },
      );
    }
    // From here on the browser may read the answer (errors included).
    reply.header('access-control-allow-origin', origin).header('vary', 'Origin');
    request.collectKey = resolved;
    await refuseIfOver(byKey, request, reply, 'this publishable key');
  };

  const querystring = Type.Object({ key: Type.Optional(Type.String({ description: 'The publishable key (pk_…).' })) });

  app.options(
    '/api/v1/collect',
    {
      onRequest: admit,
      config: { browserRoute: true, problems: ['method_not_allowed'] },
      schema: { tags: ['collect'], summary: 'CORS preflight of the collect endpoint', querystring, response: { 204: Type.Null() } },
    },
    async (request, reply) => {
      const method = request.headers['access-control-request-method'];
      if (method !== undefined && method !== 'POST') throw new HttpProblem('method_not_allowed', 'the collect endpoint takes POST only');
      return reply
        .code(204)
        .header('access-control-allow-methods', 'POST')
        .header('access-control-allow-headers', 'content-type')
        .header('access-control-max-age', String(PREFLIGHT_MAX_AGE_S))
        .send(null);
    },
  );

  app.post(
    '/api/v1/collect',
    {
      onRequest: admit,
      bodyLimit: COLLECT_BODY_LIMIT,
      config: { browserRoute: true, problems: COLLECT_PROBLEMS },
      schema: {
        tags: ['collect'],
        summary: 'Browser events (touches and identifies) sent with a publishable key',
        description:
          'For the tracker (GET /sdk/v1/skeldir.js). The key goes in the query string; the Origin must be one of the key\'s allowed origins. ' +
          'Body: JSON as text/plain (navigator.sendBeacon) or application/json. 204 with no body: nothing is ever read back. ' +
          'Conversions and values cannot be sent here (they come from the server with the secret key, or from verified payments).',
        querystring,
        body: CollectBody,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const key = request.collectKey!;
      const now = Date.now();
      const plan = planCollect(
        key,
        request.body,
        {
          userAgent: header(request, 'user-agent'),
          mobileHint: header(request, 'sec-ch-ua-mobile'),
          brandHint: header(request, 'sec-ch-ua'),
          gpc: header(request, 'sec-gpc') === '1',
        },
        await app.channelRules.get(key.tenantId),
        now,
      );
      if (plan.bot) {
        counter.add(key.tenantId, key.keyId, 'bots', request.body.events.length);
        return reply.code(204).send(null);
      }
      // Touches are written like single events (grouped with the tenant's concurrent requests);
      // a resent event is found by its key and stored once.
      await Promise.all(plan.touches.map((t) => coalescer.submit(key.tenantId, t)));
      if (plan.identifies.length > 0) {
        await withTenant(app.appPool, key.tenantId, (client) => linkIdentities(client, key.tenantId, plan.identifies, { source: 'collect', keyId: key.keyId }));
      }
      counter.add(key.tenantId, key.keyId, 'touches', plan.touches.length);
      counter.add(key.tenantId, key.keyId, 'anonymous', plan.anonymousTouches);
      counter.add(key.tenantId, key.keyId, 'identifies', plan.identifies.length);
      return reply.code(204).send(null);
    },
  );
};

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}
