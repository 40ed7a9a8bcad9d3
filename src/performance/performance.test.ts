import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { runModel } from '../attribution/run.js';
import { insertEvents, type FixtureEvent } from '../attribution/test-fixtures.js';
import { loadConfig } from '../config.js';
import { withTenant } from '../db/tenant-context.js';
import { buildApp, type App } from '../http/app.js';
import { importFxRates, parseFxCsv } from '../money/fx.js';
import { createTenant } from '../tenants/tenants.js';
import { runCli } from '../testing/cli.js';
import { createTestDatabase, type TestDatabase } from '../testing/db.js';
import { createEndpoint } from '../webhooks/endpoints.js';
import { loadSecretKey } from '../webhooks/secret-key.js';
import { stripeCharge, stripeEvent, stripeHeaders, TEST_SECRET_KEY } from '../webhooks/test-support.js';

process.env.SKELDIR_SECRET_KEY = TEST_SECRET_KEY;

/**
 * GET /api/v1/performance and `skeldir report performance`, checked against sums computed
 * independently in plain SQL over the same rows. The fixture keeps every split exact (values
 * and ledger amounts multiples of 6, paths of 1–3 channels, linear shares 1/n), so the expected
 * figures need no rounding rule of their own; FX: 1 EUR = 2 USD from 2026-04-15, no GBP rate.
 */
let db: TestDatabase;
let app: App;
let pool: pg.Pool;
let tenant: string;
let key: string;
let markovRun: string;

