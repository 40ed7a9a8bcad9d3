import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { reportingCurrency } from './reporting.js';

const Answer = Type.Object({ reporting_currency: Type.String({ description: 'ISO 4217 code every report converts to' }) }, { additionalProperties: false });
const Body = Type.Object({ reporting_currency: Type.String({ pattern: '^[A-Z]{3}$' }) }, { additionalProperties: false });

/** GET / PUT /reporting-currency: the currency the tenant's reports use (changing it: admins). */
export const reportingCurrencyRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    '/reporting-currency',
    { schema: { tags: ['revenue'], summary: 'The currency the reports convert to', security: [{ apiKey: [] }], response: { 200: Answer } } },
    async (request) => ({ reporting_currency: (await reportingCurrency(app.appPool, request.tenantId)).reporting_currency }),
  );
  app.put<{ Body: Static<typeof Body> }>(
    '/reporting-currency',
    {
      schema: { tags: ['revenue'], summary: 'Set the currency the reports convert to (rates come from skeldir fx import)', security: [{ apiKey: [] }], body: Body, response: { 200: Answer } },
      config: { access: 'admin', problems: ['forbidden', 'csrf_failed', 'currency_invalid'] },
    },
    async (request) => ({ reporting_currency: (await reportingCurrency(app.appPool, request.tenantId, request.body.reporting_currency)).reporting_currency }),
  );
};
