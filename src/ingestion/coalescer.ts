import { isConnectionError } from '../db/errors.js';
import type { Outcome } from './ingest.js';
import type { PreparedEvent } from './prepare.js';

interface Waiter {
  event: PreparedEvent;
  resolve(outcome: Outcome): void;
  reject(error: unknown): void;
}

/**
 * Group commit for single-event requests. A tenant's concurrent `POST /events` are written
 * together: at most `maxInFlight` transactions per tenant are open at once (default one), and the
 * events that arrive meanwhile wait and then go as ONE multi-row insert (up to `maxGroup`) when a
 * transaction ends. There is no timer: an event of an otherwise idle tenant is written at once,
 * and waiting only ever happens behind a transaction that is already running.
 *
 * One at a time rather than two: with two, each group only collects what arrived during the
 * other's round trip, and groups stayed at ~2.1 events on the benchmark (16 connections); with
 * one, a group is everything that arrived during the previous one (figures in the commit that
 * made it one, bench/ingestion.bench.ts).
 *
 * Why: each transaction costs PostgreSQL and node far more than each row (measured with
 * bench/ingestion.bench.ts on this 2-core machine: ~1 ms of PostgreSQL CPU per one-event
 * transaction against ~0.1-0.15 ms per event in 100-event inserts), so under load this turns
 * single-event requests into small batches.
 *
 * Semantics are those of one request per transaction: within a group, the same key twice is a
 * replay or a conflict of the first (as in a batch); across groups the unique index decides. If a
 * group's transaction fails for another reason than a lost connection, its events are retried
 * one by one, so no event can make another one's request fail.
 */
export class IngestCoalescer {
  private readonly tenants = new Map<string, { inFlight: number; waiting: Waiter[] }>();

  constructor(
    private readonly write: (tenantId: string, events: PreparedEvent[]) => Promise<Outcome[]>,
    private readonly maxInFlight = 1,
    private readonly maxGroup = 500,
  ) {}

  submit(tenantId: string, event: PreparedEvent): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      let state = this.tenants.get(tenantId);
      if (!state) this.tenants.set(tenantId, (state = { inFlight: 0, waiting: [] }));
      state.waiting.push({ event, resolve, reject });
      this.pump(tenantId);
    });
  }

  private pump(tenantId: string): void {
    const state = this.tenants.get(tenantId)!;
    while (state.inFlight < this.maxInFlight && state.waiting.length > 0) {
      const group = state.waiting.splice(0, this.maxGroup);
      state.inFlight++;
      void this.flush(tenantId, group).finally(() => {
        state.inFlight--;
        if (state.inFlight === 0 && state.waiting.length === 0) this.tenants.delete(tenantId);
        else this.pump(tenantId);
      });
    }
  }

  private async flush(tenantId: string, group: Waiter[]): Promise<void> {
    try {
      const outcomes = await this.write(tenantId, group.map((w) => w.event));
      group.forEach((w, i) => w.resolve(outcomes[i]!));
    } catch (error) {
      if (group.length === 1 || isConnectionError(error)) {
        for (const w of group) w.reject(error);
        return;
      }
      // Something in the group made the transaction fail: each event on its own.
      for (const w of group) {
        try {
          w.resolve((await this.write(tenantId, [w.event]))[0]!);
        } catch (e) {
          w.reject(e);
        }
      }
    }
  }
}
