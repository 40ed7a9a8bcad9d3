import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../config.js';
import { createTenant } from '../tenants/tenants.js';
import { createTestDatabase, type TestDatabase } from '../testing/db.js';
import { buildApp, type App } from './app.js';
import { PROBLEMS } from './problems.js';

/**
 * The edge of the HTTP server, through real sockets: what Node's parser refuses, the timeouts
 * and the connection cap (slowloris), NUL characters in any route's parameters, 405 with Allow,
 * WWW-Authenticate on 401s, and an aborted upload's log line.
 */

let db: TestDatabase;
let apiKey: string;
let app: App;
let port: number;
const logs: Record<string, unknown>[] = [];

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ api_key: apiKey } = await createTenant(owner, { name: 'Edge', email: 'ops@edge.example' }));
  await owner.end();
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  app = await buildApp({
    db,
    config: loadConfig({}),
    logger: { level: 'info', stream },
    rateLimit: { max: 0 },
    http: { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000, keepAliveTimeoutMs: 1_000, maxConnectionsPerAddress: 50 },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as { port: number }).port;
});
after(async () => {
  await app?.close();
  await db?.drop();
});

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function parse(raw: string): RawResponse {
  const [head, ...rest] = raw.split('\r\n\r\n');
  const [statusLine, ...lines] = head!.split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine!.split(' ')[1]), headers, body: rest.join('\r\n\r\n') };
}

/** Sends raw bytes and reads until the server closes the connection (or `ms` pass). */
function rawRequest(bytes: string | Buffer, ms = 10_000): Promise<{ response: RawResponse | null; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ response: data ? parse(data) : null, closed: false });
    }, ms);
    socket.on('data', (d) => (data += d));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ response: data ? parse(data) : null, closed: true });
    });
    socket.write(bytes);
  });
}

function assertProblem(response: RawResponse | null, status: number, code: string, field?: string): Record<string, unknown> {
  assert.ok(response, 'an answer came');
  assert.equal(response.status, status, JSON.stringify(response));
  assert.match(response.headers['content-type'] ?? '', /^application\/problem\+json/);
  const body = JSON.parse(response.body) as Record<string, unknown>;
  assert.equal(body.code, code);
  assert.equal(body.status, status);
  assert.equal(body.type, `/problems/${code}`);
  assert.ok(code in PROBLEMS, 'a registered code');
  if (field !== undefined) assert.equal(body.field, field);
  return body;
}

