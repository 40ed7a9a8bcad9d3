import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { loadConfig } from '../config.js';
import { buildApp, type App } from '../http/app.js';
import { createTenant } from '../tenants/tenants.js';
import { createTestDatabase, type TestDatabase } from '../testing/db.js';

let db: TestDatabase;
let app: App;
let apiKey: string;
let tenantId: string;

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ api_key: apiKey, tenant_id: tenantId } = await createTenant(owner, { name: 'Metrics', email: 'ops@metrics.example' }));
  await owner.end();
  app = await buildApp({ db, config: loadConfig({ SKELDIR_METRICS_PUBLIC: '1' }), logger: false, rateLimit: { max: 0 } });
});
after(async () => {
  await app?.close();
  await db?.drop();
});

const value = (body: string, series: string) => {
  const line = body.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

test('GET /metrics: process metrics, request durations by route and status, ingestion and webhook outcomes, queue figures; no per-second gauges', async () => {
  const event = { event_type: 'touchpoint', event_timestamp: '2026-01-01T00:00:00Z', session_id: randomUUID(), channel: 'email', idempotency_key: `m-${randomUUID()}` };
  const send = () => app.inject({ method: 'POST', url: '/api/v1/events', headers: { authorization: `Bearer ${apiKey}` }, payload: event });
  assert.equal((await send()).statusCode, 201);
  assert.equal((await send()).statusCode, 200);
  assert.equal((await app.inject({ method: 'POST', url: '/api/v1/events', headers: { authorization: `Bearer ${apiKey}` }, payload: { ...event, channel: 'organic' } })).statusCode, 409);
  const batch = await app.inject({ method: 'POST', url: '/api/v1/events/batch', headers: { authorization: `Bearer ${apiKey}` }, payload: { events: [{ ...event, idempotency_key: `m-${randomUUID()}` }, { ...event, event_type: 'nope' }] } });
  assert.equal(batch.statusCode, 200, batch.body);
  assert.equal((await app.inject({ method: 'GET', url: '/nowhere' })).statusCode, 404);
  const hook = await app.inject({ method: 'POST', url: `/api/v1/webhooks/stripe/${randomUUID()}`, headers: { 'content-type': 'application/json', 'stripe-signature': 't=1,v1=00' }, payload: '{}' });
  assert.equal(hook.statusCode, 401);

  const res = await app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const body = res.body;
  // The default process metrics.
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
    assert.match(body, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  // Request durations by route pattern and status.
  assert.match(body, /^# TYPE skeldir_http_request_duration_seconds histogram$/m);
  assert.equal(value(body, 'skeldir_http_request_duration_seconds_count{method="POST",route="/api/v1/events",status_code="201"}'), 1);
  assert.equal(value(body, 'skeldir_http_request_duration_seconds_count{method="POST",route="/api/v1/events",status_code="200"}'), 1);
  assert.equal(value(body, 'skeldir_http_request_duration_seconds_count{method="GET",route="unmatched",status_code="404"}'), 1, 'a path no route has is not a label value');
  assert.ok(!body.includes('/nowhere'));
  // Outcomes.
  assert.equal(value(body, 'skeldir_ingested_events_total{endpoint="single",outcome="created"}'), 1);
  assert.equal(value(body, 'skeldir_ingested_events_total{endpoint="single",outcome="replayed"}'), 1);
  assert.equal(value(body, 'skeldir_ingested_events_total{endpoint="single",outcome="conflict"}'), 1);
  assert.equal(value(body, 'skeldir_ingested_events_total{endpoint="batch",outcome="created"}'), 1);
  assert.equal(value(body, 'skeldir_ingested_events_total{endpoint="batch",outcome="rejected"}'), 1);
  assert.equal(value(body, 'skeldir_webhook_deliveries_total{provider="stripe",outcome="signature_invalid"}'), 1);
  // The queue, from the database.
  assert.equal(value(body, 'skeldir_queue_pending_events'), 2);
  assert.match(body, /^# TYPE skeldir_worker_events_processed_total counter$/m);
  assert.doesNotMatch(body, /_per_second/);
  for (const line of body.trim().split('\n').filter(Boolean)) assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{\w+="[^"]*"(,\w+="[^"]*")*\})? (-?[\d.e+-]+|NaN|[+-]Inf))$/, line);
  assert.ok(!body.includes(tenantId), 'no tenant id');
});
