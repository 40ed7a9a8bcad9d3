import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { headRevision } from '../migrations/registry.js';
import { HttpProblem, PROBLEMS, typeFor } from './problems.js';

const Status = Type.Object({ status: Type.String() }, { additionalProperties: false });

/** Liveness, readiness and the problem-type documentation: no authentication. */
export const metaRoutes: FastifyPluginAsync = async (app) => {
  app.get('/health', { schema: { tags: ['meta'], summary: 'The process is up', response: { 200: Status } } }, async () => ({ status: 'ok' }));

  app.get(
    '/ready',
    {
      schema: {
        tags: ['meta'],
        summary: 'The database is reachable and its schema is at the code\'s head revision',
        response: { 200: Type.Object({ status: Type.String(), revision: Type.String() }, { additionalProperties: false }) },
      },
    },
    async () => {
      const head = headRevision();
      let revision: string | null;
      try {
        revision = (await app.appPool.query<{ r: string | null }>('SELECT skeldir_schema_revision() AS r')).rows[0]!.r;
      } catch {
        throw new HttpProblem('not_ready', 'the database is not reachable or not initialised');
      }
      if (revision !== head) {
        throw new HttpProblem('not_ready', `the schema is at ${revision ?? 'base'}, the code expects ${head}; run skeldir migrate upgrade`);
      }
      return { status: 'ready', revision };
    },
  );

  app.get('/problems', { schema: { hide: true } }, async () =>
    Object.entries(PROBLEMS).map(([code, p]) => ({ type: typeFor(code), code, status: p.status, title: p.title })),
  );
  app.get<{ Params: { code: string } }>('/problems/:code', { schema: { hide: true } }, async (request) => {
    const spec = (PROBLEMS as Record<string, { status: number; title: string }>)[request.params.code];
    if (!spec) throw new HttpProblem('not_found', `no problem type ${JSON.stringify(request.params.code)}`);
    return { type: typeFor(request.params.code), code: request.params.code, ...spec };
  });
};
