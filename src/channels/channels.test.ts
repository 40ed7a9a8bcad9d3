import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { attributeConversion } from '../attribution/entry.js';
import { HEURISTIC_MODELS } from '../attribution/models.js';
import { loadConfig } from '../config.js';
import { withTenant } from '../db/tenant-context.js';
import { buildApp, type App } from '../http/app.js';
import { createTenant } from '../tenants/tenants.js';
import { runCli } from '../testing/cli.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';

let db: TestDatabase;
let app: App;
let appPool: pg.Pool;
let tenant: string;
let key: string;
let otherKey: string;

const auth = (k = key) => ({ authorization: `Bearer ${k}` });
const call = (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown, k?: string) =>
  app.inject({ method, url: `/api/v1${url}`, headers: auth(k), ...(payload !== undefined ? { payload: payload as object } : {}) });

function assertProblem(res: { statusCode: number; headers: Record<string, unknown>; json(): any }, status: number, code: string, field?: string) {
  assert.equal(res.statusCode, status, JSON.stringify(res.json()));
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json();
  assert.equal(body.code, code);
  if (field !== undefined) assert.equal(body.field, field);
  return body;
}

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ tenant_id: tenant, api_key: key } = await createTenant(owner, { name: 'Channels', email: 'ops@channels.example' }));
  ({ api_key: otherKey } = await createTenant(owner, { name: 'Other', email: 'ops@other.example' }));
  await owner.end();
  appPool = db.appPool({ max: 4 });
  app = await buildApp({ db, config: loadConfig({}), logger: false });
});
after(async () => {
  await app?.close();
  await appPool?.end();
  await db?.drop();
});

describe('channels', () => {
  test('a new tenant has the ten defaults, with their ad platforms', async () => {
    const res = await call('GET', '/channels');
    assert.equal(res.statusCode, 200);
    const list = res.json().channels as { code: string; is_default: boolean; ad_platform: string | null }[];
    assert.equal(list.length, 10);
    assert.ok(list.every((c) => c.is_default));
    assert.equal(list.find((c) => c.code === 'google_search_paid')!.ad_platform, 'google_ads');
    assert.equal(list.find((c) => c.code === 'facebook_paid')!.ad_platform, 'meta_ads');
    assert.equal(list.find((c) => c.code === 'email')!.ad_platform, null);
  });

  test('add, change and delete a channel; defaults and channels in use stay', async () => {
    const created = await call('POST', '/channels', { code: 'podcast', display_name: 'Podcasts', family: 'audio', is_paid: true, ad_platform: 'other' });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.json().is_default, false);
    assertProblem(await call('POST', '/channels', { code: 'podcast', display_name: 'Again' }), 409, 'channel_exists', 'body/code');
    assertProblem(await call('POST', '/channels', { code: 'Pod Cast', display_name: 'x' }), 400, 'validation_failed', 'body/code');
    assertProblem(await call('POST', '/channels', { code: 'x', display_name: 'x', ad_platform: 'myspace' }), 400, 'validation_failed');
    const patched = await call('PATCH', '/channels/podcast', { display_name: 'Podcast ads', ad_platform: null });
    assert.equal(patched.statusCode, 200);
    assert.deepEqual([patched.json().display_name, patched.json().ad_platform, patched.json().is_paid], ['Podcast ads', null, true]);
    assertProblem(await call('PATCH', '/channels/nope', { is_active: false }), 404, 'channel_not_found');
    assertProblem(await call('PATCH', '/channels/unknown', { is_active: false }), 422, 'channel_invalid');
    assertProblem(await call('DELETE', '/channels/email'), 409, 'channel_default');
    const rule = await call('POST', '/channels/rules', { name: 'pods', channel: 'podcast', conditions: [{ field: 'utm_medium', op: 'equals', value: 'podcast' }] });
    assert.equal(rule.statusCode, 201, rule.body);
    const inUse = assertProblem(await call('DELETE', '/channels/podcast'), 409, 'channel_in_use');
    assert.equal(inUse.referenced_by, 'channel_rules');
    assert.equal((await call('DELETE', `/channels/rules/${rule.json().id}`)).statusCode, 204);
    assert.equal((await call('DELETE', '/channels/podcast')).statusCode, 204);
    assertProblem(await call('DELETE', '/channels/podcast'), 404, 'channel_not_found');
    // Another tenant never sees them.
    assert.equal((await call('GET', '/channels', undefined, otherKey)).json().channels.length, 10);
  });
});

