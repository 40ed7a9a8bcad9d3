/**
 * The identity graph through HTTP and the CLI (issue 14): POST /api/v1/identify with the secret
 * key, a person's links and audit trail, unlinking; journeys that follow every browser linked to
 * a person across devices within the lookback; a link made after a conversion re-attributes it
 * exactly once (allocations replaced, sums exact), and unlinking puts it back.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { loadConfig } from '../config.js';
import { buildApp, type App } from '../http/app.js';
import { createTenant } from '../tenants/tenants.js';
import { runCli } from '../testing/cli.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { Worker } from '../worker/worker.js';
import { DEFAULT_WORKER_OPTIONS } from '../worker/options.js';

let db: TestDatabase;
let app: App;
let su: pg.Client;
let worker: Worker;
const A = { tenant: '', key: '' };
const B = { tenant: '', key: '' };
const DAY = 86_400_000;
const NOW = Date.now();
const ago = (days: number) => new Date(NOW - days * DAY).toISOString();

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  for (const [t, name] of [[A, 'Alpha'], [B, 'Beta']] as const) {
    const created = await createTenant(owner, { name, email: `ops@${name.toLowerCase()}.example` });
    t.tenant = created.tenant_id;
    t.key = created.api_key;
  }
  await owner.end();
  app = await buildApp({ db, config: loadConfig({}), logger: false, rateLimit: { max: 0 } });
  su = await superClient(db);
  worker = new Worker(db, { ...DEFAULT_WORKER_OPTIONS, concurrency: 1, batchSize: 50, pollMs: 50 });
  await worker.start();
});
after(async () => {
  await worker?.stop();
  await su?.end();
  await app?.close();
  await db?.drop();
});

const call = (t: { key: string }, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown) =>
  app.inject({ method, url, headers: { authorization: `Bearer ${t.key}` }, ...(payload !== undefined ? { payload: payload as object } : {}) });

async function send(t: { key: string }, events: Record<string, unknown>[]): Promise<void> {
  for (const e of events) {
    const res = await call(t, 'POST', '/api/v1/events', { idempotency_key: randomUUID(), session_id: randomUUID(), ...e });
    assert.ok(res.statusCode === 201 || res.statusCode === 200, res.body);
  }
}

async function processed(): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((await su.query(`SELECT count(*)::int AS n FROM attribution_events WHERE processing_status = 'pending'`)).rows[0].n > 0) {
    if (Date.now() > deadline) throw new Error('the worker did not process the events');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const touch = (anonymous: string, days: number, channel: string, campaign: string, more: Record<string, unknown> = {}) => ({
  event_type: 'touchpoint',
  event_timestamp: ago(days),
  anonymous_id: anonymous,
  channel,
  campaign_id: campaign,
  ...more,
});
const conversion = (user: string, days: number, cents: number, more: Record<string, unknown> = {}) => ({
  event_type: 'conversion',
  event_timestamp: ago(days),
  user_id: user,
  channel: 'direct',
  conversion_value_cents: cents,
  currency: 'USD',
  order_id: `order-${randomUUID()}`,
  ...more,
});

/** model → sorted [channel, campaign, cents] of a conversion's allocations, and the rows' update times. */
async function allocationsOf(tenant: string, userId: string) {
  const { rows } = await su.query(
    `SELECT a.model_type, a.channel_code, a.campaign_id, a.allocated_revenue_cents AS cents, a.updated_at, e.conversion_value_cents AS value
       FROM attribution_allocations a JOIN attribution_events e ON e.tenant_id = a.tenant_id AND e.id = a.event_id
      WHERE a.tenant_id = $1 AND e.user_id = $2 ORDER BY a.model_type, a.channel_code, a.campaign_id NULLS FIRST`,
    [tenant, userId],
  );
  const byModel: Record<string, [string, string | null, number][]> = {};
  for (const r of rows) (byModel[r.model_type] ??= []).push([r.channel_code, r.campaign_id, Number(r.cents)]);
  return { byModel, rows };
}

/** Every model's allocations of every conversion sum to its value: nothing counted twice, nothing lost. */
async function assertExactSums(tenant: string): Promise<void> {
  const { rows } = await su.query(
    `SELECT e.id, a.model_type, e.conversion_value_cents AS value, sum(a.allocated_revenue_cents)::bigint AS total, count(*)::int AS n
       FROM attribution_allocations a JOIN attribution_events e ON e.tenant_id = a.tenant_id AND e.id = a.event_id WHERE a.tenant_id = $1
      GROUP BY e.id, a.model_type, e.conversion_value_cents`,
    [tenant],
  );
  assert.ok(rows.length > 0);
  for (const r of rows) assert.equal(Number(r.total), Number(r.value), `${r.model_type} of ${r.id}: ${r.total} for ${r.value}`);
}

