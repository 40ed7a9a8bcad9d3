import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { loadConfig } from '../config.js';
import { INSTANT_TEXT } from '../db/timestamps.js';
import { createTenant } from '../tenants/tenants.js';
import { ROOT } from '../testing/cli.js';
import { createTestDatabase, type TestDatabase } from '../testing/db.js';
import { buildApp, type App } from './app.js';

/**
 * The OpenAPI document against Redocly's recommended rules (`npm run lint:openapi`), and every
 * live response of every route against the document: its status must be documented for that
 * operation, with the response's content type, and the body must match the documented schema;
 * every instant in a JSON body is RFC 3339 UTC with six fractional digits (src/db/timestamps.ts).
 */

type Operation = { operationId: string; security?: unknown[]; parameters?: { name: string; in: string; required?: boolean; schema: Record<string, unknown> }[]; responses: Record<string, { content?: Record<string, { schema: unknown }> }> };
let db: TestDatabase;
let app: App;
let apiKey: string;
let doc: { paths: Record<string, Record<string, Operation>> };

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ api_key: apiKey } = await createTenant(owner, { name: 'OpenAPI', email: 'ops@openapi.example' }));
  await owner.end();
  app = await buildApp({ db, config: loadConfig({ SKELDIR_METRICS_PUBLIC: '1' }), logger: false, rateLimit: { max: 0 } });
  doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
});
after(async () => {
  await app?.close();
  await db?.drop();
});

test('redocly lint (recommended rules) finds nothing: operationId, servers, security on every operation, 4xx responses, licence', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skeldir-openapi-'));
  try {
    const file = join(dir, 'openapi.json');
    writeFileSync(file, JSON.stringify(doc));
    const r = spawnSync(join(ROOT, 'node_modules', '.bin', 'redocly'), ['lint', file, '--config', join(ROOT, 'redocly.yaml')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /Your API description is valid/, r.stdout + r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const all = Object.values(doc.paths).flatMap((p) => Object.values(p));
  assert.ok(all.every((o) => Array.isArray(o.security)), 'security on every operation');
  assert.deepEqual((doc as unknown as { info: { license: unknown } }).info.license, { name: 'Apache-2.0', identifier: 'Apache-2.0' });
  // One enum, not a union of constants (Swagger UI offered only its first value).
  const model = doc.paths['/api/v1/attribution/channels']!.get!.parameters!.find((p) => p.name === 'model')!;
  assert.deepEqual(model.schema.enum, ['first_touch', 'last_touch', 'last_non_direct', 'linear', 'time_decay', 'position_based', 'markov', 'shapley', 'bayesian']);
  assert.ok(!JSON.stringify(doc).includes('"anyOf":[{"const"'), 'no union of string constants left');
});

/** A value for a path parameter: what the route expects where a generic one would only be a 400. */
function paramValue(name: string): string {
  const known: Record<string, string> = { provider: 'stripe', action: 'retry', code: 'email', format: 'csv', dataset: 'events' };
  return known[name] ?? (/id$/.test(name) ? randomUUID() : 'x');
}

function queryValue(schema: Record<string, unknown>): string {
  if (Array.isArray(schema.enum)) return String(schema.enum[0]);
  if (schema.format === 'date-time') return '2026-01-01T00:00:00Z';
  if (schema.format === 'date') return '2026-01-01';
  if (schema.type === 'integer' || schema.type === 'number') return '1';
  return 'x';
}

/** One timestamp precision: what timestamptz holds, so a printed time given back as `from`/`to` finds its row. */
const INSTANT = INSTANT_TEXT;
/** Anything that looks like a date-time (a date alone is a day, not an instant). */
const LOOKS_LIKE_INSTANT = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}/;

/** The JSON pointers of the strings in `value` that look like instants but are not printed as INSTANT. */
function otherPrecisions(value: unknown, at = ''): string[] {
  if (typeof value === 'string') return LOOKS_LIKE_INSTANT.test(value) && !INSTANT.test(value) ? [`${at || '/'} = ${value}`] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => otherPrecisions(v, `${at}/${i}`));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => otherPrecisions(v, `${at}/${k}`));
  return [];
}

test('instants keep their microseconds: an event timestamp comes back as sent, and as `from` finds exactly its event', async () => {
  const auth = { authorization: `Bearer ${apiKey}` };
  const at = '2026-01-03T04:05:06.123456Z';
  const created = await app.inject({ method: 'POST', url: '/api/v1/events', headers: auth, payload: { event_type: 'conversion', event_timestamp: at, session_id: randomUUID(), channel: 'email', conversion_value_cents: 500, currency: 'USD', idempotency_key: `us-${randomUUID()}` } });
  assert.equal(created.statusCode, 201, created.body);
  assert.equal(created.json().event_timestamp, at);
  assert.match(created.json().received_at, INSTANT);
  const got = await app.inject({ method: 'GET', url: `/api/v1/events/${created.json().id}`, headers: auth });
  assert.equal(got.json().event_timestamp, at);
  // The window echoed back keeps the microseconds a client sent (a Date alone would print .123Z).
  const report = await app.inject({ method: 'GET', url: `/api/v1/attribution/comparison?from=${encodeURIComponent(at)}&to=2026-01-03T04:05:06.123457Z`, headers: auth });
  assert.equal(report.statusCode, 200, report.body);
  assert.equal(report.json().from, at);
  assert.equal(report.json().to, '2026-01-03T04:05:06.123457Z');
});

