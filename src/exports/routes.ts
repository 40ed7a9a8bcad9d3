import { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { DATASET_NAMES, DATASETS, type DatasetName } from './datasets.js';
import { CONTENT_TYPES, FORMATS, type Format } from './encode.js';
import { exportChunks, periodBound } from './stream.js';
import { checkPerformanceQuery } from '../performance/check.js';
import { PERFORMANCE_QUERY } from '../performance/routes.js';
import { PERFORMANCE_GROUPS } from '../performance/report.js';
import { PERFORMANCE_KEY_COLUMNS, PERFORMANCE_VALUE_COLUMNS, performanceExport } from './performance.js';

/** GET /api/v1/exports/{dataset}?from&to&format: the tenant's rows, streamed. */
export const exportRoutes: FastifyPluginAsync = async (app) => {
  app.get<{ Params: { dataset: DatasetName }; Querystring: { from?: string; to?: string; format?: Format } }>(
    '/exports/:dataset',
    {
      // Raw rows leave the system: analysts and up (a viewer reads reports only).
      config: { access: 'analyst', problems: ['export_period_invalid'] },
      schema: {
        tags: ['exports'],
        summary: 'Export a dataset (events, allocations, ledger, spend) as CSV or NDJSON, streamed; columns in docs/exports.md',
        description: DATASET_NAMES.map((n) => `${n}: ${DATASETS[n].description} from/to select on ${DATASETS[n].period}. Columns: ${DATASETS[n].columns.map((c) => c.name).join(', ')}.`).join('\n\n'),
        security: [{ apiKey: [] }],
        params: Type.Object({ dataset: Type.Union(DATASET_NAMES.map((n) => Type.Literal(n))) }),
        querystring: Type.Object(
          {
            from: Type.Optional(Type.String({ description: 'Start of the period (inclusive): RFC 3339 with offset, or a date (UTC); years 0001-9999. Unbounded when absent.' })),
            to: Type.Optional(Type.String({ description: 'End of the period (exclusive), same form. Unbounded when absent.' })),
            format: Type.Optional(Type.Union(FORMATS.map((f) => Type.Literal(f)), { default: 'ndjson', description: 'csv (RFC 4180, header line) or ndjson (one JSON object per line)' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: {
            description: 'The rows in (period column, id) order. An export that fails part-way ends the connection without the final chunk, so a client never mistakes it for a complete file.',
            content: {
              'text/csv': { schema: { type: 'string' } },
              'application/x-ndjson': { schema: { type: 'string' } },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const format = request.query.format ?? 'ndjson';
      const from = periodBound('from', request.query.from);
      const to = periodBound('to', request.query.to);
      const { dataset } = request.params;
      const chunks = exportChunks(request.server.appPool, { tenantId: request.tenantId, dataset, format, from, to });
      // The first page is read before the status line goes out: a failure to start is still a problem response.
      const first = await chunks.next();
      async function* body() {
        if (!first.done) yield first.value;
        yield* chunks;
      }
      const name = `skeldir-${dataset}${from ? `-from-${from.toISOString().slice(0, 10)}` : ''}${to ? `-to-${to.toISOString().slice(0, 10)}` : ''}.${format}`;
      return reply
        .header('content-type', CONTENT_TYPES[format])
        .header('content-disposition', `attachment; filename="${name}"`)
        .header('cache-control', 'no-store')
        .send(Readable.from(body(), { objectMode: false }));
    },
  );

  // A static segment wins over /exports/:dataset in the router: performance takes the report's parameters, not a period of rows.
  app.get<{ Querystring: { from: string; to: string; model?: string; group_by?: string; format?: Format } }>(
    '/exports/performance',
    {
      // The numbers a viewer reads in GET /api/v1/performance (the default role of a GET), not raw rows.
      config: { problems: ['performance_query_invalid', 'performance_overflow'] },
      schema: {
        tags: ['exports'],
        summary: "Export GET /api/v1/performance's lines (one row per group) as CSV or NDJSON; columns in docs/exports.md",
        description: `The same parameters and numbers as GET /api/v1/performance: one row per line, amounts in integer minor units of the reporting currency, intervals as lower/upper columns. Columns: the grouping's key (${PERFORMANCE_GROUPS.map((g) => `${g}: ${PERFORMANCE_KEY_COLUMNS[g].map((c) => c.name).join(', ')}`).join('; ')}), then ${PERFORMANCE_VALUE_COLUMNS.map((c) => c.name).join(', ')}.`,
        security: [{ apiKey: [] }],
        querystring: Type.Object(
          {
            ...PERFORMANCE_QUERY,
            format: Type.Optional(Type.Union(FORMATS.map((f) => Type.Literal(f)), { default: 'ndjson', description: 'csv (RFC 4180, header line) or ndjson (one JSON object per line)' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: {
            description: "The report's lines in its order (by key).",
            content: {
              'text/csv': { schema: { type: 'string' } },
              'application/x-ndjson': { schema: { type: 'string' } },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const format = request.query.format ?? 'ndjson';
      const options = checkPerformanceQuery(request.query);
      const { text } = await performanceExport(request.server.appPool, request.tenantId, options, format);
      const name = `skeldir-performance-${options.groupBy}-${options.model}-from-${options.from}-to-${options.to}.${format}`;
      return reply
        .header('content-type', CONTENT_TYPES[format])
        .header('content-disposition', `attachment; filename="${name}"`)
        .header('cache-control', 'no-store')
        .send(text);
    },
  );
};
