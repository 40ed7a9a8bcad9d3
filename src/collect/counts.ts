import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { addCounts, type DailyCounts } from './store.js';

type Kind = keyof DailyCounts;

/**
 * Counts of the collect endpoint, added up in memory and written every `flushMs` (and on
 * close) as one upsert per tenant: counting bot hits must not cost a database write per hit,
 * or a crawler storm would become a write storm. A crash loses at most the last interval's
 * counts (they are statistics, not events).
 */
export class CollectCounter {
  private pending = new Map<string, { tenantId: string; keyId: string; day: string } & DailyCounts>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly pool: pg.Pool,
    private readonly flushMs = 10_000,
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  add(tenantId: string, keyId: string, kind: Kind, n = 1, at = new Date()): void {
    if (n <= 0) return;
    const day = at.toISOString().slice(0, 10);
    const k = `${tenantId}/${keyId}/${day}`;
    let entry = this.pending.get(k);
    if (!entry) this.pending.set(k, (entry = { tenantId, keyId, day, touches: 0, identifies: 0, bots: 0, anonymous: 0 }));
    entry[kind] += n;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.flushMs).unref();
  }

  /** Writes what has been counted so far (tests call it instead of waiting). */
  flush(): Promise<void> {
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = this.flushing.then(async () => {
      const byTenant = new Map<string, ({ keyId: string; day: string } & DailyCounts)[]>();
      for (const e of batch.values()) byTenant.set(e.tenantId, [...(byTenant.get(e.tenantId) ?? []), e]);
      for (const [tenantId, rows] of byTenant) {
        try {
          await withTenant(this.pool, tenantId, (client) => addCounts(client, tenantId, rows));
        } catch (error) {
          // A key revoked and gone, a database away: the counts are dropped, the endpoint goes on.
          this.onError(error);
        }
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
