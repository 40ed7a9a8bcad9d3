import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Database } from '../db/database.js';
import { isConnectionError } from '../db/errors.js';
import { DomainError } from '../errors.js';
import { BatchError, processBatch, type BatchResult, type FailureReport } from './batch.js';
import { heartbeat, housekeeping, markStopped, registerInstance } from './instances.js';
import type { WorkerOptions } from './options.js';
import { EVENTS_CHANNEL } from './channel.js';

export interface WorkerLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = () => {};
export const silentLogger: WorkerLogger = { debug: noop, info: noop, warn: noop, error: noop };

export class WorkerSetupError extends DomainError {}

const HEARTBEAT_MS = 5_000;
/** How long an event whose batch failed as a whole is left alone (at most; see setAside). */
const SET_ASIDE_MAX_MS = 5 * 60_000;
/** Events set aside at once, at most: each one is claimed (and skipped) by every batch. */
const SET_ASIDE_LIMIT = 100;
/** Housekeeping every 120 heartbeats (10 minutes). */
const HOUSEKEEPING_EVERY = 120;

export interface WorkerEvents {
  batch: [BatchResult & { slot: number }];
  failure: [FailureReport];
  listening: [];
  'connection-lost': [{ slot: number; error: unknown }];
  reconnected: [{ slot: number }];
  'batch-error': [{ slot: number; error: unknown }];
  /** A loop found nothing to claim and goes to sleep. */
  idle: [{ slot: number }];
  /** An event whose batch failed as a whole is left alone by this worker until `until` (see setAside). */
  'set-aside': [{ slot: number; eventId: string; until: Date; error: unknown }];
}

/**
 * A worker process's engine: `concurrency` batch loops, each on its own connection as the
 * application role, claiming and processing batches (see processBatch) until stopped.
 *
 * It wakes on NOTIFY skeldir_events (one LISTEN connection, reconnected when lost) and polls
 * every `pollMs` as a fallback, which also picks up retries coming due. A loop that finds work
 * goes on at once; one that finds none sleeps until a notification, the poll, or stop().
 * When the database goes away, loops back off (100 ms doubling to 5 s) and carry on when it
 * returns; the batch in flight was rolled back by the database, so nothing is lost or doubled.
 * stop() lets every loop finish its current batch (commit), then returns.
 */
export class Worker extends EventEmitter<WorkerEvents> {
  readonly instanceId = randomUUID();
  private pool: pg.Pool | undefined;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private loops: Promise<void>[] = [];
  private readonly sleepers = new Set<() => void>();
  /** Bumped by every notification: a loop that saw it change during its batch does not sleep. */
  private wakeGeneration = 0;
  private listener: pg.Client | undefined;
  private listenerFailures = 0;
  private listenerTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private beats = 0;
  /** Event id → time (ms) until which the loops leave it alone. */
  private readonly setAside = new Map<string, number>();
  /** Events of a failed batch still to be processed one per batch, to find the one that broke it. */
  private readonly suspects = new Set<string>();
  /** Single-event batches left before the suspects are forgotten (another worker may have taken them). */
  private isolationLeft = 0;
  /** Claim tenant by tenant: the database is distributed (Citus; see processBatch's claim). */
  private perTenantClaim = false;

  constructor(
    private readonly db: Pick<Database, 'appPool' | 'appClientConfig'>,
    readonly options: WorkerOptions,
    private readonly log: WorkerLogger = silentLogger,
  ) {
    super();
  }

