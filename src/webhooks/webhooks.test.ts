import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../config.js';
import { buildApp, type App } from '../http/app.js';
import { createTenant } from '../tenants/tenants.js';
import { runCli } from '../testing/cli.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { createEndpoint, listEndpoints, rotateEndpoint } from './endpoints.js';
import { MAX_CERT_BYTES, PayPalVerifier, readCapped } from './paypal.js';
import { loadSecretKey } from './secret-key.js';
import {
  makePki, PAYPAL_CERT_URL, paypalHeaders, shopifyHeaders, stripeCharge, stripeEvent, stripeHeaders, TEST_SECRET_KEY, wooHeaders, type TestPki,
} from './test-support.js';

process.env.SKELDIR_SECRET_KEY = TEST_SECRET_KEY;
const key = loadSecretKey(process.env, '/nonexistent');

let db: TestDatabase;
let app: App;
let pki: TestPki;
let tenant: string;
let apiKey: string;
const ep: Record<string, { id: string; secret: string }> = {};

async function endpoint(provider: string, tenantId = tenant, secret?: string) {
  const owner = db.ownerPool({ max: 1 });
  try {
    const e = await createEndpoint(owner, key, { tenantId, provider, ...(secret ? { secret } : {}) });
    return { id: e.endpoint_id, secret: e.secret };
  } finally {
    await owner.end();
  }
}

async function count(table: string, tenantId = tenant): Promise<number> {
  const c = await superClient(db);
  try {
    const where = table === 'revenue_state_transitions' ? `ledger_id IN (SELECT id FROM revenue_ledger WHERE tenant_id = $1)` : `tenant_id = $1`;
    return (await c.query(`SELECT count(*)::int AS n FROM ${table} WHERE ${where}`, [tenantId])).rows[0].n;
  } finally {
    await c.end();
  }
}

const post = (provider: string, id: string, body: string | Buffer, headers: Record<string, string>) =>
  app.inject({ method: 'POST', url: `/api/v1/webhooks/${provider}/${id}`, payload: body, headers });

before(async () => {
  db = await createTestDatabase('head');
  pki = makePki();
  const pinned = join(pki.dir, 'pinned.pem');
  writeFileSync(pinned, pki.leafPem);
  process.env.SKELDIR_PAYPAL_CERTS = pinned;
  const owner = db.ownerPool({ max: 1 });
  ({ tenant_id: tenant, api_key: apiKey } = await createTenant(owner, { name: 'Webhooks', email: 'ops@webhooks.example' }));
  await owner.end();
  ep.stripe = await endpoint('stripe', tenant, 'whsec_test_stripe_secret');
  ep.shopify = await endpoint('shopify', tenant, 'shpss_test_shopify_secret');
  ep.woocommerce = await endpoint('woocommerce');
  ep.paypal = await endpoint('paypal', tenant, 'WH-9XL90610J3647323C');
  app = await buildApp({ db, config: loadConfig({}), logger: false });
});
after(async () => {
  await app?.close();
  await db?.drop();
});

function assertUnauthorized(res: { statusCode: number; json(): any; headers: Record<string, unknown> }) {
  assert.equal(res.statusCode, 401);
  assert.match(String(res.headers['content-type']), /application\/problem\+json/);
  const body = res.json();
  assert.equal(body.code, 'webhook_signature_invalid');
  delete body.request_id;
  delete body.instance; // the request's own path
  return JSON.stringify(body);
}

