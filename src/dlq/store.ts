import type { Queryable } from '../db/pool.js';
import { FIRST_INSTANT, LAST_INSTANT, formatInstant, inStorableYears, readInstant } from '../db/timestamps.js';
import { EVENTS_CHANNEL } from '../worker/channel.js';
import { DeadEventError, nextStatus, type RemediationAction, type RemediationStatus } from './transitions.js';

/**
 * The dead-letter queue's SQL. Every function runs in a transaction with the tenant context
 * set (the API's request.inTenant, or the CLI's withTenant as the owner): row-level security
 * shows only that tenant's dead events, so an id of another tenant is simply not found. Each
 * statement also names the tenant's id: on Citus that routes it to the tenant's shard (a
 * FOR UPDATE across shards is refused, a read without it asks every shard).
 */

export interface DeadEventSummary {
  id: string;
  tenant_id: string;
  event_id: string | null;
  source: string;
  event_type: string;
  error_type: string;
  error_code: string;
  error_message: string;
  retry_count: number;
  last_retry_at: string | null;
  remediation_status: RemediationStatus;
  resolved_at: string | null;
  created_at: string;
}

export interface DeadEvent extends DeadEventSummary {
  error_traceback: string | null;
  error_detail: unknown;
  remediation_notes: string | null;
  raw_payload: unknown;
  /** processing_status of the original event now (pending while a retry is in flight), or null when there is none. */
  event_status: string | null;
}

export interface DeadEventFilter {
  status?: readonly RemediationStatus[];
  errorType?: string;
  eventType?: string;
  source?: string;
  /** created_at ≥ from */
  from?: Date;
  /** created_at < to */
  to?: Date;
  limit: number;
  /** Opaque keyset cursor from a previous page's next_cursor. */
  cursor?: string;
}

export const MAX_PAGE = 200;
export const MAX_NOTES = 2000;

const SUMMARY_COLUMNS = `d.id, d.tenant_id, d.event_id, d.source, d.event_type, d.error_type, d.error_code, d.error_message, d.retry_count,
  d.last_retry_at, d.remediation_status, d.resolved_at, d.created_at,
  ((extract(epoch FROM d.created_at) * 1000000)::bigint)::text AS created_us`;

type Row = Record<string, unknown> & { created_us: string };

/** Cursor microseconds since the epoch of the same years. */
const FIRST_US = BigInt(FIRST_INSTANT) * 1000n;
const LAST_US = BigInt(LAST_INSTANT) * 1000n + 999n;

/**
 * Parses a `from`/`to` filter: an RFC 3339 date-time with its offset, or a date (midnight UTC),
 * in years 0001–9999. Anything else is a `validation_failed` error naming the field.
 */
export function parseInstant(field: string, text: string): Date {
  const parsed = readInstant(field, text);
  if (typeof parsed === 'string') throw new DeadEventError('validation_failed', parsed, { field });
  return parsed;
}

/** Newest first, keyset-paginated on (created_at, id) through idx_dead_events_tenant_created. */
export async function listDeadEvents(client: Queryable, tenantId: string, f: DeadEventFilter): Promise<{ items: DeadEventSummary[]; next_cursor: string | null }> {
  if (!Number.isInteger(f.limit) || f.limit < 1 || f.limit > MAX_PAGE) {
    throw new DeadEventError('dead_event_limit_invalid', `limit must be an integer from 1 to ${MAX_PAGE}`, { field: 'limit' });
  }
  for (const [field, v] of [['error_type', f.errorType], ['event_type', f.eventType], ['source', f.source]] as const) {
    // PostgreSQL text cannot hold NUL: the query would fail (22021) instead of finding nothing.
    if (v?.includes('\u0000')) throw new DeadEventError('validation_failed', `${field} must not contain NUL characters`, { field });
  }
  for (const [field, v] of [['from', f.from], ['to', f.to]] as const) {
    if (v !== undefined && !inStorableYears(v)) {
      throw new DeadEventError('validation_failed', `${field} must be a valid instant in years 0001–9999 (UTC)`, { field });
    }
  }
  const params: unknown[] = [];
  const p = (v: unknown) => `$${params.push(v)}`;
  const where: string[] = [`d.tenant_id = ${p(tenantId)}`];
  if (f.status?.length) where.push(`d.remediation_status = ANY(${p(f.status)}::text[])`);
  if (f.errorType !== undefined) where.push(`d.error_type = ${p(f.errorType)}`);
  if (f.eventType !== undefined) where.push(`d.event_type = ${p(f.eventType)}`);
  if (f.source !== undefined) where.push(`d.source = ${p(f.source)}`);
  if (f.from !== undefined) where.push(`d.created_at >= ${p(formatInstant(f.from))}`);
  if (f.to !== undefined) where.push(`d.created_at < ${p(formatInstant(f.to))}`);
  if (f.cursor !== undefined) {
    const c = decodeCursor(f.cursor);
    where.push(`(d.created_at, d.id) < (timestamptz 'epoch' + ${p(c.us)}::bigint * interval '1 microsecond', ${p(c.id)}::uuid)`);
  }
  const { rows } = await client.query<Row>(
    `SELECT ${SUMMARY_COLUMNS} FROM dead_events d
      WHERE ${where.join(' AND ')}
      ORDER BY d.created_at DESC, d.id DESC
      LIMIT ${f.limit + 1}`,
    params,
  );
  const more = rows.length > f.limit;
  const page = rows.slice(0, f.limit);
  const last = page[page.length - 1];
  return { items: page.map(summary), next_cursor: more && last ? encodeCursor(last.created_us, String(last.id)) : null };
}

