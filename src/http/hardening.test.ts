import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { loadConfig } from '../config.js';
import { createTenant, rotateApiKey } from '../tenants/tenants.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { buildApp, type App } from './app.js';

let db: TestDatabase;
let su: pg.Client;
let keyA: string;
let keyB: string;
let keyC: string;
let tenantC: string;

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ api_key: keyA } = await createTenant(owner, { name: 'Alpha', email: 'ops@alpha.example' }));
  ({ api_key: keyB } = await createTenant(owner, { name: 'Beta', email: 'ops@beta.example' }));
  ({ tenant_id: tenantC, api_key: keyC } = await createTenant(owner, { name: 'Gamma', email: 'ops@gamma.example' }));
  await owner.end();
  su = await superClient(db);
});
after(async () => {
  await su?.end();
  await db?.drop();
});

const event = () => ({
  idempotency_key: randomUUID(),
  event_type: 'touchpoint',
  event_timestamp: '2026-01-01T00:00:00Z',
  session_id: randomUUID(),
  channel: 'email',
});
const count = async () => Number((await su.query('SELECT count(*) AS n FROM attribution_events')).rows[0].n);

describe('per-tenant rate limit', () => {
  let app: App;
  before(async () => {
    app = await buildApp({ db, config: loadConfig({}), logger: false, rateLimit: { max: 3, timeWindowMs: 60_000 } });
  });
  after(async () => app?.close());

  test('over the limit: 429 problem with Retry-After; other tenants unaffected; nothing written', async () => {
    const send = (key: string) => app.inject({ method: 'POST', url: '/api/v1/events', headers: { authorization: `Bearer ${key}` }, payload: event() });
    for (let i = 0; i < 3; i++) {
      const ok = await send(keyA);
      assert.equal(ok.statusCode, 201, ok.body);
      assert.equal(ok.headers['x-ratelimit-limit'], '3');
    }
    const before = await count();
    const limited = await send(keyA);
    assert.equal(limited.statusCode, 429);
    assert.match(String(limited.headers['content-type']), /^application\/problem\+json/);
    assert.equal(limited.json().code, 'rate_limited');
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 60, String(limited.headers['retry-after']));
    assert.equal(await count(), before, 'the refused request wrote nothing');
    assert.equal((await send(keyB)).statusCode, 201, 'another tenant has its own budget');
  });

  test('limits apply per tenant, not per key string: unauthenticated requests are not counted, invalid ones are', async () => {
    const remaining = (res: { headers: Record<string, unknown> }) => Number(res.headers['x-ratelimit-remaining']);
    const owner = db.ownerPool({ max: 1 });
    const rotated = await rotateApiKey(owner, tenantC, 3600_000);
    await owner.end();
    const oldKey = keyC;
    const newKey = rotated.api_key;
    const first = await app.inject({ method: 'GET', url: '/api/v1/tenant', headers: { authorization: `Bearer ${oldKey}` } });
    assert.equal(first.statusCode, 200, first.body);
    assert.equal(remaining(first), 2);
    // Without a valid key nothing is counted, against anyone.
    for (const headers of [{}, { authorization: `Bearer ${oldKey}x` }, { authorization: `Basic ${newKey}` }]) {
      const res = await app.inject({ method: 'POST', url: '/api/v1/events', headers, payload: event() });
      assert.equal(res.statusCode, 401);
      assert.equal(res.headers['x-ratelimit-remaining'], undefined, 'a refused request reveals no budget');
    }
    // The new key spends the same budget as the old one; an invalid request spends it too.
    const invalid = await app.inject({ method: 'POST', url: '/api/v1/events', headers: { authorization: `Bearer ${newKey}` }, payload: { ...event(), colour: 'red' } });
    assert.equal(invalid.statusCode, 400, invalid.body);
    assert.equal(remaining(invalid), 1, 'unauthenticated requests did not count; the invalid one did, on the shared budget');
    const bad = await app.inject({ method: 'POST', url: '/api/v1/events', headers: { authorization: `Bearer ${oldKey}`, 'content-type': 'application/json' }, payload: '{"event_type":' });
    assert.equal(bad.statusCode, 400, bad.body);
    assert.equal(remaining(bad), 0);
    for (const key of [oldKey, newKey]) {
      const limited = await app.inject({ method: 'POST', url: '/api/v1/events', headers: { authorization: `Bearer ${key}` }, payload: { ...event(), colour: 'red' } });
      assert.equal(limited.statusCode, 429, `${key === oldKey ? 'old' : 'new'} key: ${limited.body}`);
      assert.equal(limited.json().code, 'rate_limited');
    }
  });

  test('SKELDIR_RATE_LIMIT_PER_MINUTE configures it (0 = unlimited); bad values are refused', () => {
    assert.equal(loadConfig({}).rateLimitPerMinute, 6000);
    assert.equal(loadConfig({ SKELDIR_RATE_LIMIT_PER_MINUTE: '0' }).rateLimitPerMinute, 0);
    assert.throws(() => loadConfig({ SKELDIR_RATE_LIMIT_PER_MINUTE: '-1' }), /SKELDIR_RATE_LIMIT_PER_MINUTE/);
  });
});