describe('signature vectors', () => {
  test('stripe: valid, tampered body, wrong secret, stale and future timestamps, several v1, rotated secret', async () => {
    const bodies = new Set<string>();
    const s = ep.stripe!;
    const body = stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_sig_1', amount: 1000 }));
    const before = await count('webhook_deliveries');
    bodies.add(assertUnauthorized(await post('stripe', s.id, body.replace('1000', '9000'), stripeHeaders(body, s.secret))));
    bodies.add(assertUnauthorized(await post('stripe', s.id, body, stripeHeaders(body, 'whsec_wrong'))));
    bodies.add(assertUnauthorized(await post('stripe', s.id, body, stripeHeaders(body, s.secret, Math.floor(Date.now() / 1000) - 301))));
    bodies.add(assertUnauthorized(await post('stripe', s.id, body, stripeHeaders(body, s.secret, Math.floor(Date.now() / 1000) + 310))));
    bodies.add(assertUnauthorized(await post('stripe', s.id, body, { 'content-type': 'application/json' })));
    bodies.add(assertUnauthorized(await post('stripe', s.id, body, { 'content-type': 'application/json', 'stripe-signature': 't=abc,v1=zz' })));
    bodies.add(assertUnauthorized(await post('shopify', s.id, body, stripeHeaders(body, s.secret)))); // an endpoint of another provider
    bodies.add(assertUnauthorized(await post('stripe', '00000000-0000-4000-8000-000000000000', body, stripeHeaders(body, s.secret))));
    bodies.add(assertUnauthorized(await post('stripe', 'not-a-uuid', body, stripeHeaders(body, s.secret))));
    assert.equal(bodies.size, 1, 'one identical problem for every cause');
    assert.equal(await count('webhook_deliveries'), before, 'nothing written');
    assert.equal(await count('revenue_ledger'), 0);

    const good = stripeHeaders(body, s.secret, Math.floor(Date.now() / 1000) - 290);
    const sig = good['stripe-signature'];
    const multi = `${sig.split(',')[0]},v1=${'0'.repeat(64)},${sig.split(',')[1]},v0=${'1'.repeat(64)}`;
    const ok = await post('stripe', s.id, body, { ...good, 'stripe-signature': multi });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(ok.json().status, 'applied');
    assert.equal(ok.json().transaction_id, 'ch_sig_1');

    // Rotation: the previous secret is accepted during the grace period, the new one at once.
    const owner = db.ownerPool({ max: 1 });
    const rotated = await rotateEndpoint(owner, key, { tenantId: tenant, endpointId: s.id, secret: 'whsec_rotated', graceHours: 1 });
    const b2 = stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_sig_2', amount: 500 }));
    assert.equal((await post('stripe', s.id, b2, stripeHeaders(b2, 'whsec_test_stripe_secret'))).statusCode, 200, 'old secret within the window');
    const b3 = stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_sig_3', amount: 500 }));
    assert.equal((await post('stripe', s.id, b3, stripeHeaders(b3, 'whsec_rotated'))).statusCode, 200, 'new secret');
    assert.ok(rotated.previous_secret_valid_until);
    await rotateEndpoint(owner, key, { tenantId: tenant, endpointId: s.id, secret: 'whsec_rotated_again', graceHours: 0 });
    await owner.end();
    const b4 = stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_sig_4', amount: 500 }));
    assertUnauthorized(await post('stripe', s.id, b4, stripeHeaders(b4, 'whsec_rotated')));
    assert.equal((await post('stripe', s.id, b4, stripeHeaders(b4, 'whsec_rotated_again'))).statusCode, 200);
    ep.stripe!.secret = 'whsec_rotated_again';
  });

  test('shopify: valid, tampered body, wrong secret, rotated secret (no signed timestamp: a replayed body is harmless, joining is idempotent)', async () => {
    const s = ep.shopify!;
    const order = JSON.stringify({ id: 5123456789012, name: '#9999', total_price: '199.99', currency: 'USD', financial_status: 'paid', processed_at: '2024-06-01T10:00:00-04:00', refunds: [] });
    const before = await count('webhook_deliveries');
    assertUnauthorized(await post('shopify', s.id, order.replace('199.99', '1.99'), shopifyHeaders(order, s.secret, 'orders/paid')));
    assertUnauthorized(await post('shopify', s.id, order, shopifyHeaders(order, 'wrong-secret', 'orders/paid')));
    assertUnauthorized(await post('shopify', s.id, order, { 'content-type': 'application/json', 'x-shopify-topic': 'orders/paid' }));
    assert.equal(await count('webhook_deliveries'), before);
    const webhookId = 'b54557e4-bdd9-4b37-8a5f-bf7d70bcd043';
    const ok = await post('shopify', s.id, order, shopifyHeaders(order, s.secret, 'orders/paid', webhookId));
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual([ok.json().status, ok.json().transaction_id, ok.json().state], ['applied', '5123456789012', 'captured']);
    const replay = await post('shopify', s.id, order, shopifyHeaders(order, s.secret, 'orders/paid', webhookId));
    assert.equal(replay.json().status, 'duplicate');

    const owner = db.ownerPool({ max: 1 });
    await rotateEndpoint(owner, key, { tenantId: tenant, endpointId: s.id, secret: 'shpss_new_secret', graceHours: 2 });
    await owner.end();
    const refund = JSON.stringify({ id: 509562969, order_id: 5123456789012, transactions: [{ id: 179259969, kind: 'refund', status: 'success', amount: '50.00', currency: 'USD' }] });
    assert.equal((await post('shopify', s.id, refund, shopifyHeaders(refund, 'shpss_test_shopify_secret', 'refunds/create'))).statusCode, 200, 'old secret in the window');
    const tx = await app.inject({ method: 'GET', url: '/api/v1/revenue/transactions/5123456789012', headers: { authorization: `Bearer ${apiKey}` } });
    assert.equal(tx.statusCode, 200, tx.body);
    assert.deepEqual([tx.json().amount_cents, tx.json().refunded_cents, tx.json().net_cents, tx.json().order_id], [19999, 5000, 14999, '5123456789012']);
    ep.shopify!.secret = 'shpss_new_secret';
  });

  test('shopify: the newer header names without X- (shopify-hmac-sha256, shopify-topic, shopify-webhook-id) are verified like the classic ones', async () => {
    const s = ep.shopify!;
    const order = JSON.stringify({ id: 5123456789077, name: '#9977', total_price: '12.50', currency: 'USD', financial_status: 'paid', processed_at: '2024-06-02T10:00:00Z', refunds: [] });
    const unprefixed = (h: Record<string, string>) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k.replace(/^x-shopify-/, 'shopify-'), v]));
    const before = await count('webhook_deliveries');
    assertUnauthorized(await post('shopify', s.id, order, unprefixed(shopifyHeaders(order, 'wrong-secret', 'orders/paid'))));
    assertUnauthorized(await post('shopify', s.id, order.replace('12.50', '1.50'), unprefixed(shopifyHeaders(order, s.secret, 'orders/paid'))));
    assert.equal(await count('webhook_deliveries'), before);
    const webhookId = 'c54557e4-bdd9-4b37-8a5f-bf7d70bcd077';
    const headers = unprefixed(shopifyHeaders(order, s.secret, 'orders/paid', webhookId));
    assert.ok('shopify-hmac-sha256' in headers && !('x-shopify-hmac-sha256' in headers));
    const ok = await post('shopify', s.id, order, headers);
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual([ok.json().status, ok.json().transaction_id, ok.json().state], ['applied', '5123456789077', 'captured'], 'the topic was read: orders/paid captures');
    // The webhook id under its new name deduplicates a redelivery, whichever names it uses.
    assert.equal((await post('shopify', s.id, order, headers)).json().status, 'duplicate');
    assert.equal((await post('shopify', s.id, order, shopifyHeaders(order, s.secret, 'orders/paid', webhookId))).json().status, 'duplicate');
  });

  test('woocommerce: the unsigned creation ping; valid, tampered body, wrong secret, rotated secret', async () => {
    const s = ep.woocommerce!;
    const ping = await post('woocommerce', s.id, 'webhook_id=12', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(ping.statusCode, 200, ping.body);
    assert.equal(ping.json().status, 'ping');
    assertUnauthorized(await post('woocommerce', '00000000-0000-4000-8000-000000000000', 'webhook_id=12', { 'content-type': 'application/x-www-form-urlencoded' }));
    const order = JSON.stringify({ id: 727, number: '727', status: 'processing', currency: 'EUR', total: '29.35', date_created_gmt: '2024-06-02T09:00:00', date_paid_gmt: '2024-06-02T09:01:00', refunds: [] });
    assertUnauthorized(await post('woocommerce', s.id, order.replace('29.35', '0.35'), wooHeaders(order, s.secret, 'order.updated')));
    assertUnauthorized(await post('woocommerce', s.id, order, wooHeaders(order, 'nope-nope-nope', 'order.updated')));
    const ok = await post('woocommerce', s.id, order, wooHeaders(order, s.secret, 'order.updated'));
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual([ok.json().status, ok.json().state], ['applied', 'captured']);
    const owner = db.ownerPool({ max: 1 });
    const r = await rotateEndpoint(owner, key, { tenantId: tenant, endpointId: s.id, graceHours: 24 });
    await owner.end();
    const refunded = JSON.stringify({ ...JSON.parse(order), refunds: [{ id: 730, reason: '', total: '-5.00' }] });
    assert.equal((await post('woocommerce', s.id, refunded, wooHeaders(refunded, s.secret, 'order.updated'))).statusCode, 200, 'old secret');
    const full = JSON.stringify({ ...JSON.parse(order), status: 'refunded', refunds: [{ id: 730, total: '-5.00' }, { id: 731, total: '-24.35' }] });
    const res = await post('woocommerce', s.id, full, wooHeaders(full, r.secret, 'order.updated'));
    assert.deepEqual([res.statusCode, res.json().state], [200, 'refunded']);
  });

  test('paypal: certificate signature — valid, tampered body, wrong webhook id, stale time, foreign cert URL host, rotated webhook id', async () => {
    const s = ep.paypal!;
    const capture = JSON.stringify({
      id: 'WH-2WR32451HC0233532-67976317FL4543714',
      event_type: 'PAYMENT.CAPTURE.COMPLETED',
      resource_type: 'capture',
      create_time: '2024-06-03T12:00:00Z',
      resource: {
        id: '2GG279541U471931P',
        status: 'COMPLETED',
        amount: { currency_code: 'USD', value: '10.00' },
        final_capture: true,
        invoice_id: 'INV-77',
        create_time: '2024-06-03T11:59:58Z',
        supplementary_data: { related_ids: { order_id: '5O190127TN364715T', authorization_id: '0VF52814937998046' } },
      },
    });
    assertUnauthorized(await post('paypal', s.id, capture.replace('10.00', '99.00'), paypalHeaders(capture, s.secret, pki.leafKey)));
    assertUnauthorized(await post('paypal', s.id, capture, paypalHeaders(capture, 'WH-OTHER', pki.leafKey)));
    assertUnauthorized(await post('paypal', s.id, capture, paypalHeaders(capture, s.secret, pki.leafKey, { time: new Date(Date.now() - 600_000) })));
    assertUnauthorized(await post('paypal', s.id, capture, paypalHeaders(capture, s.secret, pki.leafKey, { certUrl: 'https://evil.example/cert.pem' })));
    assertUnauthorized(await post('paypal', s.id, capture, paypalHeaders(capture, s.secret, pki.strangerKey)));
    const ok = await post('paypal', s.id, capture, paypalHeaders(capture, s.secret, pki.leafKey));
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual([ok.json().status, ok.json().state, ok.json().transaction_id], ['applied', 'captured', '0VF52814937998046']);

    const owner = db.ownerPool({ max: 1 });
    await rotateEndpoint(owner, key, { tenantId: tenant, endpointId: s.id, secret: 'WH-NEWHOOK0001', graceHours: 1 });
    await owner.end();
    const refund = JSON.stringify({
      id: 'WH-1GE84257G0350133W-6RW800890C634293G',
      event_type: 'PAYMENT.CAPTURE.REFUNDED',
      create_time: '2024-06-04T12:00:00Z',
      resource: {
        id: '1JU08902781691411',
        status: 'COMPLETED',
        amount: { currency_code: 'USD', value: '2.50' },
        seller_payable_breakdown: { total_refunded_amount: { currency_code: 'USD', value: '2.50' } },
        links: [
          { href: 'https://api.paypal.com/v2/payments/refunds/1JU08902781691411', rel: 'self', method: 'GET' },
          { href: 'https://api.paypal.com/v2/payments/captures/2GG279541U471931P', rel: 'up', method: 'GET' },
        ],
      },
    });
    for (const id of ['WH-9XL90610J3647323C', 'WH-NEWHOOK0001']) {
      const body = refund.replace('WH-1GE84257G0350133W', `WH-${id.slice(3, 10)}`);
      const res = await post('paypal', s.id, body, paypalHeaders(body, id, pki.leafKey));
      assert.equal(res.statusCode, 200, `${id}: ${res.body}`);
    }
    const tx = await app.inject({ method: 'GET', url: '/api/v1/revenue/transactions/2GG279541U471931P', headers: { authorization: `Bearer ${apiKey}` } });
    assert.equal(tx.statusCode, 200, 'found by its capture id');
    assert.deepEqual([tx.json().transaction_id, tx.json().refunded_cents, tx.json().order_id], ['0VF52814937998046', 250, 'INV-77']);
  });

  test('paypal certificate download path: chain to a trusted root, PayPal subject, allow-listed host, cached', async () => {
    const fetched: string[] = [];
    const verifier = new PayPalVerifier({
      allowedHosts: ['api.paypal.com'],
      pinned: [],
      extraRoots: [new X509Certificate(pki.caPem)],
      toleranceSeconds: 300,
      fetchText: async (url) => {
        fetched.push(url);
        return url.endsWith('stranger') ? pki.strangerPem + pki.caPem : pki.leafPem + pki.caPem;
      },
    });
    const body = Buffer.from('{"id":"WH-1"}');
    const h = (k: string, certUrl = PAYPAL_CERT_URL) => {
      const x = paypalHeaders(body.toString(), 'WH-X', k, { certUrl });
      return { transmissionId: x['paypal-transmission-id'], transmissionTime: x['paypal-transmission-time'], transmissionSig: x['paypal-transmission-sig'], certUrl: x['paypal-cert-url'], authAlgo: x['paypal-auth-algo'] };
    };
    assert.equal(await verifier.verify(body, h(pki.leafKey), 'WH-X', Date.now()), true);
    assert.equal(await verifier.verify(body, h(pki.leafKey), 'WH-X', Date.now()), true);
    assert.equal(fetched.length, 1, 'the certificate is cached');
    assert.equal(await verifier.verify(body, h(pki.strangerKey, `${PAYPAL_CERT_URL}stranger`), 'WH-X', Date.now()), false, 'not PayPal\'s subject');
    assert.equal(await verifier.verify(body, h(pki.leafKey, 'http://api.paypal.com/cert'), 'WH-X', Date.now()), false, 'https only');
    assert.equal(await verifier.verify(body, h(pki.leafKey, 'https://api.paypal.com.evil.example/cert'), 'WH-X', Date.now()), false, 'host not allowed');
    const untrusted = new PayPalVerifier({ allowedHosts: ['api.paypal.com'], pinned: [], extraRoots: [], toleranceSeconds: 300, fetchText: async () => pki.leafPem + pki.caPem });
    assert.equal(await untrusted.verify(body, h(pki.leafKey), 'WH-X', Date.now()), false, 'a chain to an unknown root is refused');

    // Only PayPal's certificate path is fetched; a failed download is not retried for 5 minutes.
    const before = fetched.length;
    assert.equal(await verifier.verify(body, h(pki.leafKey, 'https://api.paypal.com/v1/oauth2/token'), 'WH-X', Date.now()), false);
    assert.equal(await verifier.verify(body, h(pki.leafKey, `${PAYPAL_CERT_URL}?x=1`), 'WH-X', Date.now()), false);
    assert.equal(fetched.length, before, 'nothing fetched outside /v1/notifications/certs/');
    let failures = 0;
    const flaky = new PayPalVerifier({
      allowedHosts: ['api.paypal.com'], pinned: [], extraRoots: [new X509Certificate(pki.caPem)], toleranceSeconds: 300,
      fetchText: async () => {
        failures++;
        throw new Error('unreachable');
      },
    });
    const t0 = Date.now();
    const signed = h(pki.leafKey);
    for (let i = 0; i < 3; i++) assert.equal(await flaky.verify(body, signed, 'WH-X', t0 + i * 1000), false);
    assert.equal(failures, 1, 'one outbound fetch for three deliveries within the failure window');
    const later = t0 + 5 * 60 * 1000 + 1;
    const x = paypalHeaders(body.toString(), 'WH-X', pki.leafKey, { time: new Date(later) });
    await flaky.verify(body, { transmissionId: x['paypal-transmission-id'], transmissionTime: x['paypal-transmission-time'], transmissionSig: x['paypal-transmission-sig'], certUrl: x['paypal-cert-url'], authAlgo: x['paypal-auth-algo'] }, 'WH-X', later);
    assert.equal(failures, 2, 'retried once the failure has aged out');
  });

  test('a certificate download is read as a stream and abandoned past 64 KiB', async () => {
    let pulled = 0;
    const stream = (chunks: number) => new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled++ >= chunks) return controller.close();
        controller.enqueue(new Uint8Array(16 * 1024).fill(0x41));
      },
    });
    assert.equal((await readCapped(new Response(stream(4)), MAX_CERT_BYTES)).length, 64 * 1024, 'exactly the cap is accepted');
    pulled = 0;
    await assert.rejects(readCapped(new Response(stream(1000)), MAX_CERT_BYTES), /too large/);
    assert.ok(pulled <= 7, `stopped after the cap (${pulled} chunks pulled of 1000)`);
  });
});

