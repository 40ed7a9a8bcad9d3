import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import pg from 'pg';
import type { Database } from '../db/database.js';
import { headRevision } from '../migrations/registry.js';
import { HttpProblem, PROBLEMS, typeFor } from './problems.js';

const Status = Type.Object({ status: Type.String() }, { additionalProperties: false });

/** Liveness, readiness and the problem-type documentation: no authentication. */
export const metaRoutes: FastifyPluginAsync = async (app) => {
  app.get('/health', { schema: { tags: ['meta'], summary: 'The process is up', response: { 200: Status } } }, async () => ({ status: 'ok' }));

  app.get(
    '/ready',
    {
      config: { problems: ['not_ready'] },
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
        revision = await probeRevision(app.skeldir.db, app.skeldir.readyTimeoutMs);
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
    // Own properties only: `constructor`, `toString`, `__proto__` … are no problem types.
    const code = request.params.code;
    const spec = Object.hasOwn(PROBLEMS, code) ? (PROBLEMS as Record<string, { status: number; title: string }>)[code] : undefined;
    if (!spec) throw new HttpProblem('not_found', `no problem type ${JSON.stringify(request.params.code)}`);
    return { type: typeFor(request.params.code), code: request.params.code, status: spec.status, title: spec.title };
  });
};

/**
 * The schema revision, read over a connection of its own, with a deadline: a probe through the
 * API pool would queue behind busy requests when the pool is exhausted, and a database host
 * that takes the connection but never answers would make it hang. `timeoutMs` bounds the
 * connection (to ready-for-query) and then the query on what is left of it.
 */
async function probeRevision(db: Database, timeoutMs: number): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  const client = new pg.Client({ ...db.appClientConfig({ applicationName: 'skeldir-ready' }), connectionTimeoutMillis: timeoutMs });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ r: string | null }>({
      text: 'SELECT skeldir_schema_revision() AS r',
      query_timeout: Math.max(1, deadline - Date.now()),
    } as pg.QueryConfig);
    return rows[0]!.r;
  } finally {
    // A timed-out query leaves the connection busy: end() then destroys the socket instead of waiting.
    void client.end().catch(() => {});
  }
}
