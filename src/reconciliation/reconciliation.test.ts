import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { attributeConversion } from '../attribution/entry.js';
import { loadConfig } from '../config.js';
import { withTenant } from '../db/tenant-context.js';
import { buildApp, type App } from '../http/app.js';
import { allocate } from '../money/allocate.js';
import { importFxRates, parseFxCsv } from '../money/fx.js';
import { createTenant } from '../tenants/tenants.js';
import { stampLedgerFx } from '../ledger/fx-stamp.js';
import { createTestDatabase, type TestDatabase } from '../testing/db.js';
import { createEndpoint } from '../webhooks/endpoints.js';
import { loadSecretKey } from '../webhooks/secret-key.js';
import { stripeCharge, stripeEvent, stripeHeaders, TEST_SECRET_KEY } from '../webhooks/test-support.js';

process.env.SKELDIR_SECRET_KEY = TEST_SECRET_KEY;

let db: TestDatabase;
let app: App;
let appPool: pg.Pool;
let tenant: string;
let apiKey: string;
let endpoint: { endpoint_id: string; secret: string };

const T = new Date('2024-05-10T12:00:00Z');
const day = 86_400_000;
const at = (d: number) => new Date(T.getTime() + d * day);

interface Ev {
  type: 'touchpoint' | 'conversion';
  channel: string;
  session: string;
  at: Date;
  value?: number;
  currency?: string;
  orderId?: string;
}

/** Touchpoints and conversions stored the way ingestion stores them (application role, tenant context). */
async function insertEvents(events: Ev[]): Promise<string[]> {
  const ids = events.map(() => randomUUID());
  await withTenant(appPool, tenant, async (c) => {
    for (const [i, e] of events.entries()) {
      await c.query(
        `INSERT INTO attribution_events (id, tenant_id, event_type, channel, session_id, event_timestamp, occurred_at, conversion_value_cents,
                                         revenue_cents, currency, idempotency_key, raw_payload, processing_status, order_id)
         VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $6, $7::int, COALESCE($7::int, 0), $8, $2::uuid::text || ':ext:' || $1::uuid::text, '{}', 'processed', $9)`,
        [ids[i], tenant, e.type, e.channel, e.session, e.at, e.value ?? null, e.currency ?? 'USD', e.orderId ?? null],
      );
    }
  });
  return ids;
}

const attribute = (id: string) => withTenant(appPool, tenant, (c) => attributeConversion(c, tenant, id));

async function deliver(body: string) {
  const res = await app.inject({ method: 'POST', url: `/api/v1/webhooks/stripe/${endpoint.endpoint_id}`, payload: body, headers: stripeHeaders(body, endpoint.secret) });
  assert.equal(res.statusCode, 200, res.body);
  return res.json();
}

async function report(model = 'linear') {
  const res = await app.inject({
    method: 'GET',
    url: `/api/v1/reconciliation?from=${at(-30).toISOString()}&to=${at(30).toISOString()}&model=${model}`,
    headers: { authorization: `Bearer ${apiKey}` },
  });
  assert.equal(res.statusCode, 200, res.body);
  return res.json();
}

async function allocationsOf(eventId: string, model = 'linear') {
  return withTenant(appPool, tenant, async (c) =>
    (await c.query(
      `SELECT channel_code, allocated_revenue_cents AS cents, verified, verification_source, verification_timestamp
         FROM attribution_allocations WHERE event_id = $1 AND model_type = $2 ORDER BY channel_code`,
      [eventId, model],
    )).rows,
  );
}

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ tenant_id: tenant, api_key: apiKey } = await createTenant(owner, { name: 'Reconciled', email: 'ops@reconciled.example' }));
  endpoint = await createEndpoint(owner, loadSecretKey(process.env, '/nonexistent'), { tenantId: tenant, provider: 'stripe', secret: 'whsec_e2e' });
  await importFxRates(owner, parseFxCsv('2024-05-01,EUR,USD,1.1\n'), 'test-rates');
  await owner.end();
  appPool = db.appPool({ max: 4 });
  app = await buildApp({ db, config: loadConfig({}), logger: false });
});
after(async () => {
  await app?.close();
  await appPool?.end();
  await db?.drop();
});