describe('limits and unusable payloads', () => {
  test('an oversized body is a 413 before any signature work (even on an unknown endpoint)', async () => {
    const big = Buffer.alloc(1024 * 1024 + 1, 0x20);
    const res = await post('stripe', '00000000-0000-4000-8000-000000000000', big, { 'content-type': 'application/json' });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().code, 'payload_too_large');
  });

  test('signed but unusable payloads are dead-lettered with a 2xx; events that are not payments are ignored', async () => {
    const s = ep.stripe!;
    const deadBefore = await count('dead_events');
    const bad = stripeEvent('charge.succeeded', { ...stripeCharge({ id: 'ch_bad', amount: 100 }), amount: 12.5 });
    const r1 = await post('stripe', s.id, bad, stripeHeaders(bad, s.secret));
    assert.equal(r1.statusCode, 200);
    assert.equal(r1.json().status, 'dead_lettered');
    const notJson = '{"id": "evt_broken", ';
    const r2 = await post('stripe', s.id, notJson, stripeHeaders(notJson, s.secret));
    assert.equal(r2.json().status, 'dead_lettered');
    const badCurrency = stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_xau', amount: 100, currency: 'xau' }));
    assert.equal((await post('stripe', s.id, badCurrency, stripeHeaders(badCurrency, s.secret))).json().status, 'dead_lettered');
    assert.equal(await count('dead_events'), deadBefore + 3);
    const c = await superClient(db);
    const rows = (await c.query(`SELECT source, error_code, error_type FROM dead_events WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT 3`, [tenant])).rows.reverse();
    await c.end();
    assert.deepEqual(rows.map((r) => [r.source, r.error_code]), [['webhook', 'amount_invalid'], ['webhook', 'malformed_json'], ['webhook', 'currency_invalid']]);
    const ignored = stripeEvent('customer.created', { id: 'cus_1', object: 'customer' });
    const r3 = await post('stripe', s.id, ignored, stripeHeaders(ignored, s.secret));
    assert.deepEqual([r3.statusCode, r3.json().status], [200, 'ignored']);
    const tx = await app.inject({ method: 'GET', url: '/api/v1/revenue/transactions/ch_bad', headers: { authorization: `Bearer ${apiKey}` } });
    assert.equal(tx.statusCode, 404);
  });

  test('signed oddities never give a 500: a body that is not an object is dead-lettered, times outside 1970-9999 are ignored', async () => {
    const s = ep.stripe!;
    for (const body of ['null', '5', '"text"', '[1,2]']) {
      const r = await post('stripe', s.id, body, stripeHeaders(body, s.secret));
      assert.deepEqual([r.statusCode, r.json().status], [200, 'dead_lettered'], body);
      const c = await superClient(db);
      const raw = (await c.query(`SELECT raw_payload FROM dead_events WHERE id = $1`, [r.json().dead_event_id])).rows[0].raw_payload;
      await c.end();
      assert.deepEqual(raw, { raw: JSON.parse(body) });
    }
    // Unix seconds far beyond year 9999 (Date would throw on printing it): the time is unknown, the payment is recorded.
    const far = stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_far_future', amount: 100, created: 9e12 }));
    const r1 = await post('stripe', s.id, far, stripeHeaders(far, s.secret));
    assert.deepEqual([r1.statusCode, r1.json().status], [200, 'applied'], r1.body);
    const sh = ep.shopify!;
    const order = JSON.stringify({ id: 5001, name: '#5001', total_price: '10.00', currency: 'USD', financial_status: 'paid', processed_at: '+010000-01-01T00:00:00Z', created_at: '-000001-01-01T00:00:00Z' });
    const r2 = await post('shopify', sh.id, order, shopifyHeaders(order, sh.secret, 'orders/paid'));
    assert.deepEqual([r2.statusCode, r2.json().status], [200, 'applied'], r2.body);
    // Lone UTF-16 surrogates (valid JSON escapes, not text: jsonb refuses them): in a value the
    // payment is recorded with U+FFFD in its place; in a key, or in an unusable payload, it is
    // dead-lettered; never a 500.
    const lone = JSON.stringify({ id: 5002, name: '#5002 \ud800', total_price: '10.00', currency: 'USD', financial_status: 'paid', note: 'x\udfff' });
    assert.match(lone, /"#5002 \\ud800"/, 'JSON.stringify escapes a lone surrogate');
    const r4 = await post('shopify', sh.id, lone, shopifyHeaders(lone, sh.secret, 'orders/paid'));
    assert.deepEqual([r4.statusCode, r4.json().status], [200, 'applied'], r4.body);
    const badKey = '{"id":5003,"\\udc00":1,"total_price":"10.00","currency":"USD","financial_status":"paid"}';
    const r5 = await post('shopify', sh.id, badKey, shopifyHeaders(badKey, sh.secret, 'orders/paid'));
    assert.deepEqual([r5.statusCode, r5.json().status], [200, 'dead_lettered'], r5.body);
    const unusable = stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_lone', amount: 100, currency: 'u\ud800sd' }));
    const r6 = await post('stripe', s.id, unusable, stripeHeaders(unusable, s.secret));
    assert.deepEqual([r6.statusCode, r6.json().status], [200, 'dead_lettered'], r6.body);
  });

  test('a dead-lettered event is processed again when the provider resends it: its dead event is resolved, or updated in place', async () => {
    const sh = ep.shopify!;
    // As an earlier version left a payload it could not read (e.g. "too deep"): a dead-lettered delivery and its dead event.
    const webhookId = 'b54557e4-resend-4f6b-9c39-000000000001';
    const c = await superClient(db);
    const deadId = (await c.query(
      `INSERT INTO dead_events (tenant_id, source, error_code, error_detail, raw_payload, event_type, error_type, error_message)
       VALUES ($1, 'webhook', 'too_deep', '{}', '{}', 'orders/paid', 'webhook_payload', 'the body is nested more than 8 levels deep') RETURNING id`, [tenant])).rows[0].id;
    await c.query(
      `INSERT INTO webhook_deliveries (tenant_id, endpoint_id, provider, provider_event_id, event_type, status, dead_event_id, detail)
       VALUES ($1, $2, 'shopify', $3, 'orders/paid', 'dead_lettered', $4, 'too deep')`, [tenant, sh.id, webhookId, deadId]);
    const order = JSON.stringify({ id: 7001, admin_graphql_api_id: 'gid://shopify/Order/7001', name: '#7001', total_price: '25.00', currency: 'USD', financial_status: 'paid', processed_at: '2024-06-01T12:00:00Z' });
    const r1 = await post('shopify', sh.id, order, shopifyHeaders(order, sh.secret, 'orders/paid', webhookId));
    assert.deepEqual([r1.statusCode, r1.json().status, r1.json().transaction_id], [200, 'applied', '7001'], r1.body);
    const resolved = (await c.query(`SELECT remediation_status, resolved_at IS NOT NULL AS resolved, retry_count, remediation_notes FROM dead_events WHERE id = $1`, [deadId])).rows[0];
    assert.deepEqual(resolved, { remediation_status: 'resolved', resolved: true, retry_count: 1, remediation_notes: 'redelivered by shopify and applied' });
    const r2 = await post('shopify', sh.id, order, shopifyHeaders(order, sh.secret, 'orders/paid', webhookId));
    assert.equal(r2.json().status, 'duplicate', 'once through, a resend is a duplicate again');

    // Still unusable when resent: the same dead event is updated, no new one.
    const s = ep.stripe!;
    const bad = stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_resend_xau', amount: 100, currency: 'xau' }), 'evt_resend_bad');
    const d1 = (await post('stripe', s.id, bad, stripeHeaders(bad, s.secret))).json();
    const before = await count('dead_events');
    const d2 = (await post('stripe', s.id, bad, stripeHeaders(bad, s.secret))).json();
    assert.deepEqual([d1.status, d2.status, d2.dead_event_id], ['dead_lettered', 'dead_lettered', d1.dead_event_id]);
    assert.equal(await count('dead_events'), before);
    const again = (await c.query(`SELECT retry_count, remediation_status, last_retry_at IS NOT NULL AS retried FROM dead_events WHERE id = $1`, [d1.dead_event_id])).rows[0];
    await c.end();
    assert.deepEqual(again, { retry_count: 1, remediation_status: 'pending', retried: true });
  });

  test('a refund delivered before its charge waits, and is applied when the charge arrives', async () => {
    const s = ep.stripe!;
    const refund = stripeEvent('refund.created', { id: 're_early', object: 'refund', amount: 300, charge: 'ch_late', currency: 'usd', status: 'succeeded' });
    const r1 = await post('stripe', s.id, refund, stripeHeaders(refund, s.secret));
    assert.deepEqual([r1.statusCode, r1.json().status], [202, 'pending']);
    const charge = stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_late', amount: 1000 }));
    const r2 = await post('stripe', s.id, charge, stripeHeaders(charge, s.secret));
    assert.deepEqual([r2.json().status, r2.json().state], ['applied', 'captured']);
    const tx = (await app.inject({ method: 'GET', url: '/api/v1/revenue/transactions/ch_late', headers: { authorization: `Bearer ${apiKey}` } })).json();
    assert.deepEqual([tx.refunded_cents, tx.net_cents], [300, 700]);
  });
});