describe('POST /api/v1/identify and a person\'s links', () => {
  test('a new link is 201, a repeat 200 and changes nothing; GET lists the links with their audit trail', async () => {
    const first = await call(A, 'POST', '/api/v1/identify', { anonymous_id: 'anon-api-1', user_id: 'person-1', timestamp: ago(1) });
    assert.equal(first.statusCode, 201, first.body);
    assert.deepEqual(first.json(), { anonymous_id: 'anon-api-1', user_id: 'person-1', outcome: 'linked', conversions_recomputed: 0 });
    const again = await call(A, 'POST', '/api/v1/identify', { anonymous_id: 'anon-api-1', user_id: 'person-1' });
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(again.json().outcome, 'known');
    const shown = await call(A, 'GET', '/api/v1/people/person-1/links');
    assert.equal(shown.statusCode, 200, shown.body);
    const body = shown.json();
    assert.equal(body.links.length, 1);
    assert.equal(body.links[0].anonymous_id, 'anon-api-1');
    assert.equal(body.links[0].source, 'api');
    assert.equal(body.links[0].linked_at, new Date(ago(1)).toISOString().replace('Z', '000Z'));
    assert.equal(body.changes.length, 1, 'one audit row: the repeat wrote nothing');
    assert.equal(body.changes[0].action, 'link');
    assert.equal(body.changes[0].conversions_recomputed, 0);
    assert.ok(body.changes[0].recomputed_at);
    // Another tenant knows nothing of it, and its own link of the same ids is its own.
    const other = await call(B, 'GET', '/api/v1/people/person-1/links');
    assert.deepEqual(other.json(), { user_id: 'person-1', links: [], changes: [] });
  });

  test('bad input: specific 400 problems, nothing written; unlinking what is not linked is a 404', async () => {
    const count = async () => (await su.query(`SELECT (SELECT count(*) FROM identity_links) + (SELECT count(*) FROM identity_changes) AS n`)).rows[0].n;
    const before = await count();
    for (const [body, field] of [
      [{ anonymous_id: 'has space', user_id: 'p' }, 'anonymous_id'],
      [{ anonymous_id: '', user_id: 'p' }, 'anonymous_id'],
      [{ anonymous_id: 'a'.repeat(256), user_id: 'p' }, 'anonymous_id'],
      [{ anonymous_id: 'anon', user_id: ' padded' }, 'user_id'],
      [{ anonymous_id: 'anon', user_id: 'x'.repeat(256) }, 'user_id'],
      [{ anonymous_id: 'anon' }, 'user_id'],
      [{ anonymous_id: 'anon', user_id: 'p', timestamp: 'yesterday' }, 'timestamp'],
      [{ anonymous_id: 'anon', user_id: 'p', extra: 1 }, 'extra'],
    ] as const) {
      const res = await call(A, 'POST', '/api/v1/identify', body);
      assert.equal(res.statusCode, 400, `${JSON.stringify(body)}: ${res.body}`);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      assert.ok(String(res.json().field ?? '').includes(field), `${JSON.stringify(body)}: ${res.body}`);
    }
    const impossible = await call(A, 'POST', '/api/v1/identify', { anonymous_id: 'anon', user_id: 'p', timestamp: '2026-02-30T00:00:00Z' });
    assert.equal(impossible.statusCode, 400, impossible.body);
    assert.equal(impossible.json().code, 'identity_timestamp_invalid');
    const missing = await call(A, 'DELETE', '/api/v1/people/person-1/links/anon-not-linked');
    assert.equal(missing.statusCode, 404, missing.body);
    assert.equal(missing.json().code, 'identity_link_not_found');
    const noKey = await app.inject({ method: 'POST', url: '/api/v1/identify', payload: { anonymous_id: 'anon', user_id: 'p' } });
    assert.equal(noKey.statusCode, 401);
    assert.equal(await count(), before, 'nothing written');
  });

  test('merge protection: a person has at most 100 browsers; the 101st identify is a 409 and writes nothing', async () => {
    const { rows } = await su.query(
      `INSERT INTO identity_links (tenant_id, anonymous_id, user_id, source, linked_at)
       SELECT $1, 'bulk-' || i, 'busy-person', 'api', now() FROM generate_series(1, 100) i RETURNING 1`,
      [A.tenant],
    );
    assert.equal(rows.length, 100);
    const res = await call(A, 'POST', '/api/v1/identify', { anonymous_id: 'one-too-many', user_id: 'busy-person' });
    assert.equal(res.statusCode, 409, res.body);
    assert.equal(res.json().code, 'identity_link_limit');
    const known = await call(A, 'POST', '/api/v1/identify', { anonymous_id: 'bulk-7', user_id: 'busy-person' });
    assert.equal(known.statusCode, 200, 'a known link is still known');
    assert.equal((await su.query(`SELECT count(*)::int AS n FROM identity_links WHERE user_id = 'busy-person'`)).rows[0].n, 100);
  });
});