const FROM = '2026-04-01';
const TO = '2026-05-01';
const day = (d: number) => `2026-04-${String(d).padStart(2, '0')}`;
const get = (url: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ tenant_id: tenant, api_key: key } = await createTenant(owner, { name: 'Performance', email: 'ops@performance.example' }));
  const other = await createTenant(owner, { name: 'Other', email: 'ops@other-performance.example' });
  const endpoint = await createEndpoint(owner, loadSecretKey(process.env, '/nonexistent'), { tenantId: tenant, provider: 'stripe', secret: 'whsec_perf' });
  await importFxRates(owner, parseFxCsv('2026-04-15,EUR,USD,2\n'), 'test-rates');
  await owner.end();
  pool = db.appPool({ max: 3 });
  app = await buildApp({ db, config: loadConfig({}), logger: false });

  const events: FixtureEvent[] = [];
  const orders: { id: string; amount: number; refunded: number; disputed: boolean; at: Date }[] = [];
  for (let s = 0; s < 40; s++) {
    const session = randomUUID();
    const d = 1 + (s % 28);
    const at = (h: number) => new Date(`${day(d)}T${String(h).padStart(2, '0')}:00:00Z`);
    const path: [string, string | null][] =
      s % 4 === 0 ? [['google_search_paid', 'g1']]
      : s % 4 === 1 ? [['google_search_paid', 'g2'], ['facebook_paid', 'f1']]
      : s % 4 === 2 ? [['facebook_paid', 'f1'], ['email', null], ['google_search_paid', 'g1']]
      : [['email', null]];
    path.forEach(([channel, campaign], i) => events.push({ type: 'touchpoint', channel, campaign, session, at: at(8 + i) }));
    const value = 600 * (1 + (s % 5));
    const eur = s % 8 === 7;
    const orderId = `order-${s}`;
    events.push({ type: 'conversion', channel: 'direct', session, at: at(12), value, currency: eur ? 'EUR' : 'USD', orderId });
    if (s % 9 !== 8) orders.push({ id: orderId, amount: eur ? 2 * value : value, refunded: s % 6 === 0 ? 120 : 0, disputed: s === 5, at: at(13) });
  }
  // One path touching a channel twice (two campaigns): the conversion counts once per channel, once
  // per campaign; its order paid in two charges (two ledger rows, one partly refunded): counted once
  // per allocation, each row's share in the verified figures.
  const twice = randomUUID();
  const twiceAt = (h: number) => new Date(`${day(20)}T${String(h).padStart(2, '0')}:00:00Z`);
  events.push({ type: 'touchpoint', channel: 'google_search_paid', campaign: 'g1', session: twice, at: twiceAt(8) });
  events.push({ type: 'touchpoint', channel: 'facebook_paid', campaign: 'f1', session: twice, at: twiceAt(9) });
  events.push({ type: 'touchpoint', channel: 'google_search_paid', campaign: 'g2', session: twice, at: twiceAt(10) });
  events.push({ type: 'conversion', channel: 'direct', session: twice, at: twiceAt(12), value: 1800, currency: 'USD', orderId: 'order-twice' });
  // A conversion after the period: never counted.
  const late = randomUUID();
  events.push({ type: 'touchpoint', channel: 'email', session: late, at: new Date('2026-05-03T08:00:00Z') });
  events.push({ type: 'conversion', channel: 'direct', session: late, at: new Date('2026-05-03T09:00:00Z'), value: 99_996, orderId: 'order-late' });
  await insertEvents(pool, tenant, events);

  const deliver = async (body: string) => {
    const res = await app.inject({ method: 'POST', url: `/api/v1/webhooks/stripe/${endpoint.endpoint_id}`, payload: body, headers: stripeHeaders(body, endpoint.secret) });
    assert.equal(res.statusCode, 200, res.body);
  };
  for (const o of orders) {
    const charge = stripeCharge({ id: `ch_${o.id}`, amount: o.amount, refunded: o.refunded, orderId: o.id, created: Math.floor(o.at.getTime() / 1000) });
    await deliver(stripeEvent(o.refunded ? 'charge.refunded' : 'charge.succeeded', charge));
    if (o.disputed) await deliver(stripeEvent('charge.dispute.closed', { id: `dp_${o.id}`, object: 'dispute', amount: o.amount, charge: `ch_${o.id}`, currency: 'usd', status: 'lost' }));
  }

  await deliver(stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_twice_1', amount: 1200, refunded: 0, orderId: 'order-twice', created: Math.floor(new Date(`${day(20)}T13:00:00Z`).getTime() / 1000) })));
  await deliver(stripeEvent('charge.refunded', stripeCharge({ id: 'ch_twice_2', amount: 600, refunded: 60, orderId: 'order-twice', created: Math.floor(new Date(`${day(20)}T14:00:00Z`).getTime() / 1000) })));

  const spend: Record<string, unknown>[] = [];
  const row = (d: string, platform: string, campaign: string, channel: string, cents: number, currency = 'USD') =>
    spend.push({ day: d, platform, campaign_id: campaign, campaign_name: `Campaign ${campaign}`, channel, currency, spend_cents: cents, clicks: 3 });
  for (let d = 1; d <= 28; d++) row(day(d), 'google_ads', 'g1', 'google_search_paid', 1000 + d);
  for (let d = 1; d <= 10; d++) row(day(d), 'google_ads', 'g2', 'google_search_paid', 1500);
  for (let d = 1; d <= 28; d++) row(day(d), 'meta_ads', 'f1', 'facebook_paid', 800);
  for (let d = 5; d <= 9; d++) row(day(d), 'tiktok_ads', 't1', 'tiktok_paid', 700); // spend without revenue
  row(day(3), 'meta_ads', 'f2', 'facebook_paid', 500, 'GBP'); // no GBP rate: a gap
  row('2026-05-02', 'google_ads', 'g1', 'google_search_paid', 99_999); // after the period
  const res = await app.inject({ method: 'POST', url: '/api/v1/spend', headers: { authorization: `Bearer ${key}` }, payload: { rows: spend } });
  assert.equal(res.json().failed, 0, res.body);
  // Another tenant's spend on the same campaigns and days: never in this tenant's figures (tenant isolation).
  const theirs = await app.inject({ method: 'POST', url: '/api/v1/spend', headers: { authorization: `Bearer ${other.api_key}` }, payload: { rows: spend.slice(0, 40) } });
  assert.equal(theirs.json().failed, 0, theirs.body);

  for (const model of ['linear', 'markov'] as const) {
    const r = await runModel(pool, tenant, { model, from: new Date(`${FROM}T00:00:00Z`), to: new Date(`${TO}T00:00:00Z`), trigger: 'cli', markov: { bootstrap: 200 } });
    assert.equal(r.status, 'succeeded');
    if (model === 'markov') markovRun = r.runId;
  }
});
after(async () => {
  await app?.close();
  await pool?.end();
  await db?.drop();
});

