import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { ErasureError } from './errors.js';
import { COUNT_NAMES, ERASURE_STEPS, type ErasureContext } from './steps.js';
import { formatInstant } from '../db/timestamps.js';

/** Events per batch transaction: a person with 100,000 events is erased in 100 short transactions, never one long lock. */
export const ERASURE_BATCH = 1_000;

export interface ErasureReceipt {
  erasure_id: string;
  started_at: string;
  finished_at: string;
  /** Rows removed or scrubbed, per kind; all zero when nothing of the person was left (a repeat is harmless). */
  counts: Record<string, number>;
  /** What the erasure did to what is computed from the removed rows. */
  derived: { reports: string; model_runs: string };
}

/** user_id as ingestion stores it: 1 to 255 characters; NUL cannot be stored, so it names no one. */
export function checkUserId(userId: string, field = 'user_id'): string {
  if (userId.length === 0 || userId.length > 255) throw new ErasureError('erasure_user_id_invalid', `${field} must be 1 to 255 characters, got ${userId.length}`, field);
  if (userId.includes('\u0000')) throw new ErasureError('erasure_user_id_invalid', `${field} must not contain NUL characters`, field);
  return userId;
}

/**
 * Erases one person of one tenant: runs every step of ERASURE_STEPS in batches, each batch its own transaction in the
 * tenant's context, then writes the audit row (who, when, counts; never the id). Idempotent: a repeat finds nothing
 * and records a receipt of zeros. Data of the person that arrives while it runs is erased by running it again.
 */
export async function erasePerson(pool: pg.Pool, o: { tenantId: string; userId: string; requestedBy: string; batchSize?: number; now?: () => Date }): Promise<ErasureReceipt> {
  const userId = checkUserId(o.userId);
  const now = o.now ?? (() => new Date());
  const started = now();
  const sessions = await withTenant(pool, o.tenantId, async (c) =>
    (await c.query<{ session_id: string }>(`SELECT DISTINCT session_id FROM attribution_events WHERE tenant_id = $1 AND user_id = $2`, [o.tenantId, userId])).rows.map((r) => r.session_id),
  );
  // Browsers linked to the person alone (an anonymous id shared with another person keeps its events).
  const anonymousIds = await withTenant(pool, o.tenantId, async (c) =>
    (await c.query<{ anonymous_id: string }>(
      `SELECT l.anonymous_id FROM identity_links l WHERE l.tenant_id = $1 AND l.user_id = $2
          AND NOT EXISTS (SELECT 1 FROM identity_links o WHERE o.tenant_id = l.tenant_id AND o.anonymous_id = l.anonymous_id AND o.user_id <> $2)`,
      [o.tenantId, userId],
    )).rows.map((r) => r.anonymous_id),
  );
  const ctx: ErasureContext = {
    tenantId: o.tenantId,
    userId,
    batchSize: o.batchSize ?? ERASURE_BATCH,
    now: started,
    sessions,
    anonymousIds,
    earliest: null,
    latest: null,
    cursor: {},
    counts: Object.fromEntries(COUNT_NAMES.map((n) => [n, 0])),
  };
  for (const step of ERASURE_STEPS) {
    for (let done = false; !done; ) done = await withTenant(pool, o.tenantId, (c) => step.batch(c, ctx));
  }
  const finished = now();
  const { rows } = await withTenant(pool, o.tenantId, (c) =>
    c.query<{ id: string }>(`INSERT INTO erasure_audit (tenant_id, requested_by, started_at, finished_at, counts) VALUES ($1, $2, $3, $4, $5) RETURNING id`, [
      o.tenantId,
      o.requestedBy.slice(0, 255),
      started,
      finished,
      ctx.counts,
    ]),
  );
  return {
    erasure_id: rows[0]!.id,
    started_at: formatInstant(started),
    finished_at: formatInstant(finished),
    counts: ctx.counts,
    derived: {
      reports: 'recomputed: attribution, comparison and reconciliation reports are computed from the remaining rows when read',
      model_runs: `marked stale: ${ctx.counts.model_runs_marked_stale} markov/shapley/bayesian run(s) whose window held the removed events; the next run of each window replaces it`,
    },
  };
}