describe('journeys across linked browsers', () => {
  test("a person's conversion is credited to the touches of every browser linked to them, across devices, within the lookback", async () => {
    await send(A, [
      touch('phone-1', 5, 'facebook_paid', 'fb_spring'), // device 1
      touch('laptop-1', 3, 'google_search_paid', 'brand_search'), // device 2
      touch('laptop-1', 45, 'email', 'old_newsletter'), // outside the 30-day lookback
      touch('stranger-1', 2, 'tiktok_paid', 'tt'), // nobody's browser
    ]);
    for (const anonymous of ['phone-1', 'laptop-1']) {
      const res = await call(A, 'POST', '/api/v1/identify', { anonymous_id: anonymous, user_id: 'shopper-1' });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json().conversions_recomputed, 0, 'no conversion yet');
    }
    await send(A, [conversion('shopper-1', 1, 10_000)]);
    await processed();
    const { byModel } = await allocationsOf(A.tenant, 'shopper-1');
    assert.deepEqual(byModel.linear, [
      ['facebook_paid', 'fb_spring', 5_000],
      ['google_search_paid', 'brand_search', 5_000],
    ]);
    assert.deepEqual(byModel.first_touch, [['facebook_paid', 'fb_spring', 10_000]]);
    assert.deepEqual(byModel.last_touch, [['google_search_paid', 'brand_search', 10_000]]);
    await assertExactSums(A.tenant);
  });

  test('a link made after the conversion re-attributes it exactly once; a repeat changes nothing; unlinking puts it back', async () => {
    await send(A, [touch('tablet-9', 4, 'email', 'winback'), conversion('shopper-9', 1, 999)]);
    await processed();
    const before = await allocationsOf(A.tenant, 'shopper-9');
    assert.deepEqual(before.byModel.linear, [['direct', null, 999]], 'no touches known: the conversion\'s own channel');

    const linked = await call(A, 'POST', '/api/v1/identify', { anonymous_id: 'tablet-9', user_id: 'shopper-9' });
    assert.equal(linked.statusCode, 201, linked.body);
    assert.equal(linked.json().conversions_recomputed, 1);
    const after = await allocationsOf(A.tenant, 'shopper-9');
    assert.deepEqual(after.byModel.linear, [['email', 'winback', 999]]);
    assert.deepEqual(Object.keys(after.byModel).sort(), Object.keys(before.byModel).sort());
    assert.equal(after.rows.length, before.rows.length, 'replaced, not added to');
    await assertExactSums(A.tenant);

    // The audit row says it was recomputed, once; a repeated identify recomputes nothing.
    const changes = (await call(A, 'GET', '/api/v1/people/shopper-9/links')).json().changes;
    assert.deepEqual(changes.map((c: { action: string; conversions_recomputed: number }) => [c.action, c.conversions_recomputed]), [['link', 1]]);
    const again = await call(A, 'POST', '/api/v1/identify', { anonymous_id: 'tablet-9', user_id: 'shopper-9' });
    assert.equal(again.json().conversions_recomputed, 0);
    const unchanged = await allocationsOf(A.tenant, 'shopper-9');
    assert.deepEqual(unchanged.rows, after.rows, 'rows byte-identical, same update times');
    // The worker has nothing left to do: no pending event, no second write.
    assert.equal((await su.query(`SELECT count(*)::int AS n FROM attribution_events WHERE processing_status = 'pending'`)).rows[0].n, 0);

    const unlinked = await call(A, 'DELETE', '/api/v1/people/shopper-9/links/tablet-9');
    assert.equal(unlinked.statusCode, 200, unlinked.body);
    assert.deepEqual(unlinked.json(), { user_id: 'shopper-9', unlinked: ['tablet-9'], conversions_recomputed: 1 });
    assert.deepEqual((await allocationsOf(A.tenant, 'shopper-9')).byModel, before.byModel);
    await assertExactSums(A.tenant);
    const trail = (await call(A, 'GET', '/api/v1/people/shopper-9/links')).json();
    assert.deepEqual(trail.links, []);
    assert.deepEqual(trail.changes.map((c: { action: string; conversions_recomputed: number }) => [c.action, c.conversions_recomputed]), [['link', 1], ['unlink', 1]]);
  });

  test('a link re-attributes only the conversions whose lookback holds a touch of that browser', async () => {
    await send(A, [touch('old-browser', 40, 'referral', 'partner'), conversion('shopper-5', 2, 500), conversion('shopper-5', 38, 700)]);
    await processed();
    const res = await call(A, 'POST', '/api/v1/identify', { anonymous_id: 'old-browser', user_id: 'shopper-5' });
    assert.equal(res.json().conversions_recomputed, 1, 'the conversion 38 days ago (touch 2 days before it), not the one 2 days ago (touch 38 days before)');
    const { rows } = await su.query(
      `SELECT e.conversion_value_cents AS value, a.channel_code FROM attribution_allocations a JOIN attribution_events e ON e.tenant_id = a.tenant_id AND e.id = a.event_id
        WHERE e.user_id = 'shopper-5' AND a.model_type = 'linear' ORDER BY value`,
    );
    assert.deepEqual(rows.map((r) => [Number(r.value), r.channel_code]), [[500, 'direct'], [700, 'referral']]);
  });

  test("DELETE of all a person's links unlinks every browser and re-attributes what they touched", async () => {
    await send(A, [touch('d1', 2, 'organic', 'seo'), touch('d2', 2, 'referral', 'blog'), conversion('shopper-7', 1, 2_000)]);
    for (const d of ['d1', 'd2']) await call(A, 'POST', '/api/v1/identify', { anonymous_id: d, user_id: 'shopper-7' });
    await processed();
    assert.deepEqual((await allocationsOf(A.tenant, 'shopper-7')).byModel.linear, [['organic', 'seo', 1_000], ['referral', 'blog', 1_000]]);
    const res = await call(A, 'DELETE', '/api/v1/people/shopper-7/links');
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { user_id: 'shopper-7', unlinked: ['d1', 'd2'], conversions_recomputed: 2 });
    assert.deepEqual((await allocationsOf(A.tenant, 'shopper-7')).byModel.linear, [['direct', null, 2_000]]);
    await assertExactSums(A.tenant);
  });

  test('links are per tenant: B identifying the same ids changes nothing of A', async () => {
    await send(B, [touch('tablet-9', 4, 'facebook_paid', 'b-campaign')]);
    const beforeA = await allocationsOf(A.tenant, 'shopper-1');
    const res = await call(B, 'POST', '/api/v1/identify', { anonymous_id: 'laptop-1', user_id: 'shopper-1' });
    assert.equal(res.statusCode, 201);
    assert.equal(res.json().conversions_recomputed, 0, "B has no conversion of shopper-1; A's is not B's");
    assert.deepEqual((await allocationsOf(A.tenant, 'shopper-1')).rows, beforeA.rows);
    const { rows } = await su.query(`SELECT tenant_id FROM identity_links WHERE anonymous_id = 'laptop-1' ORDER BY tenant_id`);
    assert.deepEqual(rows.map((r) => r.tenant_id).sort(), [A.tenant, B.tenant].sort());
  });
});