describe('rules', () => {
  test('bad rules are refused with the field that is wrong, and nothing is written', async () => {
    const bad = async (conditions: unknown, field: string, channel = 'email', status = 422, code = 'channel_rule_invalid') =>
      assertProblem(await call('POST', '/channels/rules', { name: 'bad', channel, conditions }), status, code, field);
    await bad([{ field: 'utm_source', op: 'present', value: 'x' }], 'body/conditions/0/value');
    await bad([{ field: 'utm_source', op: 'equals' }], 'body/conditions/0/value');
    await bad([{ field: 'click_id', op: 'in', value: ['gclid', 'yclid'] }], 'body/conditions/0/value');
    await bad([{ field: 'click_id', op: 'prefix', value: 'g' }], 'body/conditions/0/op');
    await bad([{ field: 'referrer_domain', op: 'domain', value: ['https://x.example/'] }], 'body/conditions/0/value');
    await bad([{ field: 'utm_source', op: 'equals', value: 'x' }], 'body/channel', 'no_such_channel');
    await bad([{ field: 'utm_source', op: 'sounds_like', value: 'x' }], 'body/conditions/0/op', 'email', 400, 'validation_failed');
    await bad([], 'body/conditions', 'email', 400, 'validation_failed');
    assert.equal((await call('GET', '/channels/rules')).json().rules.length, 0);
  });

  test('ordered: added at the end, reordered as a whole, replaced in place', async () => {
    await call('POST', '/channels', { code: 'microsoft_search_paid', display_name: 'Microsoft Ads', family: 'paid_search', is_paid: true, ad_platform: 'microsoft_ads' });
    const a = (await call('POST', '/channels/rules', { name: 'bing', channel: 'microsoft_search_paid', conditions: [{ field: 'click_id', op: 'in', value: ['msclkid'] }] })).json();
    const b = (await call('POST', '/channels/rules', { name: 'all utm email', channel: 'email', conditions: [{ field: 'utm_medium', op: 'present' }] })).json();
    assert.ok(a.position < b.position);
    const list = (await call('GET', '/channels/rules')).json();
    assert.deepEqual(list.rules.map((r: { id: string }) => r.id), [a.id, b.id]);
    assert.ok(list.defaults.length > 20 && list.defaults[0].id.startsWith('default:'));
    // Both rules match a tagged Bing click: the first decides.
    const touch = { msclkid: 'x', utm_medium: 'cpc', utm_source: 'bing' };
    assert.equal((await call('POST', '/channels/test', { touch })).json().channel, 'microsoft_search_paid');
    assertProblem(await call('PUT', '/channels/rules/order', { ids: [b.id] }), 422, 'channel_rule_order_invalid', 'body/ids');
    assertProblem(await call('PUT', '/channels/rules/order', { ids: [b.id, b.id] }), 422, 'channel_rule_order_invalid');
    assertProblem(await call('PUT', '/channels/rules/order', { ids: [b.id, randomUUID()] }), 422, 'channel_rule_order_invalid');
    const reordered = await call('PUT', '/channels/rules/order', { ids: [b.id, a.id] });
    assert.equal(reordered.statusCode, 200, reordered.body);
    assert.deepEqual(reordered.json().rules.map((r: { id: string }) => r.id), [b.id, a.id]);
    const tested = (await call('POST', '/channels/test', { touch })).json();
    assert.equal(tested.channel, 'email');
    assert.deepEqual([tested.decided_by.kind, tested.decided_by.rule_id], ['rule', b.id]);
    assert.deepEqual(tested.matching_rules.filter((m: { kind: string }) => m.kind === 'rule').map((m: { id: string }) => m.id), [b.id, a.id]);
    assert.ok(tested.matching_rules.some((m: { id: string }) => m.id === 'default:Microsoft Ads click id'));
    // Replace b so it no longer matches; a decides again.
    const replaced = await call('PUT', `/channels/rules/${b.id}`, { name: 'newsletters', channel: 'email', conditions: [{ field: 'utm_medium', op: 'equals', value: 'newsletter' }] });
    assert.equal(replaced.statusCode, 200);
    assert.equal(replaced.json().position, reordered.json().rules[0].position);
    assert.equal((await call('POST', '/channels/test', { touch })).json().channel, 'microsoft_search_paid');
    assertProblem(await call('PUT', `/channels/rules/${randomUUID()}`, { name: 'x', channel: 'email', conditions: [{ field: 'utm_medium', op: 'present' }] }), 404, 'channel_rule_not_found');
    await call('DELETE', `/channels/rules/${b.id}`);
  });

  test('POST /channels/test: the decision, the normalised touch, and proposed rules tried without saving', async () => {
    const r = (await call('POST', '/channels/test', { touch: { landing_url: 'https://shop.example/p?gclid=G1&utm_campaign=Spring%20Sale' } })).json();
    assert.deepEqual([r.channel, r.decided_by.kind, r.decided_by.name, r.campaign, r.ad_platform], ['google_search_paid', 'default', 'Google Ads click id', 'Spring Sale', 'google_ads']);
    assert.deepEqual(r.touch.click_id, ['gclid']);
    assert.equal(r.touch.landing_domain, 'shop.example');
    const proposed = (await call('POST', '/channels/test', {
      touch: { referrer: 'https://www.reddit.com/r/x' },
      rules: [{ name: 'reddit', channel: 'referral', conditions: [{ field: 'referrer_domain', op: 'domain', value: ['reddit.com'] }] }],
    })).json();
    assert.deepEqual([proposed.channel, proposed.decided_by.rule_id], ['referral', 'proposed:0']);
    assert.equal((await call('GET', '/channels/rules')).json().rules.length, 1, 'nothing saved');
    assertProblem(await call('POST', '/channels/test', { touch: { referrer: 'javascript:alert(1)' } }), 422, 'channel_rule_invalid', 'body/touch/referrer');
  });
});

