import { Type } from '@sinclair/typebox';
import type { ValidateFunction } from 'ajv';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { bodyAjv, validationProblem } from '../http/app.js';
import { HttpProblem, problemFor, type ProblemCode } from '../http/problems.js';
import { IngestCoalescer } from './coalescer.js';
import { writeGroup } from './coalescer-store.js';
import { keyReusedError } from './ingest.js';
import { IngestionError, prepareEvent, type PreparedEvent } from './prepare.js';
import { BatchEnvelope, BatchInput, BatchOutput, EventInput, EventOutput, KEY_PATTERN } from './schema.js';
import { findById, toOutput } from './store.js';

/** A single event is small; a 1,000-event batch of long fields stays under 4 MiB. */
export const EVENT_BODY_LIMIT = 64 * 1024;
export const BATCH_BODY_LIMIT = 4 * 1024 * 1024;

const keyPattern = new RegExp(KEY_PATTERN);
/** What prepareEvent refuses (src/ingestion/prepare.ts), for the OpenAPI document. */
const EVENT_PROBLEMS: ProblemCode[] = [
  'idempotency_key_missing',
  'idempotency_key_mismatch',
  'timestamp_invalid',
  'timestamp_out_of_range',
  'currency_invalid',
  'currency_required',
  'conversion_value_required',
  'url_invalid',
];
const security = [{ apiKey: [] }];

/** The Idempotency-Key header, if sent (and well-formed). */
function headerKey(request: FastifyRequest): string | undefined {
  const value = request.headers['idempotency-key'];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !keyPattern.test(value)) {
    throw new IngestionError('idempotency_key_invalid', 'the Idempotency-Key header must be 1-200 visible ASCII characters (no spaces)', {
      field: 'headers/idempotency-key',
    });
  }
  return value;
}

/** POST /events, POST /events/batch, GET /events/{id} (issue 4; docs/ingestion.md). */
/** The metrics' outcome of an ingested event by its status (src/metrics/metrics.ts). */
const OUTCOME = { 200: 'replayed', 201: 'created', 409: 'conflict' } as const;

