import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import type { Queryable } from '../db/pool.js';
import { compileRuleSet, type RuleSet } from './classify.js';
import { listChannels, listRules, seedDefaultChannels, toRule } from './store.js';

/** A tenant's channels and rules as stored, compiled for classify (one transaction, tenant context set). */
export async function loadRuleSet(client: Queryable, tenantId: string): Promise<RuleSet> {
  let channels = await listChannels(client, tenantId);
  // A tenant created without its defaults (a raw INSERT INTO tenants) gets them here, so its
  // events are never refused for a channel it cannot have.
  if (channels.length === 0 && (await seedDefaultChannels(client, tenantId)) > 0) channels = await listChannels(client, tenantId);
  const rules = await listRules(client, tenantId);
  return compileRuleSet(
    channels.map((c) => ({ code: c.code, active: c.is_active, ad_platform: c.ad_platform })),
    rules.map(toRule),
  );
}

/**
 * Each tenant's compiled rules, kept for `ttlMs` (default 10 s) per process: a change made through
 * this process is seen at once (invalidate), one made through another within the TTL. Concurrent
 * loads of one tenant share one query; at most `maxTenants` are kept (oldest dropped first).
 */
export class RuleSetCache {
  private readonly entries = new Map<string, { at: number; rules: RuleSet }>();
  private readonly loading = new Map<string, Promise<RuleSet>>();
  /** Bumped by invalidate: a load that started before a change does not store what it read. */
  private generation = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly ttlMs = 10_000,
    private readonly maxTenants = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  async get(tenantId: string): Promise<RuleSet> {
    const hit = this.entries.get(tenantId);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.rules;
    let p = this.loading.get(tenantId);
    if (!p) {
      const started = this.now();
      const generation = this.generation;
      p = withTenant(this.pool, tenantId, (c) => loadRuleSet(c, tenantId))
        .then((rules) => {
          if (generation !== this.generation) return rules;
          this.entries.delete(tenantId);
          this.entries.set(tenantId, { at: started, rules });
          if (this.entries.size > this.maxTenants) this.entries.delete(this.entries.keys().next().value!);
          return rules;
        })
        .finally(() => this.loading.delete(tenantId));
      this.loading.set(tenantId, p);
    }
    return p;
  }

  invalidate(tenantId: string): void {
    this.generation++;
    this.entries.delete(tenantId);
    this.loading.delete(tenantId);
  }
}
