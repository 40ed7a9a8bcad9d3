/**
 * The tracker in a real Chromium (issue 14), through the browser harness of src/testing/browser.ts:
 * a test site on one local origin loads /sdk/v1/skeldir.js from the API (another origin) with
 * its publishable key. Landing with UTM and click-id parameters, browsing, identify; a
 * server-side conversion credited to each device's channel and campaign, a second device (a new
 * context) identified after it joining the journey and re-attributing it; sessions;
 * the offline queue; a disallowed origin; a publishable key on another route; consent and Global
 * Privacy Control (nothing in cookies or storage); automation filtered as a bot; the ES module.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import pg from 'pg';
import { loadConfig } from '../config.js';
import { buildApp, type App } from '../http/app.js';
import { sessionUuid } from '../ingestion/session-id.js';
import { createTenant } from '../tenants/tenants.js';
import { launchBrowser, type TestBrowser } from '../testing/browser.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { snippetFor } from './publishable-keys.js';
import { Worker } from '../worker/worker.js';
import { DEFAULT_WORKER_OPTIONS } from '../worker/options.js';

let db: TestDatabase;
let app: App;
let su: pg.Client;
let browser: TestBrowser;
/** Whether the browser's own Client Hints brand is "HeadlessChrome" (the headless shell of @sparticuz/chromium). */
let shellBrands = false;
let site: Server;
let api = '';
let siteOrigin = '';
let otherOrigin = '';
let tenant = '';
let secretKey = '';
/** What the test site's pages load: the key and its snippet options, per test. */
let current = { key: '', requireConsent: false, honorGpc: true, module: false };

/** A desktop Chrome, as a visitor's browser would say (headless Chromium says HeadlessChrome: a bot). */
const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

const CHROME_METADATA = {
  brands: [{ brand: 'Chromium', version: '131' }, { brand: 'Google Chrome', version: '131' }, { brand: 'Not_A Brand', version: '24' }],
  fullVersion: '131.0.0.0',
  platform: 'Linux',
  platformVersion: '',
  architecture: 'x86',
  model: '',
  mobile: false,
};

function pageHtml(path: string): string {
  const snippet = current.module
    ? `<script type="module">import skeldir from '${api}/sdk/v1/skeldir.mjs'; skeldir('init', '${current.key}', ${JSON.stringify({ requireConsent: current.requireConsent, honorGpc: current.honorGpc })});</script>`
    : snippetFor(api, current.key, { require_consent: current.requireConsent, honor_gpc: current.honorGpc });
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test shop ${path}</title>${snippet}</head>
<body><main><h1>Test shop</h1><p>${path}</p><a id="next" href="/product/2">next</a></main></body></html>`;
}

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ tenant_id: tenant, api_key: secretKey } = await createTenant(owner, { name: 'Shop', email: 'ops@shop.example' }));
  await owner.end();
  app = await buildApp({ db, config: loadConfig({}), logger: false, rateLimit: { max: 0 }, collectRateLimit: { perKey: 0, perAddress: 0 } });
  api = await app.listen({ port: 0, host: '127.0.0.1' });
  site = createServer((req, res) => {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(pageHtml(req.url ?? '/'));
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  const port = (site.address() as AddressInfo).port;
  siteOrigin = `http://127.0.0.1:${port}`;
  // The same server under another name: another origin, not allowed by the key.
  otherOrigin = `http://localhost:${port}`;
  su = await superClient(db);
  // The visitor's user agent for the whole browser: a context override would not cover the
  // beacons a page sends as it unloads, and HeadlessChrome is a bot to the collect endpoint.
  browser = await launchBrowser({ args: [`--user-agent=${CHROME}`] });
  // navigator.userAgentData exists in secure contexts only: an empty page of the site's origin (127.0.0.1).
  const probe = await browser.newContext();
  const probePage = await probe.newPage();
  await probePage.route('**/probe', (r) => r.fulfill({ contentType: 'text/html', body: '<!doctype html><title>probe</title>' }));
  await probePage.goto(`${siteOrigin}/probe`);
  shellBrands = await probePage.evaluate(`(navigator.userAgentData?.brands ?? []).some((b) => /Headless/.test(b.brand))`);
  await probe.close();
});
after(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (site ? site.close(() => resolve()) : resolve()));
  await su?.end();
  await app?.close();
  await db?.drop();
});

