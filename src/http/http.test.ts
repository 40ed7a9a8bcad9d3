import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../config.js';
import { databaseAt } from '../db/database.js';
import { createTenant } from '../tenants/tenants.js';
import { createTestDatabase, type TestDatabase } from '../testing/db.js';
import { buildApp, MAX_PARAM_LENGTH, type App } from './app.js';
import { parseJsonBody } from './json-body.js';
import { PROBLEMS } from './problems.js';
import { API_ROUTES } from './routes.js';

let db: TestDatabase;
let app: App;
let keyA: string;
let tenantA: string;
let tenantB: string;
let keyB: string;

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ tenant_id: tenantA, api_key: keyA } = await createTenant(owner, { name: 'Alpha', email: 'ops@alpha.example' }));
  ({ tenant_id: tenantB, api_key: keyB } = await createTenant(owner, { name: 'Beta', email: 'ops@beta.example' }));
  await owner.end();
  app = await buildApp({ db, config: loadConfig({}), logger: false });
});
after(async () => {
  await app?.close();
  await db?.drop();
});

function assertProblem(res: { statusCode: number; headers: Record<string, unknown>; json(): any }, status: number, code: string) {
  assert.equal(res.statusCode, status);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json();
  assert.equal(body.status, status);
  assert.equal(body.code, code);
  assert.equal(body.type, `/problems/${code}`);
  assert.equal(typeof body.title, 'string');
  assert.equal(typeof body.detail, 'string');
  assert.equal(body.request_id, res.headers['x-request-id']);
  return body;
}

