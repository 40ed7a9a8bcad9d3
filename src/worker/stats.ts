import type { Queryable } from '../db/pool.js';
import { ALIVE_WITHIN_SECONDS } from './instances.js';
import { formatInstant, formatInstantOrNull } from '../db/timestamps.js';

/**
 * What /metrics and `skeldir worker --status` show: aggregates over all tenants, never a row
 * or a tenant id. The queue figures come from skeldir_queue_stats() (SECURITY DEFINER: the
 * application role cannot count other tenants' events itself); the counters and rates from
 * worker_throughput, written in the workers' batch transactions.
 */
export interface QueueStats {
  measuredAt: Date;
  queue: {
    /** Pending events (due now or waiting for a retry). */
    pending: number;
    due: number;
    /** Pending events that failed at least once. */
    retrying: number;
    oldestPendingAt: Date | null;
    /** Age of the oldest pending event (by its arrival), 0 when none. */
    oldestPendingAgeSeconds: number;
  };
  dead: { pending: number; in_progress: number; resolved: number; ignored: number };
  totals: { processed: number; failed: number; deadLettered: number };
  /** Per second, over the current and the previous whole minute(s). */
  rates: {
    oneMinute: { processed: number; failed: number; deadLettered: number; windowSeconds: number };
    fiveMinutes: { processed: number; failed: number; deadLettered: number; windowSeconds: number };
  };
  workers: { id: string; hostname: string; pid: number; concurrency: number; batchSize: number; startedAt: Date; heartbeatAt: Date }[];
}

export async function queueStats(q: Queryable): Promise<QueueStats> {
  const s = (await q.query<{
    pending: string; due: string; retrying: string; oldest_pending_at: Date | null; dead_pending: string; dead_in_progress: string;
    dead_resolved: string; dead_ignored: string; measured_at: Date; age: number | null;
  }>(`SELECT s.*, extract(epoch FROM s.measured_at - s.oldest_pending_at)::float8 AS age FROM skeldir_queue_stats() s`)).rows[0]!;
  const t = (await q.query<Record<string, string>>(`
    WITH w AS (
      SELECT date_trunc('minute', now()) - interval '1 minute' AS one, date_trunc('minute', now()) - interval '5 minutes' AS five
    )
    SELECT coalesce(sum(processed), 0) AS processed, coalesce(sum(failed), 0) AS failed, coalesce(sum(dead_lettered), 0) AS dead,
           coalesce(sum(processed) FILTER (WHERE bucket_minute >= w.one), 0) AS processed_1,
           coalesce(sum(failed) FILTER (WHERE bucket_minute >= w.one), 0) AS failed_1,
           coalesce(sum(dead_lettered) FILTER (WHERE bucket_minute >= w.one), 0) AS dead_1,
           coalesce(sum(processed) FILTER (WHERE bucket_minute >= w.five), 0) AS processed_5,
           coalesce(sum(failed) FILTER (WHERE bucket_minute >= w.five), 0) AS failed_5,
           coalesce(sum(dead_lettered) FILTER (WHERE bucket_minute >= w.five), 0) AS dead_5,
           extract(epoch FROM now() - w.one)::float8 AS window_1, extract(epoch FROM now() - w.five)::float8 AS window_5
      FROM w LEFT JOIN worker_throughput ON true
     GROUP BY w.one, w.five`)).rows[0]!;
  const workers = (await q.query<{ id: string; hostname: string; pid: number; concurrency: number; batch_size: number; started_at: Date; heartbeat_at: Date }>(
    `SELECT id, hostname, pid, concurrency, batch_size, started_at, heartbeat_at FROM worker_instances
      WHERE stopped_at IS NULL AND heartbeat_at > now() - make_interval(secs => $1) ORDER BY started_at, id`,
    [ALIVE_WITHIN_SECONDS],
  )).rows;
  const n = (x: string | number | null | undefined) => Number(x ?? 0);
  const rate = (count: string | undefined, window: string | undefined) => (n(window) > 0 ? n(count) / n(window) : 0);
  return {
    measuredAt: s.measured_at,
    queue: {
      pending: n(s.pending),
      due: n(s.due),
      retrying: n(s.retrying),
      oldestPendingAt: s.oldest_pending_at,
      oldestPendingAgeSeconds: Math.max(0, n(s.age)),
    },
    dead: { pending: n(s.dead_pending), in_progress: n(s.dead_in_progress), resolved: n(s.dead_resolved), ignored: n(s.dead_ignored) },
    totals: { processed: n(t.processed), failed: n(t.failed), deadLettered: n(t.dead) },
    rates: {
      oneMinute: { processed: rate(t.processed_1, t.window_1), failed: rate(t.failed_1, t.window_1), deadLettered: rate(t.dead_1, t.window_1), windowSeconds: n(t.window_1) },
      fiveMinutes: { processed: rate(t.processed_5, t.window_5), failed: rate(t.failed_5, t.window_5), deadLettered: rate(t.dead_5, t.window_5), windowSeconds: n(t.window_5) },
    },
    workers: workers.map((w) => ({
      id: w.id, hostname: w.hostname, pid: w.pid, concurrency: w.concurrency, batchSize: w.batch_size, startedAt: w.started_at, heartbeatAt: w.heartbeat_at,
    })),
  };
}