async function issueKey(settings: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/publishable-keys',
    headers: { authorization: `Bearer ${secretKey}` },
    payload: { name: 'test shop', allowed_origins: [siteOrigin], ...settings },
  });
  assert.equal(res.statusCode, 201, res.body);
  return res.json();
}

/** A visitor's browser: a new context (its own storage), not flagged as automated unless asked. */
async function visitor(options: { automated?: boolean; gpc?: boolean } = {}): Promise<BrowserContext> {
  const context = await browser.newContext();
  // A visitor's Client Hints too: the headless shell of @sparticuz/chromium sends the brand "HeadlessChrome" in
  // Sec-CH-UA whatever --user-agent says (Debian's chromium does not), and that brand is a bot to the collect
  // endpoint. Emulation.setUserAgentOverride with metadata replaces both for each page, before it loads anything.
  const newPage = context.newPage.bind(context);
  context.newPage = async () => {
    const page = await newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Emulation.setUserAgentOverride', { userAgent: CHROME, userAgentMetadata: CHROME_METADATA });
    return page;
  };
  if (!options.automated) await context.addInitScript(`Object.defineProperty(Navigator.prototype, 'webdriver', { get: () => false })`);
  if (options.gpc) await context.addInitScript(`Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true })`);
  return context;
}

/** Polls until `fn` returns something truthy (the tracker sends asynchronously). */
async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function touchesOf(keyId: string) {
  return (
    await su.query(
      `SELECT id, session_id, anonymous_id, channel, campaign_id, raw_payload, event_timestamp FROM attribution_events
        WHERE tenant_id = $1 AND raw_payload->>'publishable_key_id' = $2 ORDER BY event_timestamp, id`,
      [tenant, keyId],
    )
  ).rows;
}

async function settle(page: Page): Promise<void> {
  // The queue is empty once every request has been answered.
  await page.waitForFunction(`!localStorage.getItem('skd_q') || localStorage.getItem('skd_q') === '[]'`, undefined, { timeout: 15_000 }).catch(() => {});
}

async function storageOf(context: BrowserContext) {
  const state = await context.storageState();
  return { cookies: state.cookies, origins: state.origins.filter((o) => o.localStorage.length > 0) };
}

