import type pg from 'pg';
import { attributeConversion } from '../attribution/entry.js';
import { isConnectionError } from '../db/errors.js';
import { withLocalSettings } from '../db/local-settings.js';
import { retryDelayMs } from './backoff.js';
import { classifyFailure, isRetryableInPlace, WorkerEventError, type ClassifiedFailure } from './classify.js';
import {
  CLAIM_TENANT_SETTINGS,
  claimEvents,
  claimTenantEvents,
  deadLetter,
  dueTenants,
  hasDeadEvent,
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
  /** Events the worker has set aside (their batches failed as a whole): not processed by this batch. */
  skip?: ReadonlySet<string>;
  /**
   * Claim tenant by tenant (Citus: skeldir_due_tenants exists), see claim(). Otherwise one
   * statement over all tenants (skeldir_claim_due_events).
   */
  perTenantClaim?: boolean;
}

const NO_SKIP: ReadonlySet<string> = new Set();

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
  /** The events of the batch (set-aside events it skipped not included). */
  claimedIds: string[];
  processed: number;
  retried: number;
  deadLettered: number;
  /** Dead events resolved because their retried event was processed. */
  resolved: number;
  failures: FailureReport[];
}

const EMPTY: BatchResult = { claimed: 0, claimedIds: [], processed: 0, retried: 0, deadLettered: 0, resolved: 0, failures: [] };

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
 * Throws (after rolling back) only on batch-level trouble: a lost connection (the pg error
 * itself), or a BatchError (an event whose failure could not be recorded even in minimal form,
 * a failing COMMIT …). Per-event failures are recorded and reported in the result.
 */
export async function processBatch(client: pg.ClientBase, s: BatchSettings): Promise<BatchResult> {
  let claimedIds: string[] = [];
  await client.query(
    `BEGIN; SET LOCAL statement_timeout = ${Math.trunc(s.statementTimeoutMs)};` +
      // A worker stalled mid-batch (not crashed) must not hold its locks forever.
      ` SET LOCAL idle_in_transaction_session_timeout = ${Math.max(60_000, Math.trunc(s.statementTimeoutMs) * 2)}`,
  );
  try {
    const { events: claimed, claimedAt } = await claim(client, s);
    claimedIds = claimed.map((e) => e.id);
    if (claimed.length === 0) {
      await client.query('COMMIT');
      return EMPTY;
    }
    const result: BatchResult = { ...EMPTY, claimed: claimed.length, claimedIds, failures: [] };
    for (const [tenantId, events] of byTenant(claimed)) {
      await setTenant(client, tenantId);
      const done: ClaimedEvent[] = [];
      const failed: { event: ClaimedEvent; error: unknown }[] = [];

      const touchpoints = events.filter((e) => e.event_type === 'touchpoint');
      if (touchpoints.length > 0) {
        const bulk = await attempt(client, s, () => markProcessed(client, tenantId, touchpoints.map((e) => e.id)));
        if (bulk.ok) done.push(...touchpoints);
        else {
          // One of them fails: find it without losing the others.
          for (const event of touchpoints) {
            const one = touchpoints.length === 1 ? bulk : await attempt(client, s, () => markProcessed(client, tenantId, [event.id]));
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
          await markProcessed(client, tenantId, [event.id]);
        });
        if (one.ok) done.push(event);
        else failed.push({ event, error: one.error });
      }

      result.processed += done.length;
      const retried = done.filter((e) => e.retry_count > 0).map((e) => e.id);
      if (retried.length > 0) result.resolved += (await resolveRetried(client, tenantId, retried, noteLine('worker', 'retry succeeded; event processed'))).length;

      for (const { event, error } of failed) result.failures.push(await recordFailure(client, s, tenantId, claimedAt!, event, classifyFailure(error)));
    }
    for (const f of result.failures) {
      if (f.outcome === 'dead') result.deadLettered++;
      else result.retried++;
    }
    await recordThroughput(client, s.instanceId, s.slot, { processed: result.processed, failed: result.retried, deadLettered: result.deadLettered });
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    if (isConnectionError(error)) throw error;
    if (error instanceof FailureNotRecorded) throw new BatchError(error.cause, claimedIds, error.eventId);
    throw new BatchError(error, claimedIds, null);
  }
}

/**
 * Locks up to batchSize due events for this transaction (the locks are the claim).
 *
 * One server: one statement over all tenants (skeldir_claim_due_events). Events set aside by the
 * worker are claimed too (they may be at the head of the queue) but left alone: pending and
 * untouched, their locks released at COMMIT.
 *
 * Citus refuses FOR UPDATE across shards, so there the claim is a loop: the tenants with due
 * events (one read fanned out to every shard, no locks, random order so that workers spread over
 * tenants), then per tenant, in its context, a router query FOR UPDATE SKIP LOCKED for what the
 * batch still lacks, until it is full or the tenants are exhausted. A tenant whose due events
 * other workers hold gives nothing and the loop goes on to the next. Order differs from one
 * server: due retries first within a tenant, not across tenants.
 */
