import { hostname } from 'node:os';
import type { Queryable } from '../db/pool.js';

/** Liveness rows of worker processes (worker_instances) and upkeep of the counters (worker_throughput). */

export const NIL_UUID = '00000000-0000-0000-0000-000000000000';
/** A worker silent this long counts as gone (heartbeats come every 5 s). */
export const ALIVE_WITHIN_SECONDS = 30;

export async function registerInstance(q: Queryable, id: string, o: { concurrency: number; batchSize: number }): Promise<void> {
  await q.query(
    `INSERT INTO worker_instances (id, hostname, pid, concurrency, batch_size) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL`,
    [id, hostname().slice(0, 255), process.pid, o.concurrency, o.batchSize],
  );
}

/** Returns false when the row is gone (pruned while the database was away): the caller registers again. */
export async function heartbeat(q: Queryable, id: string): Promise<boolean> {
  const r = await q.query('UPDATE worker_instances SET heartbeat_at = now() WHERE id = $1', [id]);
  return (r.rowCount ?? 0) > 0;
}

export async function markStopped(q: Queryable, id: string): Promise<void> {
  await q.query('UPDATE worker_instances SET stopped_at = now(), heartbeat_at = now() WHERE id = $1', [id]);
}

/**
 * Keeps the counters table small without ever lowering a total: minutes older than an hour
 * (rates look at the last five) are folded into one row (nil instance, slot 0, -infinity), in
 * one statement, so a concurrent fold by another worker cannot count a row twice. Instances
 * silent for a day are forgotten.
 */
export async function housekeeping(q: Queryable): Promise<void> {
  await q.query(
    `WITH old AS (
       DELETE FROM worker_throughput
        WHERE bucket_minute < now() - interval '1 hour' AND bucket_minute > '-infinity'
        RETURNING processed, failed, dead_lettered
     )
     INSERT INTO worker_throughput AS t (instance_id, slot, bucket_minute, processed, failed, dead_lettered)
     SELECT $1::uuid, 0, '-infinity', sum(processed), sum(failed), sum(dead_lettered) FROM old HAVING count(*) > 0
     ON CONFLICT (instance_id, slot, bucket_minute) DO UPDATE
        SET processed = t.processed + excluded.processed, failed = t.failed + excluded.failed,
            dead_lettered = t.dead_lettered + excluded.dead_lettered`,
    [NIL_UUID],
  );
  await q.query(`DELETE FROM worker_instances WHERE heartbeat_at < now() - interval '1 day'`);
}