describe('skeldir identity', () => {
  test('link, show, unlink: the same operations as the API; bad input exits 2 with a message and writes nothing', async () => {
    const env = { DATABASE_URL: db.url };
    const linked = await runCli(['identity', 'link', 'cli-browser', 'cli-person', '--tenant', A.tenant], { env });
    assert.equal(linked.code, 0, linked.stderr);
    assert.deepEqual(JSON.parse(linked.stdout), { anonymous_id: 'cli-browser', user_id: 'cli-person', outcome: 'linked', conversions_recomputed: 0 });
    const shown = await runCli(['identity', 'show', 'cli-person', '--tenant', A.tenant], { env });
    assert.equal(shown.code, 0, shown.stderr);
    const body = JSON.parse(shown.stdout);
    assert.deepEqual(body.links.map((l: { anonymous_id: string; source: string }) => [l.anonymous_id, l.source]), [['cli-browser', 'cli']]);
    const bad = await runCli(['identity', 'link', 'has space', 'cli-person', '--tenant', A.tenant], { env });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /anonymous_id must be 1 to 255 printable ASCII characters/);
    const notLinked = await runCli(['identity', 'unlink', 'cli-person', 'other-browser', '--tenant', A.tenant], { env });
    assert.equal(notLinked.code, 1, notLinked.stderr);
    assert.match(notLinked.stderr, /no link to anonymous id "other-browser"/);
    const unlinked = await runCli(['identity', 'unlink', 'cli-person', '--tenant', A.tenant], { env });
    assert.equal(unlinked.code, 0, unlinked.stderr);
    assert.deepEqual(JSON.parse(unlinked.stdout), { user_id: 'cli-person', unlinked: ['cli-browser'], conversions_recomputed: 0 });
    const unknownTenant = await runCli(['identity', 'show', 'cli-person', '--tenant', randomUUID()], { env });
    assert.equal(unknownTenant.code, 2);
    const links = await su.query(`SELECT count(*)::int AS n FROM identity_links WHERE user_id = 'cli-person'`);
    assert.equal(links.rows[0].n, 0);
  });
});