async function claim(client: pg.ClientBase, s: BatchSettings): Promise<{ events: ClaimedEvent[]; claimedAt: Date | null }> {
  const skip = s.skip ?? NO_SKIP;
  if (!s.perTenantClaim) {
    const c = await claimEvents(client, s.batchSize + skip.size);
    return { events: c.events.filter((e) => !skip.has(e.id)).slice(0, s.batchSize), claimedAt: c.claimedAt };
  }
  const { tenants, claimedAt } = await dueTenants(client, s.batchSize);
  const events: ClaimedEvent[] = [];
  const skipped = [...skip];
  if (tenants.length === 0) return { events, claimedAt };
  // The claim's planner settings for the loop only (3 statements a batch), not for the processing after it.
  await withLocalSettings(client, CLAIM_TENANT_SETTINGS, async () => {
    for (const tenantId of tenants) {
      if (events.length >= s.batchSize) break;
      await setTenant(client, tenantId);
      events.push(...(await claimTenantEvents(client, tenantId, s.batchSize - events.length, skipped, claimedAt!)));
    }
  });
  return { events, claimedAt };
}

type Attempt<T = unknown> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * A batch failed as a whole (anything but a lost connection) and was rolled back. `culpritId`
 * is the event that caused it when known (its failure could not be recorded even in the minimal
 * form); otherwise any of `eventIds` may be the cause (e.g. a deferred constraint failing at
 * COMMIT): the worker then processes them one per batch to find it (see Worker).
 */
export class BatchError extends Error {
  constructor(
    override readonly cause: unknown,
    readonly eventIds: readonly string[],
    readonly culpritId: string | null,
  ) {
    super(`batch of ${eventIds.length} event(s) rolled back: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'BatchError';
  }
}

/** The recording of an event's failure was refused twice (in full, then in the minimal form). */
class FailureNotRecorded extends Error {
  constructor(readonly eventId: string, override readonly cause: unknown) {
    super(`the failure of event ${eventId} could not be recorded: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/**
 * Records a failed attempt: back in the queue with a backoff delay, or dead-lettered after the
 * last retry (or at once for a permanent error). Under a savepoint, so that a refused record
 * (say, a value the database will not store) undoes only itself; it is then written again in a
 * minimal form (ASCII message, no traceback), and only if that is refused too does the batch
 * fail, naming the event (the worker sets it aside; see Worker).
 */
async function recordFailure(
  client: pg.ClientBase,
  s: BatchSettings,
  tenantId: string,
  claimedAt: Date,
  event: ClaimedEvent,
  failure: ClassifiedFailure,
): Promise<FailureReport> {
  const attempts = event.retry_count + 1;
  // An event re-queued from the dead-letter queue (it has a dead event) gets exactly one more
  // attempt, whatever its retry_count: a failure goes straight back to the engineer.
  const requeued = !failure.permanent && attempts <= s.maxRetries && (await hasDeadEvent(client, tenantId, event.id));
  const dead = failure.permanent || attempts > s.maxRetries || requeued;
  const delayMs = dead ? null : retryDelayMs(attempts, s.retryBaseMs, s.retryMaxMs, s.random);
  const write = async (f: ClassifiedFailure): Promise<FailureReport> => {
    const base = { eventId: event.id, tenantId, eventType: event.event_type, attempt: attempts, failure: f };
    if (dead) {
      const why = f.permanent ? 'permanent error' : requeued ? 'the one attempt of a retry from the dead-letter queue' : `attempt ${attempts} of ${s.maxRetries + 1}`;
      const d = await deadLetter(client, tenantId, event.id, attempts, f, noteLine('worker', `failed again (${why}): ${f.type}: ${f.message}`));
      return { ...base, outcome: 'dead', delayMs: null, claimedAt, nextAttemptAt: null, deadEventId: d.dead_event_id };
    }
    const at = await scheduleRetry(client, tenantId, event.id, attempts, delayMs!, f);
    return { ...base, outcome: 'retry', delayMs, claimedAt, nextAttemptAt: at.next_attempt_at, deadEventId: null };
  };
  const full = await attempt(client, s, () => write(failure));
  if (full.ok) return full.value;
  const refused = full.error;
  const minimal = await attempt(client, s, () => write(minimalFailure(failure, refused)));
  if (minimal.ok) return minimal.value;
  throw new FailureNotRecorded(event.id, minimal.error);
}

/** What is kept of a failure when its full record was refused: stable fields and plain ASCII. */
function minimalFailure(failure: ClassifiedFailure, refused: unknown): ClassifiedFailure {
  const ascii = (x: string, max: number) => x.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
  const why = refused instanceof Error ? `${(refused as { code?: string }).code ?? refused.name}: ${refused.message}` : String(refused);
  return {
    ...failure,
    code: ascii(failure.code, 100),
    message: `${ascii(failure.message, 1000)} [the full failure could not be recorded: ${ascii(why, 300)}]`,
    traceback: null,
  };
}

/**
 * Runs `fn` under a savepoint: on failure only its own work is undone. Transient errors
 * (deadlock, serialization failure, lock timeout, resources) are repeated in place a few times
 * before they count as a failed attempt; a lost connection aborts the whole batch.
 */
async function attempt<T>(client: pg.ClientBase, s: BatchSettings, fn: () => Promise<T>): Promise<Attempt<T>> {
  const tries = 1 + (s.inPlaceRetries ?? 3);
  for (let i = 1; ; i++) {
    await client.query('SAVEPOINT skeldir_event');
    try {
      const value = await fn();
      await client.query('RELEASE SAVEPOINT skeldir_event');
      return { ok: true, value };
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
