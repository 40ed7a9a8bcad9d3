/**
 * Publishable keys and POST /api/v1/collect through HTTP (issue 14): keys issued and managed with
 * the secret key, CORS and preflight for allowed origins only, sendBeacon's text/plain bodies,
 * enrichment, bot filtering, consent and Global Privacy Control, limits, idempotent resends,
 * and what a publishable key may not do.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { v5 as uuidv5 } from 'uuid';
import { loadConfig } from '../config.js';
import { buildApp, type App } from '../http/app.js';
import { SESSION_NAMESPACE, sessionUuid } from '../ingestion/session-id.js';
import { createTenant } from '../tenants/tenants.js';
import { runCli } from '../testing/cli.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { generatePublishableKey, tenantOfKey } from './keys.js';

let db: TestDatabase;
let app: App;
let su: pg.Client;
const A = { tenant: '', key: '' };
const B = { tenant: '', key: '' };
const SHOP = 'https://shop.example';
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  for (const [t, name] of [[A, 'Alpha'], [B, 'Beta']] as const) {
    const created = await createTenant(owner, { name, email: `ops@${name.toLowerCase()}.example` });
    t.tenant = created.tenant_id;
    t.key = created.api_key;
  }
  await owner.end();
  app = await buildApp({ db, config: loadConfig({}), logger: false, rateLimit: { max: 0 }, collectRateLimit: { perKey: 0, perAddress: 0 } });
  su = await superClient(db);
});
after(async () => {
  await su?.end();
  await app?.close();
  await db?.drop();
});

async function issueKey(t: { key: string }, body: Record<string, unknown> = {}): Promise<{ id: string; key: string; snippet: string }> {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/publishable-keys',
    headers: { authorization: `Bearer ${t.key}` },
    payload: { name: 'shop', allowed_origins: [SHOP], ...body },
  });
  assert.equal(res.statusCode, 201, res.body);
  return res.json();
}

let seq = 0;
function touch(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'touch',
    event_id: `ev_${randomBytes(8).toString('hex')}_${seq++}`,
    timestamp: new Date().toISOString(),
    anonymous_id: 'anon_visitor_1',
    session_id: 'sess_visit_1',
    url: `${SHOP}/landing?utm_source=google&utm_medium=cpc&utm_campaign=spring_sale&gclid=Cj0KCQiA-abc123`,
    referrer: 'https://www.google.com/search?q=shoes',
    ...overrides,
  };
}

function collect(pk: string, body: unknown, headers: Record<string, string> = {}, contentType = 'text/plain;charset=UTF-8') {
  return app.inject({
    method: 'POST',
    url: `/api/v1/collect?key=${encodeURIComponent(pk)}`,
    headers: { origin: SHOP, 'user-agent': CHROME, 'content-type': contentType, ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function eventsOf(tenant: string, where = 'true', params: unknown[] = []) {
  return (await su.query(`SELECT * FROM attribution_events WHERE tenant_id = $1 AND ${where} ORDER BY created_at, id`, [tenant, ...params])).rows;
}

describe('publishable keys, managed with the secret key', () => {
  test('issue: pk_ naming the tenant, shown once with its snippet; only its hash is stored; listing shows a hint', async () => {
    const created = await issueKey(A, { allowed_origins: ['https://Shop.Example/', 'http://localhost:3000', 'https://*.shop.example'] });
    assert.match(created.key, /^pk_[A-Za-z0-9_-]{54}$/);
    assert.equal(tenantOfKey(created.key), A.tenant);
    assert.ok(created.snippet.includes(created.key) && created.snippet.includes('/sdk/v1/skeldir.js'), created.snippet);
    assert.deepEqual((created as unknown as { allowed_origins: string[] }).allowed_origins, ['http://localhost:3000', 'https://*.shop.example', 'https://shop.example']);
    const { rows } = await su.query(`SELECT to_jsonb(k)::text AS j, key_hash FROM publishable_keys k WHERE id = $1`, [created.id]);
    assert.ok(!rows[0].j.includes(created.key.slice(3)), 'the key is not stored');
    assert.match(rows[0].key_hash, /^[0-9a-f]{64}$/);
    const list = await app.inject({ method: 'GET', url: '/api/v1/publishable-keys', headers: { authorization: `Bearer ${A.key}` } });
    assert.equal(list.statusCode, 200);
    assert.ok(!list.body.includes(created.key), 'listing never shows a key');
    const mine = list.json().find((k: { id: string }) => k.id === created.id);
    assert.equal(mine.hint, `pk_…${created.key.slice(-4)}`);
    assert.equal(mine.status, 'active');
    assert.equal(mine.honor_gpc, true);
    assert.equal(mine.require_consent, false);
  });

  test('bad settings are specific 400 problems and write nothing', async () => {
    const before = (await su.query('SELECT count(*)::int AS n FROM publishable_keys')).rows[0].n;
    for (const [origins, field] of [
      [['shop.example'], 'allowed_origins/0'],
      [['ftp://shop.example'], 'allowed_origins/0'],
      [['https://shop.example/path'], 'allowed_origins/0'],
      [['https://*.com.'], 'allowed_origins/0'],
      [['https://*'], 'allowed_origins/0'],
      [['https://a.*.example'], 'allowed_origins/0'],
    ] as const) {
      const res = await app.inject({ method: 'POST', url: '/api/v1/publishable-keys', headers: { authorization: `Bearer ${A.key}` }, payload: { allowed_origins: origins } });
      assert.equal(res.statusCode, 400, `${origins}: ${res.body}`);
      assert.equal(res.json().code, 'allowed_origin_invalid', res.body);
      assert.equal(res.json().field, field);
    }
    const none = await app.inject({ method: 'POST', url: '/api/v1/publishable-keys', headers: { authorization: `Bearer ${A.key}` }, payload: { allowed_origins: [] } });
    assert.equal(none.statusCode, 400);
    assert.equal((await su.query('SELECT count(*)::int AS n FROM publishable_keys')).rows[0].n, before);
  });

  test('change origins and settings, revoke (the record stays); another tenant\'s key is a 404', async () => {
    const k = await issueKey(A);
    const patched = await app.inject({
      method: 'PATCH',
      url: `/api/v1/publishable-keys/${k.id}`,
      headers: { authorization: `Bearer ${A.key}` },
      payload: { allowed_origins: ['https://new.example'], require_consent: true },
    });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.deepEqual(patched.json().allowed_origins, ['https://new.example']);
    assert.equal(patched.json().require_consent, true);
    const theirs = await app.inject({ method: 'DELETE', url: `/api/v1/publishable-keys/${k.id}`, headers: { authorization: `Bearer ${B.key}` } });
    assert.equal(theirs.statusCode, 404);
    assert.equal(theirs.json().code, 'publishable_key_not_found');
    const revoked = await app.inject({ method: 'DELETE', url: `/api/v1/publishable-keys/${k.id}`, headers: { authorization: `Bearer ${A.key}` } });
    assert.equal(revoked.statusCode, 200);
    assert.equal(revoked.json().status, 'revoked');
    const again = await app.inject({ method: 'PATCH', url: `/api/v1/publishable-keys/${k.id}`, headers: { authorization: `Bearer ${A.key}` }, payload: { name: 'x' } });
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().code, 'publishable_key_revoked');
  });

  test('a revoked key is refused by the collect endpoint', async () => {
    const k = await issueKey(A);
    await app.inject({ method: 'DELETE', url: `/api/v1/publishable-keys/${k.id}`, headers: { authorization: `Bearer ${A.key}` } });
    const res = await collect(k.key, { events: [touch()] });
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().code, 'publishable_key_invalid');
    assert.equal(res.headers['www-authenticate'], 'PublishableKey realm="skeldir"');
  });

  test('skeldir publishable-key create | list | update | revoke', async () => {
    const env = { DATABASE_URL: db.url };
    const created = await runCli(['publishable-key', 'create', '--tenant', A.tenant, '--origin', 'https://cli.example', '--origin', 'http://localhost:8000', '--require-consent', '--base-url', 'https://skeldir.example'], { env });
    assert.equal(created.code, 0, created.stderr);
    const out = JSON.parse(created.stdout);
    assert.match(out.key, /^pk_/);
    assert.equal(out.require_consent, true);
    assert.ok(out.snippet.includes('https://skeldir.example/sdk/v1/skeldir.js') && out.snippet.includes('"requireConsent":true'), out.snippet);
    const list = await runCli(['pk', 'list', '--tenant', A.tenant], { env });
    assert.equal(list.code, 0, list.stderr);
    assert.ok(!list.stdout.includes(out.key) && list.stdout.includes(out.id));
    const updated = await runCli(['pk', 'update', out.id, '--tenant', A.tenant, '--no-gpc', '--origin', 'https://other.example'], { env });
    assert.equal(updated.code, 0, updated.stderr);
    assert.equal(JSON.parse(updated.stdout).honor_gpc, false);
    assert.deepEqual(JSON.parse(updated.stdout).allowed_origins, ['https://other.example']);
    const bad = await runCli(['pk', 'create', '--tenant', A.tenant, '--origin', 'nope'], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /allowed origin "nope"/);
    const revoked = await runCli(['pk', 'revoke', out.id, '--tenant', A.tenant], { env });
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(JSON.parse(revoked.stdout).status, 'revoked');
  });
});

describe('POST /api/v1/collect', () => {
  let pk: { id: string; key: string };
  before(async () => {
    pk = await issueKey(A, { allowed_origins: [SHOP, 'https://*.blog.example'] });
  });

  test('a touch sent as text/plain (sendBeacon) from an allowed origin: 204, stored as a touchpoint, enriched', async () => {
    const t = touch({ url: `${SHOP}/landing?utm_source=google&utm_medium=cpc&utm_campaign=spring_sale&email=jane%40doe.example&token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc&color=red&gclid=Cj0KCQiA-abc123#access_token=secret` });
    const res = await collect(pk.key, { sent_at: new Date().toISOString(), consent: true, events: [t] }, { 'user-agent': IPHONE });
    assert.equal(res.statusCode, 204, res.body);
    assert.equal(res.body, '', 'the endpoint reads nothing back');
    assert.equal(res.headers['access-control-allow-origin'], SHOP);
    assert.match(String(res.headers.vary), /Origin/);
    const [row] = await eventsOf(A.tenant, `idempotency_key = $2`, [`${A.tenant}:collect:${t.event_id}`]);
    assert.ok(row, 'stored');
    assert.equal(row.event_type, 'touchpoint');
    assert.equal(row.channel, 'google_search_paid');
    assert.equal(row.campaign_id, 'spring_sale');
    assert.equal(row.anonymous_id, 'anon_visitor_1');
    assert.equal(row.session_id, sessionUuid('sess_visit_1'));
    assert.equal(row.conversion_value_cents, null);
    assert.equal(row.processing_status, 'pending');
    const raw = row.raw_payload;
    assert.equal(raw.landing_url, `${SHOP}/landing?utm_source=google&utm_medium=cpc&utm_campaign=spring_sale&color=red&gclid=Cj0KCQiA-abc123`);
    assert.deepEqual(raw.stripped_parameters, ['email', 'token']);
    assert.equal(raw.referrer, 'https://www.google.com');
    assert.equal(raw.gclid, 'Cj0KCQiA-abc123');
    assert.equal(raw.device_class, 'mobile');
    assert.equal(raw.publishable_key_id, pk.id);
    const text = JSON.stringify(row);
    for (const secret of ['jane', 'eyJhbGci', 'access_token', 'iPhone', 'q=shoes']) assert.ok(!text.includes(secret), `${secret} is not stored`);
  });

  test("the channel comes from the tenant's channel rules: utm, click ids, referrer domains (search, social, webmail), direct", async () => {
    const rule = await app.inject({
      method: 'POST',
      url: '/api/v1/channels/rules',
      headers: { authorization: `Bearer ${A.key}` },
      payload: { name: 'partner network', channel: 'referral', conditions: [{ field: 'utm_source', op: 'equals', value: 'partnerx' }] },
    });
    assert.equal(rule.statusCode, 201, rule.body);
    const cases: [string, string | undefined, string, string | null][] = [
      [`${SHOP}/?gclid=EAIaIQobChMI`, 'https://www.google.com/', 'google_search_paid', null],
      [`${SHOP}/?ttclid=E.C.P.abc`, undefined, 'tiktok_paid', null],
      [`${SHOP}/?fbclid=IwAR0abc`, 'https://l.facebook.com/', 'facebook_brand', null],
      [`${SHOP}/?utm_source=facebook&utm_medium=paid_social&utm_campaign=retarget`, 'https://m.facebook.com/', 'facebook_paid', 'retarget'],
      [`${SHOP}/?utm_source=newsletter&utm_medium=email&utm_campaign=march`, undefined, 'email', 'march'],
      [`${SHOP}/p/1`, 'https://www.google.de/', 'organic', null],
      [`${SHOP}/p/2`, 'https://duckduckgo.com/', 'organic', null],
      [`${SHOP}/p/3`, 'https://mail.google.com/mail/u/0/', 'email', null],
      [`${SHOP}/p/4`, 'https://t.co/abc', 'referral', null],
      [`${SHOP}/p/5`, 'https://some-blog.example/post', 'referral', null],
      [`${SHOP}/p/6`, undefined, 'direct', null],
      [`${SHOP}/?utm_source=partnerx&utm_medium=affiliate`, undefined, 'referral', null],
    ];
    for (const [url, referrer, channel, campaign] of cases) {
      const t = touch({ url, referrer });
      assert.equal((await collect(pk.key, { events: [t] })).statusCode, 204);
      const [row] = await eventsOf(A.tenant, `idempotency_key = $2`, [`${A.tenant}:collect:${t.event_id}`]);
      assert.equal(row.channel, channel, `${url} from ${referrer}`);
      assert.equal(row.campaign_id, campaign, url);
    }
  });

  test('application/json bodies are accepted too; a subdomain wildcard origin matches subdomains only', async () => {
    const ok = await collect(pk.key, { events: [touch()] }, { origin: 'https://www.blog.example' }, 'application/json');
    assert.equal(ok.statusCode, 204, ok.body);
    assert.equal(ok.headers['access-control-allow-origin'], 'https://www.blog.example');
    const apex = await collect(pk.key, { events: [touch()] }, { origin: 'https://blog.example' });
    assert.equal(apex.statusCode, 403);
  });

  test('the preflight answers allowed origins only', async () => {
    const preflight = (origin: string | undefined, key = pk.key) =>
      app.inject({
        method: 'OPTIONS',
        url: `/api/v1/collect?key=${encodeURIComponent(key)}`,
        headers: { ...(origin ? { origin } : {}), 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
    const ok = await preflight(SHOP);
    assert.equal(ok.statusCode, 204, ok.body);
    assert.equal(ok.headers['access-control-allow-origin'], SHOP);
    assert.equal(ok.headers['access-control-allow-methods'], 'POST');
    assert.equal(ok.headers['access-control-allow-headers'], 'content-type');
    assert.equal(ok.headers['access-control-max-age'], '7200');
    for (const origin of ['https://evil.example', 'https://shop.example.evil.example', 'http://shop.example', 'null', undefined]) {
      const res = await preflight(origin);
      assert.equal(res.statusCode, 403, `${origin}: ${res.body}`);
      assert.equal(res.json().code, 'origin_not_allowed');
      assert.equal(res.headers['access-control-allow-origin'], undefined, `${origin} gets no CORS header`);
    }
    const badKey = await preflight(SHOP, 'pk_nonsense');
    assert.equal(badKey.statusCode, 401);
    assert.equal(badKey.headers['access-control-allow-origin'], undefined);
  });

  test('a disallowed origin, no origin, a wrong or missing key, or a secret key: refused, nothing stored', async () => {
    const before = (await eventsOf(A.tenant)).length;
    const cases: [string, Promise<{ statusCode: number; json(): any; headers: Record<string, unknown> }>, number, string][] = [
      ['other origin', collect(pk.key, { events: [touch()] }, { origin: 'https://evil.example' }), 403, 'origin_not_allowed'],
      ['no origin', app.inject({ method: 'POST', url: `/api/v1/collect?key=${pk.key}`, headers: { 'content-type': 'text/plain', 'user-agent': CHROME }, payload: JSON.stringify({ events: [touch()] }) }), 403, 'origin_not_allowed'],
      ['no key', app.inject({ method: 'POST', url: `/api/v1/collect`, headers: { origin: SHOP, 'content-type': 'text/plain' }, payload: JSON.stringify({ events: [touch()] }) }), 401, 'publishable_key_invalid'],
      ['secret key', collect(A.key, { events: [touch()] }), 401, 'publishable_key_invalid'],
      ['made-up key of the tenant', collect(generatePublishableKey(A.tenant), { events: [touch()] }), 401, 'publishable_key_invalid'],
      ['key with one character changed', collect(pk.key.slice(0, -1) + (pk.key.endsWith('A') ? 'B' : 'A'), { events: [touch()] }), 401, 'publishable_key_invalid'],
      ['A\'s random part under B\'s id', collect(generatePublishableKey(B.tenant).slice(0, 25) + pk.key.slice(25), { events: [touch()] }), 401, 'publishable_key_invalid'],
    ];
    for (const [label, pending, status, code] of cases) {
      const res = await pending;
      assert.equal(res.statusCode, status, `${label}: ${JSON.stringify(res.json())}`);
      assert.equal(res.json().code, code, label);
      assert.equal(res.headers['access-control-allow-origin'], undefined, label);
    }
    assert.equal((await eventsOf(A.tenant)).length, before);
    assert.equal((await eventsOf(B.tenant)).length, 0);
  });

  test('a publishable key on any other route is refused: it reads nothing and sends no conversion', async () => {
    const routes: [string, string, unknown?][] = [
      ['GET', '/api/v1/tenant'],
      ['GET', '/api/v1/publishable-keys'],
      ['GET', '/api/v1/attribution/channels?model=linear&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z'],
      ['POST', '/api/v1/events', { idempotency_key: 'x1', event_type: 'conversion', event_timestamp: '2026-01-01T00:00:00Z', session_id: randomUUID(), conversion_value_cents: 100, currency: 'USD' }],
      ['POST', '/api/v1/publishable-keys', { allowed_origins: [SHOP] }],
    ];
    for (const [method, url, payload] of routes) {
      const res = await app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${pk.key}`, origin: SHOP }, ...(payload ? { payload: payload as object } : {}) });
      assert.equal(res.statusCode, 401, `${method} ${url}: ${res.body}`);
      assert.equal(res.json().code, 'unauthorized');
      assert.match(res.json().detail, /publishable key/);
    }
    // And the collect endpoint takes no conversion, no value.
    for (const bad of [touch({ type: 'conversion' }), touch({ conversion_value_cents: 100 }), touch({ currency: 'USD' })]) {
      const res = await collect(pk.key, { events: [bad] });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json().code, 'validation_failed');
      assert.equal(res.headers['access-control-allow-origin'], SHOP, 'the tracker may read why');
    }
  });

  test('bad bodies are specific 400 problems; nothing is written', async () => {
    const before = (await eventsOf(A.tenant)).length;
    const cases: [string, unknown, string, number?][] = [
      ['not json', 'hello', 'malformed_json'],
      ['no events', { events: [] }, 'validation_failed'],
      ['21 events', { events: Array.from({ length: 21 }, () => touch()) }, 'validation_failed'],
      ['touch without url', { events: [touch({ url: undefined })] }, 'validation_failed'],
      ['url not http', { events: [touch({ url: 'javascript:alert(1)' })] }, 'validation_failed'],
      ['identify without user', { events: [{ type: 'identify', event_id: 'evt_12345678', timestamp: new Date().toISOString(), anonymous_id: 'a1' }] }, 'validation_failed'],
      ['bad event id', { events: [touch({ event_id: 'short' })] }, 'validation_failed'],
      ['impossible date', { events: [touch({ timestamp: '2026-02-30T10:00:00Z' })] }, 'timestamp_invalid', 422],
      ['eight days old', { events: [touch({ timestamp: new Date(Date.now() - 8 * 86_400_000).toISOString() })] }, 'collect_event_too_old', 422],
      ['one good, one bad', { events: [touch(), touch({ url: 'ftp://x' })] }, 'validation_failed'],
    ];
    for (const [label, body, code, status] of cases) {
      const res = await collect(pk.key, body);
      assert.equal(res.statusCode, status ?? 400, `${label}: ${res.body}`);
      assert.equal(res.json().code, code, label);
    }
    const form = await collect(pk.key, { events: [touch()] }, {}, 'application/x-www-form-urlencoded');
    assert.equal(form.statusCode, 415);
    assert.equal((await eventsOf(A.tenant)).length, before);
  });

  test('a resent event (retry, beacon after fetch) is stored once', async () => {
    const t = touch();
    for (let i = 0; i < 3; i++) assert.equal((await collect(pk.key, { sent_at: new Date(Date.now() + i * 5000).toISOString(), events: [t] })).statusCode, 204);
    const rows = await eventsOf(A.tenant, `idempotency_key = $2`, [`${A.tenant}:collect:${t.event_id}`]);
    assert.equal(rows.length, 1);
  });

  test("the browser's clock is corrected by sent_at; no event lies in the future", async () => {
    const clientNow = Date.now() + 3 * 3600_000; // the browser is 3 hours fast
    const t = touch({ timestamp: new Date(clientNow - 60_000).toISOString() });
    const future = touch({ timestamp: new Date(Date.now() + 3600_000).toISOString() });
    const started = Date.now();
    assert.equal((await collect(pk.key, { sent_at: new Date(clientNow).toISOString(), events: [t] })).statusCode, 204);
    assert.equal((await collect(pk.key, { events: [future] })).statusCode, 204);
    const [row] = await eventsOf(A.tenant, `idempotency_key = $2`, [`${A.tenant}:collect:${t.event_id}`]);
    const at = row.event_timestamp.getTime();
    assert.ok(at >= started - 60_000 - 1000 && at <= Date.now() - 60_000 + 1000, `${row.event_timestamp.toISOString()} is a minute before the server received it`);
    const [late] = await eventsOf(A.tenant, `idempotency_key = $2`, [`${A.tenant}:collect:${future.event_id}`]);
    assert.ok(late.event_timestamp.getTime() <= Date.now());
  });

  test('bots and crawlers are counted, never stored: user agents, headless, webdriver, no user agent', async () => {
    const k = await issueKey(A);
    const before = (await eventsOf(A.tenant)).length;
    const agents = [
      'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
      'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36',
      'facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)',
      'curl/8.5.0',
      'python-requests/2.32.3',
    ];
    for (const ua of agents) assert.equal((await collect(k.key, { events: [touch()] }, { 'user-agent': ua })).statusCode, 204, ua);
    assert.equal((await collect(k.key, { events: [touch({ webdriver: true }), touch()] })).statusCode, 204);
    assert.equal((await collect(k.key, { events: [touch()] }, { 'user-agent': CHROME, 'sec-ch-ua': '"HeadlessChrome";v="131"' })).statusCode, 204);
    const noAgent = await app.inject({ method: 'POST', url: `/api/v1/collect?key=${k.key}`, headers: { origin: SHOP, 'content-type': 'text/plain' }, payload: JSON.stringify({ events: [touch()] }) });
    assert.equal(noAgent.statusCode, 204);
    assert.equal((await eventsOf(A.tenant)).length, before, 'nothing stored');
    assert.equal((await collect(k.key, { events: [touch()] })).statusCode, 204, 'a real browser');
    const day = new Date().toISOString().slice(0, 10);
    const counts = await app.inject({ method: 'GET', url: `/api/v1/publishable-keys/${k.id}/counts?from=${day}&to=${day}`, headers: { authorization: `Bearer ${A.key}` } });
    assert.equal(counts.statusCode, 200, counts.body);
    assert.deepEqual(counts.json().days, [{ day, touches: 1, identifies: 0, bots: agents.length + 2 + 1 + 1, anonymous: 0 }]);
    const wrong = await app.inject({ method: 'GET', url: `/api/v1/publishable-keys/${k.id}/counts?from=${day}&to=2020-01-01`, headers: { authorization: `Bearer ${A.key}` } });
    assert.equal(wrong.statusCode, 400);
    assert.equal(wrong.json().code, 'collect_counts_window_invalid');
  });

  test('identify links the anonymous id to the user, once, audited with the key', async () => {
    const anon = `anon_${randomBytes(6).toString('hex')}`;
    const identify = () => ({ type: 'identify', event_id: `id_${randomBytes(8).toString('hex')}`, timestamp: new Date().toISOString(), anonymous_id: anon, user_id: 'customer-77' });
    assert.equal((await collect(pk.key, { events: [identify()] })).statusCode, 204);
    assert.equal((await collect(pk.key, { events: [identify()] })).statusCode, 204);
    const links = (await su.query(`SELECT * FROM identity_links WHERE tenant_id = $1 AND anonymous_id = $2`, [A.tenant, anon])).rows;
    assert.equal(links.length, 1);
    assert.equal(links[0].user_id, 'customer-77');
    assert.equal(links[0].source, 'collect');
    assert.equal(links[0].publishable_key_id, pk.id);
    const changes = (await su.query(`SELECT * FROM identity_changes WHERE tenant_id = $1 AND anonymous_id = $2`, [A.tenant, anon])).rows;
    assert.equal(changes.length, 1, 'one audit row: the second identify changed nothing');
    assert.equal(changes[0].action, 'link');
    assert.ok(changes[0].recomputed_at, 're-attributed in the transaction that linked (nothing to recompute: no conversion)');
    assert.equal(changes[0].conversions_recomputed, 0);
  });

  test('consent required and not given, consent refused, or Global Privacy Control: no identifier is stored, identify is dropped', async () => {
    const strict = await issueKey(A, { require_consent: true });
    const lenient = await issueKey(A, { honor_gpc: false });
    const anon = `anon_${randomBytes(6).toString('hex')}`;
    const idEvent = { type: 'identify', event_id: `id_${randomBytes(8).toString('hex')}`, timestamp: new Date().toISOString(), anonymous_id: anon, user_id: 'u-consent' };
    const sent: [string, string, Record<string, unknown>, Record<string, string>][] = [
      ['required, not given', strict.key, {}, {}],
      ['refused', pk.key, { consent: false }, {}],
      ['GPC honoured', pk.key, { consent: true }, { 'sec-gpc': '1' }],
    ];
    for (const [label, key, extra, headers] of sent) {
      const t = touch({ anonymous_id: anon });
      assert.equal((await collect(key, { ...extra, events: [t, { ...idEvent, event_id: `id_${randomBytes(8).toString('hex')}` }] }, headers)).statusCode, 204, label);
      const [row] = await eventsOf(A.tenant, `idempotency_key = $2`, [`${A.tenant}:collect:${t.event_id}`]);
      assert.ok(row, label);
      assert.equal(row.anonymous_id, null, label);
      assert.notEqual(row.session_id, sessionUuid('sess_visit_1'), label);
      assert.ok(!JSON.stringify(row.raw_payload).includes(anon), label);
    }
    assert.equal((await su.query(`SELECT count(*)::int AS n FROM identity_links WHERE anonymous_id = $1`, [anon])).rows[0].n, 0);
    // With consent, or GPC where the key does not honour it, identifiers are kept.
    const t1 = touch({ anonymous_id: anon });
    assert.equal((await collect(strict.key, { consent: true, events: [t1] })).statusCode, 204);
    const t2 = touch({ anonymous_id: anon });
    assert.equal((await collect(lenient.key, { events: [t2] }, { 'sec-gpc': '1' })).statusCode, 204);
    for (const t of [t1, t2]) assert.equal((await eventsOf(A.tenant, `idempotency_key = $2`, [`${A.tenant}:collect:${t.event_id}`]))[0].anonymous_id, anon);
    await app.collectCounter.flush();
    const { rows } = await su.query(`SELECT sum(anonymous)::int AS n FROM collect_daily_counts WHERE key_id = $1`, [strict.id]);
    assert.equal(rows[0].n, 1);
  });

  test('a key writes into its own tenant only', async () => {
    const bKey = await issueKey(B, { allowed_origins: ['https://b.example'] });
    const t = touch();
    assert.equal((await collect(bKey.key, { events: [t] }, { origin: 'https://b.example' })).statusCode, 204);
    assert.equal((await su.query(`SELECT tenant_id FROM attribution_events WHERE idempotency_key = $1`, [`${B.tenant}:collect:${t.event_id}`])).rows[0].tenant_id, B.tenant);
    // B's key from A's origin: refused (A's origins are not B's).
    assert.equal((await collect(bKey.key, { events: [touch()] })).statusCode, 403);
  });
});

describe('limits', () => {
  test('per client address and per key: 429 with Retry-After, CORS headers kept so the tracker backs off', async () => {
    const limited = await buildApp({ db, config: loadConfig({}), logger: false, rateLimit: { max: 0 }, collectRateLimit: { perKey: 3, perAddress: 5 } });
    try {
      const k1 = (await issueKey(A)).key;
      const k2 = (await issueKey(A)).key;
      const send = (key: string, ip: string) =>
        limited.inject({
          method: 'POST',
          url: `/api/v1/collect?key=${key}`,
          remoteAddress: ip,
          headers: { origin: SHOP, 'user-agent': CHROME, 'content-type': 'text/plain' },
          payload: JSON.stringify({ events: [touch()] }),
        });
      const perKey = [];
      for (let i = 0; i < 4; i++) perKey.push((await send(k1, `10.0.0.${i + 1}`)).statusCode);
      assert.deepEqual(perKey, [204, 204, 204, 429], 'the fourth request of the key in the window');
      const over = await send(k1, '10.0.0.9');
      assert.ok(Number(over.headers['retry-after']) > 0);
      assert.equal(over.headers['access-control-allow-origin'], SHOP);
      assert.equal(over.json().code, 'rate_limited');
      const perAddress = [];
      for (let i = 0; i < 6; i++) perAddress.push((await send(i < 3 ? k2 : (await issueKey(A)).key, '10.1.1.1')).statusCode);
      assert.deepEqual(perAddress, [204, 204, 204, 204, 204, 429], 'the sixth request of the address');
    } finally {
      await limited.close();
    }
  });
});

describe('the tracker script', () => {
  test('GET /sdk/v1/skeldir.js and .mjs: JavaScript, cacheable, at most 6 KB gzipped', async () => {
    for (const path of ['/sdk/v1/skeldir.js', '/sdk/v1/skeldir.mjs']) {
      const res = await app.inject({ method: 'GET', url: path, headers: { 'accept-encoding': 'gzip, br' } });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/javascript/);
      assert.equal(res.headers['content-encoding'], 'gzip');
      assert.ok(res.rawPayload.length <= 6 * 1024, `${path}: ${res.rawPayload.length} bytes gzipped`);
      const text = gunzipSync(res.rawPayload).toString('utf8');
      assert.match(text, /function createTracker/);
      assert.equal(res.headers['access-control-allow-origin'], '*');
      const again = await app.inject({ method: 'GET', url: path, headers: { 'if-none-match': String(res.headers.etag) } });
      assert.equal(again.statusCode, 304);
    }
    const plain = await app.inject({ method: 'GET', url: '/sdk/v1/skeldir.mjs' });
    assert.match(plain.body, /export default skeldir/);
  });
});

test('session ids: the namespace is UUIDv5(URL, "skeldir:session_id"); opaque ids map by UUIDv5, UUIDs stay', () => {
  assert.equal(SESSION_NAMESPACE, uuidv5('skeldir:session_id', uuidv5.URL));
  assert.equal(sessionUuid('GA1.2.1234567890.1700000000'), uuidv5('GA1.2.1234567890.1700000000', SESSION_NAMESPACE));
  const u = randomUUID();
  assert.equal(sessionUuid(u.toUpperCase()), u);
  assert.notEqual(sessionUuid('abc'), sessionUuid('ABC'), 'opaque ids are taken exactly as given');
});
