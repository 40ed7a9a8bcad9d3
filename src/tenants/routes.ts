import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';

const Tenant = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    notification_email: Type.String(),
    reporting_currency: Type.String({ description: 'ISO 4217 code reports convert into' }),
    reporting_time_zone: Type.String({ description: "IANA time zone the tenant's days are counted in" }),
    created_at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);

/** GET /api/v1/tenant: the tenant the API key belongs to (a way to check a key). */
export const tenantRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    '/tenant',
    { schema: { tags: ['tenants'], summary: 'The tenant of the API key', security: [{ apiKey: [] }], response: { 200: Tenant } } },
    async (request) =>
      request.inTenant(async (client) => {
        // Row-level security shows exactly one tenant row: the one in context.
        const { rows } = await client.query(`SELECT id, name, notification_email, reporting_currency, reporting_time_zone, created_at FROM tenants`);
        const row = rows[0]!;
        return { ...row, created_at: row.created_at.toISOString() };
      }),
  );
};