export async function getDeadEvent(client: Queryable, tenantId: string, id: string): Promise<DeadEvent> {
  const { rows } = await client.query<Row>(
    `SELECT ${SUMMARY_COLUMNS}, d.error_traceback, d.error_detail, d.remediation_notes, d.raw_payload, e.processing_status AS event_status
       FROM dead_events d LEFT JOIN attribution_events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id
      WHERE d.tenant_id = $1 AND d.id = $2`,
    [tenantId, id],
  );
  if (!rows[0]) throw notFound(id);
  return full(rows[0]);
}

/**
 * Applies a remediation action (see transitions.ts) with an optional note, appended to
 * remediation_notes as `<time> <actor>: <action>: <note>`. `retry` re-queues the original
 * event (due at once, workers notified); while it is back in the queue the worker owns the
 * outcome (resolved when processed, pending again when it fails), so every action on the dead
 * event is refused until then (`dead_event_retry_in_flight`).
 */
export async function applyRemediation(
  client: Queryable,
  tenantId: string,
  id: string,
  action: RemediationAction,
  options: { notes?: string; actor: string },
): Promise<DeadEvent> {
  const notes = options.notes === undefined ? undefined : validateNotes(options.notes);
  const peek = (await client.query<{ event_id: string | null }>(`SELECT event_id FROM dead_events WHERE tenant_id = $1 AND id = $2`, [tenantId, id])).rows[0];
  if (!peek) throw notFound(id);
  // Lock order: the event, then its dead event, as the worker does (its claim locks the event,
  // then it resolves or reopens the dead event), so a move racing a worker waits for its batch
  // instead of deadlocking with it.
  const event = peek.event_id
    ? (await client.query<{ processing_status: string }>(`SELECT processing_status FROM attribution_events WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, [tenantId, peek.event_id])).rows[0]
    : undefined;
  // The database's time once the lock is held (`at`) stamps the move: Citus refuses clock_timestamp()
  // (VOLATILE) in a distributed UPDATE and any non-IMMUTABLE function inside its CASE.
  const { rows } = await client.query<{ tenant_id: string; event_id: string | null; remediation_status: RemediationStatus; source: string; at: Date }>(
    `SELECT tenant_id, event_id, remediation_status, source, clock_timestamp() AS at FROM dead_events WHERE tenant_id = $1 AND id = $2 FOR UPDATE`,
    [tenantId, id],
  );
  const dead = rows[0];
  if (!dead) throw notFound(id);
  if (dead.event_id !== peek.event_id) {
    throw new DeadEventError('dead_event_retry_in_flight', `dead event ${id} changed while this action started; try again`);
  }
  if (event?.processing_status === 'pending') {
    throw new DeadEventError('dead_event_retry_in_flight', `dead event ${id} is being retried: its event is back in the queue; wait for the worker's outcome`, {
      details: { remediation_status: dead.remediation_status },
    });
  }
  const to = nextStatus(action, dead.remediation_status);
  const note = `${formatInstant(new Date())} ${options.actor}: ${action}${notes ? `: ${notes}` : ''}`;

  if (action === 'retry') {
    if (!dead.event_id || !event) {
      throw new DeadEventError('dead_event_not_retryable', `dead event ${id} (source ${dead.source}) has no event to re-queue; resolve or ignore it instead`);
    }
    if (event.processing_status !== 'failed') {
      throw new DeadEventError('dead_event_not_retryable', `the event of dead event ${id} is already ${event.processing_status}; resolve it instead`);
    }
    await client.query(`UPDATE attribution_events SET processing_status = 'pending', next_attempt_at = NULL WHERE tenant_id = $1 AND id = $2`, [tenantId, dead.event_id]);
    await client.query(
      `UPDATE dead_events SET remediation_status = $3, retry_count = retry_count + 1, last_retry_at = $5,
              remediation_notes = ${APPEND_NOTE}
        WHERE tenant_id = $1 AND id = $2`,
      [tenantId, id, to, note, dead.at],
    );
    // Delivered at COMMIT: idle workers wake at once instead of at their next poll.
    await client.query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, dead.tenant_id]);
  } else {
    await client.query(
      `UPDATE dead_events SET remediation_status = $3::text, resolved_at = COALESCE($5::timestamptz, resolved_at),
              remediation_notes = ${APPEND_NOTE}
        WHERE tenant_id = $1 AND id = $2`,
      [tenantId, id, to, note, to === 'resolved' || to === 'ignored' ? dead.at : null],
    );
  }
  return getDeadEvent(client, tenantId, id);
}