/** `skeldir worker --status --json`: the same figures with snake_case names, like every JSON Skeldir prints. */
export function statsJson(s: QueueStats) {
  const rates = (r: QueueStats['rates']['oneMinute']) => ({
    processed: r.processed,
    failed: r.failed,
    dead_lettered: r.deadLettered,
    window_seconds: r.windowSeconds,
  });
  return {
    measured_at: formatInstant(s.measuredAt),
    queue: {
      pending: s.queue.pending,
      due: s.queue.due,
      retrying: s.queue.retrying,
      oldest_pending_at: formatInstantOrNull(s.queue.oldestPendingAt),
      oldest_pending_age_seconds: s.queue.oldestPendingAgeSeconds,
    },
    dead: s.dead,
    totals: { processed: s.totals.processed, failed: s.totals.failed, dead_lettered: s.totals.deadLettered },
    rates: { one_minute: rates(s.rates.oneMinute), five_minutes: rates(s.rates.fiveMinutes) },
    workers: s.workers.map((w) => ({
      id: w.id,
      hostname: w.hostname,
      pid: w.pid,
      concurrency: w.concurrency,
      batch_size: w.batchSize,
      started_at: formatInstant(w.startedAt),
      heartbeat_at: formatInstant(w.heartbeatAt),
    })),
  };
}

/** `skeldir worker --status` in words. */
export function renderStatus(s: QueueStats): string {
  const r1 = s.rates.oneMinute;
  const r5 = s.rates.fiveMinutes;
  const lines = [
    `queue: ${s.queue.pending} pending (${s.queue.due} due now, ${s.queue.pending - s.queue.due} waiting for a retry; ${s.queue.retrying} failed before)`,
    `oldest pending: ${s.queue.oldestPendingAt ? `${duration(s.queue.oldestPendingAgeSeconds)} old (arrived ${formatInstant(s.queue.oldestPendingAt)})` : 'none'}`,
    `processed: ${fmt(r1.processed)}/s (last ${Math.round(r1.windowSeconds)} s), ${fmt(r5.processed)}/s (last ${Math.round(r5.windowSeconds)} s), ${s.totals.processed} in total`,
    `failed attempts: ${fmt(r1.failed + r1.deadLettered)}/s (last ${Math.round(r1.windowSeconds)} s), ${fmt(r5.failed + r5.deadLettered)}/s (last ${Math.round(r5.windowSeconds)} s); ${s.totals.failed} retried and ${s.totals.deadLettered} dead-lettered in total`,
    `dead events: ${s.dead.pending} pending, ${s.dead.in_progress} in progress, ${s.dead.resolved} resolved, ${s.dead.ignored} ignored`,
    `workers alive: ${s.workers.length}`,
    ...s.workers.map(
      (w) =>
        `  ${w.id} ${w.hostname} pid ${w.pid}: ${w.concurrency} x ${w.batchSize} events, up since ${formatInstant(w.startedAt)}, ` +
        `last heartbeat ${duration(Math.max(0, (s.measuredAt.getTime() - w.heartbeatAt.getTime()) / 1000))} ago`,
    ),
  ];
  return lines.join('\n') + '\n';
}

function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

function duration(seconds: number): string {
  if (seconds < 90) return `${seconds.toFixed(1)} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 172_800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86_400).toFixed(1)} d`;
}
