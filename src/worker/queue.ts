import type { Queryable } from '../db/pool.js';
import type { ClassifiedFailure } from './classify.js';
import { formatInstant } from '../db/timestamps.js';
import { tenantContextSql } from '../db/tenant-context.js';

/**
 * The queue's SQL, one function per statement. Everything but `claimEvents` runs as the
 * application role with the event's tenant context set, inside the batch transaction that
 * claimed the events (their row locks are held until it ends).
 */

export interface ClaimedEvent {
  id: string;
  tenant_id: string;
  event_type: string;
  /** Failed attempts so far. */
  retry_count: number;
}

/**
 * Locks up to `limit` due pending events of any tenant for this transaction (due retries first,
 * then events due at once; skipping rows other workers hold) through the SECURITY DEFINER
 * function of revision 202611280313 (two partial-index range scans); see docs/worker.md for why
 * the locks, not a status change, are the claim.
 */
export async function claimEvents(client: Queryable, limit: number): Promise<ClaimedEvent[]> {
  const { rows } = await client.query<ClaimedEvent>('SELECT id, tenant_id, event_type, retry_count FROM skeldir_claim_due_events($1)', [limit]);
  return rows;
}

/** Transaction-local tenant context: row-level security now shows only this tenant's rows. */
export async function setTenant(client: Queryable, tenantId: string): Promise<void> {
  await client.query(tenantContextSql(tenantId));
}

/**
 * Marks claimed events processed. Deliberately no `AND processing_status = 'pending'`: the
 * claim's lock guarantees it, and a bug processing an event twice must show (tests log every
 * transition to processed) rather than be silently filtered. last_error_* stay: with
 * retry_count they tell that, and why, an event failed before it went through.
 */
export async function markProcessed(client: Queryable, ids: readonly string[]): Promise<number> {
  const r = await client.query(
    `UPDATE attribution_events
        SET processing_status = 'processed', processed_at = clock_timestamp(), next_attempt_at = NULL
      WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  return r.rowCount ?? 0;
}

/** Puts a failed event back in the queue, due after `delayMs`. Returns the claim time (the transaction's start) and the due time, both by the database's clock. */
export async function scheduleRetry(
  client: Queryable,
  eventId: string,
  failedAttempts: number,
  delayMs: number,
  failure: ClassifiedFailure,
): Promise<{ claimed_at: Date; next_attempt_at: Date }> {
  const { rows } = await client.query<{ claimed_at: Date; next_attempt_at: Date }>(
    `UPDATE attribution_events
        SET retry_count = $2, next_attempt_at = clock_timestamp() + $3 * interval '1 millisecond',
            last_error_type = $4, last_error_message = $5
      WHERE id = $1
      RETURNING now() AS claimed_at, next_attempt_at`,
    [eventId, failedAttempts, delayMs, failure.type, failure.message],
  );
  return rows[0]!;
}

/**
 * Gives up on an event: marks it failed and copies it to dead_events (remediation pending),
 * in one statement. An event that already has a dead event (it died, was retried from the
 * dead-letter queue and failed again) reopens that one instead of adding a second.
 */
export async function deadLetter(
  client: Queryable,
  eventId: string,
  failedAttempts: number,
  failure: ClassifiedFailure,
  note: string,
): Promise<{ dead_event_id: string; claimed_at: Date }> {
  const detail = { code: failure.code, type: failure.type, message: failure.message, sqlstate: failure.sqlstate, attempts: failedAttempts, traceback: failure.traceback };
  const { rows } = await client.query<{ dead_event_id: string; claimed_at: Date }>(
    `WITH e AS (
       UPDATE attribution_events
          SET processing_status = 'failed', retry_count = $2, processed_at = clock_timestamp(), next_attempt_at = NULL,
              last_error_type = $3, last_error_message = $4
        WHERE id = $1
        RETURNING id, tenant_id, event_type, raw_payload
     )
     INSERT INTO dead_events AS d
       (tenant_id, event_id, source, event_type, error_type, error_code, error_message, error_traceback, error_detail,
        retry_count, raw_payload, remediation_status)
     SELECT e.tenant_id, e.id, 'worker', e.event_type, $3, $5, $4, $6, $7::jsonb, $2, e.raw_payload, 'pending' FROM e
     ON CONFLICT (tenant_id, event_id) WHERE event_id IS NOT NULL DO UPDATE
        SET event_type = excluded.event_type, error_type = excluded.error_type, error_code = excluded.error_code,
            error_message = excluded.error_message, error_traceback = excluded.error_traceback,
            error_detail = excluded.error_detail, retry_count = excluded.retry_count, raw_payload = excluded.raw_payload,
            remediation_status = 'pending', resolved_at = NULL,
            remediation_notes = concat_ws(E'\\n', d.remediation_notes, $8::text)
     RETURNING d.id AS dead_event_id, now() AS claimed_at`,
    [eventId, failedAttempts, failure.type, failure.message, failure.code, failure.traceback, JSON.stringify(detail), note],
  );
  if (!rows[0]) throw new Error(`event ${eventId} vanished while it was claimed`);
  return rows[0];
}

/** The event has a dead event: it is pending again only because it was retried from the dead-letter queue. */
export async function hasDeadEvent(client: Queryable, eventId: string): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>(`SELECT EXISTS (SELECT 1 FROM dead_events WHERE event_id = $1) AS ok`, [eventId]);
  return rows[0]!.ok;
}

/**
 * Dead events whose retry (from the dead-letter queue) has just succeeded: in_progress →
 * resolved, in the same transaction as the event's processing.
 */
export async function resolveRetried(client: Queryable, eventIds: readonly string[], note: string): Promise<string[]> {
  const { rows } = await client.query<{ id: string }>(
    `UPDATE dead_events
        SET remediation_status = 'resolved', resolved_at = clock_timestamp(),
            remediation_notes = concat_ws(E'\\n', remediation_notes, $2::text)
      WHERE event_id = ANY($1::uuid[]) AND remediation_status = 'in_progress'
      RETURNING id`,
    [eventIds, note],
  );
  return rows.map((r) => r.id);
}

export interface Counts {
  processed: number;
  failed: number;
  deadLettered: number;
}

/** Adds a batch's counts to this loop's row of the current minute (one row per loop: loops never wait on each other). */
export async function recordThroughput(client: Queryable, instanceId: string, slot: number, c: Counts): Promise<void> {
  await client.query(
    `INSERT INTO worker_throughput AS t (instance_id, slot, bucket_minute, processed, failed, dead_lettered)
     VALUES ($1, $2, date_trunc('minute', clock_timestamp()), $3, $4, $5)
     ON CONFLICT (instance_id, slot, bucket_minute) DO UPDATE
        SET processed = t.processed + excluded.processed, failed = t.failed + excluded.failed,
            dead_lettered = t.dead_lettered + excluded.dead_lettered`,
    [instanceId, slot, c.processed, c.failed, c.deadLettered],
  );
}

/** A line for remediation_notes: `<UTC time> <who>: <text>`. */
export function noteLine(who: string, text: string): string {
  return `${formatInstant(new Date())} ${who}: ${text}`;
}
