import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { PROVIDERS } from '../ledger/apply.js';
import { createEndpoint, deleteEndpoint, listEndpoints, rotateEndpoint } from './endpoints.js';
import { loadSecretKey, type SecretKey } from './secret-key.js';

const Provider = Type.Union(PROVIDERS.map((p) => Type.Literal(p)));
const Secret = Type.String({ minLength: 8, maxLength: 500, pattern: '^[\\x21-\\x7e]+$', description: 'the signing secret the provider shows (generated when absent, except for PayPal: its webhook ID)' });
const Endpoint = Type.Object(
  {
    endpoint_id: Type.String({ format: 'uuid' }),
    provider: Type.String(),
    url_path: Type.String({ description: 'the path to register with the provider, after your Skeldir address' }),
    description: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String({ format: 'date-time' }),
    rotated_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    previous_secret_valid_until: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    deliveries: Type.Integer(),
    last_delivery_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { additionalProperties: false },
);
const WithSecret = Type.Object(
  {
    endpoint_id: Type.String({ format: 'uuid' }),
    url_path: Type.String(),
    secret: Type.String({ description: 'shown only in this answer' }),
    previous_secret_valid_until: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
    provider: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) }, { additionalProperties: false });
const CreateBody = Type.Object(
  { provider: Provider, secret: Type.Optional(Secret), description: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[^\\u0000]*$' })) },
  { additionalProperties: false },
);
const RotateBody = Type.Object(
  { secret: Type.Optional(Secret), grace_hours: Type.Integer({ minimum: 0, maximum: 720, description: 'how long the old secret stays accepted (0: refused at once)' }) },
  { additionalProperties: false },
);
const PROBLEMS = ['forbidden', 'csrf_failed', 'webhook_endpoint_not_found', 'webhook_secret_invalid', 'webhook_grace_invalid'] as const;

/** The tenant's payment-provider webhook endpoints (admins and owners; the secret is shown once, at creation and rotation). */
export const webhookEndpointRoutes: FastifyPluginAsync = async (app) => {
  let key: SecretKey | undefined;
  const secretKey = () => (key ??= loadSecretKey(process.env, app.skeldir.config.dataDir));

  app.get(
    '/webhook-endpoints',
    {
      schema: { tags: ['webhooks'], summary: "The tenant's webhook endpoints (never their secrets)", security: [{ apiKey: [] }], response: { 200: Type.Object({ items: Type.Array(Endpoint) }, { additionalProperties: false }) } },
      config: { access: 'admin', problems: ['forbidden'] },
    },
    async (request) => ({ items: await listEndpoints(app.appPool, request.tenantId) }),
  );

  app.post<{ Body: Static<typeof CreateBody> }>(
    '/webhook-endpoints',
    {
      schema: { tags: ['webhooks'], summary: 'Create a webhook endpoint: its URL path and secret (shown only here)', security: [{ apiKey: [] }], body: CreateBody, response: { 201: WithSecret } },
      config: { access: 'admin', problems: [...PROBLEMS] },
    },
    async (request, reply) => reply.code(201).send(await createEndpoint(app.appPool, secretKey(), { tenantId: request.tenantId, ...request.body })),
  );

  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof RotateBody> }>(
    '/webhook-endpoints/:id/rotate',
    {
      schema: { tags: ['webhooks'], summary: 'Rotate the secret (the new one is shown only here); the old one stays accepted for grace_hours', security: [{ apiKey: [] }], params: IdParams, body: RotateBody, response: { 200: WithSecret } },
      config: { access: 'admin', problems: [...PROBLEMS] },
    },
    async (request) =>
      rotateEndpoint(app.appPool, secretKey(), { tenantId: request.tenantId, endpointId: request.params.id, graceHours: request.body.grace_hours, ...(request.body.secret ? { secret: request.body.secret } : {}) }),
  );

  app.delete<{ Params: Static<typeof IdParams> }>(
    '/webhook-endpoints/:id',
    {
      schema: { tags: ['webhooks'], summary: 'Delete a webhook endpoint: deliveries to it are refused from now on', security: [{ apiKey: [] }], params: IdParams, response: { 204: Type.Null() } },
      config: { access: 'admin', problems: ['forbidden', 'csrf_failed', 'webhook_endpoint_not_found'] },
    },
    async (request, reply) => {
      await deleteEndpoint(app.appPool, { tenantId: request.tenantId, endpointId: request.params.id });
      return reply.code(204).send();
    },
  );
};
