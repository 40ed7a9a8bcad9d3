import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { applyRemediation, getDeadEvent, listDeadEvents, MAX_NOTES, MAX_PAGE, parseInstant, type DeadEventFilter } from './store.js';
import { REMEDIATION_ACTIONS, REMEDIATION_STATUSES, type RemediationStatus } from './transitions.js';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const Status = Type.Union(REMEDIATION_STATUSES.map((s) => Type.Literal(s)));

const summaryProperties = {
  id: Type.String({ format: 'uuid' }),
  event_id: Type.Union([Type.String({ format: 'uuid' }), Type.Null()], { description: 'The event that died (re-queued by retry); null for other sources.' }),
  source: Type.String({ description: 'worker, or the legacy source of older rows' }),
  event_type: Type.String(),
  error_type: Type.String({ description: 'validation, data, transient, timeout or internal' }),
  error_code: Type.String({ description: 'finer stable code (the domain error code or sqlstate_XXXXX)' }),
  error_message: Type.String(),
  retry_count: Type.Integer({ description: 'failed attempts, plus retries requested from the dead-letter queue' }),
  last_retry_at: Nullable(Type.String({ format: 'date-time' })),
  remediation_status: Status,
  resolved_at: Nullable(Type.String({ format: 'date-time' })),
  created_at: Type.String({ format: 'date-time' }),
};
const DeadEventSummary = Type.Object(summaryProperties, { additionalProperties: false });
const DeadEvent = Type.Object(
  {
    ...summaryProperties,
    error_traceback: Nullable(Type.String()),
    error_detail: Type.Unknown(),
    remediation_notes: Nullable(Type.String({ description: 'one line per action: <time> <actor>: <action>[: <note>]' })),
    raw_payload: Type.Unknown({ description: 'the event as received' }),
    event_status: Nullable(Type.String({ description: "the event's processing_status now (pending while a retry is in flight)" })),
  },
  { additionalProperties: false },
);

/** No NUL: PostgreSQL text cannot hold it. */
const NO_NUL = '^[^\\u0000]*$';
const ListQuery = Type.Object(
  {
    status: Type.Optional(
      Type.String({ pattern: `^(${REMEDIATION_STATUSES.join('|')})(,(${REMEDIATION_STATUSES.join('|')}))*$`, description: 'remediation statuses, comma-separated' }),
    ),
    error_type: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: NO_NUL })),
    event_type: Type.Optional(Type.String({ minLength: 1, maxLength: 50, pattern: NO_NUL })),
    source: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: NO_NUL })),
    from: Type.Optional(Type.String({ format: 'date-time', description: 'created at or after; years 0001–9999, no leap second' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'created before; years 0001–9999, no leap second' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 50 })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 300, description: 'next_cursor of the previous page' })),
  },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) }, { additionalProperties: false });
const ActionBody = Type.Object(
  { notes: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_NOTES, description: 'appended to remediation_notes' })) },
  { additionalProperties: false },
);

const ACTION_SUMMARY: Record<(typeof REMEDIATION_ACTIONS)[number], string> = {
  start: 'Take a dead event in hand: pending → in_progress',
  retry: 'Re-queue the original event (pending or in_progress → in_progress); the worker resolves the dead event when it is processed',
  resolve: 'Mark a dead event resolved: in_progress → resolved',
  ignore: 'Mark a dead event ignored: in_progress → ignored',
  reopen: 'Give a dead event back: in_progress → pending',
};

/** The dead-letter queue of the authenticated tenant (issue 5). */
export const deadEventRoutes: FastifyPluginAsync = async (app) => {
  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/dead-events',
    {
      schema: {
        tags: ['dead events'],
        summary: 'List dead events, newest first, with filters and keyset pagination',
        security: [{ apiKey: [] }],
        querystring: ListQuery,
        response: { 200: Type.Object({ items: Type.Array(DeadEventSummary), next_cursor: Nullable(Type.String()) }, { additionalProperties: false }) },
      },
      config: { problems: ['dead_event_cursor_invalid', 'dead_event_limit_invalid'] },
    },
    async (request) => {
      const q = request.query;
      const filter: DeadEventFilter = {
        limit: q.limit ?? 50,
        ...(q.status ? { status: [...new Set(q.status.split(','))] as RemediationStatus[] } : {}),
        ...(q.error_type !== undefined ? { errorType: q.error_type } : {}),
        ...(q.event_type !== undefined ? { eventType: q.event_type } : {}),
        ...(q.source !== undefined ? { source: q.source } : {}),
        ...(q.from !== undefined ? { from: parseInstant('from', q.from) } : {}),
        ...(q.to !== undefined ? { to: parseInstant('to', q.to) } : {}),
        ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
      };
      return request.inTenant((client) => listDeadEvents(client, request.tenantId, filter));
    },
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/dead-events/:id',
    {
      schema: {
        tags: ['dead events'],
        summary: 'One dead event with its trace, notes and payload',
        security: [{ apiKey: [] }],
        params: IdParams,
        response: { 200: DeadEvent },
      },
      config: { problems: ['dead_event_not_found'] },
    },
    async (request) => request.inTenant((client) => getDeadEvent(client, request.tenantId, request.params.id)),
  );

  for (const action of REMEDIATION_ACTIONS) {
    app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof ActionBody> | undefined }>(
      `/dead-events/:id/${action}`,
      {
        schema: {
          tags: ['dead events'],
          summary: ACTION_SUMMARY[action],
          security: [{ apiKey: [] }],
          params: IdParams,
          body: ActionBody,
          response: { 200: DeadEvent },
        },
        config: { problems: ['dead_event_not_found', 'dead_event_transition_not_allowed', 'dead_event_not_retryable', 'dead_event_retry_in_flight', 'dead_event_notes_invalid'] },
        // The body is optional: a bare POST (no Content-Type, no body) means "no notes".
        preValidation: async (request) => {
          if (request.body === undefined || request.body === null) request.body = {};
        },
      },
      async (request) =>
        request.inTenant((client) =>
          applyRemediation(client, request.tenantId, request.params.id, action, { actor: request.actor, ...(request.body?.notes !== undefined ? { notes: request.body.notes } : {}) }),
        ),
    );
  }
};
