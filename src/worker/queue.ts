import type { Queryable } from '../db/pool.js';
import type { ClassifiedFailure } from './classify.js';
import { formatInstant } from '../db/timestamps.js';
import { tenantContextSql } from '../db/tenant-context.js';

/**
 * The queue's SQL, one function per statement. Everything but `claimEvents` and `dueTenants` runs as the
 * application role with the event's tenant context set, inside the batch transaction that
 * claimed the events (their row locks are held until it ends).
 *
 * On Citus the claim is per tenant (dueTenants, then claimTenantEvents for each), see there.
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
 * Citus (skeldir citus distribute made skeldir_due_tenants): up to `limit` tenants with due
 * events, in random order, locking nothing (a read fanned out to every shard, as the function's
 * owner). now(): the claim time, as claimEvents.
 */
export async function dueTenants(client: Queryable, limit: number): Promise<{ tenants: string[]; claimedAt: Date | null }> {
  const { rows } = await client.query<{ tenant_id: string; claimed_at: Date }>(
    'SELECT tenant_id, now() AS claimed_at FROM skeldir_due_tenants($1)',
    [limit],
  );
  return { tenants: rows.map((r) => r.tenant_id), claimedAt: rows[0]?.claimed_at ?? null };
}

/**
 * The planner settings of the per-tenant claim: those skeldir_claim_due_events has on one server
 * (202611280313), for the same reason. Only the tenant-led partial indexes give the two branches'
 * orders without a sort, so with sorts off the plan does not depend on statistics; without them,
 * inside the whole Citus suite (2026-12-07), the shard took idx_events_processing_status and an
 * Incremental Sort for the new events' branch, which filters every waiting retry of the shard.
 * Applied with SET LOCAL around the claim (withLocalSettings), which reaches the shards.
 */
export const CLAIM_TENANT_SETTINGS = { enable_bitmapscan: 'off', enable_sort: 'off', enable_incremental_sort: 'off' } as const;

/**
 * The claim of one tenant's events on Citus: skeldir_claim_due_events' query for one tenant, run
 * as the application role in the tenant's context (setTenant first), routed to the tenant's shard
 * by the explicit tenant_id. Due retries first, then events due at once, each branch through its
 * tenant-led partial index (idx_events_claim_retry_tenant, idx_events_claim_new_tenant), FOR
 * UPDATE SKIP LOCKED: the locks are the claim, as on one server; `skip` (events set aside) are
 * neither returned nor locked. "Due" is by `claimedAt` (the coordinator's now(), from dueTenants),
 * not the shard's now(): the shard's transaction starts later, and a retry due in between would
 * be claimed before the claim time the batch reports.
 */
export const CLAIM_TENANT_SQL = `SELECT c.id, c.tenant_id, c.event_type, c.retry_count
  FROM (SELECT * FROM (SELECT e.id, e.tenant_id, e.event_type::text AS event_type, e.retry_count
                         FROM attribution_events e
                        WHERE e.tenant_id = $1::uuid AND e.processing_status = 'pending'
                          AND e.next_attempt_at IS NOT NULL AND e.next_attempt_at <= $4::timestamptz AND e.id <> ALL($3::uuid[])
                        ORDER BY e.next_attempt_at
                        LIMIT $2::integer
                          FOR UPDATE SKIP LOCKED) retry
        UNION ALL
        SELECT * FROM (SELECT e.id, e.tenant_id, e.event_type::text AS event_type, e.retry_count
                         FROM attribution_events e
                        WHERE e.tenant_id = $1::uuid AND e.processing_status = 'pending'
                          AND e.next_attempt_at IS NULL AND e.id <> ALL($3::uuid[])
                        ORDER BY e.processed_at, e.created_at
                        LIMIT $2::integer
                          FOR UPDATE SKIP LOCKED) new) c
 LIMIT $2::integer`;

