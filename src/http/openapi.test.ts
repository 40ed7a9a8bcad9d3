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
import { createTenant } from '../tenants/tenants.js';
import { ROOT } from '../testing/cli.js';
import { createTestDatabase, type TestDatabase } from '../testing/db.js';
import { buildApp, type App } from './app.js';

/**
 * The OpenAPI document against Redocly's recommended rules (`npm run lint:openapi`), and every
 * live response of every route against the document: its status must be documented for that
 * operation, with the response's content type, and the body must match the documented schema.
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
  assert.deepEqual(model.schema.enum, ['first_touch', 'last_touch', 'linear', 'time_decay', 'position_based', 'markov', 'shapley', 'bayesian']);
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
  ];
  const checked: string[] = [];
  const failures: string[] = [];
  const check = async (path: string, method: string, op: Operation, url: string, payload?: unknown) => {
    const res = await app.inject({ method: method.toUpperCase() as 'GET', url, headers: { ...auth, ...(payload !== undefined ? { 'content-type': 'application/json' } : {}) }, payload: payload as never });
    const where = `${method.toUpperCase()} ${url} → ${res.statusCode}`;
    const documented = op.responses[String(res.statusCode)];
    if (!documented) return void failures.push(`${where}: status not documented for ${op.operationId}`);
    const type = String(res.headers['content-type'] ?? '').split(';')[0]!;
    if (res.statusCode === 204 || res.body === '') return void checked.push(where);
    const media = documented.content?.[type];
    if (!media) return void failures.push(`${where}: content type ${type} not documented (${Object.keys(documented.content ?? {}).join(', ')})`);
    const body = /^application\/(json|[a-z.+-]*\+json)$/.test(type) ? res.json() : res.body;
    const validate = ajv.compile(media.schema as object);
    if (!validate(body)) failures.push(`${where}: body does not match the documented schema: ${ajv.errorsText(validate.errors)} — ${res.body.slice(0, 300)}`);
    else checked.push(where);
  };
  for (const e of extra) {
    const path = e.url.split('?')[0]!;
    await check(path, e.method.toLowerCase(), doc.paths[path]![e.method.toLowerCase()]!, e.url, e.payload);
  }
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
      }
    }
  }
  assert.deepEqual(failures, [], `${failures.length} undocumented responses`);
  assert.ok(checked.length >= 50, `responses checked: ${checked.length}`);
  console.log(`# ${checked.length} live responses matched the document`);
});
