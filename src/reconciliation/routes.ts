import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { DEFAULT_RECONCILIATION_MODEL, reconciliation, RECONCILIATION_MODELS } from './report.js';
import { instantOf } from '../db/timestamps.js';
import { PrunedSchema, prunedPeriod, RECONCILIATION_PRUNED } from '../retention/aggregates.js';

const Line = {
  conversions: Type.Integer(),
  verified_conversions: Type.Integer(),
  claimed_cents: Type.Integer({ description: 'Revenue the conversions claim, minor units of the reporting currency' }),
  verified_cents: Type.Integer({ description: 'Revenue the ledger verifies (captured - refunded - charged back)' }),
  gap_cents: Type.Integer({ description: 'claimed - verified' }),
  gap_bps: Type.Union([Type.Integer(), Type.Null()], { description: 'gap / claimed in basis points; null when nothing is claimed' }),
};

/** GET /api/v1/reconciliation?from=…&to=…[&model=…] */
export const reconciliationRoutes: FastifyPluginAsync = async (app) => {
  app.get<{ Querystring: { from: string; to: string; model?: string } }>(
    '/reconciliation',
    {
      config: { problems: ['reconciliation_window_invalid', 'reconciliation_model_invalid', 'reconciliation_overflow'] },
      schema: {
        tags: ['revenue'],
        summary: 'Revenue claimed by conversions vs verified by the payment ledger, per channel and in total, in the reporting currency',
        security: [{ apiKey: [] }],
        querystring: Type.Object(
          {
            from: Type.String({ format: 'date-time', description: 'Start of the period of conversion times (inclusive)' }),
            to: Type.String({ format: 'date-time', description: 'End of the period (exclusive)' }),
            model: Type.Optional(Type.Union(RECONCILIATION_MODELS.map((m) => Type.Literal(m)), { description: `Attribution model splitting each conversion over channels (default ${DEFAULT_RECONCILIATION_MODEL})` })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            from: Type.String(),
            to: Type.String(),
            model: Type.String(),
            currency: Type.String(),
            channels: Type.Array(Type.Object({ channel: Type.String(), ...Line })),
            total: Type.Object({ ...Line, unmatched_ledger_cents: Type.Integer(), unmatched_ledger_transactions: Type.Integer() }),
            days: Type.Array(Type.Object({ date: Type.String({ format: 'date', description: 'UTC day of the conversions' }), ...Line }), {
              description: 'The totals per UTC day of the conversions, oldest first (days without conversions are absent)',
            }),
            pruned: PrunedSchema('Days of the period whose events retention removed: their conversions are not in this report, and the note says why (null: none)'),
          }),
        },
      },
    },
    async (request) => {
      const [from, to] = [instantOf(request.query.from), instantOf(request.query.to)];
      return request.inTenant(async (client) => ({
        ...(await reconciliation(client, request.tenantId, from, to, request.query.model ?? DEFAULT_RECONCILIATION_MODEL)),
        pruned: await prunedPeriod(client, request.tenantId, from, to, RECONCILIATION_PRUNED),
      }));
    },
  );
};