describe('real provider payloads (full size, deeply nested)', () => {
  const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
  const deadCount = async () => count('dead_events');

  test('a Shopify order with fulfillments and refunds, and its refunds/create, are applied (nested 10 levels deep)', async () => {
    const s = ep.shopify!;
    const before = await deadCount();
    const order = fixture('shopify-order-with-fulfillments.json');
    const r1 = await post('shopify', s.id, order, shopifyHeaders(order, s.secret, 'orders/paid'));
    assert.equal(r1.statusCode, 200, r1.body);
    assert.deepEqual([r1.json().status, r1.json().state, r1.json().transaction_id], ['applied', 'captured', '820982911946154508']);
    const refund = fixture('shopify-refund-create.json'); // the order's refund, as refunds/create sends it
    const r2 = await post('shopify', s.id, refund, shopifyHeaders(refund, s.secret, 'refunds/create'));
    assert.equal(r2.statusCode, 200, r2.body);
    assert.equal(r2.json().status, 'applied');
    const tx = (await app.inject({ method: 'GET', url: '/api/v1/revenue/transactions/820982911946154508', headers: { authorization: `Bearer ${apiKey}` } })).json();
    assert.deepEqual([tx.amount_cents, tx.refunded_cents, tx.currency, tx.order_id], [59894, 20900, 'USD', '820982911946154508']);
    assert.equal(await deadCount(), before, 'nothing dead-lettered');
  });

  test('a Stripe payment intent of API version 2020-08-27 (charges embedded, 9 levels deep) is applied', async () => {
    const s = ep.stripe!;
    const body = fixture('stripe-payment-intent-succeeded-2020-08-27.json');
    const res = await post('stripe', s.id, body, stripeHeaders(body, s.secret));
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual([res.json().status, res.json().state, res.json().transaction_id], ['applied', 'captured', 'ch_3LmoldDemo0001']);
    const tx = (await app.inject({ method: 'GET', url: '/api/v1/revenue/transactions/pi_3LmoldDemo0001', headers: { authorization: `Bearer ${apiKey}` } })).json();
    assert.deepEqual([tx.amount_cents, tx.currency, tx.order_id], [4999, 'EUR', 'O-STRIPE-OLD']);
  });

  test('PayPal CHECKOUT.ORDER.COMPLETED is ignored, not dead-lettered (its capture comes as PAYMENT.CAPTURE.COMPLETED)', async () => {
    const p = ep.paypal!;
    const before = await deadCount();
    const body = fixture('paypal-checkout-order-completed.json');
    const res = await post('paypal', p.id, body, paypalHeaders(body, p.secret, pki.leafKey));
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().status, 'ignored');
    assert.equal(await deadCount(), before);
  });

  test('depth: 64 levels are parsed, 65 are dead-lettered; NUL only matters in a field that is stored', async () => {
    const s = ep.stripe!;
    const nest = (n: number) => '['.repeat(n - 3) + ']'.repeat(n - 3); // inside event, data and object
    const deep = (n: number, id: string) => stripeEvent('customer.updated', { id: 'cus_deep', object: 'customer', metadata: {}, deep: JSON.parse(nest(n)) }, id);
    const ok = deep(64, 'evt_depth_64');
    assert.equal((await post('stripe', s.id, ok, stripeHeaders(ok, s.secret))).json().status, 'ignored');
    const tooDeep = deep(65, 'evt_depth_65');
    const r = await post('stripe', s.id, tooDeep, stripeHeaders(tooDeep, s.secret));
    assert.deepEqual([r.statusCode, r.json().status], [200, 'dead_lettered']);
    const c = await superClient(db);
    const dead = (await c.query(`SELECT error_code FROM dead_events WHERE id = $1`, [r.json().dead_event_id])).rows[0];
    assert.equal(dead.error_code, 'too_deep');

    // A NUL in a field Skeldir does not read is harmless; in the order id it cannot be stored: dead letter, raw bytes kept.
    const harmless = stripeEvent('charge.succeeded', { ...stripeCharge({ id: 'ch_nul_ok', amount: 700 }), description: 'a\u0000b' });
    assert.equal((await post('stripe', s.id, harmless, stripeHeaders(harmless, s.secret))).json().status, 'applied');
    const nulOrder = stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_nul_order', amount: 700, orderId: 'O\u0000-1' }));
    const r2 = await post('stripe', s.id, nulOrder, stripeHeaders(nulOrder, s.secret));
    assert.deepEqual([r2.statusCode, r2.json().status], [200, 'dead_lettered']);
    const stored = (await c.query(`SELECT error_code, raw_payload FROM dead_events WHERE id = $1`, [r2.json().dead_event_id])).rows[0];
    await c.end();
    assert.equal(stored.error_code, 'ledger_fact_invalid');
    assert.equal(Buffer.from(stored.raw_payload.raw_base64, 'base64').toString(), nulOrder);
  });
});