export async function claimTenantEvents(client: Queryable, tenantId: string, limit: number, skip: readonly string[], claimedAt: Date): Promise<ClaimedEvent[]> {
  const { rows } = await client.query<ClaimedEvent>(CLAIM_TENANT_SQL, [tenantId, limit, skip, claimedAt]);
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
export async function markProcessed(client: Queryable, tenantId: string, ids: readonly string[]): Promise<number> {
  const r = await client.query(
    `WITH c AS (SELECT clock_timestamp() AS at)
     UPDATE attribution_events e
        SET processing_status = 'processed', processed_at = c.at, next_attempt_at = NULL
       FROM c
      WHERE e.tenant_id = $1::uuid AND e.id = ANY($2::uuid[])`,
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
    `WITH c AS (SELECT clock_timestamp() + $4::integer * interval '1 millisecond' AS at)
     UPDATE attribution_events e
        SET retry_count = $3::integer, next_attempt_at = c.at, last_error_type = $5::text, last_error_message = $6::text
       FROM c
      WHERE e.tenant_id = $1::uuid AND e.id = $2::uuid
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
 * DO UPDATE). Every parameter is cast: Citus sends the modifying CTE to the shard as a query of
 * its own, where an untyped parameter is "could not determine data type of parameter $1". The
 * note of a reopened dead event is appended by a second statement (reopenNote): Citus sends the
 * INSERT to the shard as `INSERT … SELECT FROM read_intermediate_result(…)` with only the
 * DO UPDATE's own parameter in it ($9), which the shard then cannot type either ($1 … $8 unused).
 */
export async function deadLetter(
  client: Queryable,
  tenantId: string,
  eventId: string,
  failedAttempts: number,
  failure: ClassifiedFailure,
  note: string,
): Promise<{ dead_event_id: string }> {
  // The event's row lock (the claim) keeps its dead event as it is until this transaction ends.
  const reopened = await hasDeadEvent(client, tenantId, eventId);
  const detail = { code: failure.code, type: failure.type, message: failure.message, sqlstate: failure.sqlstate, attempts: failedAttempts, traceback: failure.traceback };
  const { rows } = await client.query<{ dead_event_id: string }>(
    `WITH c AS (SELECT clock_timestamp() AS at),
     e AS (
       UPDATE attribution_events e
          SET processing_status = 'failed', retry_count = $3::integer, processed_at = c.at, next_attempt_at = NULL,
              last_error_type = $4::text, last_error_message = $5::text
         FROM c
        WHERE e.tenant_id = $1::uuid AND e.id = $2::uuid
        RETURNING e.id, e.tenant_id, e.event_type, e.raw_payload
     )
     INSERT INTO dead_events AS d
       (tenant_id, event_id, source, event_type, error_type, error_code, error_message, error_traceback, error_detail,
        retry_count, raw_payload, remediation_status)
     SELECT e.tenant_id, e.id, 'worker', e.event_type, $4::text, $6::text, $5::text, $7::text, $8::jsonb, $3::integer, e.raw_payload, 'pending' FROM e
     ON CONFLICT (tenant_id, event_id) WHERE event_id IS NOT NULL DO UPDATE
        SET event_type = excluded.event_type, error_type = excluded.error_type, error_code = excluded.error_code,
            error_message = excluded.error_message, error_traceback = excluded.error_traceback,
            error_detail = excluded.error_detail, retry_count = excluded.retry_count, raw_payload = excluded.raw_payload,
            remediation_status = 'pending', resolved_at = NULL
     RETURNING d.id AS dead_event_id`,
    [tenantId, eventId, failedAttempts, failure.type, failure.message, failure.code, failure.traceback, JSON.stringify(detail)],
  );
  if (!rows[0]) throw new Error(`event ${eventId} vanished while it was claimed`);
  if (reopened) await reopenNote(client, tenantId, rows[0].dead_event_id, note);
  return rows[0];
}

/** Appends a line to a reopened dead event's notes (see deadLetter: not in its ON CONFLICT on Citus). */
async function reopenNote(client: Queryable, tenantId: string, deadEventId: string, note: string): Promise<void> {
  await client.query(
    `UPDATE dead_events SET remediation_notes = coalesce(remediation_notes || E'\\n', '') || $3::text WHERE tenant_id = $1::uuid AND id = $2::uuid`,
    [tenantId, deadEventId, note],
  );
}

/** The event has a dead event: it is pending again only because it was retried from the dead-letter queue. */
export async function hasDeadEvent(client: Queryable, tenantId: string, eventId: string): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>(`SELECT EXISTS (SELECT 1 FROM dead_events WHERE tenant_id = $1::uuid AND event_id = $2::uuid) AS ok`, [tenantId, eventId]);
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
      WHERE d.tenant_id = $1::uuid AND d.event_id = ANY($2::uuid[]) AND d.remediation_status = 'in_progress'
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