describe('meta routes', () => {
  test('/health answers while the process is up', async () => {
    const res = await app.inject({ method: 'GET', url: '/health' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ok' });
  });

  test('/ready checks the database and the schema revision', async () => {
    const res = await app.inject({ method: 'GET', url: '/ready' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().status, 'ready');
  });

  test('/openapi.json documents the API routes with their security scheme', async () => {
    const res = await app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.equal(doc.openapi, '3.1.0');
    assert.deepEqual(doc.info.license, { name: 'Apache-2.0', identifier: 'Apache-2.0' });
    assert.ok(doc.paths['/api/v1/tenant'].get);
    assert.ok(doc.components.securitySchemes.apiKey);
    const docs = await app.inject({ method: 'GET', url: '/docs/' });
    assert.equal(docs.statusCode, 200);
    assert.match(docs.body, /swagger/i);
  });

  test('every registered problem type is documented at its type URI', async () => {
    for (const code of Object.keys(PROBLEMS)) {
      const res = await app.inject({ method: 'GET', url: `/problems/${code}` });
      assert.equal(res.statusCode, 200);
      assert.equal(res.json().code, code);
    }
  });

  test('only registered codes are problem types: inherited property names are not', async () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
      assertProblem(await app.inject({ method: 'GET', url: `/problems/${name}` }), 404, 'not_found');
    }
  });

  test('/ready answers with its own connection: an exhausted pool does not make it hang', { timeout: 20_000 }, async () => {
    const small = await buildApp({ db, config: loadConfig({}), logger: false, poolSize: 1 });
    const held = await small.appPool.connect();
    try {
      const res = await small.inject({ method: 'GET', url: '/ready' });
      assert.equal(res.statusCode, 200, res.body);
    } finally {
      held.release();
      await small.close();
    }
  });

  test('/ready answers 503 when the database accepts connections but never replies', { timeout: 20_000 }, async () => {
    // A TCP listener that takes the connection and stays silent: a host dropping packets after the handshake.
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    const nowhere = databaseAt(`postgres://nobody:nothing@127.0.0.1:${port}/none`, db.roles);
    const blind = await buildApp({ db: nowhere, config: loadConfig({}), logger: false, readyTimeoutMs: 300 });
    try {
      assertProblem(await blind.inject({ method: 'GET', url: '/ready' }), 503, 'not_ready');
    } finally {
      await blind.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  test('OpenAPI: every API route documents its problem responses (application/problem+json)', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    let checked = 0;
    for (const [path, ops] of Object.entries<Record<string, any>>(doc.paths)) {
      if (!path.startsWith('/api/v1/') || path.startsWith('/api/v1/webhooks/')) continue;
      for (const [method, op] of Object.entries<any>(ops)) {
        for (const status of ['400', '401', '429', '503']) {
          const schema = op.responses?.[status]?.content?.['application/problem+json']?.schema;
          assert.ok(schema, `${method.toUpperCase()} ${path}: no ${status} problem response`);
          assert.deepEqual([...schema.required].sort(), ['code', 'detail', 'status', 'title', 'type'], `${method} ${path} ${status}`);
        }
        if (path.includes('{')) assert.ok(op.responses['404'], `${method} ${path}: 404`);
        if (op.requestBody) for (const s of ['413', '415']) assert.ok(op.responses[s], `${method} ${path}: ${s}`);
        checked++;
      }
    }
    assert.ok(checked >= 10, `only ${checked} operations`);
    const post = doc.paths['/api/v1/events'].post.responses;
    assert.ok(post['201'] && post['200'] && post['409'] && post['422'], Object.keys(post).join(','));
    // Routes list their own codes too (config.problems), under the status each code has.
    const described = (path: string, method: string, status: string) => String(doc.paths[path]?.[method]?.responses?.[status]?.description ?? '');
    assert.match(described('/api/v1/dead-events/{id}/retry', 'post', '409'), /dead_event_transition_not_allowed.*dead_event_not_retryable.*dead_event_retry_in_flight/);
    assert.match(described('/api/v1/dead-events/{id}/resolve', 'post', '404'), /dead_event_not_found/);
    assert.match(described('/api/v1/dead-events', 'get', '400'), /dead_event_cursor_invalid/);
    assert.match(described('/api/v1/attribution/channels', 'get', '400'), /attribution_window_invalid/);
    assert.match(described('/api/v1/attribution/comparison', 'get', '400'), /attribution_window_invalid/);
    assert.match(described('/api/v1/attribution/settings', 'put', '400'), /attribution_settings_invalid/);
    assert.match(described('/api/v1/reconciliation', 'get', '422'), /reconciliation_overflow/);
    assert.ok(API_ROUTES.length > 0);
  });

  test('an unknown route is a 404 problem', async () => {
    assertProblem(await app.inject({ method: 'GET', url: '/nope?x=1' }), 404, 'route_not_found');
  });
});

describe('authentication', () => {
  test('the tenant comes from the API key', async () => {
    for (const [key, tenant, name] of [[keyA, tenantA, 'Alpha'], [keyB, tenantB, 'Beta']] as const) {
      const res = await app.inject({ method: 'GET', url: '/api/v1/tenant', headers: { authorization: `Bearer ${key}` } });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().id, tenant);
      assert.equal(res.json().name, name);
    }
  });

  test('missing, malformed and unknown keys get the same 401 problem', async () => {
    const variants: Record<string, string | undefined> = {
      missing: undefined,
      empty: '',
      'not bearer': `Basic ${keyA}`,
      'bearer without key': 'Bearer ',
      'wrong shape': 'Bearer hello',
      'unknown key': `Bearer skd_${'A'.repeat(43)}`,
      'key with a changed character': `Bearer ${keyA.slice(0, -1)}${keyA.endsWith('A') ? 'B' : 'A'}`,
      'legacy placeholder hash as key': `Bearer unset:${tenantA}`,
    };
    const bodies = new Set<string>();
    for (const [name, header] of Object.entries(variants)) {
      const res = await app.inject({
        method: 'GET',
        url: '/api/v1/tenant',
        headers: header === undefined ? {} : { authorization: header },
      });
      const body = assertProblem(res, 401, 'unauthorized');
      delete body.request_id;
      bodies.add(JSON.stringify(body));
      assert.ok(!JSON.stringify(body).includes(keyA), `${name}: the key is not echoed`);
    }
    assert.equal(bodies.size, 1, 'identical bodies for every cause');
  });

  test('the Bearer scheme is case-insensitive (RFC 9110 §11.1)', async () => {
    for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
      const res = await app.inject({ method: 'GET', url: '/api/v1/tenant', headers: { authorization: `${scheme} ${keyA}` } });
      assert.equal(res.statusCode, 200, `${scheme}: ${res.body}`);
      assert.equal(res.json().id, tenantA);
    }
  });
});

describe('URLs and path parameters', () => {
  const auth = () => ({ authorization: `Bearer ${keyA}` });
  test('a uuid parameter is the canonical form only: urn:uuid: and braces are a 400, never a 500', async () => {
    const id = randomUUID();
    for (const base of ['/api/v1/events', '/api/v1/dead-events']) {
      for (const bad of [`urn:uuid:${id}`, `URN:UUID:${id}`, `{${id}}`, id.replaceAll('-', '')]) {
        const body = assertProblem(await app.inject({ method: 'GET', url: `${base}/${encodeURIComponent(bad)}`, headers: auth() }), 400, 'validation_failed');
        assert.equal(body.field, 'params/id', `${base}/${bad}`);
      }
      // The canonical form, in either case, names nothing here: 404.
      assert.equal((await app.inject({ method: 'GET', url: `${base}/${id.toUpperCase()}`, headers: auth() })).statusCode, 404);
    }
  });

  test('a malformed percent-escape in the URL, or an over-long path parameter, is a 400 problem naming the url', async () => {
    for (const url of ['/api/v1/events/%E0%A4%A', '/api/v1/events/%zz', '/health%', `/api/v1/events/${'x'.repeat(MAX_PARAM_LENGTH + 1)}`]) {
      const body = assertProblem(await app.inject({ method: 'GET', url, headers: auth() }), 400, 'validation_failed');
      assert.equal(body.field, 'url', url);
    }
  });
});

describe('request ids', () => {
  test('a well-formed X-Request-Id is echoed; anything else is replaced', async () => {
    const ok = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'abc-123' } });
    assert.equal(ok.headers['x-request-id'], 'abc-123');
    const bad = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'a b<script>' } });
    assert.match(String(bad.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });
});