describe('the tracker in Chromium', () => {
  test('landing with UTM and click ids, browsing, identify: one touch per visit, enriched; a first-party id; the link', async () => {
    const k = await issueKey();
    current = { key: k.key, requireConsent: false, honorGpc: true, module: false };
    const context = await visitor();
    const page = await context.newPage();
    const requests: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/v1/collect')) requests.push(r.method());
    });
    await page.goto(`${siteOrigin}/landing?utm_source=google&utm_medium=cpc&utm_campaign=spring_sale&utm_content=ad_7&utm_term=red+shoes&gclid=Cj0KCQiA_test&email=jane%40doe.example`, {
      referer: 'https://www.google.com/search?q=red+shoes',
    });
    const [t1] = await until('the landing touch', async () => (await touchesOf(k.id)).length === 1 && touchesOf(k.id));
    await page.click('#next');
    await page.waitForURL('**/product/2');
    await page.goto(`${siteOrigin}/product/3`);
    await page.evaluate(`skeldir('identify', 'customer-1')`);
    const anonymousId = await page.evaluate<string>(`skeldir('anonymousId')`);
    const link = await until('the identity link', async () =>
      (await su.query(`SELECT * FROM identity_links WHERE tenant_id = $1 AND user_id = 'customer-1'`, [tenant])).rows[0],
    );
    await settle(page);
    assert.equal(link.anonymous_id, anonymousId);
    assert.equal(link.source, 'collect');
    const touches = await touchesOf(k.id);
    assert.equal(touches.length, 1, 'browsing inside the visit sends no touch');
    assert.equal(t1.channel, 'google_search_paid');
    assert.equal(t1.campaign_id, 'spring_sale');
    assert.equal(t1.anonymous_id, anonymousId);
    const stored = await page.evaluate<{ s: string }>(`JSON.parse(localStorage.getItem('skd'))`);
    assert.equal(t1.session_id, sessionUuid(stored.s));
    assert.equal(t1.raw_payload.utm_content, 'ad_7');
    assert.equal(t1.raw_payload.utm_term, 'red shoes');
    assert.equal(t1.raw_payload.gclid, 'Cj0KCQiA_test');
    assert.equal(t1.raw_payload.referrer, 'https://www.google.com');
    assert.equal(t1.raw_payload.device_class, 'desktop');
    assert.ok(!JSON.stringify(t1.raw_payload).includes('jane'), 'the e-mail address in the URL is not stored');
    assert.ok(t1.raw_payload.landing_url.startsWith(`${siteOrigin}/landing?utm_source=google`));
    // No cookie at all; the ids live in the site's localStorage.
    const storage = await storageOf(context);
    assert.deepEqual(storage.cookies, []);
    assert.deepEqual(storage.origins.map((o) => o.origin), [siteOrigin]);
    assert.ok(requests.every((m) => m === 'POST'), `text/plain bodies need no preflight: ${requests.join(',')}`);
    await context.close();
  });

  test('two devices, one person: a server-side conversion is credited to the channel and campaign of each device\'s landing; the second device, identified after the conversion, joins the journey', async () => {
    const k = await issueKey();
    current = { key: k.key, requireConsent: false, honorGpc: true, module: false };
    const worker = new Worker(db, { ...DEFAULT_WORKER_OPTIONS, concurrency: 1, pollMs: 50 });
    await worker.start();
    try {
      // Device 1 (a phone, say): lands from a Facebook ad, browses, signs in.
      const phone = await visitor();
      const p1 = await phone.newPage();
      await p1.goto(`${siteOrigin}/landing?utm_source=facebook&utm_medium=paid_social&utm_campaign=summer_fb&fbclid=IwAR_test_1`);
      await p1.click('#next');
      await p1.waitForURL('**/product/2');
      await p1.evaluate(`skeldir('identify', 'buyer-2d')`);
      const phoneId = await p1.evaluate<string>(`skeldir('anonymousId')`);
      await until('the phone\'s link', async () => (await su.query(`SELECT 1 FROM identity_links WHERE tenant_id = $1 AND user_id = 'buyer-2d' AND anonymous_id = $2`, [tenant, phoneId])).rowCount === 1);
      await settle(p1);

      // Device 2 (a laptop: a new browser context, its own storage) lands from a Google ad; the
      // person is not signed in there yet.
      const laptop = await visitor();
      const p2 = await laptop.newPage();
      await p2.goto(`${siteOrigin}/landing?utm_source=google&utm_medium=cpc&utm_campaign=brand_search&gclid=Cj0_test_2`, { referer: 'https://www.google.com/' });
      const laptopId = await p2.evaluate<string>(`skeldir('anonymousId')`);
      assert.notEqual(laptopId, phoneId, 'another device, another anonymous id');
      await until('the laptop\'s touch', async () => (await su.query(`SELECT 1 FROM attribution_events WHERE tenant_id = $1 AND anonymous_id = $2`, [tenant, laptopId])).rowCount === 1);
      await settle(p2);

      // The shop's server records the order with the secret key (conversions never come from the browser).
      const order = await app.inject({
        method: 'POST',
        url: '/api/v1/events',
        headers: { authorization: `Bearer ${secretKey}` },
        payload: {
          idempotency_key: `order-2d-${Date.now()}`,
          event_type: 'conversion',
          event_timestamp: new Date().toISOString(),
          session_id: 'server-checkout-2d',
          user_id: 'buyer-2d',
          channel: 'direct',
          conversion_value_cents: 12_345,
          currency: 'EUR',
          order_id: 'order-2d',
        },
      });
      assert.equal(order.statusCode, 201, order.body);
      const conversionId = order.json().id as string;
      const credit = async (model: string) =>
        (
          await su.query(
            `SELECT channel_code, campaign_id, allocated_revenue_cents::int AS cents FROM attribution_allocations
              WHERE tenant_id = $1 AND event_id = $2 AND model_type = $3 ORDER BY channel_code`,
            [tenant, conversionId, model],
          )
        ).rows;
      await until('the worker\'s allocations', async () => (await credit('last_touch')).length > 0);
      assert.deepEqual(await credit('last_touch'), [{ channel_code: 'facebook_paid', campaign_id: 'summer_fb', cents: 12_345 }], 'the phone\'s landing: channel and campaign');
      assert.deepEqual(await credit('linear'), [{ channel_code: 'facebook_paid', campaign_id: 'summer_fb', cents: 12_345 }], 'the laptop is nobody yet');

      // The person signs in on the laptop, after the order: the laptop joins the journey and the
      // conversion is re-attributed, once, by the identify the tracker sent.
      await p2.evaluate(`skeldir('identify', 'buyer-2d')`);
      await until('the laptop\'s link', async () => (await su.query(`SELECT 1 FROM identity_links WHERE tenant_id = $1 AND anonymous_id = $2`, [tenant, laptopId])).rowCount === 1);
      await settle(p2);
      const change = (await su.query(`SELECT source, publishable_key_id, conversions_recomputed FROM identity_changes WHERE tenant_id = $1 AND anonymous_id = $2`, [tenant, laptopId])).rows;
      assert.deepEqual(change, [{ source: 'collect', publishable_key_id: k.id, conversions_recomputed: 1 }]);
      assert.deepEqual(await credit('last_touch'), [{ channel_code: 'google_search_paid', campaign_id: 'brand_search', cents: 12_345 }], 'the laptop\'s landing came last');
      assert.deepEqual(await credit('first_touch'), [{ channel_code: 'facebook_paid', campaign_id: 'summer_fb', cents: 12_345 }]);
      assert.deepEqual(await credit('linear'), [
        { channel_code: 'facebook_paid', campaign_id: 'summer_fb', cents: 6_173 },
        { channel_code: 'google_search_paid', campaign_id: 'brand_search', cents: 6_172 },
      ]);
      await phone.close();
      await laptop.close();
    } finally {
      await worker.stop();
    }
  });

  test('a new campaign starts a new visit, and so does coming back after 30 minutes idle; a return within it does not', async () => {
    const k = await issueKey();
    current = { key: k.key, requireConsent: false, honorGpc: true, module: false };
    const context = await visitor();
    const page = await context.newPage();
    await page.goto(`${siteOrigin}/a?utm_source=newsletter&utm_medium=email&utm_campaign=march`);
    await until('touch 1', async () => (await touchesOf(k.id)).length === 1);
    await page.goto(`${siteOrigin}/b`);
    await page.goto(`${siteOrigin}/c?utm_source=facebook&utm_medium=paid_social&utm_campaign=retarget`);
    await until('touch 2', async () => (await touchesOf(k.id)).length === 2);
    // The same campaign again within the visit: no new visit.
    await page.goto(`${siteOrigin}/d?utm_source=facebook&utm_medium=paid_social&utm_campaign=retarget`);
    // 31 minutes without a page view (the last activity moved back), then a page: a new visit.
    await page.evaluate(`(() => { const st = JSON.parse(localStorage.getItem('skd')); st.t -= 31 * 60000; localStorage.setItem('skd', JSON.stringify(st)); })()`);
    await page.goto(`${siteOrigin}/e`);
    const touches = await until('touch 3', async () => {
      const t = await touchesOf(k.id);
      return t.length === 3 && t;
    });
    await settle(page);
    assert.deepEqual(touches.map((t) => t.channel), ['email', 'facebook_paid', 'direct']);
    assert.equal(new Set(touches.map((t) => t.session_id)).size, 3, 'three visits');
    assert.equal(new Set(touches.map((t) => t.anonymous_id)).size, 1, 'one browser');
    assert.equal((await touchesOf(k.id)).length, 3);
    await context.close();
  });

  test('offline: events wait in the queue and are sent when the browser is back online', async () => {
    const k = await issueKey();
    current = { key: k.key, requireConsent: false, honorGpc: true, module: false };
    const context = await visitor();
    const page = await context.newPage();
    await page.goto(`${siteOrigin}/landing?utm_source=google&utm_medium=cpc`);
    await until('the landing touch', async () => (await touchesOf(k.id)).length === 1);
    await settle(page);
    await context.setOffline(true);
    await page.evaluate(`skeldir('identify', 'customer-offline')`);
    await page.waitForFunction(`JSON.parse(localStorage.getItem('skd_q') || '[]').length === 1`);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await su.query(`SELECT count(*)::int AS n FROM identity_links WHERE user_id = 'customer-offline'`)).rows[0].n, 0);
    await context.setOffline(false);
    await until('the queued identify', async () => (await su.query(`SELECT count(*)::int AS n FROM identity_links WHERE user_id = 'customer-offline'`)).rows[0].n === 1);
    await settle(page);
    assert.equal(await page.evaluate<number>(`JSON.parse(localStorage.getItem('skd_q') || '[]').length`), 0);
    await context.close();
  });

  test('a page on an origin the key does not allow: refused (CORS and 403), nothing stored; the key on another route: refused', async () => {
    const k = await issueKey();
    current = { key: k.key, requireConsent: false, honorGpc: true, module: false };
    const context = await visitor();
    const page = await context.newPage();
    const outcomes: string[] = [];
    page.on('requestfinished', (r) => void (r.url().includes('/api/v1/collect') && outcomes.push('finished')));
    page.on('requestfailed', (r) => void (r.url().includes('/api/v1/collect') && outcomes.push(`failed ${r.failure()?.errorText}`)));
    await page.goto(`${otherOrigin}/landing?utm_source=google&utm_medium=cpc`);
    await until('the refused request', async () => outcomes.length > 0);
    assert.ok(outcomes.every((o) => o.startsWith('failed')), `the browser saw a refusal it may not read: ${outcomes.join(', ')}`);
    // The page cannot read the answer either: the browser blocks it (no Access-Control-Allow-Origin).
    const direct = await page.evaluate<string>(
      `fetch(${JSON.stringify(`${api}/api/v1/collect?key=${k.key}`)}, { method: 'POST', body: '{"events":[]}', headers: { 'content-type': 'text/plain' } }).then((r) => 'status ' + r.status, (e) => 'blocked: ' + e)`,
    );
    assert.match(direct, /^blocked/);
    // From an allowed page, the publishable key on a route that reads data is refused.
    const allowed = await context.newPage();
    await allowed.goto(`${siteOrigin}/p`);
    const read = await allowed.evaluate<string>(
      `fetch(${JSON.stringify(`${api}/api/v1/tenant`)}, { headers: { authorization: ${JSON.stringify(`Bearer ${k.key}`)} } }).then((r) => 'status ' + r.status, (e) => 'blocked: ' + e)`,
    );
    assert.match(read, /^blocked/, 'no CORS on API routes: a page cannot even send it readably');
    const server = await app.inject({ method: 'GET', url: '/api/v1/tenant', headers: { authorization: `Bearer ${k.key}`, origin: siteOrigin } });
    assert.equal(server.statusCode, 401);
    const landed = await touchesOf(k.id);
    assert.equal(landed.filter((t) => t.raw_payload.landing_url.startsWith(otherOrigin)).length, 0, 'nothing from the other origin');
    await context.close();
  });

  test('consent required and not given: nothing in cookies or storage, no identifier sent; consent(true) starts them', async () => {
    const k = await issueKey({ require_consent: true });
    current = { key: k.key, requireConsent: true, honorGpc: true, module: false };
    const context = await visitor();
    const page = await context.newPage();
    const bodies: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/v1/collect')) bodies.push(r.postData() ?? '');
    });
    await page.goto(`${siteOrigin}/landing?utm_source=google&utm_medium=cpc&utm_campaign=c1`, { referer: 'https://www.google.com/' });
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(bodies, [], 'the landing touch waits for an answer');
    await page.goto(`${siteOrigin}/product/2`);
    await page.evaluate(`skeldir('identify', 'customer-no-consent')`);
    // The landing touch waits for the answer; leaving the page without one sends it anonymously.
    await page.goto(`${siteOrigin}/product/3`);
    await page.evaluate(`skeldir('consent', false)`);
    if (shellBrands) {
      // The headless shell's beacons sent as a page goes away carry the browser's own Sec-CH-UA brand
      // "HeadlessChrome" (no per-page override reaches them): the endpoint counts them as bot hits and stores
      // nothing. What is checked here then: the beacon went when the page was left. Debian's chromium (a system
      // one) runs the full check below.
      await until('the unload beacon, counted', async () => {
        await app.collectCounter.flush();
        return Number((await su.query(`SELECT coalesce(sum(bots), 0) AS n FROM collect_daily_counts WHERE key_id = $1`, [k.id])).rows[0].n) >= 1;
      });
    } else await until('the anonymous touches', async () => (await touchesOf(k.id)).length >= 1);
    const storage = await storageOf(context);
    assert.deepEqual(storage, { cookies: [], origins: [] }, 'nothing written on the device');
    assert.deepEqual(await page.evaluate(`[document.cookie, localStorage.length, sessionStorage.length]`), ['', 0, 0]);
    for (const t of await touchesOf(k.id)) assert.equal(t.anonymous_id, null);
    for (const b of bodies) assert.ok(!/anonymous_id|session_id|user_id/.test(b), `no identifier sent: ${b}`);
    assert.equal((await su.query(`SELECT count(*)::int AS n FROM identity_links WHERE user_id = 'customer-no-consent'`)).rows[0].n, 0);
    // The visitor says yes: a visit starts, with its ids, stored on the device.
    await page.evaluate(`skeldir('consent', true)`);
    await until('a touch with an anonymous id', async () => (await touchesOf(k.id)).some((t) => t.anonymous_id !== null));
    await settle(page);
    assert.ok(await page.evaluate(`JSON.parse(localStorage.getItem('skd')).a`));
    await context.close();
  });

  test('Global Privacy Control, honoured by the key: nothing stored on the device, no identifier, even with consent', async () => {
    const k = await issueKey();
    current = { key: k.key, requireConsent: false, honorGpc: true, module: false };
    const context = await visitor({ gpc: true });
    const page = await context.newPage();
    await page.goto(`${siteOrigin}/landing?utm_source=google&utm_medium=cpc`);
    await page.evaluate(`skeldir('consent', true)`);
    await page.evaluate(`skeldir('identify', 'customer-gpc')`);
    const [t] = await until('the touch', async () => (await touchesOf(k.id)).length === 1 && touchesOf(k.id));
    assert.equal(t.anonymous_id, null);
    assert.deepEqual(await storageOf(context), { cookies: [], origins: [] });
    assert.equal((await su.query(`SELECT count(*)::int AS n FROM identity_links WHERE user_id = 'customer-gpc'`)).rows[0].n, 0);
    await context.close();
  });

  test('an automated browser (navigator.webdriver) is counted as a bot and stored nowhere', async () => {
    const k = await issueKey();
    current = { key: k.key, requireConsent: false, honorGpc: true, module: false };
    const context = await visitor({ automated: true });
    const page = await context.newPage();
    assert.equal(await page.evaluate(`navigator.webdriver`), true);
    const answered: number[] = [];
    page.on('response', (r) => {
      if (r.url().includes('/api/v1/collect')) answered.push(r.status());
    });
    await page.goto(`${siteOrigin}/landing?utm_source=google&utm_medium=cpc`);
    await until('the answer', async () => answered.length > 0);
    assert.deepEqual(answered, [204]);
    await app.collectCounter.flush();
    const { rows } = await su.query(`SELECT bots, touches FROM collect_daily_counts WHERE key_id = $1`, [k.id]);
    assert.deepEqual(rows.map((r) => [Number(r.bots), Number(r.touches)]), [[1, 0]]);
    assert.equal((await touchesOf(k.id)).length, 0);
    await context.close();
  });

  test('as an ES module (import skeldir from …/skeldir.mjs)', async () => {
    const k = await issueKey();
    current = { key: k.key, requireConsent: false, honorGpc: true, module: true };
    const context = await visitor();
    const page = await context.newPage();
    await page.goto(`${siteOrigin}/landing?utm_source=tiktok&utm_medium=cpc&ttclid=E.C.P.1`);
    const [t] = await until('the touch', async () => (await touchesOf(k.id)).length === 1 && touchesOf(k.id));
    assert.equal(t.channel, 'tiktok_paid');
    assert.ok(t.anonymous_id);
    assert.equal(await page.evaluate(`typeof skeldir`), 'function');
    await context.close();
  });
});