describe('errors below the router are problems with stable codes', () => {
  const cases: [string, string | Buffer, number, string, string?][] = [
    ['malformed request line', 'GARBAGE\r\n\r\n', 400, 'malformed_request'],
    ['a method that is no token', 'G(T / HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'malformed_request'],
    ['a bad HTTP version', 'GET /health HTTP/9.9\r\nHost: x\r\n\r\n', 400, 'malformed_request'],
    ['a header name with a space', 'GET /health HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n', 400, 'malformed_request', 'headers'],
    ['a control character in a header value', 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n', 400, 'malformed_request'],
    ['duplicate Content-Length', 'POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', 400, 'malformed_request', 'headers/content-length'],
    ['Content-Length with Transfer-Encoding', 'POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'malformed_request'],
    ['headers over 16 KiB', `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`, 431, 'headers_too_large'],
    ['an expectation other than 100-continue', 'GET /health HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n', 417, 'expectation_failed', 'headers/expect'],
    ['no Host header', 'GET /health HTTP/1.1\r\n\r\n', 400, 'malformed_request', 'headers/host'],
  ];
  for (const [what, bytes, status, code, field] of cases) {
    test(`${what}: ${status} ${code}`, async () => {
      const { response } = await rawRequest(bytes);
      const body = assertProblem(response, status, code, field);
      assert.match(String(body.request_id), /^[0-9a-f-]{36}$|^[A-Za-z0-9._:-]+$/);
    });
  }

  test('HTTP/1.0 without Host is fine (Host is required from 1.1 on)', async () => {
    const { response } = await rawRequest('GET /health HTTP/1.0\r\n\r\n');
    assert.equal(response?.status, 200);
  });
});

describe('slowloris: timeouts and the per-address connection cap', () => {
  test('600 connections sending half their headers are all closed: 50 by the headers timeout (408 problem), the rest refused at once by the cap (429)', async () => {
    const sockets: Socket[] = [];
    const answers: string[] = [];
    const closed: boolean[] = [];
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 600 }, (_, i) => {
        return new Promise<void>((resolve) => {
          const s = connect(port, '127.0.0.1', () => {
            s.write('POST /api/v1/events HTTP/1.1\r\nHost: x\r\nX-Partial: ');
            resolve();
          });
          answers[i] = '';
          closed[i] = false;
          s.on('data', (d) => (answers[i] += d));
          s.on('error', () => resolve());
          s.on('close', () => (closed[i] = true));
          sockets.push(s);
        });
      }),
    );
    const deadline = Date.now() + 15_000;
    while (closed.some((c) => !c) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const open = closed.filter((c) => !c).length;
    for (const s of sockets) s.destroy();
    assert.equal(open, 0, `${open} stalled connections still open after ${Date.now() - t0} ms`);
    const statuses = answers.map((a) => (a ? parse(a).status : 0));
    const count = (n: number) => statuses.filter((s) => s === n).length;
    // While the first 50 wait for their timeout every further one is refused; once they time
    // out (1 s) later ones get their places, so under a slow machine more than 50 time out.
    assert.equal(count(408) + count(429), 600, 'each got a 408 (timed out) or a 429 (over the cap)');
    assert.ok(count(408) >= 50, `the connections within the cap timed out, each with a 408 (${count(408)})`);
    assert.ok(count(429) > 0, `connections over the cap were refused at once with a 429 (${count(429)})`);
    console.log(`# 600 stalled connections: ${count(408)} timed out (408), ${count(429)} refused over the cap (429), all closed in ${Date.now() - t0} ms`);
    assertProblem(parse(answers[statuses.indexOf(408)]!), 408, 'request_timeout');
    const refused = parse(answers[statuses.indexOf(429)]!);
    assertProblem(refused, 429, 'too_many_connections');
    assert.equal(refused.headers['retry-after'], '1');
    // And the server serves again once they are gone: the server learns of the closes
    // asynchronously, so on a loaded machine the first request may still find the cap full
    // (CI saw one 429 here); it must clear within seconds.
    let status = 0;
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      status = (await fetch(`http://127.0.0.1:${port}/health`)).status;
      if (status === 200) break;
      assert.equal(status, 429, 'only the cap may refuse while closes are noticed');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 200, 'the server serves again once the stalled connections are gone');
  });

  test('a body that never finishes is ended by the request timeout', async () => {
    const t0 = Date.now();
    const { response, closed } = await rawRequest(
      `POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${apiKey}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":`,
      15_000,
    );
    assert.ok(closed, 'the server closed the connection');
    assert.ok(Date.now() - t0 < 10_000, `within the request timeout and a check interval (${Date.now() - t0} ms)`);
    if (response) assert.equal(response.status, 408);
  });

  test('an idle keep-alive connection is closed after the keep-alive timeout', async () => {
    const { response, closed } = await rawRequest('GET /health HTTP/1.1\r\nHost: x\r\n\r\n', 10_000);
    assert.equal(response?.status, 200);
    assert.ok(closed, 'closed by the server while idle');
  });

  test('SKELDIR_HTTP_* configure the limits; bad values are refused', () => {
    const c = loadConfig({ SKELDIR_HTTP_HEADERS_TIMEOUT_MS: '5000', SKELDIR_HTTP_REQUEST_TIMEOUT_MS: '60000', SKELDIR_HTTP_KEEP_ALIVE_TIMEOUT_MS: '5000', SKELDIR_HTTP_MAX_CONNECTIONS_PER_ADDRESS: '0' });
    assert.deepEqual(c.http, { headersTimeoutMs: 5000, requestTimeoutMs: 60000, keepAliveTimeoutMs: 5000, maxConnectionsPerAddress: 0 });
    assert.deepEqual(loadConfig({}).http, { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 72_000, maxConnectionsPerAddress: 128 });
    assert.throws(() => loadConfig({ SKELDIR_HTTP_HEADERS_TIMEOUT_MS: '0' }), /SKELDIR_HTTP_HEADERS_TIMEOUT_MS/);
    assert.throws(() => loadConfig({ SKELDIR_HTTP_MAX_CONNECTIONS_PER_ADDRESS: '-1' }), /SKELDIR_HTTP_MAX_CONNECTIONS_PER_ADDRESS/);
    assert.throws(() => loadConfig({ SKELDIR_HTTP_HEADERS_TIMEOUT_MS: '40000' }), /must not exceed SKELDIR_HTTP_REQUEST_TIMEOUT_MS/);
  });
});

