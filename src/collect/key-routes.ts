import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { withTenant } from '../db/tenant-context.js';
import { CollectError, MAX_ORIGINS } from './keys.js';
import { createPublishableKey, listPublishableKeys, revokePublishableKey, updatePublishableKey } from './publishable-keys.js';
import { findKey, readCounts } from './store.js';

const security = [{ apiKey: [] }];

const KeyView = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    hint: Type.String({ description: 'pk_… and the last four characters of the key.' }),
    allowed_origins: Type.Array(Type.String()),
    require_consent: Type.Boolean(),
    honor_gpc: Type.Boolean(),
    status: Type.Union([Type.Literal('active'), Type.Literal('revoked')]),
    created_at: Type.String({ format: 'date-time' }),
    revoked_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { additionalProperties: false },
);

const CreatedKey = Type.Object(
  {
    ...KeyView.properties,
    key: Type.String({ description: 'The publishable key, shown only here (only its hash is stored).' }),
    snippet: Type.String({ description: "The HTML to paste into the site's pages." }),
  },
  { additionalProperties: false },
);

const origins = Type.Array(Type.String({ minLength: 1, maxLength: 300 }), {
  minItems: 1,
  maxItems: MAX_ORIGINS,
  description: 'Origins browsers may send from: https://shop.example, http://localhost:3000, or https://*.shop.example for every subdomain.',
});
const settings = {
  require_consent: Type.Optional(Type.Boolean({ description: 'The tracker stores nothing and sends no identifier until skeldir(\'consent\', true) (default false).' })),
  honor_gpc: Type.Optional(Type.Boolean({ description: 'A browser sending Global Privacy Control is treated as not consenting (default true).' })),
};
const name = Type.String({ minLength: 1, maxLength: 255, description: 'A label: the site or app the key is for.' });

const KeyCreate = Type.Object({ name: Type.Optional(name), allowed_origins: origins, ...settings }, { additionalProperties: false });
const KeyUpdate = Type.Object({ name: Type.Optional(name), allowed_origins: Type.Optional(origins), ...settings }, { additionalProperties: false });
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });

// A bare day is written out as its midnight UTC by the HTTP layer (one from/to rule); that form is still a day.
const DAY = '^\\d{4}-\\d{2}-\\d{2}(T00:00:00(\\.0{1,6})?Z)?$';
const Counts = Type.Object(
  {
    key_id: Type.String({ format: 'uuid' }),
    days: Type.Array(
      Type.Object(
        { day: Type.String(), touches: Type.Integer(), identifies: Type.Integer(), bots: Type.Integer(), anonymous: Type.Integer() },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** The URL the tracker snippet points at: SKELDIR_PUBLIC_URL (default http://localhost:PORT). */
function baseUrl(request: FastifyRequest): string {
  return request.server.skeldir.config.web.publicUrl;
}

/** Publishable keys of the authenticated tenant (secret key only): issue, list, change, revoke, counts. */
export const publishableKeyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/publishable-keys',
    {
      config: { problems: ['allowed_origin_invalid', 'publishable_key_name_invalid'] },
      schema: {
        tags: ['collect'],
        summary: 'Issue a publishable key (pk_…) for the tracker; the key is shown only in this answer',
        security,
        body: KeyCreate,
        response: { 201: CreatedKey },
      },
    },
    async (request, reply) => reply.code(201).send(await createPublishableKey(app.appPool, request.tenantId, request.body, baseUrl(request))),
  );

  app.get(
    '/publishable-keys',
    { schema: { tags: ['collect'], summary: "The tenant's publishable keys (never the keys themselves)", security, response: { 200: Type.Array(KeyView) } } },
    async (request) => listPublishableKeys(app.appPool, request.tenantId),
  );

  app.patch(
    '/publishable-keys/:id',
    {
      config: { problems: ['allowed_origin_invalid', 'publishable_key_name_invalid', 'publishable_key_not_found', 'publishable_key_revoked'] },
      schema: {
        tags: ['collect'],
        summary: "Change a key's name, allowed origins or privacy settings (in effect within 5 seconds)",
        security,
        params: IdParams,
        body: KeyUpdate,
        response: { 200: KeyView },
      },
    },
    async (request) => updatePublishableKey(app.appPool, request.tenantId, request.params.id, request.body),
  );

  app.delete(
    '/publishable-keys/:id',
    {
      config: { problems: ['publishable_key_not_found'] },
      schema: { tags: ['collect'], summary: 'Revoke a publishable key (refused within 5 seconds; the record stays)', security, params: IdParams, response: { 200: KeyView } },
    },
    async (request) => revokePublishableKey(app.appPool, request.tenantId, request.params.id),
  );

  app.get(
    '/publishable-keys/:id/counts',
    {
      config: { problems: ['publishable_key_not_found', 'collect_counts_window_invalid'] },
      schema: {
        tags: ['collect'],
        summary: 'What the collect endpoint did with a key, per UTC day: touches and identifies stored, bot hits filtered, touches without identifier',
        security,
        params: IdParams,
        querystring: Type.Object({
          from: Type.String({ pattern: DAY, description: 'First day (YYYY-MM-DD, UTC).' }),
          to: Type.String({ pattern: DAY, description: 'Last day, inclusive (at most 366 days after from).' }),
        }),
        response: { 200: Counts },
      },
    },
    async (request) => {
      const from = request.query.from.slice(0, 10);
      const to = request.query.to.slice(0, 10);
      const span = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000;
      if (!(span >= 0 && span <= 366) || new Date(`${from}T00:00:00Z`).toISOString().slice(0, 10) !== from || new Date(`${to}T00:00:00Z`).toISOString().slice(0, 10) !== to) {
        throw new CollectError('collect_counts_window_invalid', 'from and to must be real days (YYYY-MM-DD), from <= to, at most 366 days apart', { field: 'query/from' });
      }
      // This process's counts of the last seconds first (other processes write theirs every 10 s).
      await app.collectCounter.flush();
      const { id } = request.params;
      return withTenant(app.appPool, request.tenantId, async (client) => {
        if (!(await findKey(client, request.tenantId, id))) throw new CollectError('publishable_key_not_found', `no publishable key ${id}`, { field: 'params/id' });
        return { key_id: id, days: await readCounts(client, request.tenantId, id, from, to) };
      });
    },
  );
};