describe('ingestion classifies with the tenant rules', () => {
  const event = (extra: Record<string, unknown>) => ({
    idempotency_key: randomUUID(),
    event_type: 'touchpoint',
    event_timestamp: '2026-02-01T10:00:00Z',
    session_id: randomUUID(),
    ...extra,
  });

  test('utm_content, utm_term, click ids, referrer and landing URL are accepted and decide', async () => {
    const bing = await call('POST', '/events', event({ msclkid: 'M1', utm_content: 'ad-7', utm_term: 'shoes', referrer: 'https://www.bing.com/search?q=shoes' }));
    assert.equal(bing.statusCode, 201, bing.body);
    assert.equal(bing.json().channel, 'microsoft_search_paid');
    const landing = await call('POST', '/events', event({ landing_url: 'https://shop.example/?gclid=G&utm_campaign=Brand' }));
    assert.deepEqual([landing.json().channel, landing.json().campaign_id], ['google_search_paid', 'Brand']);
    const other = await call('POST', '/events', event({ msclkid: 'M1' }), otherKey);
    assert.equal(other.json().channel, 'unknown', "another tenant's rules do not apply");
    assertProblem(await call('POST', '/events', event({ landing_url: 'ftp://x.example/' })), 422, 'url_invalid', 'body/landing_url');
    assertProblem(await call('POST', '/events', event({ referrer: 'not a url' })), 400, 'validation_failed', 'body/referrer');
    assertProblem(await call('POST', '/events', event({ referrer: 'nohost' })), 422, 'url_invalid', 'body/referrer');
    const batch = await call('POST', '/events/batch', { events: [event({ ttclid: 'T' }), event({ referrer: 'mailto:x@y.example' })] });
    assert.deepEqual(batch.json().results.map((r: { status: number }) => r.status), [201, 422]);
    assert.equal(batch.json().results[0].event.channel, 'tiktok_paid');
  });
});

