import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { readSettings } from '../attribution/settings.js';
import { tenantHealth } from './health.js';
import { conversionPaths, MAX_PATHS } from './paths.js';
import { formatInstant, instantOf } from '../db/timestamps.js';
import { PATHS_PRUNED, PrunedSchema, prunedPeriod } from '../retention/aggregates.js';

const PathsQuery = Type.Object(
  {
    from: Type.String({ format: 'date-time', description: 'Start of the period of conversion times (inclusive)' }),
    to: Type.String({ format: 'date-time', description: 'End of the period (exclusive)' }),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PATHS, default: 20 })),
  },
  { additionalProperties: false },
);

/** GET /api/v1/reports/paths and GET /api/v1/worker/health: what the web app's pages need beyond the other reports. */
export const reportRoutes: FastifyPluginAsync = async (app) => {
  app.get<{ Querystring: Static<typeof PathsQuery> }>(
    '/reports/paths',
    {
      schema: {
        tags: ['reports'],
        summary: "The most common conversion paths (the session's touchpoint channels in order, within the lookback window) with conversions and value",
        security: [{ apiKey: [] }],
        querystring: PathsQuery,
        response: {
          200: Type.Object(
            {
              from: Type.String(),
              to: Type.String(),
              lookback_days: Type.Integer(),
              paths: Type.Array(
                Type.Object(
                  {
                    path: Type.Array(Type.String(), { description: 'channel codes in touch order; empty: no touchpoint before the conversion' }),
                    currency: Type.String(),
                    conversions: Type.Integer(),
                    revenue_cents: Type.Integer({ description: 'sum of the conversions\' values, minor units of currency' }),
                  },
                  { additionalProperties: false },
                ),
              ),
              pruned: PrunedSchema('Days of the period whose events retention removed: their conversions are not in these paths, and the note says why (null: none)'),
            },
            { additionalProperties: false },
          ),
        },
      },
      config: { problems: ['report_window_invalid'] },
    },
    async (request) => {
      const from = instantOf(request.query.from);
      const to = instantOf(request.query.to);
      return request.inTenant(async (client) => {
        const settings = await readSettings(client, request.tenantId);
        const paths = await conversionPaths(client, request.tenantId, from, to, request.query.limit ?? 20, settings.lookbackDays);
        const pruned = await prunedPeriod(client, request.tenantId, from, to, PATHS_PRUNED);
        return { from: formatInstant(from), to: formatInstant(to), lookback_days: settings.lookbackDays, paths, pruned };
      });
    },
  );

  app.get(
    '/worker/health',
    {
      schema: {
        tags: ['dead events'],
        summary: "The worker's health for this tenant: its queue depth, oldest pending event, dead-letter rate, and workers alive",
        security: [{ apiKey: [] }],
        response: {
          200: Type.Object(
            {
              pending: Type.Integer(),
              retrying: Type.Integer(),
              oldest_pending_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'arrival of the oldest pending event; its age is now minus this' }),
              dead: Type.Object({ pending: Type.Integer(), in_progress: Type.Integer(), resolved: Type.Integer(), ignored: Type.Integer() }, { additionalProperties: false }),
              dead_last_hour: Type.Integer(),
              dead_last_day: Type.Integer(),
              workers_alive: Type.Union([Type.Integer(), Type.Null()]),
            },
            { additionalProperties: false },
          ),
        },
      },
    },
    async (request) => request.inTenant((client) => tenantHealth(client, request.tenantId, new Date())),
  );
};