test('every live response of every route is documented: its status, content type and body schema', async () => {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats.default(ajv);
  // Data for the listing routes to show, and successes for the main writes.
  const auth = { authorization: `Bearer ${apiKey}` };
  const event = { event_type: 'conversion', event_timestamp: '2026-01-01T12:00:00Z', session_id: randomUUID(), channel: 'email', conversion_value_cents: 1000, currency: 'USD', idempotency_key: `o-${randomUUID()}` };
  const extra: { method: string; url: string; payload?: unknown }[] = [
    { method: 'POST', url: '/api/v1/events', payload: event },
    { method: 'POST', url: '/api/v1/events', payload: event },
    { method: 'POST', url: '/api/v1/events', payload: { ...event, channel: 'organic' } },
    { method: 'POST', url: '/api/v1/events/batch', payload: { events: [{ ...event, idempotency_key: `o-${randomUUID()}` }, { ...event, event_type: 'nope' }] } },
    { method: 'PUT', url: '/api/v1/attribution/settings', payload: { models: ['first_touch', 'markov'], lookback_days: 30 } },
    { method: 'GET', url: '/api/v1/attribution/channels?model=linear&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z' },
    { method: 'GET', url: '/api/v1/reconciliation?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z' },
    // Rows with timestamps for the listings to print.
    { method: 'POST', url: '/api/v1/webhook-endpoints', payload: { provider: 'stripe', secret: 'whsec_openapi_1', description: 'OpenAPI' } },
    { method: 'POST', url: '/api/v1/publishable-keys', payload: { allowed_origins: ['https://shop.example'] } },
    { method: 'POST', url: '/api/v1/users/invitations', payload: { email: 'viewer@openapi.example', role: 'viewer' } },
  ];
  const checked: string[] = [];
  const failures: string[] = [];
  let instants = 0;
  let challenged = 0;
  const check = async (path: string, method: string, op: Operation, url: string, payload?: unknown) => {
    const res = await app.inject({ method: method.toUpperCase() as 'GET', url, headers: { ...auth, ...(payload !== undefined ? { 'content-type': 'application/json' } : {}) }, payload: payload as never });
    const where = `${method.toUpperCase()} ${url} → ${res.statusCode}`;
    if (res.statusCode === 401 && !res.headers['www-authenticate']) failures.push(`${where}: a 401 without WWW-Authenticate`);
    const documented = op.responses[String(res.statusCode)];
    if (!documented) return void failures.push(`${where}: status not documented for ${op.operationId}`);
    const type = String(res.headers['content-type'] ?? '').split(';')[0]!;
    if (res.statusCode === 204 || res.body === '') return void checked.push(where);
    const media = documented.content?.[type];
    if (!media) return void failures.push(`${where}: content type ${type} not documented (${Object.keys(documented.content ?? {}).join(', ')})`);
    const json = /^application\/(json|[a-z.+-]*\+json)$/.test(type);
    const body = json ? res.json() : res.body;
    if (json) {
      const wrong = otherPrecisions(body);
      if (wrong.length > 0) failures.push(`${where}: instants not printed as RFC 3339 UTC with microseconds: ${wrong.join(', ')}`);
      instants += JSON.stringify(body).match(/"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z"/g)?.length ?? 0;
    }
    const validate = ajv.compile(media.schema as object);
    if (!validate(body)) failures.push(`${where}: body does not match the documented schema: ${ajv.errorsText(validate.errors)} — ${res.body.slice(0, 300)}`);
    else checked.push(where);
  };
  for (const e of extra) {
    const path = e.url.split('?')[0]!;
    await check(path, e.method.toLowerCase(), doc.paths[path]![e.method.toLowerCase()]!, e.url, e.payload);
  }
  // The stored event itself (a random id is only a 404).
  const id = (await app.inject({ method: 'POST', url: '/api/v1/events', headers: { ...auth, 'content-type': 'application/json' }, payload: { ...event, idempotency_key: `o-${randomUUID()}` } })).json().id as string;
  await check('/api/v1/events/{id}', 'get', doc.paths['/api/v1/events/{id}']!.get!, `/api/v1/events/${id}`);
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (method === 'head') continue;
      const url = path.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(paramValue(name)));
      const query = (op.parameters ?? []).filter((p) => p.in === 'query' && p.required).map((p) => `${p.name}=${encodeURIComponent(queryValue(p.schema))}`);
      const full = query.length ? `${url}?${query.join('&')}` : url;
      await check(path, method, op, full, ['post', 'put', 'patch'].includes(method) ? {} : undefined);
      // Without credentials too: the 401 must be documented where the route needs them.
      if ((op.security ?? []).length > 0 && !path.startsWith('/metrics')) {
        const res = await app.inject({ method: method.toUpperCase() as 'GET', url: full });
        if (!op.responses[String(res.statusCode)]) failures.push(`${method.toUpperCase()} ${full} without credentials → ${res.statusCode}: not documented`);
        if (res.statusCode === 401 && !res.headers['www-authenticate']) failures.push(`${method.toUpperCase()} ${full} without credentials → 401 without WWW-Authenticate`);
        else if (res.statusCode === 401) challenged++;
      }
    }
  }
  assert.deepEqual(failures, [], `${failures.length} undocumented responses`);
  assert.ok(checked.length >= 50, `responses checked: ${checked.length}`);
  assert.ok(instants >= 15, `instants seen: ${instants}`);
  assert.ok(challenged >= 40, `401s with WWW-Authenticate: ${challenged}`);
  console.log(`# ${checked.length} live responses matched the document; ${instants} instants, all with microseconds`);
});