describe('body size limits', () => {
  let app: App;
  before(async () => {
    app = await buildApp({ db, config: loadConfig({}), logger: false, rateLimit: { max: 0 } });
  });
  after(async () => app?.close());

  test('one event: 64 KiB; a batch: 4 MiB; both refused before parsing with 413', async () => {
    const before = await count();
    const big = { ...event(), campaign_id: 'x'.repeat(65 * 1024) };
    const single = await app.inject({ method: 'POST', url: '/api/v1/events', headers: { authorization: `Bearer ${keyA}` }, payload: big });
    assert.equal(single.statusCode, 413);
    assert.equal(single.json().code, 'payload_too_large');
    // A batch of 300 ordinary events (~100 KB) is more than one event may be, and fine.
    const batch = await app.inject({ method: 'POST', url: '/api/v1/events/batch', headers: { authorization: `Bearer ${keyA}` }, payload: { events: Array.from({ length: 300 }, event) } });
    assert.equal(batch.statusCode, 200, batch.body.slice(0, 200));
    assert.equal(batch.json().created, 300);
    const huge = await app.inject({
      method: 'POST',
      url: '/api/v1/events/batch',
      headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ events: [{ ...event(), campaign_id: 'x'.repeat(4 * 1024 * 1024) }] }),
    });
    assert.equal(huge.statusCode, 413);
    assert.equal(await count(), before + 300);
  });
});

describe('content types and body problems name their field', () => {
  let app: App;
  before(async () => {
    app = await buildApp({ db, config: loadConfig({}), logger: false, rateLimit: { max: 0 } });
  });
  after(async () => app?.close());
  const send = (contentType: string | undefined, payload: string) =>
    app.inject({ method: 'POST', url: '/api/v1/events', headers: { authorization: `Bearer ${keyA}`, ...(contentType === undefined ? {} : { 'content-type': contentType }) }, payload });

  test('415 names the content type that was sent', async () => {
    const res = await send('text/plain; charset=utf-8', JSON.stringify(event()));
    assert.equal(res.statusCode, 415);
    const body = res.json();
    assert.equal(body.code, 'unsupported_media_type');
    assert.equal(body.field, 'headers/content-type');
    assert.match(body.detail, /"text\/plain; charset=utf-8"/);
    assert.doesNotMatch(body.detail, /Unsupported Media Type/);
  });

  test('JSON in a charset other than UTF-8 is a 415; utf-8 in any spelling is fine', async () => {
    const before = await count();
    for (const ct of ['application/json; charset=iso-8859-1', 'application/json;charset="windows-1252"', 'application/json; charset=utf-16']) {
      const res = await send(ct, JSON.stringify(event()));
      assert.equal(res.statusCode, 415, `${ct}: ${res.body}`);
      assert.equal(res.json().code, 'unsupported_media_type');
      assert.equal(res.json().field, 'headers/content-type');
      assert.match(res.json().detail, /UTF-8/);
    }
    assert.equal(await count(), before);
    for (const ct of ['application/json', 'application/json; charset=utf-8', 'application/json;charset=UTF-8', 'application/json; charset="utf-8"', 'Application/JSON; Charset=utf8']) {
      const res = await send(ct, JSON.stringify(event()));
      assert.equal(res.statusCode, 201, `${ct}: ${res.body}`);
    }
  });

  test('whole-body problems say field "body"', async () => {
    const cases: [string | undefined, string, number, string][] = [
      ['application/json', '', 400, 'empty_body'],
      ['application/json', '{"event_type":', 400, 'malformed_json'],
      ['application/json', '{"__proto__":{"x":1}}', 400, 'forbidden_key'],
      ['application/json', JSON.stringify({ ...event(), campaign_id: 'x'.repeat(70_000) }), 413, 'payload_too_large'],
    ];
    for (const [ct, payload, status, code] of cases) {
      const res = await send(ct, payload);
      assert.equal(res.statusCode, status, `${code}: ${res.body}`);
      assert.equal(res.json().code, code);
      assert.equal(res.json().field, 'body', code);
    }
  });
});

