import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { readRetentionSettings, writeRetentionSettings, type RetentionSettings } from './retention.js';

const Days = (what: string) => Type.Union([Type.Integer({ minimum: 1, maximum: 36_500 }), Type.Null()], { description: `${what}; null keeps forever` });
const Settings = Type.Object({
  payload_days: Days("Redact events' raw payloads older than this many days (event time)"),
  event_days: Days('Delete events older than this many days, their allocations folded into daily aggregates first'),
  dead_event_payload_days: Days("Redact dead events' payloads older than this many days"),
});

/** GET / PUT /api/v1/retention/settings */
export const retentionRoutes: FastifyPluginAsync = async (app) => {
  app.get('/retention/settings', { schema: { tags: ['retention'], summary: "The tenant's retention rules", security: [{ apiKey: [] }], response: { 200: Settings } } }, async (request) =>
    request.inTenant((c) => readRetentionSettings(c, request.tenantId)),
  );
  app.put<{ Body: Partial<RetentionSettings> }>(
    '/retention/settings',
    {
      config: { access: 'admin', problems: ['retention_settings_invalid'] },
      schema: {
        tags: ['retention'],
        summary: "Change the tenant's retention rules (fields left out stay as they are); the scheduler applies them in batches",
        security: [{ apiKey: [] }],
        body: Type.Partial(Settings, { additionalProperties: false }),
        response: { 200: Settings },
      },
    },
    async (request) => request.inTenant((c) => writeRetentionSettings(c, request.tenantId, request.body)),
  );
};
