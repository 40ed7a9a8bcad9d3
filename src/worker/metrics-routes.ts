import { timingSafeEqual, createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { HttpProblem } from '../http/problems.js';
import { queueStats } from './stats.js';

/**
 * GET /metrics in the Prometheus text format (src/metrics/metrics.ts): the process metrics,
 * request durations by route and status, ingestion and webhook outcomes, and the queue: depth,
 * age of the oldest pending event, processed/failed counters, dead events by status, live
 * workers. The database figures are aggregates over
 * all tenants only (no tenant id, no per-tenant label, no row), but even those let a tenant
 * infer the others' volumes by subtracting its own (SPEC §2), so the route is closed by default:
 * it needs `Authorization: Bearer $SKELDIR_METRICS_TOKEN`, unless SKELDIR_METRICS_PUBLIC=1 opens
 * it on purpose (a private network). Closed and unconfigured, it answers a 401 saying what to set.
 */
export const metricsRoutes: FastifyPluginAsync = async (app) => {
  const { metricsToken, metricsPublic } = app.skeldir.config;
  const expected = metricsToken ? digest(metricsToken) : undefined;
  app.get(
    '/metrics',
    {
      config: { problems: ['unauthorized', 'database_unavailable'] },
      schema: {
        security: metricsPublic ? [] : [{ metricsToken: [] }],
        tags: ['meta'],
        summary: 'Worker and queue metrics (Prometheus text format); aggregates over all tenants only',
        description:
          'Needs `Authorization: Bearer <SKELDIR_METRICS_TOKEN>`; public only when the server runs with SKELDIR_METRICS_PUBLIC=1. ' +
          'Without either it answers 401.',
        response: { 200: { description: 'The metrics in the Prometheus text format 0.0.4', content: { 'text/plain': { schema: Type.String() } } } },
      },
    },
    async (request, reply) => {
      if (!metricsPublic) {
        if (!expected) {
          throw new HttpProblem(
            'unauthorized',
            'GET /metrics is closed: set SKELDIR_METRICS_TOKEN on the server and send Authorization: Bearer <token>, ' +
              'or set SKELDIR_METRICS_PUBLIC=1 to make it public on purpose (e.g. behind a private network)',
          );
        }
        const header = request.headers.authorization;
        const given = typeof header === 'string' ? /^Bearer (\S+)$/.exec(header)?.[1] : undefined;
        if (!given || !timingSafeEqual(digest(given), expected)) {
          throw new HttpProblem('unauthorized', 'a valid metrics token is required: Authorization: Bearer <SKELDIR_METRICS_TOKEN>');
        }
      }
      app.metrics.setQueue(await queueStats(app.appPool));
      return reply.type(app.metrics.registry.contentType).send(await app.metrics.registry.metrics());
    },
  );
};

/** Compared as SHA-256 digests: equal length, constant time. */
function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