export const ingestionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const ruleSets = app.channelRules;
  // A batch's envelope is checked up front, then its items one by one; both by the app's body rules.
  const ajv = bodyAjv();
  const validateItem = ajv.compile(EventInput);
  const batchEnvelope = ajv.compile(BatchEnvelope);
  const anything = ajv.compile({});
  const envelopeValidator = (httpPart: string | undefined): ValidateFunction => (httpPart === 'body' ? batchEnvelope : anything);
  // Single events of one tenant arriving together are written together (group commit);
  // each group is one transaction with the tenant's context set, like request.inTenant, in one
  // round trip (src/ingestion/coalescer-store.ts).
  const coalescer = new IngestCoalescer((tenantId, events) => {
    app.metrics.ingestGroup.observe(events.length);
    return writeGroup(app.appPool, tenantId, events);
  });

  app.post(
    '/events',
    {
      bodyLimit: EVENT_BODY_LIMIT,
      config: { problems: [...EVENT_PROBLEMS, 'idempotency_key_invalid', 'idempotency_key_reused'] },
      schema: {
        tags: ['events'],
        summary: 'Ingest one event (idempotent: Idempotency-Key header or idempotency_key field)',
        description:
          '201 with the event on first receipt; 200 with the same event when the key is replayed with the same body; ' +
          '409 idempotency_key_reused when the key was used with a different body. Events land pending for the worker.',
        security,
        headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ description: 'The idempotency key (1–200 visible ASCII characters).' })) }),
        body: EventInput,
        response: { 200: EventOutput, 201: EventOutput },
      },
    },
    async (request, reply) => {
      const rules = await ruleSets.get(request.tenantId);
      const prepared = prepareEvent(request.tenantId, request.body, {
        headerKey: headerKey(request),
        pointer: 'body',
        rules,
        now: Date.now(),
      });
      const outcome = await coalescer.submit(request.tenantId, prepared);
      app.metrics.ingested.inc({ endpoint: 'single', outcome: OUTCOME[outcome.status] });
      if (outcome.status === 409) throw keyReusedError(outcome.clientKey, outcome.eventId, outcome.keyField);
      return reply.code(outcome.status).send(outcome.event);
    },
  );

  app.post(
    '/events/batch',
    {
      bodyLimit: BATCH_BODY_LIMIT,
      // Item problems come back in the 200's results; the request as a whole fails only on these.
      config: { problems: ['idempotency_header_on_batch'] },
      // The documented schema is the full one; only the envelope is checked up front, each item
      // is then validated on its own so that one bad item does not sink the others.
      validatorCompiler: ({ httpPart }) => envelopeValidator(httpPart),
      schema: {
        tags: ['events'],
        summary: 'Ingest up to 1,000 events; per-item results',
        description:
          'Each item carries its own idempotency_key field and gets its own result (201, 200, 409 or a 4xx problem). ' +
          'Not atomic: valid items are stored even when others are refused. The stored items are written in one transaction.',
        security,
        body: BatchInput,
        response: { 200: BatchOutput },
      },
    },
    async (request) => {
      if (request.headers['idempotency-key'] !== undefined) {
        throw new IngestionError('idempotency_header_on_batch', 'a batch takes one idempotency_key field per event, not an Idempotency-Key header', {
          field: 'headers/idempotency-key',
        });
      }
      const items = (request.body as { events: unknown[] }).events;
      const rules = await ruleSets.get(request.tenantId);
      const now = Date.now();
      const results: BatchOutput['results'] = new Array(items.length);
      const valid: { index: number; event: PreparedEvent }[] = [];
      items.forEach((item, index) => {
        const pointer = `body/events/${index}`;
        try {
          if (!validateItem(item)) throw validationProblem(validateItem.errors ?? [], pointer);
          valid.push({ index, event: prepareEvent(request.tenantId, item as EventInput, { pointer, rules, now }) });
        } catch (error) {
          results[index] = itemProblem(index, error);
        }
      });
      // The stored items in one transaction with the tenant's context, in one round trip on one server
      // (writeGroup, as for a coalescer group; the usual three on Citus), outcomes exactly ingestEvents'.
      const outcomes = valid.length ? await writeGroup(app.appPool, request.tenantId, valid.map((v) => v.event)) : [];
      outcomes.forEach((outcome, i) => {
        const { index, event } = valid[i]!;
        results[index] =
          outcome.status === 409
            ? itemProblem(index, keyReusedError(event.clientKey, outcome.eventId, event.keyField))
            : { index, status: outcome.status, event: outcome.event };
      });
      // One pass for the four counts (four filters were four arrays and loops per batch).
      let created = 0;
      let replayed = 0;
      let conflicts = 0;
      let failed = 0;
      for (const { status } of results) {
        if (status === 201) created++;
        else if (status === 200) replayed++;
        else if (status >= 400) {
          failed++;
          if (status === 409) conflicts++;
        }
      }
      for (const [outcome, n] of [['created', created], ['replayed', replayed], ['conflict', conflicts], ['rejected', failed - conflicts]] as const) {
        if (n > 0) app.metrics.ingested.inc({ endpoint: 'batch', outcome }, n);
      }
      return { results, created, replayed, failed };
    },
  );

  app.get(
    '/events/:id',
    {
      schema: {
        tags: ['events'],
        summary: 'One event of the tenant',
        security,
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: { 200: EventOutput },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const row = await request.inTenant((client) => findById(client, request.tenantId, id));
      // Another tenant's event is indistinguishable from one that does not exist.
      if (!row) throw new HttpProblem('not_found', `no event ${id}`);
      return toOutput(row, request.tenantId);
    },
  );
};

function itemProblem(index: number, error: unknown): BatchOutput['results'][number] {
  const { status, body } = problemFor(error);
  return { index, status, problem: body as NonNullable<BatchOutput['results'][number]['problem']> };
}