describe('NUL characters in any route\'s parameters', () => {
  test('every route with a path parameter answers a NUL in it with a 400 problem before authentication (so before any query)', async () => {
    const routes = app.routeList.filter((r) => r.url.includes(':'));
    assert.ok(routes.length >= 8, `routes with parameters: ${routes.map((r) => r.url).join(', ')}`);
    for (const route of routes) {
      const names = [...route.url.matchAll(/:([A-Za-z_]+)/g)].map((m) => m[1]!);
      for (const name of names) {
        const url = route.url.replace(/:([A-Za-z_]+)/g, (_, n: string) => (n === name ? 'ch_1%00' : 'start'));
        const res = await app.inject({ method: route.method as 'GET', url, payload: route.method === 'GET' ? undefined : {} });
        assert.equal(res.statusCode, 400, `${route.method} ${url}: ${res.body}`);
        assert.equal(res.json().code, 'validation_failed');
        assert.equal(res.json().field, `params/${name}`, `${route.method} ${url}`);
      }
    }
  });

  test('the reported case and an authenticated one: GET /api/v1/revenue/transactions/ch_1%00 is a 400, not a 500', async () => {
    for (const headers of [{}, { authorization: `Bearer ${apiKey}` }]) {
      const res = await app.inject({ method: 'GET', url: '/api/v1/revenue/transactions/ch_1%00', headers });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json().field, 'params/transaction_id');
    }
  });

  test('a NUL in a query value is a 400 naming it', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/dead-events?error_type=a%00b', headers: { authorization: `Bearer ${apiKey}` } });
    assert.equal(res.statusCode, 400, res.body);
    assert.equal(res.json().field, 'querystring/error_type');
  });
});