describe('WooCommerce stores', () => {
  test('two stores of one tenant with the same order id are two payments (ids keyed by the endpoint)', async () => {
    const second = await endpoint('woocommerce');
    const order = (total: string) => JSON.stringify({ id: 4242, number: '4242', status: 'processing', currency: 'EUR', total, date_paid_gmt: '2024-06-02T09:01:00', refunds: [] });
    const a = await post('woocommerce', ep.woocommerce!.id, order('10.00'), wooHeaders(order('10.00'), ep.woocommerce!.secret, 'order.updated'));
    const b = await post('woocommerce', second.id, order('99.00'), wooHeaders(order('99.00'), second.secret, 'order.updated'));
    assert.deepEqual([a.json().status, b.json().status], ['applied', 'applied'], b.body);
    assert.deepEqual([a.json().transaction_id, b.json().transaction_id], [`${ep.woocommerce!.id}:4242`, `${second.id}:4242`]);
    const c = await superClient(db);
    const rows = (await c.query(`SELECT amount_cents, order_id FROM revenue_ledger WHERE tenant_id = $1 AND transaction_id LIKE '%:woocommerce:%:4242' ORDER BY amount_cents`, [tenant])).rows;
    await c.end();
    assert.deepEqual(rows, [{ amount_cents: 1000, order_id: '4242' }, { amount_cents: 9900, order_id: '4242' }], 'each store keeps its amount; the order id conversions match is the store\'s own');
  });
});

