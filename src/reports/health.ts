import type { Queryable } from '../db/pool.js';
import { ALIVE_WITHIN_SECONDS } from '../worker/instances.js';
import { formatInstantOrNull } from '../db/timestamps.js';

export interface TenantHealth {
  /** This tenant's events waiting to be processed (due now or waiting for a retry). */
  pending: number;
  /** …of which failed at least once and wait for a retry. */
  retrying: number;
  /** When the oldest pending event arrived (its age is now minus this; the answer stays the same while nothing changes). */
  oldest_pending_at: string | null;
  /** This tenant's dead events by remediation status. */
  dead: { pending: number; in_progress: number; resolved: number; ignored: number };
  /** Dead events created in the last hour and the last 24 hours: the tenant's dead-letter rate. */
  dead_last_hour: number;
  dead_last_day: number;
  /** Worker processes alive (heartbeat within 30 s): the platform's, not per tenant; null when not visible to the application role. */
  workers_alive: number | null;
}

/**
 * The worker's health as one tenant may see it: its own queue and dead-letter figures (row-level
 * security applies) and how many workers are alive. Platform-wide throughput is on /metrics,
 * closed by default, because it would let a tenant infer other tenants' volumes.
 */
export async function tenantHealth(client: Queryable, tenantId: string, now: Date): Promise<TenantHealth> {
  const q = (
    await client.query<{ pending: number; retrying: number; oldest: Date | null }>(
      `SELECT count(*)::int AS pending, count(*) FILTER (WHERE retry_count > 0)::int AS retrying, min(created_at) AS oldest
         FROM attribution_events WHERE tenant_id = $1 AND processing_status = 'pending'`,
      [tenantId],
    )
  ).rows[0]!;
  const dead = (
    await client.query<{ status: keyof TenantHealth['dead']; n: number; hour: number; day: number }>(
      `SELECT remediation_status AS status, count(*)::int AS n,
              count(*) FILTER (WHERE created_at >= $2)::int AS hour, count(*) FILTER (WHERE created_at >= $3)::int AS day
         FROM dead_events WHERE tenant_id = $1 GROUP BY remediation_status`,
      [tenantId, new Date(now.getTime() - 3600_000), new Date(now.getTime() - 86_400_000)],
    )
  ).rows;
  const workers = (
    await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM worker_instances WHERE stopped_at IS NULL AND heartbeat_at > $1`, [
      new Date(now.getTime() - ALIVE_WITHIN_SECONDS * 1000),
    ])
  ).rows[0]!.n;
  const byStatus = { pending: 0, in_progress: 0, resolved: 0, ignored: 0 };
  for (const d of dead) byStatus[d.status] = d.n;
  return {
    pending: q.pending,
    retrying: q.retrying,
    oldest_pending_at: formatInstantOrNull(q.oldest),
    dead: byStatus,
    dead_last_hour: dead.reduce((s, d) => s + d.hour, 0),
    dead_last_day: dead.reduce((s, d) => s + d.day, 0),
    workers_alive: workers,
  };
}