describe('logs', () => {
  test('every request line carries the request id; API keys and authorization headers never appear', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    const app = await buildApp({ db, config: loadConfig({}), logger: { level: 'info', stream }, rateLimit: { max: 0 } });
    try {
      const requests = [
        {
          method: 'POST',
          url: '/api/v1/events',
          headers: { authorization: `Bearer ${keyA}`, 'x-request-id': 'req-ok-1', 'x-api-key': 'xapikey-secret', cookie: 'other=cookie-secret', 'proxy-authorization': 'Basic proxy-secret', 'x-csrf-token': 'csrf-secret' },
          payload: event(),
        },
        { method: 'POST', url: '/api/v1/events', headers: { authorization: `Bearer ${keyA}`, 'x-request-id': 'req-bad-2', 'idempotency-key': 'secret-ish' }, payload: { ...event(), idempotency_key: undefined, api_key: keyA } },
        { method: 'GET', url: '/api/v1/tenant', headers: { authorization: `Bearer ${keyB}x`, 'x-request-id': 'req-401-3' } },
        { method: 'GET', url: '/api/v1/tenant', headers: { authorization: `Basic ${keyB}`, 'x-request-id': 'req-401-4' } },
      ] as const;
      for (const r of requests) await app.inject(r as never);
    } finally {
      await app.close();
    }
    const parsed = lines.map((l) => JSON.parse(l));
    for (const id of ['req-ok-1', 'req-bad-2', 'req-401-3', 'req-401-4']) {
      const mine = parsed.filter((l) => l.reqId === id);
      assert.ok(mine.some((l) => l.req), `${id}: the incoming request is logged with its id`);
      assert.ok(mine.some((l) => l.res), `${id}: the response is logged with its id`);
    }
    const incoming = parsed.filter((l) => l.req?.headers);
    assert.ok(incoming.length >= 4);
    for (const l of incoming) assert.equal(l.req.headers.authorization, '[redacted]', 'the header is logged, censored');
    const ok = incoming.find((l) => l.reqId === 'req-ok-1' && l.res?.statusCode === 201);
    assert.ok(ok, 'the 201 line is there');
    for (const h of ['x-api-key', 'cookie', 'proxy-authorization', 'x-csrf-token']) assert.equal(ok.req.headers[h], '[redacted]', h);
    assert.equal(ok.req.headers['x-request-id'], 'req-ok-1', 'other headers are logged as sent');
    const all = lines.join('\n');
    for (const secret of [keyA, keyB, keyA.slice(4), keyB.slice(4), 'secret-ish', 'xapikey-secret', 'cookie-secret', 'proxy-secret', 'csrf-secret']) assert.ok(!all.includes(secret), `a credential leaked into the logs: ${secret.slice(0, 6)}…`);
  });
});
