import { Type, type Static } from '@sinclair/typebox';
import { keyState, parseGrace, revokeApiKeys, rotateApiKey } from './tenants.js';
import type { FastifyPluginAsync } from 'fastify';
import { formatInstant } from '../db/timestamps.js';

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
        return { ...row, created_at: formatInstant(row.created_at) };
      }),
  );
};

const KeyState = Type.Object(
  {
    current_key: Type.Union([Type.Literal('active'), Type.Literal('revoked'), Type.Literal('unset')]),
    keys_in_grace: Type.Array(Type.String({ format: 'date-time' }), { description: 'ends of the grace periods of rotated-out keys still working' }),
  },
  { additionalProperties: false },
);
const RotateBody = Type.Object(
  { grace: Type.String({ minLength: 1, maxLength: 12, description: 'how long the previous key keeps working: 0, 30m, 24h, 7d … (at most 30d)' }) },
  { additionalProperties: false },
);
const RevokeBody = Type.Object(
  {
    confirm: Type.Literal('revoke', { description: 'must be "revoke": the keys stop working at once' }),
    previous_only: Type.Optional(Type.Boolean({ description: 'revoke only rotated-out keys still in grace; keep the current key' })),
  },
  { additionalProperties: false },
);

/** GET /api-keys, POST /api-keys/rotate, POST /api-keys/revoke: the tenant's API keys (owners). */
export const apiKeyRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    '/api-keys',
    {
      schema: { tags: ['tenants'], summary: "The state of the tenant's API keys (never the keys)", security: [{ apiKey: [] }], response: { 200: KeyState } },
      config: { access: 'owner', problems: ['forbidden'] },
    },
    async (request) => keyState(app.appPool, request.tenantId),
  );

  app.post<{ Body: Static<typeof RotateBody> }>(
    '/api-keys/rotate',
    {
      schema: {
        tags: ['tenants'],
        summary: 'Issue a new API key (shown only in this answer); the previous one keeps working for the grace period',
        security: [{ apiKey: [] }],
        body: RotateBody,
        response: { 200: Type.Object({ tenant_id: Type.String(), api_key: Type.String(), previous_key_valid_until: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false }) },
      },
      config: { access: 'owner', problems: ['forbidden', 'csrf_failed', 'grace_invalid'] },
    },
    async (request) => rotateApiKey(app.appPool, request.tenantId, parseGrace(request.body.grace)),
  );

  app.post<{ Body: Static<typeof RevokeBody> }>(
    '/api-keys/revoke',
    {
      schema: {
        tags: ['tenants'],
        summary: "Revoke the tenant's keys at once (all, or only rotated-out keys in grace); without a current key, rotate issues a new one",
        security: [{ apiKey: [] }],
        body: RevokeBody,
        response: { 200: Type.Object({ tenant_id: Type.String(), revoked: Type.Integer(), current_key_revoked: Type.Boolean() }, { additionalProperties: false }) },
      },
      config: { access: 'owner', problems: ['forbidden', 'csrf_failed'] },
    },
    async (request) => {
      const result = await revokeApiKeys(app.appPool, request.tenantId, { previousOnly: request.body.previous_only === true });
      // This process stops accepting the revoked keys at once (others within AUTH_CACHE_TTL_MS).
      app.authenticator.forget(request.tenantId);
      return result;
    },
  );
};