describe('re-classification of past events', () => {
  const T = Date.parse('2026-03-10T12:00:00Z');
  const iso = (h: number) => new Date(T + h * 3_600_000).toISOString();
  let conversion: string;
  let session: string;

  test('after a rule change, events move batch by batch, the rule models follow, campaign allocations sum exactly', async () => {
    session = randomUUID();
    const post = (body: Record<string, unknown>) => call('POST', '/events', { idempotency_key: randomUUID(), session_id: session, ...body });
    // A TikTok click (tagged with its campaign), an untagged LinkedIn ad click, a referral, then the conversion.
    for (const body of [
      { event_type: 'touchpoint', event_timestamp: iso(-5), li_fat_id: 'L1', campaign_id: 'li-spring', referrer: 'https://www.linkedin.com/feed' },
      { event_type: 'touchpoint', event_timestamp: iso(-4), ttclid: 'T1', campaign_id: 'tt-1' },
      { event_type: 'touchpoint', event_timestamp: iso(-3), li_fat_id: 'L2', campaign_id: 'li-autumn' },
      { event_type: 'touchpoint', event_timestamp: iso(-2), ttclid: 'T2', campaign_id: 'tt-2' },
    ]) assert.equal((await post(body)).statusCode, 201);
    const conv = await post({ event_type: 'conversion', event_timestamp: iso(0), conversion_value_cents: 10001, currency: 'USD', order_id: 'R-1' });
    conversion = conv.json().id;
    await withTenant(appPool, tenant, async (c) => {
      await c.query(`UPDATE attribution_events SET processing_status = 'processed', processed_at = now() WHERE session_id = $1`, [session]);
      await attributeConversion(c, tenant, conversion);
    });
    const before = await allocations();
    assert.deepEqual([...new Set(before.filter((a) => a.model_type === 'linear').map((a) => a.channel_code))].sort(), ['tiktok_paid', 'unknown']);
    assertSums(before, 10001);
    assert.deepEqual(
      before.filter((a) => a.model_type === 'linear').map((a) => [a.channel_code, a.campaign_id, a.cents]),
      // 10001 = 5001 + 5000 over the channels (ties to the first code), then each channel's over its campaigns.
      [['tiktok_paid', 'tt-1', 2501], ['tiktok_paid', 'tt-2', 2500], ['unknown', 'li-autumn', 2500], ['unknown', 'li-spring', 2500]],
    );

    await call('POST', '/channels', { code: 'linkedin_paid', display_name: 'LinkedIn Ads', family: 'paid_social', is_paid: true, ad_platform: 'linkedin_ads' });
    await call('POST', '/channels/rules', { name: 'linkedin', channel: 'linkedin_paid', conditions: [{ field: 'click_id', op: 'in', value: ['li_fat_id'] }] });

    const dry = await call('POST', '/channels/reclassify', { from: iso(-24), to: iso(24), dry_run: true });
    assert.deepEqual([dry.json().changed, dry.json().dry_run, dry.json().moves], [2, true, { 'unknown → linkedin_paid': 2 }]);
    assert.deepEqual(await allocations(), before, 'a dry run changes nothing');

    let cursor: string | undefined;
    const batches: { examined: number; changed: number; reattributed: number }[] = [];
    do {
      const res = await call('POST', '/channels/reclassify', { from: iso(-24), to: iso(24), limit: 2, ...(cursor ? { cursor } : {}) });
      assert.equal(res.statusCode, 200, res.body);
      batches.push(res.json());
      cursor = res.json().next_cursor ?? undefined;
    } while (cursor);
    assert.deepEqual(batches.map((b) => b.examined), [2, 2, 1]);
    assert.equal(batches.reduce((a, b) => a + b.changed, 0), 2);
    assert.equal(batches.reduce((a, b) => a + b.reattributed, 0), 2, 'the conversion is recomputed once per batch that moved one of its touches');
    const afterRows = await allocations();
    assertSums(afterRows, 10001);
    assert.deepEqual(
      afterRows.filter((a) => a.model_type === 'linear').map((a) => [a.channel_code, a.campaign_id, a.cents]),
      [['linkedin_paid', 'li-autumn', 2501], ['linkedin_paid', 'li-spring', 2500], ['tiktok_paid', 'tt-1', 2500], ['tiktok_paid', 'tt-2', 2500]],
    );
    assert.deepEqual(afterRows.filter((a) => a.model_type === 'first_touch').map((a) => [a.channel_code, a.campaign_id, a.cents]), [['linkedin_paid', 'li-spring', 10001]]);
    const again = await call('POST', '/channels/reclassify', { from: iso(-24), to: iso(24) });
    assert.deepEqual([again.json().changed, again.json().next_cursor], [0, null]);
    assertProblem(await call('POST', '/channels/reclassify', { cursor: 'bm9wZQ' }), 400, 'reclassify_invalid', 'cursor');
    assertProblem(await call('POST', '/channels/reclassify', { from: iso(1), to: iso(0) }), 400, 'reclassify_invalid', 'to');
  });

  test('the CLI re-classifies with a progress report; bad input exits 2', async () => {
    await call('PATCH', '/channels/linkedin_paid', { is_active: false });
    const env = { DATABASE_URL: db.url };
    const r = await runCli(['channels', 'reclassify', '--tenant', tenant, '--batch', '2'], { env });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.moves['linkedin_paid → unknown'], 2);
    assert.match(r.stderr, /events re-classified: \d+\/\d+ done/);
    assert.deepEqual(
      [...new Set((await allocations()).filter((a) => a.model_type === 'linear').map((a) => a.channel_code))].sort(),
      ['tiktok_paid', 'unknown'],
    );
    const tested = await runCli(['channels', 'test', '--tenant', tenant, '--touch', '{"gclid":"x"}'], { env });
    assert.equal(JSON.parse(tested.stdout).channel, 'google_search_paid');
    for (const args of [
      ['channels', 'reclassify', '--tenant', 'nope'],
      ['channels', 'reclassify', '--tenant', randomUUID()],
      ['channels', 'reclassify', '--tenant', tenant, '--from', 'yesterday'],
      ['channels', 'test', '--tenant', tenant, '--touch', '{'],
      ['channels', 'add', '--tenant', tenant, '--code', 'Bad Code', '--name', 'x'],
    ]) {
      const bad = await runCli(args, { env });
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
      assert.match(bad.stderr, /^skeldir: /);
    }
    const added = await runCli(['channels', 'add', '--tenant', tenant, '--code', 'affiliate', '--name', 'Affiliates', '--platform', 'other'], { env });
    assert.equal(added.code, 0, added.stderr);
    const rule = await runCli(['channels', 'add-rule', '--tenant', tenant, '--name', 'aff', '--channel', 'affiliate', '--conditions', '[{"field":"utm_medium","op":"equals","value":"affiliate"}]'], { env });
    assert.equal(rule.code, 0, rule.stderr);
    const listed = JSON.parse((await runCli(['channels', 'list', '--tenant', tenant], { env })).stdout);
    assert.ok(listed.channels.some((c: { code: string }) => c.code === 'affiliate'));
    assert.ok(listed.rules.some((x: { name: string }) => x.name === 'aff'));
  });

  async function allocations() {
    const su = await superClient(db);
    try {
      return (
        await su.query<{ model_type: string; channel_code: string; campaign_id: string | null; cents: number }>(
          `SELECT model_type, channel_code, campaign_id, allocated_revenue_cents AS cents FROM attribution_allocations
            WHERE event_id = $1 ORDER BY model_type, channel_code, campaign_id`,
          [conversion],
        )
      ).rows;
    } finally {
      await su.end();
    }
  }

  function assertSums(rows: { model_type: string; cents: number }[], value: number) {
    for (const model of HEURISTIC_MODELS) {
      const mine = rows.filter((r) => r.model_type === model);
      assert.ok(mine.length > 0, model);
      assert.equal(mine.reduce((a, r) => a + r.cents, 0), value, `${model} sums to the value`);
    }
  }
});
