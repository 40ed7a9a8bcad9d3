import type pg from 'pg';
import { attributeConversion } from '../attribution/entry.js';
import { isConnectionError } from '../db/errors.js';
import { retryDelayMs } from './backoff.js';
import { classifyFailure, isRetryableInPlace, WorkerEventError, type ClassifiedFailure } from './classify.js';
import {
  claimEvents,
  deadLetter,
  markProcessed,
  noteLine,
  recordThroughput,
  resolveRetried,
  scheduleRetry,
  setTenant,
  type ClaimedEvent,
} from './queue.js';

export interface BatchSettings {
  batchSize: number;
  maxRetries: number;
  retryBaseMs: number;
  retryMaxMs: number;
  statementTimeoutMs: number;
  /** worker_instances.id and loop number: the throughput row this batch adds to. */
  instanceId: string;
  slot: number;
  /** Attempts of a transient error (deadlock, serialization failure…) repeated at once before it counts as a failed attempt. */
  inPlaceRetries?: number;
  random?: () => number;
}

/** One failed attempt, as the worker reports (and logs) it. */
export interface FailureReport {
  eventId: string;
  tenantId: string;
  eventType: string;
  /** Failed attempts of the event so far, this one included. */
  attempt: number;
  failure: ClassifiedFailure;
  /** 'retry': back in the queue, due at nextAttemptAt; 'dead': marked failed and dead-lettered. */
  outcome: 'retry' | 'dead';
  delayMs: number | null;
  /** Start of the batch transaction that made this attempt (the claim), by the database's clock. */
  claimedAt: Date;
  nextAttemptAt: Date | null;
  deadEventId: string | null;
}

export interface BatchResult {
  claimed: number;
  processed: number;
  retried: number;
  deadLettered: number;
  /** Dead events resolved because their retried event was processed. */
  resolved: number;
  failures: FailureReport[];
}

const EMPTY: BatchResult = { claimed: 0, processed: 0, retried: 0, deadLettered: 0, resolved: 0, failures: [] };

/**
 * One batch, in ONE transaction: claim (row locks), process every event with its tenant
 * context set, record completions, failures and counters, commit. A crash or a lost
 * connection anywhere before COMMIT rolls all of it back, locks included, so the events are
 * pending again, untouched (no attempt counted); after COMMIT all of it is durable. Hence no
 * event is lost or processed twice, and allocations always commit with their event's status.
 *
 * Each event runs under a savepoint so one failure does not undo the others. Touchpoints (no
 * work beyond being marked processed: journeys are read from the stored events) are marked in
 * one statement per tenant, falling back to one by one when that statement fails.
 *
 * Throws (after rolling back) only on batch-level trouble: a lost connection, or a failure to
 * record a failure. Per-event failures are recorded and reported in the result.
 */
