import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../config.js';
import { createTenant } from '../tenants/tenants.js';
import { createTestDatabase, type TestDatabase } from '../testing/db.js';
import { buildApp, type App } from './app.js';
import { parseJsonBody } from './json-body.js';
import { PROBLEMS } from './problems.js';

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
  });
});