/** Plain SQL, written from the definitions: per channel (and campaign) of `model`, in USD (EUR at 2 from 2026-04-15; earlier EUR is a gap). */
async function expected(model: string, by: 'channel' | 'campaign' | 'platform' | 'day') {
  const key = by === 'channel' ? `a.channel_code` : by === 'campaign' ? `a.channel_code || '/' || coalesce(a.campaign_id, '')` : by === 'platform' ? `coalesce(p.ad_platform, '')` : `(e.event_timestamp AT TIME ZONE 'UTC')::date::text`;
  const skey = by === 'channel' ? `channel_code` : by === 'campaign' ? `channel_code || '/' || campaign_id` : by === 'platform' ? `platform` : `day::text`;
  return withTenant(pool, tenant, async (c) => {
    const revenue = await c.query<{ k: string; attributed: string; verified: string; refunded: string; chargeback: string; captured: string; conversions: number; credited: string }>(
      `WITH e AS (SELECT * FROM attribution_events WHERE tenant_id = $2 AND event_type = 'conversion' AND event_timestamp >= '${FROM}' AND event_timestamp < '${TO}'),
            tot AS (SELECT event_id, sum(allocated_revenue_cents) AS total FROM attribution_allocations WHERE tenant_id = $2 AND model_type = $1 GROUP BY event_id),
            l AS (SELECT order_id, sum(greatest(0, coalesce(captured_cents, amount_cents) - refunded_cents - chargeback_cents)) AS net,
                         sum(coalesce(captured_cents, amount_cents)) AS captured, sum(refunded_cents) AS refunded, sum(chargeback_cents) AS chargeback
                    FROM revenue_ledger WHERE tenant_id = $2 AND state <> 'authorized' GROUP BY order_id)
       SELECT ${key} AS k,
              sum(CASE WHEN e.currency = 'USD' THEN a.allocated_revenue_cents WHEN e.event_timestamp >= '2026-04-15' THEN 2 * a.allocated_revenue_cents END)::text AS attributed,
              coalesce(sum(l.net * a.allocated_revenue_cents / tot.total), 0)::text AS verified,
              coalesce(sum(l.captured * a.allocated_revenue_cents / tot.total), 0)::text AS captured,
              coalesce(sum(l.refunded * a.allocated_revenue_cents / tot.total), 0)::text AS refunded,
              coalesce(sum(l.chargeback * a.allocated_revenue_cents / tot.total), 0)::text AS chargeback,
              count(DISTINCT e.id)::int AS conversions, sum(a.allocation_ratio)::text AS credited
         FROM e JOIN attribution_allocations a ON a.tenant_id = e.tenant_id AND a.event_id = e.id AND a.model_type = $1 JOIN tot ON tot.event_id = e.id
         LEFT JOIN l ON l.order_id = e.order_id
         LEFT JOIN tenant_channels p ON p.tenant_id = a.tenant_id AND p.code = a.channel_code
        GROUP BY 1`,
      [model, tenant],
    );
    const spend = await c.query<{ k: string; cents: string }>(`SELECT ${skey} AS k, coalesce(sum(spend_cents) FILTER (WHERE currency = 'USD'), 0)::text AS cents FROM ad_spend WHERE day >= '${FROM}' AND day < '${TO}' GROUP BY 1`);
    return { revenue: new Map(revenue.rows.map((r) => [r.k, r])), spend: new Map(spend.rows.map((r) => [r.k, Number(r.cents)])) };
  });
}

const lineKey = (by: string, k: Record<string, string | null>) =>
  by === 'channel' ? k.channel! : by === 'campaign' ? `${k.channel}/${k.campaign_id ?? ''}` : by === 'platform' ? (k.platform ?? '') : k.day!;