describe('a waiting fact that cannot apply', () => {
  test('a waiting refund in another currency is dead-lettered on its own when its payment arrives; the payment and later events go through', async () => {
    const s = ep.stripe!;
    const wrong = stripeEvent('refund.created', { id: 're_wrong_cur', object: 'refund', amount: 300, charge: 'ch_blocked', currency: 'eur', status: 'succeeded' }, 'evt_wrong_cur');
    assert.equal((await post('stripe', s.id, wrong, stripeHeaders(wrong, s.secret))).json().status, 'pending');
    const charge = stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_blocked', amount: 1000 }));
    const r = await post('stripe', s.id, charge, stripeHeaders(charge, s.secret));
    assert.deepEqual([r.statusCode, r.json().status, r.json().state], [200, 'applied', 'captured'], r.body);
    const c = await superClient(db);
    const d = (await c.query(
      `SELECT d.status, e.error_code, e.source, e.raw_payload ? 'pending_fact' AS has_fact FROM webhook_deliveries d JOIN dead_events e ON e.tenant_id = d.tenant_id AND e.id = d.dead_event_id
        WHERE d.tenant_id = $1 AND d.provider_event_id = 'evt_wrong_cur'`, [tenant])).rows[0];
    await c.end();
    assert.deepEqual(d, { status: 'dead_lettered', error_code: 'ledger_currency_mismatch', source: 'webhook', has_fact: true });
    const refund = stripeEvent('charge.refunded', stripeCharge({ id: 'ch_blocked', amount: 1000, refunded: 400 }));
    const r2 = await post('stripe', s.id, refund, stripeHeaders(refund, s.secret));
    assert.equal(r2.json().status, 'applied');
    const tx = (await app.inject({ method: 'GET', url: '/api/v1/revenue/transactions/ch_blocked', headers: { authorization: `Bearer ${apiKey}` } })).json();
    assert.deepEqual([tx.state, tx.refunded_cents], ['captured', 400], 'the EUR refund counted nowhere');
  });
});

describe('idempotency and convergence', () => {
  test('50 concurrent deliveries of the same event: one ledger row, one birth and one capture transition', async () => {
    const s = ep.stripe!;
    const body = stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_concurrent', amount: 4200 }), 'evt_concurrent_1');
    const headers = stripeHeaders(body, s.secret);
    const results = await Promise.all(Array.from({ length: 50 }, () => post('stripe', s.id, body, headers)));
    const statuses = results.map((r) => `${r.statusCode} ${r.json().status}`).sort();
    assert.equal(statuses.filter((x) => x === '200 applied').length, 1, statuses.join(','));
    assert.equal(statuses.filter((x) => x === '200 duplicate').length, 49);
    const c = await superClient(db);
    const rows = (await c.query(`SELECT id FROM revenue_ledger WHERE transaction_id = $1`, [`${tenant}:stripe:ch_concurrent`])).rows;
    assert.equal(rows.length, 1);
    const transitions = (await c.query(`SELECT from_state, to_state FROM revenue_state_transitions WHERE ledger_id = $1 ORDER BY transitioned_at, id`, [rows[0].id])).rows;
    assert.deepEqual(transitions, [{ from_state: null, to_state: 'authorized' }, { from_state: 'authorized', to_state: 'captured' }]);
    const deliveries = (await c.query(`SELECT count(*)::int AS n FROM webhook_deliveries WHERE provider_event_id = 'evt_concurrent_1'`)).rows[0].n;
    await c.end();
    assert.equal(deliveries, 1);
  });

  const permutations = <T>(xs: T[]): T[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p])));

  /** Every order of the events (the first one resent at the end) in a fresh tenant each: the rows must be identical. */
  async function converge(label: string, events: Record<string, string>) {
    const finals = new Set<string>();
    const owner = db.ownerPool({ max: 1 });
    for (const [i, order] of permutations(Object.keys(events)).entries()) {
      const t = (await createTenant(owner, { name: `${label} ${i}`, email: `${label}${i}@x.example` })).tenant_id;
      const e = await endpoint('stripe', t, 'whsec_perm_secret');
      for (const name of [...order, order[0]!]) {
        const res = await post('stripe', e.id, events[name]!, stripeHeaders(events[name]!, e.secret));
        assert.equal(res.statusCode, 200, res.body);
      }
      const c = await superClient(db);
      const row = (await c.query(
        `SELECT state, previous_state, amount_cents, refunded_cents, chargeback_cents, revenue_cents, is_verified, order_id, currency,
                verification_source, verification_timestamp, metadata - 'fx' AS metadata
           FROM revenue_ledger WHERE tenant_id = $1`,
        [t],
      )).rows;
      await c.end();
      assert.equal(row.length, 1);
      finals.add(JSON.stringify(row[0]));
    }
    await owner.end();
    assert.equal(finals.size, 1, [...finals].join('\n'));
    return JSON.parse([...finals][0]!);
  }

  test('every permutation of capture / partial refund / full refund converges to the same row', async () => {
    const final = await converge('perm', {
      capture: stripeEvent('charge.captured', stripeCharge({ id: 'ch_perm', amount: 2000, orderId: 'ORD-PERM' }), 'evt_perm_capture'),
      partial: stripeEvent('charge.refunded', stripeCharge({ id: 'ch_perm', amount: 2000, refunded: 500, orderId: 'ORD-PERM' }), 'evt_perm_partial'),
      full: stripeEvent('charge.refunded', stripeCharge({ id: 'ch_perm', amount: 2000, refunded: 2000, orderId: 'ORD-PERM' }), 'evt_perm_full'),
    });
    assert.deepEqual([final.state, final.previous_state, final.refunded_cents, final.revenue_cents], ['refunded', 'captured', 2000, 0]);
  });

  test('a manual-capture payment: every order of authorization, capture, partial refund and payment intent gives the same row, previous_state included', async () => {
    const pi = { id: 'pi_ch_manual', object: 'payment_intent', amount: 3000, currency: 'usd', latest_charge: 'ch_manual', created: 1717000000, metadata: { order_id: 'ORD-MANUAL' } };
    const final = await converge('manual', {
      auth: stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_manual', amount: 3000, captured: false, orderId: 'ORD-MANUAL' }), 'evt_manual_auth'),
      capture: stripeEvent('charge.captured', stripeCharge({ id: 'ch_manual', amount: 3000, orderId: 'ORD-MANUAL' }), 'evt_manual_capture'),
      partial: stripeEvent('charge.refunded', stripeCharge({ id: 'ch_manual', amount: 3000, refunded: 700, orderId: 'ORD-MANUAL' }), 'evt_manual_partial'),
      succeeded: stripeEvent('payment_intent.succeeded', { ...pi, status: 'succeeded' }, 'evt_manual_pi'),
    });
    assert.deepEqual([final.state, final.previous_state, final.refunded_cents, final.revenue_cents], ['captured', 'authorized', 700, 2300]);
  });
});