export async function processBatch(client: pg.ClientBase, s: BatchSettings): Promise<BatchResult> {
  await client.query(
    `BEGIN; SET LOCAL statement_timeout = ${Math.trunc(s.statementTimeoutMs)};` +
      // A worker stalled mid-batch (not crashed) must not hold its locks forever.
      ` SET LOCAL idle_in_transaction_session_timeout = ${Math.max(60_000, Math.trunc(s.statementTimeoutMs) * 2)}`,
  );
  try {
    const claimed = await claimEvents(client, s.batchSize);
    if (claimed.length === 0) {
      await client.query('COMMIT');
      return EMPTY;
    }
    const result: BatchResult = { ...EMPTY, claimed: claimed.length, failures: [] };
    for (const [tenantId, events] of byTenant(claimed)) {
      await setTenant(client, tenantId);
      const done: ClaimedEvent[] = [];
      const failed: { event: ClaimedEvent; error: unknown }[] = [];

      const touchpoints = events.filter((e) => e.event_type === 'touchpoint');
      if (touchpoints.length > 0) {
        const bulk = await attempt(client, s, () => markProcessed(client, touchpoints.map((e) => e.id)));
        if (bulk.ok) done.push(...touchpoints);
        else {
          // One of them fails: find it without losing the others.
          for (const event of touchpoints) {
            const one = touchpoints.length === 1 ? bulk : await attempt(client, s, () => markProcessed(client, [event.id]));
            if (one.ok) done.push(event);
            else failed.push({ event, error: one.error });
          }
        }
      }
      for (const event of events) {
        if (event.event_type === 'touchpoint') continue;
        if (event.event_type !== 'conversion') {
          failed.push({
            event,
            error: new WorkerEventError('event_type_unknown', `event type ${JSON.stringify(event.event_type)} is neither touchpoint nor conversion`),
          });
          continue;
        }
        const one = await attempt(client, s, async () => {
          await attributeConversion(client, tenantId, event.id);
          await markProcessed(client, [event.id]);
        });
        if (one.ok) done.push(event);
        else failed.push({ event, error: one.error });
      }

      result.processed += done.length;
      const retried = done.filter((e) => e.retry_count > 0).map((e) => e.id);
      if (retried.length > 0) result.resolved += (await resolveRetried(client, retried, noteLine('worker', 'retry succeeded; event processed'))).length;

      for (const { event, error } of failed) {
        const failure = classifyFailure(error);
        const attempts = event.retry_count + 1;
        if (failure.permanent || attempts > s.maxRetries) {
          const why = failure.permanent ? 'permanent error' : `attempt ${attempts} of ${s.maxRetries + 1}`;
          const dead = await deadLetter(client, event.id, attempts, failure, noteLine('worker', `failed again (${why}): ${failure.type}: ${failure.message}`));
          result.deadLettered++;
          result.failures.push({
            eventId: event.id, tenantId, eventType: event.event_type, attempt: attempts, failure, outcome: 'dead',
            delayMs: null, claimedAt: dead.claimed_at, nextAttemptAt: null, deadEventId: dead.dead_event_id,
          });
        } else {
          const delayMs = retryDelayMs(attempts, s.retryBaseMs, s.retryMaxMs, s.random);
          const at = await scheduleRetry(client, event.id, attempts, delayMs, failure);
          result.retried++;
          result.failures.push({
            eventId: event.id, tenantId, eventType: event.event_type, attempt: attempts, failure, outcome: 'retry',
            delayMs, claimedAt: at.claimed_at, nextAttemptAt: at.next_attempt_at, deadEventId: null,
          });
        }
      }
    }
    await recordThroughput(client, s.instanceId, s.slot, { processed: result.processed, failed: result.retried, deadLettered: result.deadLettered });
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

type Attempt = { ok: true } | { ok: false; error: unknown };

/**
 * Runs `fn` under a savepoint: on failure only its own work is undone. Transient errors
 * (deadlock, serialization failure, lock timeout, resources) are repeated in place a few times
 * before they count as a failed attempt; a lost connection aborts the whole batch.
 */
async function attempt(client: pg.ClientBase, s: BatchSettings, fn: () => Promise<unknown>): Promise<Attempt> {
  const tries = 1 + (s.inPlaceRetries ?? 3);
  for (let i = 1; ; i++) {
    await client.query('SAVEPOINT skeldir_event');
    try {
      await fn();
      await client.query('RELEASE SAVEPOINT skeldir_event');
      return { ok: true };
    } catch (error) {
      if (isConnectionError(error)) throw error;
      await client.query('ROLLBACK TO SAVEPOINT skeldir_event');
      await client.query('RELEASE SAVEPOINT skeldir_event');
      if (i < tries && isRetryableInPlace(error)) {
        await new Promise((r) => setTimeout(r, 5 * 2 ** i + Math.random() * 20));
        continue;
      }
      return { ok: false, error };
    }
  }
}

function byTenant(events: readonly ClaimedEvent[]): Map<string, ClaimedEvent[]> {
  const groups = new Map<string, ClaimedEvent[]>();
  for (const e of events) {
    const g = groups.get(e.tenant_id);
    if (g) g.push(e);
    else groups.set(e.tenant_id, [e]);
  }
  return groups;
}
