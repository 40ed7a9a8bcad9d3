import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { OPAQUE_ID_PATTERN } from '../ingestion/session-id.js';
import { TIMESTAMP_PATTERN } from '../ingestion/schema.js';
import { identify, showIdentity, unlink } from './graph.js';

const security = [{ apiKey: [] }];
const TEXT_PATTERN = '^[^\\s\\p{Cc}\\u2028\\u2029](?:[^\\p{Cc}\\u2028\\u2029]*[^\\s\\p{Cc}\\u2028\\u2029])?$';
const userId = Type.String({ minLength: 1, maxLength: 255, pattern: TEXT_PATTERN, description: "The tenant's id of the person (the user_id their events carry)." });
const anonymousId = Type.String({ pattern: OPAQUE_ID_PATTERN, description: "A browser's first-party anonymous id (the tracker's skeldir('anonymousId'), or one your server keeps)." });
const source = Type.Union([Type.Literal('collect'), Type.Literal('api'), Type.Literal('cli')], {
  description: 'collect: the tracker (publishable key); api: POST /api/v1/identify; cli: skeldir identity.',
});
const instant = Type.String({ format: 'date-time' });
const nullableInstant = Type.Union([instant, Type.Null()]);

const Identified = Type.Object(
  {
    anonymous_id: Type.String(),
    user_id: Type.String(),
    outcome: Type.Union([Type.Literal('linked'), Type.Literal('known')], { description: 'linked: a new link; known: the link existed (nothing changed).' }),
    conversions_recomputed: Type.Integer({ minimum: 0, description: "The person's conversions re-attributed because of the new link." }),
  },
  { additionalProperties: false },
);

const Identity = Type.Object(
  {
    user_id: Type.String(),
    links: Type.Array(
      Type.Object(
        { anonymous_id: Type.String(), source, publishable_key_id: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]), linked_at: instant },
        { additionalProperties: false },
      ),
    ),
    changes: Type.Array(
      Type.Object(
        {
          id: Type.String({ format: 'uuid' }),
          action: Type.Union([Type.Literal('link'), Type.Literal('unlink')]),
          anonymous_id: Type.String(),
          source,
          publishable_key_id: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
          created_at: instant,
          recomputed_at: nullableInstant,
          conversions_recomputed: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
        },
        { additionalProperties: false },
      ),
      { description: 'The audit trail: every link and unlink, oldest first, with when its conversions were re-attributed.' },
    ),
  },
  { additionalProperties: false },
);

const Unlinked = Type.Object(
  {
    user_id: Type.String(),
    unlinked: Type.Array(Type.String(), { description: 'The anonymous ids no longer linked to the person.' }),
    conversions_recomputed: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);

/**
 * The identity graph with the secret key (docs/collect.md, "Identity"): identify server-side,
 * read a person's links and their audit trail, unlink. Each change re-attributes the person's
 * affected conversions before it answers.
 */
export const identityRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/identify',
    {
      config: { problems: ['identity_user_id_invalid', 'identity_anonymous_id_invalid', 'identity_timestamp_invalid', 'identity_link_limit'] },
      schema: {
        tags: ['people'],
        summary: "Link a browser's anonymous id to a person: their conversions are credited to that browser's touches too",
        description:
          'The server-side identify (the tracker\'s skeldir(\'identify\', userId) does the same with a publishable key). ' +
          '201 for a new link (the conversions it affects are re-attributed before the answer), 200 when the link existed.',
        security,
        body: Type.Object(
          { anonymous_id: anonymousId, user_id: userId, timestamp: Type.Optional(Type.String({ pattern: TIMESTAMP_PATTERN, maxLength: 35, description: 'When the identify happened (default now).' })) },
          { additionalProperties: false },
        ),
        response: { 200: Identified, 201: Identified },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const r = await identify(app.appPool, request.tenantId, { anonymousId: b.anonymous_id, userId: b.user_id, ...(b.timestamp !== undefined ? { at: b.timestamp } : {}) }, 'api');
      return reply.code(r.outcome === 'linked' ? 201 : 200).send(r);
    },
  );

  app.get(
    '/people/:user_id/links',
    {
      config: { problems: ['identity_user_id_invalid'] },
      schema: {
        tags: ['people'],
        summary: "A person's links in the identity graph (the anonymous ids of their browsers) and their audit trail",
        security,
        params: Type.Object({ user_id: userId }),
        response: { 200: Identity },
      },
    },
    async (request) => showIdentity(app.appPool, request.tenantId, request.params.user_id),
  );

  app.delete(
    '/people/:user_id/links',
    {
      config: { problems: ['identity_user_id_invalid'] },
      schema: {
        tags: ['people'],
        summary: "Unlink every browser from a person; the conversions the links affected are re-attributed",
        security,
        params: Type.Object({ user_id: userId }),
        response: { 200: Unlinked },
      },
    },
    async (request) => unlink(app.appPool, request.tenantId, { userId: request.params.user_id, anonymousId: null }, 'api'),
  );

  app.delete(
    '/people/:user_id/links/:anonymous_id',
    {
      config: { problems: ['identity_user_id_invalid', 'identity_anonymous_id_invalid', 'identity_link_not_found'] },
      schema: {
        tags: ['people'],
        summary: 'Unlink one browser from a person; the conversions the link affected are re-attributed',
        security,
        params: Type.Object({ user_id: userId, anonymous_id: anonymousId }),
        response: { 200: Unlinked },
      },
    },
    async (request) => unlink(app.appPool, request.tenantId, { userId: request.params.user_id, anonymousId: request.params.anonymous_id }, 'api'),
  );
};