describe('strict JSON bodies', () => {
  const problem = (raw: Buffer | string) => {
    try {
      parseJsonBody(Buffer.isBuffer(raw) ? raw : Buffer.from(raw));
      return 'accepted';
    } catch (error) {
      return (error as { code: string }).code;
    }
  };

  test('accepts ordinary JSON', () => {
    assert.deepEqual(parseJsonBody(Buffer.from('{"a":[1,{"b":"c"}]}')), { a: [1, { b: 'c' }] });
  });

  test('rejects each kind of bad body with its own code', () => {
    assert.equal(problem(''), 'empty_body');
    assert.equal(problem('   '), 'empty_body');
    assert.equal(problem('{"a":'), 'malformed_json');
    assert.equal(problem(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])), 'invalid_utf8');
    assert.equal(problem('{"__proto__":{"x":1}}'), 'forbidden_key');
    assert.equal(problem('{"a":{"constructor":{"prototype":{"x":1}}}}'), 'forbidden_key');
    assert.equal(problem('{"constructor":1}'), 'forbidden_key');
    assert.equal(problem('{"a":"x\\u0000y"}'), 'nul_character');
    assert.equal(problem('{"a\\u0000":1}'), 'nul_character');
    assert.equal(problem('[[[[[[[[[1]]]]]]]]]'), 'too_deep');
    assert.equal(problem('[[[[[[[[1]]]]]]]]'), 'accepted');
    // Lone UTF-16 surrogates are valid JSON escapes but not text (PostgreSQL's jsonb refuses them).
    assert.equal(problem('{"a":"x\\ud800y"}'), 'invalid_unicode');
    assert.equal(problem('{"a":"\\udfff"}'), 'invalid_unicode');
    assert.equal(problem('{"a":["ok","\\ud83d"]}'), 'invalid_unicode');
    assert.equal(problem('{"\\udc00":1}'), 'invalid_unicode');
    assert.equal(problem('"\\ud800"'), 'invalid_unicode');
    assert.equal(problem('{"a":"\\ud83d\\ude00 \u2028"}'), 'accepted', 'a surrogate pair is a character');
  });

  test('body problems name where they are: JSON pointers starting at body', () => {
    const field = (raw: string) => {
      try {
        parseJsonBody(Buffer.from(raw));
        return 'accepted';
      } catch (error) {
        return (error as { field?: string }).field;
      }
    };
    assert.equal(field(''), 'body');
    assert.equal(field('{"a":'), 'body');
    assert.equal(field('{"__proto__":{"x":1}}'), 'body');
    assert.equal(field('{"a":{"prototype":1}}'), 'body/a/prototype');
    assert.equal(field('{"a":"x\\u0000y"}'), 'body/a');
    assert.equal(field('{"a":{"b\\u0000":1}}'), 'body/a');
    assert.equal(field('{"a/b":["\\ud800"]}'), 'body/a~1b/0');
    assert.equal(field('{"x":{"\\ud800":1}}'), 'body/x');
    assert.equal(field('"\\u0000"'), 'body');
    assert.equal(field('{"d":[[[[[[[[1]]]]]]]]}'), 'body/d/0/0/0/0/0/0/0');
  });
});