describe('lifecycles through the route', () => {
  test('authorized by a payment intent, captured, then lost to a dispute: transitions written by the database', async () => {
    const s = ep.stripe!;
    const pi = (event: string, status: string) => stripeEvent(`payment_intent.${event}`, { id: 'pi_life', object: 'payment_intent', amount: 8000, currency: 'usd', status, latest_charge: 'ch_life', created: 1717000000, metadata: { order_id: 'O-LIFE' } });
    const send = async (body: string) => {
      const r = await post('stripe', s.id, body, stripeHeaders(body, s.secret));
      assert.equal(r.statusCode, 200, r.body);
      return r.json();
    };
    assert.equal((await send(pi('amount_capturable_updated', 'requires_capture'))).state, 'authorized');
    assert.equal((await send(pi('succeeded', 'succeeded'))).state, 'captured');
    const dispute = stripeEvent('charge.dispute.closed', { id: 'dp_life', object: 'dispute', amount: 8000, charge: 'ch_life', currency: 'usd', status: 'lost' });
    assert.equal((await send(dispute)).state, 'chargeback');
    const tx = (await app.inject({ method: 'GET', url: '/api/v1/revenue/transactions/pi_life', headers: { authorization: `Bearer ${apiKey}` } })).json();
    assert.equal(tx.transaction_id, 'ch_life', 'found by the payment intent too');
    assert.deepEqual(tx.transitions.map((t: { from_state: string | null; to_state: string }) => `${t.from_state}->${t.to_state}`), ['null->authorized', 'authorized->captured', 'captured->chargeback']);
    assert.deepEqual([tx.previous_state, tx.chargeback_cents, tx.net_cents, tx.order_id], ['captured', 8000, 0, 'O-LIFE']);
  });

  test('secrets never reach the logs, whatever happens to a delivery', async () => {
    const lines: string[] = [];
    const logged = await buildApp({ db, config: loadConfig({}), logger: { level: 'trace', stream: { write: (l: string) => lines.push(l) } } });
    try {
      const s = ep.stripe!;
      const body = stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_logs', amount: 100 }));
      for (const headers of [stripeHeaders(body, s.secret), stripeHeaders(body, 'whsec_wrong_for_logs')]) {
        await logged.inject({ method: 'POST', url: `/api/v1/webhooks/stripe/${s.id}`, payload: body, headers });
      }
      // A secret that no longer decrypts (as after a change of server key) is logged by endpoint id only.
      const c = await superClient(db);
      const broken = await endpoint('shopify', tenant, 'shpss_secret_for_logs');
      await c.query(`UPDATE webhook_endpoints SET secret_ciphertext = replace(secret_ciphertext, 'v1.', 'v1.x') WHERE id = $1`, [broken.id]);
      await c.end();
      await logged.inject({ method: 'POST', url: `/api/v1/webhooks/shopify/${broken.id}`, payload: '{}', headers: shopifyHeaders('{}', 'shpss_secret_for_logs', 'orders/paid') });
    } finally {
      await logged.close();
    }
    const all = lines.join('\n');
    assert.ok(lines.length > 0);
    assert.match(all, /secret cannot be decrypted/);
    for (const secret of [ep.stripe!.secret, 'shpss_secret_for_logs', TEST_SECRET_KEY]) assert.ok(!all.includes(secret), 'no secret in the logs');
  });
});

describe('PayPal convergence', () => {
  test('authorization, capture and refund in every order: one row keyed by the authorization, the refund waits if early', async () => {
    const ev = (id: string, type: string, resource: Record<string, unknown>) => JSON.stringify({ id, event_type: type, create_time: '2024-06-03T12:00:00Z', resource });
    const events = {
      auth: ev('WH-A9', 'PAYMENT.AUTHORIZATION.CREATED', { id: 'AUTH9', status: 'CREATED', amount: { currency_code: 'EUR', value: '10.00' }, invoice_id: 'INV-9', create_time: '2024-06-03T11:00:00Z' }),
      capture: ev('WH-C9', 'PAYMENT.CAPTURE.COMPLETED', {
        id: 'CAP9', status: 'COMPLETED', amount: { currency_code: 'EUR', value: '10.00' }, invoice_id: 'INV-9', create_time: '2024-06-03T11:05:00Z',
        supplementary_data: { related_ids: { authorization_id: 'AUTH9' } },
      }),
      refund: ev('WH-R9', 'PAYMENT.CAPTURE.REFUNDED', {
        id: 'R9', status: 'COMPLETED', amount: { currency_code: 'EUR', value: '2.50' },
        seller_payable_breakdown: { total_refunded_amount: { currency_code: 'EUR', value: '2.50' } },
        links: [{ rel: 'up', href: 'https://api.paypal.com/v2/payments/captures/CAP9' }],
      }),
    };
    const orders: (keyof typeof events)[][] = [
      ['auth', 'capture', 'refund'], ['auth', 'refund', 'capture'], ['capture', 'auth', 'refund'],
      ['capture', 'refund', 'auth'], ['refund', 'auth', 'capture'], ['refund', 'capture', 'auth'],
    ];
    const finals = new Set<string>();
    const owner = db.ownerPool({ max: 1 });
    for (const [i, order] of orders.entries()) {
      const t = await createTenant(owner, { name: `PayPal ${i}`, email: `pp${i}@x.example` });
      const e = await endpoint('paypal', t.tenant_id, 'WH-CONVERGE');
      for (const name of order) {
        const res = await post('paypal', e.id, events[name], paypalHeaders(events[name], e.secret, pki.leafKey));
        assert.ok(res.statusCode === 200 || res.statusCode === 202, res.body);
      }
      const c = await superClient(db);
      const rows = (await c.query(
        `SELECT split_part(transaction_id, ':', 3) AS key, state, previous_state, amount_cents, refunded_cents, currency, order_id, verification_timestamp
           FROM revenue_ledger WHERE tenant_id = $1`, [t.tenant_id])).rows;
      const pending = (await c.query(`SELECT count(*)::int AS n FROM webhook_deliveries WHERE tenant_id = $1 AND status = 'pending'`, [t.tenant_id])).rows[0].n;
      await c.end();
      assert.equal(rows.length, 1, order.join(' → '));
      assert.equal(pending, 0, 'nothing left waiting');
      finals.add(JSON.stringify(rows[0]));
      const tx = await app.inject({ method: 'GET', url: '/api/v1/revenue/transactions/CAP9', headers: { authorization: `Bearer ${t.api_key}` } });
      assert.equal(tx.json().transaction_id, 'AUTH9');
    }
    await owner.end();
    assert.equal(finals.size, 1, [...finals].join('\n'));
    const f = JSON.parse([...finals][0]!);
    assert.deepEqual([f.key, f.state, f.amount_cents, f.refunded_cents, f.currency, f.order_id], ['AUTH9', 'captured', 1000, 250, 'EUR', 'INV-9']);
  });
});

