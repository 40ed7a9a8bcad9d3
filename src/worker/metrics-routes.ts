import { timingSafeEqual, createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { HttpProblem } from '../http/problems.js';
import { PROMETHEUS_CONTENT_TYPE, queueStats, renderPrometheus } from './stats.js';

/**
 * GET /metrics in the Prometheus text format: queue depth, age of the oldest pending event,
 * processed/failed counters and rates, dead events by status, live workers. Aggregates over
 * all tenants only: no tenant id, no per-tenant label, no row, so it may be scraped without an
 * API key. Set SKELDIR_METRICS_TOKEN to require `Authorization: Bearer <token>` as well (e.g.
 * when the API is reachable from the internet and even platform-wide volumes are private).
 */
export const metricsRoutes: FastifyPluginAsync = async (app) => {
  const token = process.env.SKELDIR_METRICS_TOKEN || undefined;
  const expected = token ? digest(token) : undefined;
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['meta'],
        summary: 'Worker and queue metrics (Prometheus text format); aggregates over all tenants only',
        response: { 200: Type.String() },
      },
    },
    async (request, reply) => {
      if (expected) {
        const header = request.headers.authorization;
        const given = typeof header === 'string' ? /^Bearer (\S+)$/.exec(header)?.[1] : undefined;
        if (!given || !timingSafeEqual(digest(given), expected)) {
          throw new HttpProblem('unauthorized', 'a valid metrics token is required: Authorization: Bearer <SKELDIR_METRICS_TOKEN>');
        }
      }
      const stats = await queueStats(app.appPool);
      return reply.type(PROMETHEUS_CONTENT_TYPE).send(renderPrometheus(stats));
    },
  );
};

/** Compared as SHA-256 digests: equal length, constant time. */
function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
