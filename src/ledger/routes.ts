import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { PROVIDERS, type Provider } from './apply.js';

/** A provider path or query parameter (the one list, PROVIDERS). */
export const ProviderParam = Type.Union(PROVIDERS.map((p) => Type.Literal(p)));
import { getTransaction } from './transactions.js';

const Transition = Type.Object({
  from_state: Type.Union([Type.String(), Type.Null()]),
  to_state: Type.String(),
  reason: Type.Union([Type.String(), Type.Null()]),
  transitioned_at: Type.String(),
});

const Transaction = Type.Object({
  transaction_id: Type.String({ description: "The provider's id of the payment" }),
  ledger_key: Type.String({ description: 'revenue_ledger.transaction_id as stored (tenant-scoped)' }),
  provider: Type.String(),
  order_id: Type.Union([Type.String(), Type.Null()]),
  state: Type.String(),
  previous_state: Type.Union([Type.String(), Type.Null()]),
  amount_cents: Type.Integer({ description: 'Amount in minor units of currency (its own exponent)' }),
  captured_cents: Type.Union([Type.Integer(), Type.Null()], { description: 'Amount captured so far when the provider reported a partial capture; null = the whole amount once captured' }),
  refunded_cents: Type.Integer(),
  chargeback_cents: Type.Integer(),
  net_cents: Type.Integer({ description: 'Verified revenue: 0 while authorized, else (captured, else amount) - refunded - charged back' }),
  currency: Type.String(),
  verification_source: Type.String(),
  verification_timestamp: Type.String(),
  metadata: Type.Unknown(),
  created_at: Type.String(),
  updated_at: Type.String(),
  transitions: Type.Array(Transition),
});

/** GET /api/v1/revenue/transactions/{transaction_id}: one ledger row with its transitions. */
export const ledgerRoutes: FastifyPluginAsync = async (app) => {
  app.get<{ Params: { transaction_id: string }; Querystring: { provider?: Provider } }>(
    '/revenue/transactions/:transaction_id',
    {
      schema: {
        tags: ['revenue'],
        summary: 'A ledger transaction (by the provider\'s id) with its state transitions',
        security: [{ apiKey: [] }],
        params: Type.Object({ transaction_id: Type.String({ minLength: 1, maxLength: 200 }) }),
        querystring: Type.Object(
          { provider: Type.Optional(ProviderParam) },
          { additionalProperties: false },
        ),
        response: { 200: Transaction },
      },
    },
    async (request) => request.inTenant((client) => getTransaction(client, request.tenantId, request.params.transaction_id, request.query.provider)),
  );
};