describe('partial captures', () => {
  test('a PayPal authorization of 100.00 captured for 80.00: 80.00 verified, in the route and the row', async () => {
    const p = ep.paypal!;
    const ev = (id: string, type: string, resource: Record<string, unknown>) => JSON.stringify({ id, event_type: type, create_time: '2024-06-03T12:00:00Z', resource });
    const auth = ev('WH-PART-A', 'PAYMENT.AUTHORIZATION.CREATED', { id: 'AUTH-PART', status: 'CREATED', amount: { currency_code: 'USD', value: '100.00' } });
    const capture = ev('WH-PART-C', 'PAYMENT.CAPTURE.COMPLETED', {
      id: 'CAP-PART', status: 'COMPLETED', amount: { currency_code: 'USD', value: '80.00' }, final_capture: true, supplementary_data: { related_ids: { authorization_id: 'AUTH-PART' } },
    });
    for (const body of [auth, capture]) assert.equal((await post('paypal', p.id, body, paypalHeaders(body, p.secret, pki.leafKey))).statusCode, 200);
    const tx = (await app.inject({ method: 'GET', url: '/api/v1/revenue/transactions/CAP-PART', headers: { authorization: `Bearer ${apiKey}` } })).json();
    assert.deepEqual([tx.state, tx.amount_cents, tx.captured_cents, tx.net_cents], ['captured', 10000, 8000, 8000]);
    const c = await superClient(db);
    const legacy = (await c.query(`SELECT revenue_cents FROM revenue_ledger WHERE transaction_id = $1`, [`${tenant}:paypal:AUTH-PART`])).rows[0].revenue_cents;
    await c.end();
    assert.equal(legacy, 8000);
  });
});

describe('isolation and the CLI', () => {
  test("another tenant's key does not see the transaction (404 as for a missing one)", async () => {
    const owner = db.ownerPool({ max: 1 });
    const other = await createTenant(owner, { name: 'Other', email: 'other@x.example' });
    await owner.end();
    const res = await app.inject({ method: 'GET', url: '/api/v1/revenue/transactions/ch_sig_1', headers: { authorization: `Bearer ${other.api_key}` } });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().code, 'transaction_not_found');
    const mine = await app.inject({ method: 'GET', url: '/api/v1/revenue/transactions/ch_sig_1', headers: { authorization: `Bearer ${apiKey}` } });
    assert.equal(mine.statusCode, 200);
    assert.deepEqual(mine.json().transitions.map((t: { to_state: string }) => t.to_state), ['authorized', 'captured']);
    assert.match(mine.json().transitions[0].reason, /^stripe charge\.succeeded evt_/);
  });

  test("listing a tenant's endpoints as the schema owner shows no other tenant's (the system lookup policy is the system role's alone)", async () => {
    const owner = db.ownerPool({ max: 1 });
    try {
      const other = await createTenant(owner, { name: 'Neighbour', email: 'n@x.example' });
      const theirs = await createEndpoint(owner, key, { tenantId: other.tenant_id, provider: 'stripe' });
      const mine = await listEndpoints(owner, tenant);
      assert.ok(mine.length >= 4);
      assert.ok(!mine.some((e) => e.endpoint_id === theirs.endpoint_id));
      assert.deepEqual((await listEndpoints(owner, other.tenant_id)).map((e) => e.endpoint_id), [theirs.endpoint_id]);
    } finally {
      await owner.end();
    }
  });

  test('skeldir webhook create | list | rotate | delete; secrets are encrypted at rest', async () => {
    const env = { DATABASE_URL: db.url, SKELDIR_SECRET_KEY: TEST_SECRET_KEY };
    const created = await runCli(['webhook', 'create', '--tenant', tenant, '--provider', 'stripe', '--secret', 'whsec_cli_secret_1'], { env });
    assert.equal(created.code, 0, created.stderr);
    const c1 = JSON.parse(created.stdout);
    assert.deepEqual(Object.keys(c1).sort(), ['endpoint_id', 'provider', 'secret', 'url_path']);
    assert.equal(c1.url_path, `/api/v1/webhooks/stripe/${c1.endpoint_id}`);
    assert.equal(c1.secret, 'whsec_cli_secret_1');
    const sc = await superClient(db);
    const stored = (await sc.query(`SELECT secret_ciphertext FROM webhook_endpoints WHERE id = $1`, [c1.endpoint_id])).rows[0].secret_ciphertext;
    await sc.end();
    assert.ok(!stored.includes('whsec_cli_secret_1') && !Buffer.from(stored).toString('base64').includes('whsec'), 'not stored in plaintext');
    assert.match(stored, /^v1\.[0-9a-f]{12}\./);

    const body = stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_cli', amount: 100 }));
    assert.equal((await post('stripe', c1.endpoint_id, body, stripeHeaders(body, 'whsec_cli_secret_1'))).statusCode, 200, 'the API decrypts what the CLI encrypted');

    const list = await runCli(['webhook', 'list', '--tenant', tenant], { env });
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout).find((e: { endpoint_id: string }) => e.endpoint_id === c1.endpoint_id);
    assert.equal(listed.deliveries, 1);
    assert.ok(!list.stdout.includes('whsec_'), 'list never shows secrets');

    const rotated = await runCli(['webhook', 'rotate', '--tenant', tenant, c1.endpoint_id, '--grace-hours', '0'], { env });
    assert.equal(rotated.code, 0, rotated.stderr);
    const r = JSON.parse(rotated.stdout);
    assert.match(r.secret, /^skd_whsec_/);
    assert.equal(r.previous_secret_valid_until, null);

    const wrongKey = await runCli(['webhook', 'create', '--tenant', tenant, '--provider', 'bitcoin'], { env });
    assert.equal(wrongKey.code, 2);
    assert.match(wrongKey.stderr, /provider must be one of/);
    const paypalNoId = await runCli(['webhook', 'create', '--tenant', tenant, '--provider', 'paypal'], { env });
    assert.equal(paypalNoId.code, 2);
    // Another (real) tenant cannot delete this tenant's endpoint: it is not found there, and still works.
    const owner = db.ownerPool({ max: 1 });
    const neighbour = await createTenant(owner, { name: 'CLI neighbour', email: 'cli-neighbour@x.example' });
    await owner.end();
    const otherTenant = await runCli(['webhook', 'delete', '--tenant', neighbour.tenant_id, c1.endpoint_id], { env });
    assert.equal(otherTenant.code, 1);
    assert.match(otherTenant.stderr, /no endpoint/);
    const stillThere = stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_cli_2', amount: 100 }));
    assert.equal((await post('stripe', c1.endpoint_id, stillThere, stripeHeaders(stillThere, r.secret))).json().status, 'applied', 'the endpoint survived');

    const deleted = await runCli(['webhook', 'delete', '--tenant', tenant, c1.endpoint_id], { env });
    assert.equal(deleted.code, 0, deleted.stderr);
    assertUnauthorized(await post('stripe', c1.endpoint_id, body, stripeHeaders(body, r.secret)));
    const again = await runCli(['webhook', 'delete', '--tenant', tenant, c1.endpoint_id], { env });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no endpoint/);
  });
});
