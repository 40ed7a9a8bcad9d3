import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { erasePerson } from './erase.js';
import { COUNT_NAMES } from './steps.js';

export const Receipt = Type.Object({
  erasure_id: Type.String({ description: 'The erasure_audit row recording it (which never holds the user id)' }),
  started_at: Type.String(),
  finished_at: Type.String(),
  counts: Type.Object(Object.fromEntries(COUNT_NAMES.map((n) => [n, Type.Integer({ minimum: 0 })])), { additionalProperties: false }),
  derived: Type.Object({ reports: Type.String(), model_runs: Type.String() }),
});

/** DELETE /api/v1/people/{user_id}: erase a person (right to be forgotten). */
export const erasureRoutes: FastifyPluginAsync = async (app) => {
  app.delete<{ Params: { user_id: string } }>(
    '/people/:user_id',
    {
      // A secret API key, or a web user who is an admin or the owner.
      config: { access: 'admin', problems: ['erasure_user_id_invalid'] },
      schema: {
        tags: ['people'],
        summary: "Erase a person: their events, allocations, dead events and payloads; ledger rows kept with the id scrubbed from their metadata",
        description:
          'Batched and idempotent (a repeat erases what arrived since, else nothing, and answers 200 with zero counts). The receipt counts what each step removed; an audit row records when, by whom and the counts, never the user id. Steps: docs/erasure.md.',
        security: [{ apiKey: [] }],
        params: Type.Object({ user_id: Type.String({ minLength: 1, maxLength: 255, description: 'The user_id the events were sent with (percent-encoded)' }) }),
        response: { 200: Receipt },
      },
    },
    async (request) => erasePerson(request.server.appPool, { tenantId: request.tenantId, userId: request.params.user_id, requestedBy: request.actor }),
  );
};