  async start(): Promise<void> {
    if (this.pool) throw new Error('worker already started');
    // statement_timeout ends a slow statement server-side; the client-side limit (15 s beyond it)
    // ends a wait on a connection whose network died, where no server answer can come.
    const pool = this.db.appPool({
      max: this.options.concurrency + 1,
      applicationName: 'skeldir-worker',
      queryTimeoutMs: this.options.statementTimeoutMs + 15_000,
    });
    this.pool = pool;
    try {
      const { rows } = await pool.query<{ ok: boolean }>(`SELECT to_regprocedure('skeldir_claim_due_events(integer)') IS NOT NULL AS ok`);
      if (!rows[0]!.ok) {
        throw new WorkerSetupError('worker_schema_outdated', 'the database schema has no worker claim function skeldir_claim_due_events (revision 202611280313); run `skeldir migrate upgrade` first');
      }
      // `skeldir citus distribute` made it: FOR UPDATE across shards is refused, the claim goes tenant by tenant.
      this.perTenantClaim = (await pool.query<{ ok: boolean }>(`SELECT to_regprocedure('skeldir_due_tenants(integer)') IS NOT NULL AS ok`)).rows[0]!.ok;
      await registerInstance(pool, this.instanceId, this.options);
      await housekeeping(pool).catch((error) => this.log.warn({ err: error }, 'worker housekeeping failed'));
    } catch (error) {
      this.pool = undefined;
      await pool.end().catch(noop);
      throw error;
    }
    await this.connectListener();
    this.heartbeatTimer = setInterval(() => void this.beat(), HEARTBEAT_MS);
    for (let slot = 0; slot < this.options.concurrency; slot++) this.loops.push(this.loop(slot));
    const o = this.options;
    this.log.info(
      {
        instance: this.instanceId, concurrency: o.concurrency, batch_size: o.batchSize, max_retries: o.maxRetries, retry_base_ms: o.retryBaseMs,
        retry_max_ms: o.retryMaxMs, poll_ms: o.pollMs, statement_timeout_ms: o.statementTimeoutMs,
      },
      `worker started: ${this.options.concurrency} loop(s) of ${this.options.batchSize} events, up to ${this.options.maxRetries} retries`,
    );
  }

