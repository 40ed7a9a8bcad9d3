import type { Queryable } from '../db/pool.js';
import type { ClassifiedFailure } from './classify.js';
import { formatInstant } from '../db/timestamps.js';
import { tenantContextSql } from '../db/tenant-context.js';

/**
 * The queue's SQL, one function per statement. Everything but `claimEvents` runs as the
 * application role with the event's tenant context set, inside the batch transaction that
 * claimed the events (their row locks are held until it ends).
 *
 * Every statement names its tenant_id (on Citus that routes it to the tenant's shard: the
 * policy's current_setting() does not), and the database's clock is read once per statement in
 * a CTE (`WITH c AS (SELECT clock_timestamp() AS at)`) instead of in SET or RETURNING: Citus
 * refuses VOLATILE functions in a distributed UPDATE and non-IMMUTABLE ones in RETURNING, and
 * evaluates the CTE on the coordinator. On one server the result is the same.
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
export async function claimEvents(client: Queryable, limit: number): Promise<{ events: ClaimedEvent[]; claimedAt: Date | null }> {
  const { rows } = await client.query<ClaimedEvent & { claimed_at: Date }>(
    'SELECT id, tenant_id, event_type, retry_count, now() AS claimed_at FROM skeldir_claim_due_events($1)',
    [limit],
  );
  // now() is the transaction's start: the claim time of every event of the batch (null: none claimed).
  return { events: rows.map(({ claimed_at: _, ...e }) => e), claimedAt: rows[0]?.claimed_at ?? null };
}

/**
 * Locks, as the application role in the tenant's context, the claimed events of one tenant that
 * are still due and not locked by another worker; returns their ids. On one server the claim
 * function has locked them already in this transaction (this statement finds them all, at one
 * statement per tenant per batch). On Citus the claim only names candidates (it runs as its
 * owner, on its own connection to the shard: locks there would block this transaction's own
 * updates), so this lock is the claim, and a candidate another worker got first is dropped.
 */
export async function lockClaimed(client: Queryable, tenantId: string, ids: readonly string[]): Promise<Set<string>> {
  const { rows } = await client.query<{ id: string }>(
    `SELECT e.id FROM attribution_events e
      WHERE e.tenant_id = $1 AND e.id = ANY($2::uuid[]) AND e.processing_status = 'pending'
        AND (e.next_attempt_at IS NULL OR e.next_attempt_at <= now())
      FOR UPDATE SKIP LOCKED`,
    [tenantId, ids],
  );
  return new Set(rows.map((r) => r.id));
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
export async function markProcessed(client: Queryable, tenantId: string, ids: readonly string[]): Promise<number> {
  const r = await client.query(
    `WITH c AS (SELECT clock_timestamp() AS at)
     UPDATE attribution_events e
        SET processing_status = 'processed', processed_at = c.at, next_attempt_at = NULL
       FROM c
      WHERE e.tenant_id = $1 AND e.id = ANY($2::uuid[])`,
    [tenantId, ids],
  );
  return r.rowCount ?? 0;
}

/** Puts a failed event back in the queue, due after `delayMs`. Returns the due time, by the database's clock. */
export async function scheduleRetry(
  client: Queryable,
  tenantId: string,
  eventId: string,
  failedAttempts: number,
  delayMs: number,
  failure: ClassifiedFailure,
): Promise<{ next_attempt_at: Date }> {
  const { rows } = await client.query<{ next_attempt_at: Date }>(
    `WITH c AS (SELECT clock_timestamp() + $4 * interval '1 millisecond' AS at)
     UPDATE attribution_events e
        SET retry_count = $3, next_attempt_at = c.at, last_error_type = $5, last_error_message = $6
       FROM c
      WHERE e.tenant_id = $1 AND e.id = $2
      RETURNING e.next_attempt_at`,
    [tenantId, eventId, failedAttempts, delayMs, failure.type, failure.message],
  );
  if (!rows[0]) throw new Error(`event ${eventId} vanished while it was claimed`);
  return rows[0];
}

/**
 * Gives up on an event: marks it failed and copies it to dead_events (remediation pending),
 * in one statement. An event that already has a dead event (it died, was retried from the
 * dead-letter queue and failed again) reopens that one instead of adding a second (its notes
 * appended with `||`, not concat_ws(): Citus refuses STABLE functions of columns in ON CONFLICT
 * DO UPDATE).
 */
export async function deadLetter(
  client: Queryable,
  tenantId: string,
  eventId: string,
  failedAttempts: number,
  failure: ClassifiedFailure,
  note: string,
): Promise<{ dead_event_id: string }> {
  const detail = { code: failure.code, type: failure.type, message: failure.message, sqlstate: failure.sqlstate, attempts: failedAttempts, traceback: failure.traceback };
  const { rows } = await client.query<{ dead_event_id: string }>(
    `WITH c AS (SELECT clock_timestamp() AS at),
     e AS (
       UPDATE attribution_events e
          SET processing_status = 'failed', retry_count = $3, processed_at = c.at, next_attempt_at = NULL,
              last_error_type = $4, last_error_message = $5
         FROM c
        WHERE e.tenant_id = $1 AND e.id = $2
        RETURNING e.id, e.tenant_id, e.event_type, e.raw_payload
     )
     INSERT INTO dead_events AS d
       (tenant_id, event_id, source, event_type, error_type, error_code, error_message, error_traceback, error_detail,
        retry_count, raw_payload, remediation_status)
     SELECT e.tenant_id, e.id, 'worker', e.event_type, $4, $6, $5, $7, $8::jsonb, $3, e.raw_payload, 'pending' FROM e
     ON CONFLICT (tenant_id, event_id) WHERE event_id IS NOT NULL DO UPDATE
        SET event_type = excluded.event_type, error_type = excluded.error_type, error_code = excluded.error_code,
            error_message = excluded.error_message, error_traceback = excluded.error_traceback,
            error_detail = excluded.error_detail, retry_count = excluded.retry_count, raw_payload = excluded.raw_payload,
            remediation_status = 'pending', resolved_at = NULL,
            remediation_notes = coalesce(d.remediation_notes || E'\\n', '') || $9::text
     RETURNING d.id AS dead_event_id`,
    [tenantId, eventId, failedAttempts, failure.type, failure.message, failure.code, failure.traceback, JSON.stringify(detail), note],
  );
  if (!rows[0]) throw new Error(`event ${eventId} vanished while it was claimed`);
  return rows[0];
}

/** The event has a dead event: it is pending again only because it was retried from the dead-letter queue. */
export async function hasDeadEvent(client: Queryable, tenantId: string, eventId: string): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>(`SELECT EXISTS (SELECT 1 FROM dead_events WHERE tenant_id = $1 AND event_id = $2) AS ok`, [tenantId, eventId]);
  return rows[0]!.ok;
}

/**
 * Dead events whose retry (from the dead-letter queue) has just succeeded: in_progress →
 * resolved, in the same transaction as the event's processing.
 */
export async function resolveRetried(client: Queryable, tenantId: string, eventIds: readonly string[], note: string): Promise<string[]> {
  const { rows } = await client.query<{ id: string }>(
    `WITH c AS (SELECT clock_timestamp() AS at)
     UPDATE dead_events d
        SET remediation_status = 'resolved', resolved_at = c.at,
            remediation_notes = coalesce(d.remediation_notes || E'\\n', '') || $3::text
       FROM c
      WHERE d.tenant_id = $1 AND d.event_id = ANY($2::uuid[]) AND d.remediation_status = 'in_progress'
      RETURNING d.id`,
    [tenantId, eventIds, note],
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