describe('HTTP conventions', () => {
  test('a known path with a method it does not have: 405 with Allow; an unknown path stays 404', async () => {
    const cases: [string, string, string][] = [
      ['DELETE', '/api/v1/events', 'POST'],
      ['PUT', '/health', 'GET, HEAD'],
      ['GET', `/api/v1/webhooks/stripe/${randomUUID()}`, 'POST'],
      ['DELETE', '/api/v1/attribution/settings', 'GET, HEAD, PUT'],
      ['POST', `/api/v1/events/${randomUUID()}`, 'GET, HEAD'],
    ];
    for (const [method, url, allow] of cases) {
      const res = await app.inject({ method: method as 'GET', url });
      assert.equal(res.statusCode, 405, `${method} ${url}: ${res.body}`);
      assert.equal(res.headers.allow, allow, `${method} ${url}`);
      assert.equal(res.json().code, 'method_not_allowed');
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    }
    const missing = await app.inject({ method: 'GET', url: '/api/v1/nothing-here' });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.headers.allow, undefined);
  });

  test('from/to: one rule on every route and the CLI: a date means its midnight UTC, like the full RFC 3339 form', async () => {
    const auth = { authorization: `Bearer ${apiKey}` };
    const pairs: [string, string][] = [
      ['/api/v1/reconciliation?from=2026-01-01&to=2026-02-01', '/api/v1/reconciliation?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z'],
      ['/api/v1/attribution/channels?model=linear&from=2026-01-01&to=2026-02-01', '/api/v1/attribution/channels?model=linear&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z'],
      ['/api/v1/attribution/comparison?from=2026-01-01&to=2026-02-01', '/api/v1/attribution/comparison?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z'],
      ['/api/v1/dead-events?from=2026-01-01&to=2026-02-01', '/api/v1/dead-events?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z'],
    ];
    const strip = (body: Record<string, unknown>) => JSON.stringify({ ...body, request_id: undefined, generated_at: undefined });
    for (const [bare, full] of pairs) {
      const a = await app.inject({ method: 'GET', url: bare, headers: auth });
      const b = await app.inject({ method: 'GET', url: full, headers: auth });
      assert.equal(a.statusCode, 200, `${bare}: ${a.body}`);
      assert.equal(b.statusCode, 200, `${full}: ${b.body}`);
      assert.equal(strip(a.json()), strip(b.json()), bare);
    }
    for (const bad of ['2026-02-30', '2026-1-01', '20260101', '2026-01-01T00:00']) {
      const r = await app.inject({ method: 'GET', url: `/api/v1/reconciliation?from=${bad}&to=2026-03-01`, headers: auth });
      assert.equal(r.statusCode, 400, `${bad}: ${r.body}`);
    }
    const { parseInstant } = await import('../attribution/cli.js');
    assert.equal(parseInstant('--from', '2026-01-01').toISOString(), '2026-01-01T00:00:00.000Z');
    assert.equal(parseInstant('--from', '2026-01-01T01:00:00+01:00').toISOString(), '2026-01-01T00:00:00.000Z');
    assert.throws(() => parseInstant('--from', '2026-02-30'), /--from must be an RFC 3339 date-time with an offset \(or a date, UTC\)/);
  });

  test('every 401 says how to authenticate (WWW-Authenticate)', async () => {
    const none = await app.inject({ method: 'GET', url: '/api/v1/tenant' });
    assert.equal(none.statusCode, 401);
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="skeldir"');
    const wrong = await app.inject({ method: 'GET', url: '/api/v1/tenant', headers: { authorization: 'Bearer skd_nope' } });
    assert.equal(wrong.statusCode, 401);
    assert.equal(wrong.headers['www-authenticate'], 'Bearer realm="skeldir", error="invalid_token"');
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(metrics.statusCode, 401);
    assert.equal(metrics.headers['www-authenticate'], 'Bearer realm="skeldir"');
    const webhook = await app.inject({ method: 'POST', url: `/api/v1/webhooks/stripe/${randomUUID()}`, headers: { 'content-type': 'application/json' }, payload: '{}' });
    assert.equal(webhook.statusCode, 401, webhook.body);
    assert.equal(webhook.headers['www-authenticate'], 'Signature realm="skeldir"');
  });
});

describe('an aborted upload', () => {
  test('is logged as what it is, not as "database unavailable"', async () => {
    const before = logs.length;
    await new Promise<void>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.write(`POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${apiKey}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"event_type":`);
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 300);
      });
      s.on('error', () => {});
    });
    const deadline = Date.now() + 5_000;
    const mine = () => logs.slice(before).map((l) => String(l.msg));
    while (!mine().some((m) => /closed the connection before its request body was complete/.test(m)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(mine().some((m) => /closed the connection before its request body was complete/.test(m)), mine().join('\n'));
    assert.ok(!mine().some((m) => /database unavailable/.test(m)), mine().join('\n'));
  });
});