describe('GET /api/v1/performance', () => {
  for (const by of ['channel', 'campaign', 'platform', 'day'] as const) {
    test(`group_by=${by}: every figure equals the independent SQL sums; spend without revenue and revenue without spend are both lines`, async () => {
      const res = await get(`/api/v1/performance?from=${FROM}&to=${TO}&model=linear&group_by=${by}`);
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.equal(body.currency, 'USD');
      const want = await expected('linear', by);
      const keys = new Set([...want.revenue.keys(), ...want.spend.keys()]);
      assert.deepEqual(new Set(body.lines.map((l: { key: Record<string, string | null> }) => lineKey(by, l.key))), keys);
      for (const line of body.lines) {
        const k = lineKey(by, line.key);
        const r = want.revenue.get(k);
        const spend = want.spend.get(k) ?? 0;
        assert.equal(line.spend_cents, spend, `${k} spend`);
        assert.equal(line.attributed_cents, Number(r?.attributed ?? 0), `${k} attributed`);
        assert.equal(line.verified_cents, Number(r?.verified ?? 0), `${k} verified`);
        assert.equal(line.captured_cents, Number(r?.captured ?? 0), `${k} captured`);
        assert.equal(line.refunded_cents, Number(r?.refunded ?? 0), `${k} refunded`);
        assert.equal(line.chargeback_cents, Number(r?.chargeback ?? 0), `${k} chargeback`);
        assert.equal(line.conversions, r?.conversions ?? 0, `${k} conversions`);
        assert.ok(Math.abs(line.credited_conversions - Number(r?.credited ?? 0)) < 1e-9);
        const ratio = (a: number, b: number) => (b === 0 ? null : Math.round((a / b) * 1e6) / 1e6);
        assert.deepEqual(line.roas, { claimed: ratio(line.attributed_cents, spend), verified: ratio(line.verified_cents, spend) });
        assert.equal(line.refund_rate, ratio(line.refunded_cents, line.captured_cents));
        assert.equal(line.chargeback_rate, ratio(line.chargeback_cents, line.captured_cents));
        if (spend > 0 && Number(r?.credited ?? 0) > 0) assert.ok(Math.abs(line.cpa_cents - spend / Number(r!.credited)) <= 0.5, `${k} cpa`);
        else assert.equal(line.cpa_cents, null);
      }
      const sum = (f: string) => body.lines.reduce((a: number, l: Record<string, number>) => a + l[f]!, 0);
      assert.equal(body.totals.spend_cents, [...want.spend.values()].reduce((a, b) => a + b, 0));
      assert.equal(body.totals.verified_cents, sum('verified_cents'));
      assert.equal(body.totals.mer, Math.round((body.totals.verified_cents / body.totals.spend_cents) * 1e6) / 1e6);
      assert.equal(body.totals.conversions, 41);
      // The gaps, named: the GBP spend and the EUR conversions before the first EUR rate.
      const gaps = body.fx_gaps.map((g: { source: string; currency: string; day: string }) => `${g.source} ${g.currency} ${g.day}`);
      assert.ok(gaps.includes('spend GBP 2026-04-03'), gaps.join(', '));
      assert.ok(gaps.some((g: string) => g.startsWith('conversions EUR ') && g.slice(-10) < '2026-04-15'), gaps.join(', '));
      assert.ok(!gaps.some((g: string) => g.startsWith('conversions EUR ') && g.slice(-10) >= '2026-04-15'));
    });
  }

  test('the named lines: tiktok spend without revenue, email revenue without spend', async () => {
    const body = (await get(`/api/v1/performance?from=${FROM}&to=${TO}&model=linear`)).json();
    const by = new Map(body.lines.map((l: { key: { channel: string } }) => [l.key.channel, l]));
    const tiktok = by.get('tiktok_paid') as { spend_cents: number; attributed_cents: number; roas: { verified: number } };
    assert.deepEqual([tiktok.spend_cents, tiktok.attributed_cents, tiktok.roas.verified], [3500, 0, 0]);
    const email = by.get('email') as { spend_cents: number; attributed_cents: number; roas: { verified: number | null } };
    assert.ok(email.attributed_cents > 0);
    assert.deepEqual([email.spend_cents, email.roas.verified], [0, null]);
  });

  test('ROAS interval: the run total\'s interval over the spend, for a markov run over exactly the period', async () => {
    const body = (await get(`/api/v1/performance?from=${FROM}&to=${TO}&model=markov&group_by=channel`)).json();
    assert.equal(body.total_intervals.run_id, markovRun);
    const stored = await withTenant(pool, tenant, (c) => c.query(`SELECT channel_code, lower_cents::int AS lo, upper_cents::int AS hi FROM attribution_run_totals WHERE run_id = $1 AND level = 'channel' AND currency = 'USD'`, [markovRun]));
    const google = body.lines.find((l: { key: { channel: string } }) => l.key.channel === 'google_search_paid');
    const s = stored.rows.find((r) => r.channel_code === 'google_search_paid')!;
    assert.deepEqual([google.total_interval.lower_cents, google.total_interval.upper_cents], [s.lo, s.hi]);
    assert.deepEqual(google.roas_interval, { lower: Math.round((s.lo / google.spend_cents) * 1e6) / 1e6, upper: Math.round((s.hi / google.spend_cents) * 1e6) / 1e6, basis: 'claimed' });
    assert.ok(google.roas_interval.lower <= google.roas.claimed && google.roas.claimed <= google.roas_interval.upper);
    // Email's revenue is partly in EUR (totals are per currency): no interval rather than a wrong one.
    assert.equal(body.lines.find((l: { key: { channel: string } }) => l.key.channel === 'email').roas_interval, null);
    // Campaign level too.
    const campaigns = (await get(`/api/v1/performance?from=${FROM}&to=${TO}&model=markov&group_by=campaign`)).json();
    const g1 = campaigns.lines.find((l: { key: { campaign_id: string } }) => l.key.campaign_id === 'g1');
    assert.ok(g1.total_interval && g1.roas_interval && g1.key.platform === 'google_ads' && g1.key.campaign_name === 'Campaign g1');
    // Another period: no run of that window, no interval.
    const other = (await get(`/api/v1/performance?from=${FROM}&to=2026-04-20&model=markov`)).json();
    assert.ok(other.lines.every((l: { roas_interval: unknown }) => l.roas_interval === null));
  });

  test('bad parameters are problem+json 400s naming the field; nothing else answers', async () => {
    for (const [q, field] of [
      [`to=${TO}`, 'from'],
      [`from=${FROM}`, 'to'],
      [`from=2026-02-30&to=${TO}`, 'from'],
      [`from=${TO}&to=${FROM}`, 'to'],
      [`from=${FROM}&to=${TO}&group_by=week`, 'group_by'],
      [`from=${FROM}&to=${TO}&model=magic`, 'model'],
      [`from=2026-04-01T10:00:00Z&to=${TO}`, 'from'],
    ] as const) {
      const res = await get(`/api/v1/performance?${q}`);
      assert.equal(res.statusCode, 400, `${q}: ${res.body}`);
      assert.match(res.headers['content-type'] as string, /application\/problem\+json/);
      assert.ok(res.body.includes(field), `${q}: ${res.body}`);
    }
  });
});

describe('skeldir report performance', () => {
  test('prints the API\'s report; bad input: a message and exit 2', async () => {
    const env = { DATABASE_URL: db.url };
    const cli = await runCli(['report', 'performance', '--tenant', tenant, '--from', FROM, '--to', TO, '--model', 'linear', '--group-by', 'campaign'], { env });
    assert.equal(cli.code, 0, cli.stderr);
    const http = (await get(`/api/v1/performance?from=${FROM}&to=${TO}&model=linear&group_by=campaign`)).json();
    assert.deepEqual(JSON.parse(cli.stdout), http);
    const bad = await runCli(['report', 'performance', '--tenant', tenant, '--from', FROM, '--to', TO, '--group-by', 'week'], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /group_by must be one of/);
    assert.equal(bad.stdout, '');
  });
});