/**
 * remediation_notes with the note $4 appended on a line of its own (as concat_ws(E'\n', notes, $4),
 * which Citus refuses in an UPDATE: a STABLE function of a column; text || is IMMUTABLE).
 */
const APPEND_NOTE = `COALESCE(remediation_notes || E'\\n', '') || $4::text`;

export function validateNotes(notes: string): string {
  const trimmed = notes.trim();
  if (trimmed === '' || [...trimmed].length > MAX_NOTES || /[\u0000-\u0008\u000b-\u001f\u007f]/.test(trimmed)) {
    throw new DeadEventError('dead_event_notes_invalid', `notes must be 1 to ${MAX_NOTES} characters without control characters (newlines and tabs allowed)`, {
      field: 'notes',
    });
  }
  return trimmed;
}

function notFound(id: string): DeadEventError {
  return new DeadEventError('dead_event_not_found', `no dead event ${id}`);
}

function encodeCursor(us: string, id: string): string {
  return Buffer.from(`${us}:${id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { us: string; id: string } {
  const m = /^(-?\d{1,19}):([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(
    /^[A-Za-z0-9_-]{1,200}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '',
  );
  // Bounded to the instants a dead event can have been created at: beyond them the bigint or the timestamp arithmetic would fail.
  if (!m || BigInt(m[1]!) < FIRST_US || BigInt(m[1]!) > LAST_US) {
    throw new DeadEventError('dead_event_cursor_invalid', 'the cursor is not one this API returned', { field: 'cursor' });
  }
  return { us: m[1]!, id: m[2]! };
}

const iso = (v: unknown) => (v instanceof Date ? formatInstant(v) : v === null || v === undefined ? null : String(v));

function summary(r: Row): DeadEventSummary {
  return {
    id: String(r.id),
    tenant_id: String(r.tenant_id),
    event_id: (r.event_id as string | null) ?? null,
    source: String(r.source),
    event_type: String(r.event_type),
    error_type: String(r.error_type),
    error_code: String(r.error_code),
    error_message: String(r.error_message),
    retry_count: Number(r.retry_count),
    last_retry_at: iso(r.last_retry_at),
    remediation_status: r.remediation_status as RemediationStatus,
    resolved_at: iso(r.resolved_at),
    created_at: iso(r.created_at)!,
  };
}

function full(r: Row): DeadEvent {
  return {
    ...summary(r),
    error_traceback: (r.error_traceback as string | null) ?? null,
    error_detail: r.error_detail,
    remediation_notes: (r.remediation_notes as string | null) ?? null,
    raw_payload: r.raw_payload,
    event_status: (r.event_status as string | null) ?? null,
  };
}