describe('end to end: touchpoints, a conversion with an order id, a signed capture, a partial refund', () => {
  let conv1: string;
  let conv3: string;

  test('before any payment: everything claimed, nothing verified', async () => {
    const s1 = randomUUID();
    const s2 = randomUUID();
    const s3 = randomUUID();
    const ids = await insertEvents([
      { type: 'touchpoint', channel: 'google_search_paid', session: s1, at: at(-3) },
      { type: 'touchpoint', channel: 'facebook_paid', session: s1, at: at(-1) },
      { type: 'conversion', channel: 'direct', session: s1, at: T, value: 10000, orderId: 'ORD-1001' },
      { type: 'touchpoint', channel: 'email', session: s2, at: at(-2) },
      { type: 'conversion', channel: 'email', session: s2, at: at(0.1), value: 5000 },
      { type: 'touchpoint', channel: 'tiktok_paid', session: s3, at: at(-1) },
      { type: 'conversion', channel: 'tiktok_paid', session: s3, at: at(0.2), value: 3000, currency: 'EUR', orderId: 'ORD-1002' },
    ]);
    conv1 = ids[2]!;
    conv3 = ids[6]!;
    for (const id of [ids[2]!, ids[4]!, ids[6]!]) await attribute(id);
    const r = await report();
    assert.equal(r.currency, 'USD');
    assert.deepEqual(
      [r.total.conversions, r.total.claimed_cents, r.total.verified_cents, r.total.gap_cents, r.total.gap_bps],
      [3, 10000 + 5000 + 3300, 0, 18300, 10000],
      'the EUR conversion is claimed at the dated rate (30.00 EUR × 1.1)',
    );
    assert.ok((await allocationsOf(conv1)).every((a) => !a.verified));
  });

  test('a signed capture verifies the conversion and marks its allocations verified', async () => {
    const out = await deliver(stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_e2e_1', amount: 10000, orderId: 'ORD-1001', created: Math.floor(T.getTime() / 1000) })));
    assert.deepEqual([out.status, out.state], ['applied', 'captured']);
    const allocs = await allocationsOf(conv1);
    assert.ok(allocs.length > 0);
    for (const a of allocs) {
      assert.equal(a.verified, true);
      assert.equal(a.verification_source, 'stripe');
      assert.equal(a.verification_timestamp.toISOString(), T.toISOString());
    }
    const r = await report();
    assert.equal(r.total.verified_cents, 10000);
    assert.equal(r.total.verified_conversions, 1);
  });

  test('a partial refund reduces the verified revenue, per channel and in total; the gap is shown in basis points', async () => {
    const out = await deliver(stripeEvent('charge.refunded', stripeCharge({ id: 'ch_e2e_1', amount: 10000, refunded: 2500, orderId: 'ORD-1001', created: Math.floor(T.getTime() / 1000) })));
    assert.equal(out.state, 'captured', 'a partial refund keeps the payment captured');
    const eur = await deliver(stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_e2e_eur', amount: 3000, currency: 'eur', orderId: 'ORD-1002', created: Math.floor(at(0.2).getTime() / 1000) })));
    assert.equal(eur.status, 'applied');

    const r = await report();
    assert.deepEqual(
      [r.total.claimed_cents, r.total.verified_cents, r.total.gap_cents, r.total.gap_bps],
      [18300, 7500 + 3300, 7500, 4098],
      'verified = 100.00 − 25.00 refunded + 30.00 EUR at 1.1; gap 75.00 = 4098 bps of 183.00',
    );
    // Per channel: each conversion's claimed and verified revenue split by its allocations.
    const allocs = await allocationsOf(conv1);
    const split = allocate(7500n, allocs.map((a) => a.cents));
    for (const [i, a] of allocs.entries()) {
      const line = r.channels.find((c: { channel: string }) => c.channel === a.channel_code);
      assert.ok(line, a.channel_code);
      if (a.channel_code === 'google_search_paid' || a.channel_code === 'facebook_paid') {
        assert.equal(line.verified_cents, Number(split[i]), `${a.channel_code} verified share of 75.00`);
        assert.equal(line.claimed_cents, a.cents);
      }
    }
    const sum = (k: string) => r.channels.reduce((s: number, c: Record<string, number>) => s + c[k]!, 0);
    assert.equal(sum('claimed_cents'), r.total.claimed_cents, 'channels add up to the total claimed');
    assert.equal(sum('verified_cents'), r.total.verified_cents, 'channels add up to the total verified');
    const email = r.channels.find((c: { channel: string }) => c.channel === 'email');
    assert.deepEqual([email.claimed_cents, email.verified_cents, email.gap_bps], [5000, 0, 10000], 'no order: nothing verified');

    // The attribution engine's channel report shows the attributed (claimed) value per channel,
    // agreeing with the reconciliation's claimed figures, and next to it the verified,
    // refund-reduced revenue per channel.
    const ch = await app.inject({
      method: 'GET',
      url: `/api/v1/attribution/channels?model=linear&from=${at(-30).toISOString()}&to=${at(30).toISOString()}`,
      headers: { authorization: `Bearer ${apiKey}` },
    });
    assert.equal(ch.statusCode, 200, ch.body);
    const verified = ch.json().verified;
    for (const code of ['google_search_paid', 'facebook_paid']) {
      const attributed = ch.json().channels.find((c: { channel: string; currency: string }) => c.channel === code && c.currency === 'USD');
      const reconciled = r.channels.find((c: { channel: string }) => c.channel === code);
      assert.equal(attributed.attributed_cents, reconciled.claimed_cents, code);
      assert.ok(reconciled.verified_cents < reconciled.claimed_cents, `${code}: the refund reduced its verified revenue`);
      // The channel report shows the same verified, refund-reduced revenue.
      const line = verified.channels.find((c: { channel: string }) => c.channel === code);
      assert.deepEqual(line, { channel: code, claimed_cents: reconciled.claimed_cents, verified_cents: reconciled.verified_cents, gap_cents: reconciled.gap_cents });
    }
    assert.equal(verified.currency, 'USD');
    assert.equal(verified.total_verified_cents, r.total.verified_cents);

    const tx = await app.inject({ method: 'GET', url: '/api/v1/revenue/transactions/ch_e2e_eur', headers: { authorization: `Bearer ${apiKey}` } });
    const fx = tx.json().metadata.fx;
    assert.deepEqual([fx.base, fx.quote, fx.rate, fx.rate_date, fx.source], ['EUR', 'USD', '1.1', '2024-05-01', 'test-rates'], 'the rate, its date and source are recorded');
    assert.ok(conv3);
  });

  test('a conversion that arrives after its payment is verified as soon as it is attributed', async () => {
    await deliver(stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_e2e_early', amount: 4000, orderId: 'ORD-1003', created: Math.floor(at(1).getTime() / 1000) })));
    const s = randomUUID();
    const [, conv] = await insertEvents([
      { type: 'touchpoint', channel: 'referral', session: s, at: at(0.5) },
      { type: 'conversion', channel: 'referral', session: s, at: at(1), value: 4000, orderId: 'ORD-1003' },
    ]);
    await attribute(conv!);
    const allocs = await allocationsOf(conv!);
    assert.ok(allocs.length > 0 && allocs.every((a) => a.verified && a.verification_source === 'stripe'));
  });

  test('ledger revenue no conversion claims is reported as unmatched; a full refund leaves nothing verified', async () => {
    await deliver(stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_orphan', amount: 1234, created: Math.floor(at(2).getTime() / 1000) })));
    let r = await report();
    assert.deepEqual([r.total.unmatched_ledger_cents, r.total.unmatched_ledger_transactions], [1234, 1]);
    await deliver(stripeEvent('charge.refunded', stripeCharge({ id: 'ch_e2e_1', amount: 10000, refunded: 10000, orderId: 'ORD-1001', created: Math.floor(T.getTime() / 1000) })));
    r = await report();
    assert.equal(r.total.verified_cents, 3300 + 4000);
  });

  test('bad periods and models are 400 problems; another tenant sees none of it', async () => {
    const bad = await app.inject({ method: 'GET', url: `/api/v1/reconciliation?from=${at(1).toISOString()}&to=${at(0).toISOString()}`, headers: { authorization: `Bearer ${apiKey}` } });
    assert.deepEqual([bad.statusCode, bad.json().code], [400, 'reconciliation_window_invalid']);
    const model = await app.inject({ method: 'GET', url: `/api/v1/reconciliation?from=${at(0).toISOString()}&to=${at(1).toISOString()}&model=magic`, headers: { authorization: `Bearer ${apiKey}` } });
    assert.equal(model.statusCode, 400);
    // Valid RFC 3339 texts naming instants outside years 0001-9999 UTC: a 400 problem, never a 500.
    for (const [from, to] of [['0000-01-01T00:00:00Z', '2024-01-01T00:00:00Z'], ['2024-01-01T00:00:00Z', '9999-12-31T23:59:59-23:59'], ['0001-01-01T00:30:00+01:00', '0001-01-02T00:00:00Z']]) {
      const res = await app.inject({ method: 'GET', url: `/api/v1/reconciliation?from=${encodeURIComponent(from!)}&to=${encodeURIComponent(to!)}`, headers: { authorization: `Bearer ${apiKey}` } });
      assert.equal(res.statusCode, 400, `${from} .. ${to}: ${res.body}`);
      assert.match(String(res.headers['content-type']), /application\/problem\+json/);
    }
    const edges = await app.inject({ method: 'GET', url: `/api/v1/reconciliation?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59.999Z`, headers: { authorization: `Bearer ${apiKey}` } });
    assert.equal(edges.statusCode, 200, edges.body);
    const owner = db.ownerPool({ max: 1 });
    const other = await createTenant(owner, { name: 'Nosy', email: 'nosy@x.example' });
    await owner.end();
    const res = await app.inject({ method: 'GET', url: `/api/v1/reconciliation?from=${at(-30).toISOString()}&to=${at(30).toISOString()}`, headers: { authorization: `Bearer ${other.api_key}` } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual([res.json().total.conversions, res.json().total.claimed_cents, res.json().total.unmatched_ledger_cents, res.json().channels], [0, 0, 0, []]);
  });

  test('an authorization alone does not verify its conversion; its capture does', async () => {
    const s = randomUUID();
    const [, conv] = await insertEvents([
      { type: 'touchpoint', channel: 'email', session: s, at: at(40) },
      { type: 'conversion', channel: 'email', session: s, at: at(40.1), value: 2500, orderId: 'ORD-AUTH-ONLY' },
    ]);
    await attribute(conv!);
    const window = async () => {
      const res = await app.inject({ method: 'GET', url: `/api/v1/reconciliation?from=${at(39).toISOString()}&to=${at(41).toISOString()}`, headers: { authorization: `Bearer ${apiKey}` } });
      assert.equal(res.statusCode, 200, res.body);
      return res.json().total;
    };
    const charge = (captured: boolean) => stripeCharge({ id: 'ch_auth_only', amount: 2500, captured, orderId: 'ORD-AUTH-ONLY', created: Math.floor(at(40.1).getTime() / 1000) });
    assert.equal((await deliver(stripeEvent('charge.succeeded', charge(false)))).state, 'authorized');
    let t = await window();
    assert.deepEqual([t.conversions, t.verified_conversions, t.verified_cents], [1, 0, 0]);
    assert.ok((await allocationsOf(conv!)).every((a) => !a.verified));
    await deliver(stripeEvent('charge.captured', charge(true)));
    t = await window();
    assert.deepEqual([t.conversions, t.verified_conversions, t.verified_cents], [1, 1, 2500]);
  });

  test('a payment that arrives before its rate gets the rate recorded when rates are imported', async () => {
    await deliver(stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_gbp', amount: 2000, currency: 'gbp', created: Math.floor(at(3).getTime() / 1000) })));
    const get = async () => (await app.inject({ method: 'GET', url: '/api/v1/revenue/transactions/ch_gbp', headers: { authorization: `Bearer ${apiKey}` } })).json();
    assert.equal((await get()).metadata.fx, null, 'no GBP rate yet');
    const owner = db.ownerPool({ max: 1 });
    await importFxRates(owner, parseFxCsv('2024-05-12,GBP,USD,1.25\n'), 'late-rates');
    const stamped = await stampLedgerFx(owner);
    await owner.end();
    assert.ok(stamped.stamped >= 1);
    assert.deepEqual([(await get()).metadata.fx.rate, (await get()).metadata.fx.rate_date], ['1.25', '2024-05-12']);

    // The recorded quote drives the report, whatever is imported later for the same date (and
    // whatever later event of the payment arrives).
    const unmatched = async () => (await report()).total.unmatched_ledger_cents as number;
    const before = await unmatched();
    const owner2 = db.ownerPool({ max: 1 });
    assert.deepEqual(await importFxRates(owner2, parseFxCsv('2024-05-12,GBP,USD,2.00\n'), 'corrected-rates'), { inserted: 0, updated: 1, unchanged: 0 });
    await stampLedgerFx(owner2);
    await owner2.end();
    await deliver(stripeEvent('charge.updated', stripeCharge({ id: 'ch_gbp', amount: 2000, currency: 'gbp', created: Math.floor(at(3).getTime() / 1000) })));
    assert.equal((await get()).metadata.fx.rate, '1.25');
    assert.equal(await unmatched(), before, 'the report still converts 20.00 GBP at 1.25');
  });

  test('the OpenAPI document describes the webhook, transaction and reconciliation routes', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    assert.ok(doc.paths['/api/v1/webhooks/{provider}/{endpoint_id}'].post);
    assert.deepEqual(doc.paths['/api/v1/webhooks/{provider}/{endpoint_id}'].post.security, [], 'public: signature-authenticated (no OpenAPI scheme, so none)');
    assert.deepEqual(doc.paths['/api/v1/revenue/transactions/{transaction_id}'].get.security, [{ apiKey: [] }, { session: [] }]);
    assert.deepEqual(doc.paths['/api/v1/reconciliation'].get.security, [{ apiKey: [] }, { session: [] }]);
  });

  test('a reporting currency without a rate for a date is a 422 naming the pair and date', async () => {
    const owner = db.ownerPool({ max: 1 });
    await owner.query(`UPDATE tenants SET reporting_currency = 'JPY' WHERE id = $1`, [tenant]);
    await owner.end();
    const res = await app.inject({ method: 'GET', url: `/api/v1/reconciliation?from=${at(-30).toISOString()}&to=${at(30).toISOString()}`, headers: { authorization: `Bearer ${apiKey}` } });
    assert.equal(res.statusCode, 422);
    assert.equal(res.json().code, 'fx_rate_missing');
    assert.equal(res.json().quote, 'JPY');
  });
});
