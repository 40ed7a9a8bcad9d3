import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { loadConfig } from '../config.js';
import { createTenant } from '../tenants/tenants.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { TEST_SECRET_KEY } from '../webhooks/test-support.js';
import { acceptInvitation, inviteUser } from '../users/users.js';
import { buildApp, type App } from './app.js';

process.env.SKELDIR_SECRET_KEY = TEST_SECRET_KEY;
let db: TestDatabase;
let su: pg.Client;
let app: App;
let A: { tenant_id: string; api_key: string };
let B: { tenant_id: string; api_key: string };
const web = loadConfig({}).web;

before(async () => {
  db = await createTestDatabase('head');
  su = await superClient(db);
  const owner = db.ownerPool({ max: 1 });
  A = await createTenant(owner, { name: 'Alpha', email: 'ops@alpha.example' });
  B = await createTenant(owner, { name: 'Beta', email: 'ops@beta.example' });
  await owner.end();
  app = await buildApp({ db, config: loadConfig({}), logger: false });
});
after(async () => {
  await app?.close();
  await su?.end();
  await db?.drop();
});

async function user(tenant: string, email: string, role: string) {
  const inv = await inviteUser(app.appPool, tenant, { email, role }, web);
  const s = await acceptInvitation(app.appPool, inv.invitation_url.split('#')[1]!, 'a long enough password', web);
  return (method: string, url: string, payload?: unknown) =>
    app.inject({ method: method as 'GET', url, headers: { cookie: `skeldir_session=${s.token}`, 'x-csrf-token': s.csrf_token }, ...(payload !== undefined ? { payload: payload as object } : {}) });
}

describe('webhook endpoints over HTTP', () => {
  test('an admin creates (secret shown once), lists (no secret), rotates and deletes; viewers are refused', async () => {
    const admin = await user(A.tenant_id, 'admin@alpha.example', 'admin');
    const viewer = await user(A.tenant_id, 'viewer@alpha.example', 'viewer');
    const created = await admin('POST', '/api/v1/webhook-endpoints', { provider: 'stripe', secret: 'whsec_from_stripe_1', description: 'Shop' });
    assert.equal(created.statusCode, 201, created.body);
    const ep = created.json();
    assert.equal(ep.secret, 'whsec_from_stripe_1');
    assert.equal(ep.url_path, `/api/v1/webhooks/stripe/${ep.endpoint_id}`);
    const list = await admin('GET', '/api/v1/webhook-endpoints');
    assert.equal(list.json().items.length, 1);
    assert.ok(!list.body.includes('whsec_from_stripe_1'));
    const stored = (await su.query(`SELECT secret_ciphertext FROM webhook_endpoints WHERE id = $1`, [ep.endpoint_id])).rows[0].secret_ciphertext;
    assert.ok(!stored.includes('whsec_from_stripe_1'), 'encrypted at rest');
    const rotated = await admin('POST', `/api/v1/webhook-endpoints/${ep.endpoint_id}/rotate`, { grace_hours: 2 });
    assert.equal(rotated.statusCode, 200, rotated.body);
    assert.match(rotated.json().secret, /^skd_whsec_/);
    assert.ok(rotated.json().previous_secret_valid_until);
    for (const [method, url, body] of [
      ['POST', '/api/v1/webhook-endpoints', { provider: 'shopify' }],
      ['GET', '/api/v1/webhook-endpoints', undefined],
      ['DELETE', `/api/v1/webhook-endpoints/${ep.endpoint_id}`, undefined],
    ] as const) {
      const res = await viewer(method, url, body);
      assert.equal(res.statusCode, 403, `${method} ${url}`);
    }
    // Another tenant's admin: A's endpoint does not exist for them.
    const other = await user(B.tenant_id, 'admin@beta.example', 'admin');
    const theirs = await other('DELETE', `/api/v1/webhook-endpoints/${ep.endpoint_id}`);
    assert.equal(theirs.statusCode, 404);
    assert.equal(theirs.json().code, 'webhook_endpoint_not_found');
    assert.equal((await admin('DELETE', `/api/v1/webhook-endpoints/${ep.endpoint_id}`)).statusCode, 204);
    assert.equal((await admin('GET', '/api/v1/webhook-endpoints')).json().items.length, 0);
    const paypal = await admin('POST', '/api/v1/webhook-endpoints', { provider: 'paypal' });
    assert.equal(paypal.statusCode, 400);
    assert.equal(paypal.json().code, 'webhook_secret_invalid');
  });
});