  /** Finishes the batches in flight, then releases everything. Safe to call more than once. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.wake();
      clearInterval(this.heartbeatTimer);
      clearTimeout(this.listenerTimer);
      await Promise.all(this.loops);
      const listener = this.listener;
      this.listener = undefined;
      await listener?.end().catch(noop);
      if (this.pool) {
        await markStopped(this.pool, this.instanceId).catch(noop);
        await this.pool.end().catch(noop);
      }
      this.log.info({ instance: this.instanceId }, 'worker stopped');
    })();
    return this.stopped;
  }

  /** Wakes every idle loop (a notification arrived, or stop()). */
  wake(): void {
    this.wakeGeneration++;
    for (const wake of [...this.sleepers]) wake();
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  private async loop(slot: number): Promise<void> {
    let client: pg.PoolClient | undefined;
    let broken: Error | undefined;
    // A checked-out client has no error listener of the pool's: without ours, a connection
    // dropping between two batches would crash the process.
    const onClientError = (error: Error) => (broken = error);
    let outage = 0;
    while (!this.stopping) {
      const generation = this.wakeGeneration;
      let result: BatchResult;
      try {
        if (!client) {
          client = await this.pool!.connect();
          broken = undefined;
          client.on('error', onClientError);
        }
        if (broken) throw broken;
        result = await processBatch(client, {
          batchSize: this.suspects.size > 0 ? 1 : this.options.batchSize,
          skip: this.currentSetAside(),
          maxRetries: this.options.maxRetries,
          retryBaseMs: this.options.retryBaseMs,
          retryMaxMs: this.options.retryMaxMs,
          statementTimeoutMs: this.options.statementTimeoutMs,
          instanceId: this.instanceId,
          slot,
          perTenantClaim: this.perTenantClaim,
        });
      } catch (error) {
        if (client) {
          client.off('error', onClientError);
          client.release(error instanceof Error ? error : new Error(String(error))); // destroys it
          client = undefined;
        }
        outage++;
        if (isConnectionError(error)) {
          if (outage === 1) this.log.warn({ slot, err: error }, 'database connection lost; reconnecting');
          this.emit('connection-lost', { slot, error });
        } else {
          this.log.error({ slot, err: error }, 'batch failed and was rolled back; retrying');
          this.emit('batch-error', { slot, error });
          if (error instanceof BatchError) this.isolate(slot, error);
        }
        const delay = Math.min(5_000, 100 * 2 ** Math.min(outage - 1, 6));
        await this.sleep(delay * (0.5 + Math.random() / 2));
        continue;
      }
      if (outage > 0) {
        // At the level of the failure it ends, so that a log filtered to warnings shows both.
        this.log.warn({ slot, failed_attempts: outage }, 'database reachable again; carrying on');
        this.emit('reconnected', { slot });
        outage = 0;
      }
      if (result.claimed > 0) {
        if (this.suspects.size > 0) {
          for (const id of result.claimedIds) this.suspects.delete(id);
          if (--this.isolationLeft <= 0) this.suspects.clear();
        }
        this.report(slot, result);
        continue; // there may be more: claim again at once
      }
      if (generation !== this.wakeGeneration) continue; // notified while claiming
      this.emit('idle', { slot });
      await this.sleep(this.options.pollMs);
    }
    if (client) {
      client.off('error', onClientError);
      client.release(broken);
    }
  }

  /**
   * After a batch failed as a whole, the events that one bad event must not block: the culprit,
   * when known (its failure could not be recorded) or when it was alone in the batch, is set
   * aside (claimed by later batches but left pending and untouched) for min(retryMaxMs, 5 min);
   * otherwise the batch's events become suspects, processed one per batch until the failing
   * one is alone. A transaction that fails as a whole records nothing, so this memory is the
   * worker's (per process); every process finds the event the same way.
   */
  private isolate(slot: number, error: BatchError): void {
    const culprit = error.culpritId ?? (error.eventIds.length === 1 ? error.eventIds[0]! : null);
    if (culprit === null) {
      for (const id of error.eventIds) this.suspects.add(id);
      this.isolationLeft = Math.max(this.isolationLeft, 2 * error.eventIds.length);
      return;
    }
    this.suspects.delete(culprit);
    const ms = Math.min(this.options.retryMaxMs, SET_ASIDE_MAX_MS);
    this.setAside.set(culprit, Date.now() + ms);
    const until = new Date(Date.now() + ms);
    this.log.error(
      { slot, event_id: culprit, until, err: error.cause },
      'event set aside: its batch failed as a whole and not even its failure could be recorded; it stays pending and is tried again later',
    );
    this.emit('set-aside', { slot, eventId: culprit, until, error: error.cause });
  }

  /** Events set aside and not yet due again (expired ones are dropped; the oldest beyond the limit too). */
  private currentSetAside(): ReadonlySet<string> {
    const now = Date.now();
    for (const [id, until] of this.setAside) if (until <= now) this.setAside.delete(id);
    while (this.setAside.size > SET_ASIDE_LIMIT) this.setAside.delete(this.setAside.keys().next().value!);
    return new Set(this.setAside.keys());
  }

  private report(slot: number, result: BatchResult): void {
    this.log.debug(
      { slot, claimed: result.claimed, processed: result.processed, retried: result.retried, dead_lettered: result.deadLettered, dead_events_resolved: result.resolved },
      'batch committed',
    );
    for (const f of result.failures) {
      const fields = {
        event_id: f.eventId,
        tenant_id: f.tenantId,
        event_type: f.eventType,
        attempt: f.attempt,
        error_type: f.failure.type,
        error_code: f.failure.code,
        error: f.failure.message,
        ...(f.outcome === 'retry' ? { delay_ms: f.delayMs, next_attempt_at: f.nextAttemptAt } : { dead_event_id: f.deadEventId }),
      };
      if (f.outcome === 'retry') this.log.warn(fields, 'event failed; retry scheduled');
      else this.log.error(fields, 'event dead-lettered');
      this.emit('failure', f);
    }
    this.emit('batch', { slot, ...result });
  }

  private async connectListener(): Promise<void> {
    if (this.stopping) return;
    const client = new pg.Client(this.db.appClientConfig({ applicationName: 'skeldir-worker-listen' }));
    let connected = false;
    const lost = (error?: Error) => {
      if (!connected || this.listener !== client) return;
      this.listener = undefined;
      client.end().catch(noop);
      if (this.stopping) return;
      this.log.warn({ err: error }, 'LISTEN connection lost; polling until it is back');
      this.scheduleListener();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (n) => {
      if (n.channel === EVENTS_CHANNEL) this.wake();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${EVENTS_CHANNEL}`);
    } catch (error) {
      client.end().catch(noop);
      if (this.listenerFailures === 0) this.log.warn({ err: error }, 'cannot LISTEN; polling until it works');
      this.scheduleListener();
      return;
    }
    if (this.stopping) {
      await client.end().catch(noop);
      return;
    }
    connected = true;
    this.listener = client;
    if (this.listenerFailures > 0) this.log.warn({}, 'LISTEN connection back');
    this.listenerFailures = 0;
    this.wake(); // events may have arrived while nobody listened
    this.emit('listening');
  }

  private scheduleListener(): void {
    this.listenerFailures++;
    const delay = Math.min(30_000, 250 * 2 ** Math.min(this.listenerFailures - 1, 8));
    clearTimeout(this.listenerTimer);
    this.listenerTimer = setTimeout(() => void this.connectListener(), delay);
  }

  private async beat(): Promise<void> {
    const pool = this.pool;
    if (!pool || this.stopping) return;
    try {
      if (!(await heartbeat(pool, this.instanceId))) await registerInstance(pool, this.instanceId, this.options);
      if (++this.beats % HOUSEKEEPING_EVERY === 0) await housekeeping(pool);
    } catch {
      // The database is away: the loops report and handle it.
    }
  }
}
