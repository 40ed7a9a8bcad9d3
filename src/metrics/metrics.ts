import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { QueueStats } from '../worker/stats.js';

/**
 * Prometheus metrics of an API process (prom-client), served by GET /metrics:
 * - the default process metrics (CPU, memory, event-loop lag, GC, handles: `process_*`, `nodejs_*`),
 *   collected once per process;
 * - `skeldir_http_request_duration_seconds{method,route,status_code}`: a histogram of every
 *   response, labelled by the route's pattern (`/api/v1/events/:id`, bounded cardinality;
 *   `unmatched` for a path no route has), never by a raw URL or a tenant;
 * - `skeldir_ingest_group_events`: a histogram of the events per group-commit transaction of
 *   `POST /api/v1/events` (src/ingestion/coalescer.ts);
 * - `skeldir_ingested_events_total{endpoint,outcome}` and `skeldir_webhook_deliveries_total{provider,outcome}`;
 * - the queue and worker figures of all tenants (gauges and counters read from the database at
 *   each scrape). Rates are Prometheus's to compute (`rate(…_total[5m])`): no `*_per_second` gauge.
 *
 * Cost on the request path (`npm run bench -- metrics`, bench/metrics.bench.ts, on this 2-core
 * machine while other work ran, 1,000,000 calls each): one histogram observation with three
 * labels 0.6–1.0 µs, one counter increment with labels 0.2–0.4 µs, so about 1–1.4 µs per ingested
 * event, against ~405 µs per POST /api/v1/events at 2,466 events/s (README): about 0.3 %.
 */
export interface Metrics {
  readonly registry: Registry;
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  readonly ingested: Counter<'endpoint' | 'outcome'>;
  /** Events per transaction of POST /api/v1/events' group commit (src/ingestion/coalescer.ts). */
  readonly ingestGroup: Histogram;
  readonly webhooks: Counter<'provider' | 'outcome'>;
  /** Sets the database-wide figures (called at each scrape, before rendering). */
  setQueue(stats: QueueStats): void;
}

let processRegistry: Registry | undefined;

/** The default process metrics, once per process (their collectors are process-wide). */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export function createMetrics(): Metrics {
  const own = new Registry();
  const registers = [own];
  const httpDuration = new Histogram({
    name: 'skeldir_http_request_duration_seconds',
    help: 'Time from receiving a request to sending its response, by method, route pattern and status.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const ingested = new Counter({
    name: 'skeldir_ingested_events_total',
    help: 'Events received by POST /api/v1/events (endpoint="single") and /events/batch ("batch"), by outcome: created, replayed, conflict (same key, another body), rejected (invalid).',
    labelNames: ['endpoint', 'outcome'] as const,
    registers,
  });
  const ingestGroup = new Histogram({
    name: 'skeldir_ingest_group_events',
    help: 'Events written per transaction by POST /api/v1/events (concurrent single events of a tenant share one: group commit).',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 500],
    registers,
  });
  const webhooks = new Counter({
    name: 'skeldir_webhook_deliveries_total',
    help: 'Webhook deliveries by provider and outcome: applied, duplicate, ignored, pending, dead_lettered, ping, signature_invalid, too_large, rejected.',
    labelNames: ['provider', 'outcome'] as const,
    registers,
  });
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers });
  const pending = gauge('skeldir_queue_pending_events', 'Events waiting to be processed, all tenants (due now or waiting for a retry).');
  const due = gauge('skeldir_queue_due_events', 'Pending events due now.');
  const retrying = gauge('skeldir_queue_retrying_events', 'Pending events that failed at least once.');
  const oldest = gauge('skeldir_queue_oldest_pending_age_seconds', 'Age of the oldest pending event (since it arrived); 0 when the queue is empty.');
  const dead = gauge('skeldir_dead_events', 'Dead events by remediation status, all tenants.', ['remediation_status']);
  const alive = gauge('skeldir_workers_alive', 'Worker processes that sent a heartbeat recently.');
  // Totals kept by the workers in the database: counters whose value is read, not incremented here.
  const total = (name: string, help: string) => new Counter({ name, help, registers });
  const processed = total('skeldir_worker_events_processed_total', 'Events the workers marked processed.');
  const failed = total('skeldir_worker_events_failed_total', 'Failed processing attempts scheduled for a retry.');
  const deadLettered = total('skeldir_worker_events_dead_lettered_total', 'Events given up on (marked failed, copied to dead_events).');
  const setTotal = (c: Counter, value: number) => {
    c.reset();
    c.inc(value);
  };
  const registry = Registry.merge([processMetrics(), own]);
  return {
    registry,
    httpDuration,
    ingested,
    ingestGroup,
    webhooks,
    setQueue(s) {
      pending.set(s.queue.pending);
      due.set(s.queue.due);
      retrying.set(s.queue.retrying);
      oldest.set(Math.round(s.queue.oldestPendingAgeSeconds * 1000) / 1000);
      for (const status of ['pending', 'in_progress', 'resolved', 'ignored'] as const) dead.set({ remediation_status: status }, s.dead[status]);
      alive.set(s.workers.length);
      setTotal(processed, s.totals.processed);
      setTotal(failed, s.totals.failed);
      setTotal(deadLettered, s.totals.deadLettered);
    },
  };
}