describe('API keys and reporting currency over HTTP', () => {
  test('an owner rotates the key (shown once; the old one works during the grace) and revokes; admins cannot', async () => {
    const owner = await user(A.tenant_id, 'owner@alpha.example', 'owner');
    const admin = await user(A.tenant_id, 'admin2@alpha.example', 'admin');
    assert.equal((await admin('POST', '/api/v1/api-keys/rotate', { grace: '1h' })).statusCode, 403);
    assert.deepEqual((await owner('GET', '/api/v1/api-keys')).json(), { current_key: 'active', keys_in_grace: [] });
    const rotated = await owner('POST', '/api/v1/api-keys/rotate', { grace: '1h' });
    assert.equal(rotated.statusCode, 200, rotated.body);
    const fresh = rotated.json().api_key as string;
    assert.match(fresh, /^skd_/);
    const asKey = (key: string) => app.inject({ method: 'GET', url: '/api/v1/tenant', headers: { authorization: `Bearer ${key}` } });
    assert.equal((await asKey(fresh)).statusCode, 200);
    assert.equal((await asKey(A.api_key)).statusCode, 200, 'the old key works during the grace period');
    assert.equal((await owner('GET', '/api/v1/api-keys')).json().keys_in_grace.length, 1);
    const unconfirmed = await owner('POST', '/api/v1/api-keys/revoke', {});
    assert.equal(unconfirmed.statusCode, 400);
    const revoked = await owner('POST', '/api/v1/api-keys/revoke', { confirm: 'revoke' });
    assert.deepEqual(revoked.json(), { tenant_id: A.tenant_id, revoked: 2, current_key_revoked: true });
    assert.equal((await asKey(fresh)).statusCode, 401, 'revoked at once in this process');
    assert.equal((await asKey(A.api_key)).statusCode, 401);
    assert.equal((await asKey(B.api_key)).statusCode, 200, "another tenant's key is untouched");
    assert.equal((await owner('GET', '/api/v1/api-keys')).json().current_key, 'revoked');
    assert.equal((await owner('GET', '/api/v1/tenant')).statusCode, 200, 'sessions do not depend on the API key');
  });

  test('the reporting currency: read by anyone, set by admins, checked', async () => {
    const admin = await user(B.tenant_id, 'money@beta.example', 'admin');
    const viewer = await user(B.tenant_id, 'look@beta.example', 'viewer');
    assert.deepEqual((await viewer('GET', '/api/v1/reporting-currency')).json(), { reporting_currency: 'USD' });
    assert.equal((await viewer('PUT', '/api/v1/reporting-currency', { reporting_currency: 'EUR' })).statusCode, 403);
    assert.equal((await admin('PUT', '/api/v1/reporting-currency', { reporting_currency: 'EUR' })).json().reporting_currency, 'EUR');
    const bad = await admin('PUT', '/api/v1/reporting-currency', { reporting_currency: 'XXX' });
    assert.equal(bad.statusCode, 422);
    assert.equal(bad.json().code, 'currency_invalid');
    assert.equal((await su.query(`SELECT reporting_currency FROM tenants WHERE id = $1`, [B.tenant_id])).rows[0].reporting_currency, 'EUR');
    assert.equal((await su.query(`SELECT reporting_currency FROM tenants WHERE id = $1`, [A.tenant_id])).rows[0].reporting_currency, 'USD');
  });
});
