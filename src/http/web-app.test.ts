/**
 * The web app in a real Chromium (src/testing/browser.ts): sign-in, every page over seeded data
 * with its numbers checked against the API, remediation through the UI, roles, tenant isolation
 * by URL editing and by replaying another session's requests, CSRF, and axe-core on every page.
 * Screenshots of each page at 1280 px and phone width go to test-results/.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import type pg from 'pg';
import { loadConfig } from '../config.js';
import { createTenant } from '../tenants/tenants.js';
import { axeViolations, launchBrowser, PHONE, screenshot, seriousViolations, type TestBrowser } from '../testing/browser.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { seedTenant, type Seeded } from '../testing/web-seed.js';
import { TEST_SECRET_KEY } from '../webhooks/test-support.js';
import { inviteUser } from '../users/users.js';
import { channelName, count, money, platformName, ratio, roas } from '../../web/src/format.js';
import { buildApp, type App } from './app.js';
import { runModel } from '../attribution/run.js';
import { WEB_ROOT } from './web.js';

process.env.SKELDIR_SECRET_KEY = TEST_SECRET_KEY;
const PASSWORD = 'a long enough password';

let db: TestDatabase;
let su: pg.Client;
let app: App;
let base: string;
let browser: TestBrowser;
let A: { tenant_id: string; api_key: string };
let B: { tenant_id: string; api_key: string };
let seedA: Seeded;
let seedB: Seeded;
const web = loadConfig({}).web;

/**
 * The seed's Bayesian run covers the default period of the UTC day it is seeded on (web-seed.ts),
 * while period() and the pages take the day they run on: seeding and checking must fall on one
 * day. A start closer to midnight UTC than this waits until it has passed. (2026-12-07, whole
 * Citus suite at load 17-28: seeded at 23:5x, the Channels test ran after 00:00 and found no
 * interval; its tests took 2.5 minutes there, after a seed of its own.)
 */
const SAME_DAY_MARGIN_MS = 15 * 60_000;

before(async () => {
  if (!existsSync(`${WEB_ROOT}/index.html`)) throw new Error('the web app is not built: run npm run build (npm test does it)');
  const toMidnight = 86_400_000 - (Date.now() % 86_400_000);
  if (toMidnight < SAME_DAY_MARGIN_MS) {
    console.log(`# ${Math.ceil(toMidnight / 1000)} s to midnight UTC: waiting for it, so that the seed and the checks share one day`);
    await new Promise((r) => setTimeout(r, toMidnight + 1_000));
  }
  db = await createTestDatabase('head');
  su = await superClient(db);
  const owner = db.ownerPool({ max: 1 });
  A = await createTenant(owner, { name: 'Acme Outdoor', email: 'ops@acme.example' });
  B = await createTenant(owner, { name: 'Borealis Books', email: 'ops@borealis.example' });
  await owner.end();
  app = await buildApp({ db, config: loadConfig({ SKELDIR_RATE_LIMIT_PER_MINUTE: '0' }), logger: false });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  seedA = await seedTenant(app, db, A, { sessions: 60, seed: 7, label: 'acme', deadEvents: 3 });
  seedB = await seedTenant(app, db, B, { sessions: 20, seed: 9, label: 'borealis', deadEvents: 2 });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await app?.close();
  await su?.end();
  await db?.drop();
});

const apiGet = async (url: string, t = A) => {
  const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${t.api_key}` } });
  assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
  return res.json();
};

/** A browser context signed in as a new user of `tenant` with `role` (through the invitation page). */
async function signedIn(tenant: string, email: string, role: string, width = 1280): Promise<{ context: BrowserContext; page: Page }> {
  const invitation = await inviteUser(app.appPool, tenant, { email, role }, { ...web, publicUrl: base });
  const context = await browser.newContext({ baseURL: base, width, ...(width < 600 ? { height: PHONE.height } : {}) });
  const page = await context.newPage();
  await page.goto(invitation.invitation_url);
  await page.getByLabel('New password').fill(PASSWORD);
  await page.getByLabel('Repeat the password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Set password and sign in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  return { context, page };
}

async function settle(page: Page): Promise<void> {
  await page.waitForLoadState('networkidle');
  await page.locator('.loading').first().waitFor({ state: 'detached' }).catch(() => undefined);
}

const text = async (page: Page, testId: string) => (await page.getByTestId(testId).locator('.metric-value').textContent())?.trim();

/** The text of row `i`'s cell under the column headed `heading` in the page's first table. */
async function cell(page: Page, i: number, heading: string): Promise<string | undefined> {
  const headings = (await page.locator('table').first().locator('thead th').allTextContents()).map((h) => h.trim());
  const col = headings.indexOf(heading);
  assert.ok(col >= 0, `no column ${heading} in ${headings.join(', ')}`);
  return (await page.locator('table').first().locator('tbody tr').nth(i).locator('td').nth(col).textContent())?.trim();
}

/** Every table of the page fits its box at this width: nothing to scroll sideways to. */
async function tablesFit(page: Page): Promise<void> {
  const wide = await page.evaluate<string[]>(`[...document.querySelectorAll('.table-scroll')].filter((e) => e.scrollWidth > e.clientWidth).map((e) => e.getAttribute('aria-label') + ' ' + e.scrollWidth + ' > ' + e.clientWidth)`);
  assert.deepEqual(wide, [], 'tables scroll sideways');
}

function period() {
  const to = new Date();
  const day = to.toISOString().slice(0, 10);
  const from = new Date(Date.parse(`${day}T00:00:00Z`) - 29 * 86_400_000).toISOString();
  return { from, to: new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString() };
}
const q = () => new URLSearchParams(period()).toString();
/** The same period as the spend routes' days: [first day, the day after today). */
const days = () => new URLSearchParams({ from: period().from.slice(0, 10), to: period().to.slice(0, 10) }).toString();

describe('signing in', () => {
  test('invite → set password → signed in → sign out → sign in with the form → sign out', async () => {
    const { context, page } = await signedIn(A.tenant_id, 'lead@acme.example', 'owner');
    assert.ok(await page.getByText('lead@acme.example').isVisible());
    const cookie = (await context.cookies()).find((c) => c.name === 'skeldir_session')!;
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.equal((await su.query(`SELECT count(*)::int AS n FROM user_sessions WHERE revoked_at IS NULL AND user_id = (SELECT id FROM tenant_users WHERE email = 'lead@acme.example')`)).rows[0].n, 0);
    await page.getByLabel('E-mail').fill('lead@acme.example');
    await page.getByLabel('Password').fill('wrong password!!');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').getByText('Sign-in failed').waitFor();
    assert.match((await page.getByRole('alert').textContent())!, /the e-mail address or the password is wrong/);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.goto('/channels');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await context.close();
  });

  test('a used invitation link says so', async () => {
    const invitation = await inviteUser(app.appPool, A.tenant_id, { email: 'once@acme.example', role: 'viewer' }, { ...web, publicUrl: base });
    const context = await browser.newContext({ baseURL: base });
    const page = await context.newPage();
    for (const attempt of [0, 1]) {
      await page.goto(invitation.invitation_url);
      await page.getByLabel('New password').fill(PASSWORD);
      await page.getByLabel('Repeat the password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Set password and sign in' }).click();
      if (attempt === 0) {
        await page.getByRole('heading', { name: 'Overview' }).waitFor();
        await context.clearCookies();
      } else await page.getByRole('alert').getByText('The invitation link is not valid').waitFor();
    }
    await context.close();
  });
});

describe('every page, with its numbers from the API', () => {
  let owner: { context: BrowserContext; page: Page };
  let phone: { context: BrowserContext; page: Page };
  before(async () => {
    owner = await signedIn(A.tenant_id, 'owner@acme.example', 'owner');
    phone = await signedIn(A.tenant_id, 'phone@acme.example', 'admin', PHONE.width);
  });
  after(async () => {
    await owner.context.close();
    await phone.context.close();
  });

  /** Opens `path` at both widths, saves screenshots, and checks axe-core finds nothing serious. */
  async function visit(path: string, name: string, ready: (p: Page) => Promise<unknown>): Promise<Page> {
    for (const [who, width] of [[phone, 'phone'], [owner, 'desktop']] as const) {
      await who.page.goto(path);
      await ready(who.page);
      await settle(who.page);
      for (const chart of await who.page.locator('.chart').all()) await chart.locator('svg').waitFor();
      await screenshot(who.page, `${name}-${width}`);
      // Nothing sticks out sideways (wide tables scroll inside their own box; an SVG clips its content).
      const overflow = await who.page.evaluate<string[]>(
        `(() => { const w = document.documentElement.clientWidth; return [...document.querySelectorAll('body *')].filter((e) => !e.closest('.table-scroll') && !e.closest('svg') && e.getBoundingClientRect().right > w + 1).slice(0, 5).map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)); })()`,
      );
      assert.deepEqual(overflow, [], `${name} at ${width} overflows the viewport`);
      // No two labels of a chart overlap (axis labels at phone width were drawn over each other).
      // The lines of one wrapped label are separate <text> elements whose boxes (ascent to descent) overlap by a few
      // pixels: an overlap counts from a third of a line's height.
      const overlaps = await who.page.evaluate<string[]>(
        `(() => { const out = []; for (const svg of document.querySelectorAll('.chart svg')) { const boxes = [...svg.querySelectorAll('text')].filter((t) => t.textContent.trim() && getComputedStyle(t).opacity !== '0').map((t) => [t.textContent, t.getBoundingClientRect()]).filter(([, r]) => r.width > 0); for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) { const [a, r] = boxes[i], [b, q] = boxes[j]; const w = Math.min(r.right, q.right) - Math.max(r.left, q.left), h = Math.min(r.bottom, q.bottom) - Math.max(r.top, q.top); if (w > 1 && h > 0.35 * Math.min(r.height, q.height)) out.push(a + ' / ' + b); } } return out.slice(0, 5); })()`,
      );
      assert.deepEqual(overlaps, [], `${name} at ${width}: chart labels overlap`);
      // Every chart's value axis starts at 0 (bars, ECharts' default) and says so: at phone width, five split
      // lines made hideOverlap drop every other label, the 0 first.
      const noZero = await who.page.evaluate<number[]>(
        `(() => [...document.querySelectorAll('.chart svg')].map((svg, i) => [i, [...svg.querySelectorAll('text')].filter((t) => getComputedStyle(t).opacity !== '0' && t.getBoundingClientRect().width > 0).map((t) => t.textContent.trim())]).filter(([, texts]) => texts.some((t) => /^[0-9][0-9,.]*$/.test(t)) && !texts.includes('0')).map(([i]) => i))()`,
      );
      assert.deepEqual(noZero, [], `${name} at ${width}: a chart's value axis shows no 0 label`);
      const serious = seriousViolations(await axeViolations(who.page));
      assert.deepEqual(serious, [], `${name} at ${width}: ${serious.join('\n')}`);
    }
    return owner.page;
  }

  test('Overview: claimed, verified, gap and conversions are the reconciliation totals', async () => {
    const r = await apiGet(`/api/v1/reconciliation?${q()}`);
    assert.ok(r.total.conversions > 10);
    const page = await visit('/', 'overview', (p) => p.getByTestId('claimed').waitFor());
    assert.equal(await text(page, 'claimed'), money(r.total.claimed_cents, r.currency));
    assert.equal(await text(page, 'verified'), money(r.total.verified_cents, r.currency));
    assert.equal(await text(page, 'gap'), money(r.total.gap_cents, r.currency));
    assert.equal(await text(page, 'conversions'), count(r.total.conversions));
    await page.locator('.chart[data-ready=true] svg').waitFor(); // ECharts is loaded on demand
    assert.equal(await page.locator('.chart svg').count(), 1, 'the trend chart is drawn');
    assert.equal(await page.getByRole('table').locator('tbody tr').count(), r.days.length);
    // Spend and ROAS: the spend summary of the same days, against the reconciliation's revenue.
    const s = await apiGet(`/api/v1/spend/summary?${days()}&group_by=channel`);
    assert.ok(s.total_spend_cents > 0);
    assert.equal(await text(page, 'spend'), money(s.total_spend_cents, s.currency));
    assert.equal(await text(page, 'roas'), roas(r.total.verified_cents, s.total_spend_cents));
    assert.equal(await text(page, 'roas-claimed'), roas(r.total.claimed_cents, s.total_spend_cents));
  });

  test('Channels: each row is the channel report of the chosen model; the model picker changes it; the table fits 1280 px', async () => {
    const spend = await apiGet(`/api/v1/spend/summary?${days()}&group_by=channel`);
    for (const model of ['last_touch', 'linear']) {
      const r = await apiGet(`/api/v1/attribution/channels?model=${model}&${q()}`);
      assert.ok(r.channels.length >= 3);
      const page = await visit(`/channels?model=${model}`, `channels-${model}`, (p) => p.locator('table tbody tr').first().waitFor());
      await tablesFit(page); // Spend and ROAS used to be off-screen at 1280 px
      const rows = page.locator('table tbody tr');
      assert.equal(await rows.count(), r.channels.length);
      for (const [i, c] of r.channels.entries()) {
        assert.equal(await cell(page, i, 'Channel'), channelName(c.channel));
        assert.equal(await cell(page, i, 'Attributed'), money(c.attributed_cents, c.currency));
        const spent = spend.lines.find((l: { key: { channel: string } }) => l.key.channel === c.channel);
        const verified = r.verified.channels.find((v: { channel: string }) => v.channel === c.channel)?.verified_cents ?? 0;
        assert.equal(await cell(page, i, 'Verified'), money(verified, c.currency), `verified of ${c.channel}`);
        assert.equal(await cell(page, i, 'Spend'), spent ? money(spent.spend_cents, spend.currency) : '—', `spend of ${c.channel}`);
        assert.equal(await cell(page, i, 'ROAS (verified)'), spent ? roas(verified, spent.spend_cents) : '—', `ROAS of ${c.channel}`);
      }
    }
    // The seed's Bayesian run covers exactly the default period: each line's interval is its total's, drawn as error bars.
    const bayes = await apiGet(`/api/v1/attribution/channels?model=bayesian&${q()}`);
    assert.ok(bayes.channels.length > 0 && bayes.channels.every((c: { total_interval: unknown }) => c.total_interval), 'the seeded bayesian run gives every line an interval');
    const bp = await visit('/channels?model=bayesian', 'channels-bayesian', (p) => p.locator('table tbody tr').first().waitFor());
    await tablesFit(bp);
    for (const [i, c] of bayes.channels.entries()) {
      assert.equal(await cell(bp, i, 'Interval of the total (94 %)'), `${money(c.total_interval.lower_cents, c.currency)} – ${money(c.total_interval.upper_cents, c.currency)}`);
    }
    assert.ok(await bp.getByText('94 % interval').first().isVisible(), 'the error bars have a legend entry');
    assert.match((await bp.getByTestId('interval-note').textContent()) ?? '', /^Interval of each channel's total: central 94 % interval of each total, over the posterior draws of run /);
    // A period no run has as its window: no interval of the totals, and the page says why.
    const shifted = { from: period().from.slice(0, 10), to: new Date(Date.parse(period().to) - 2 * 86_400_000).toISOString().slice(0, 10) };
    const other = await apiGet(`/api/v1/attribution/channels?model=bayesian&${new URLSearchParams({ from: `${shifted.from}T00:00:00Z`, to: new Date(Date.parse(`${shifted.to}T00:00:00Z`) + 86_400_000).toISOString() }).toString()}`);
    assert.ok(other.channels.length > 0 && other.channels.every((c: { total_interval: unknown }) => c.total_interval === null));
    const np = owner.page;
    await np.goto(`/channels?model=bayesian&from=${shifted.from}&to=${shifted.to}`);
    await np.locator('table tbody tr').first().waitFor();
    await settle(np);
    assert.equal(await cell(np, 0, 'Interval of the total (94 %)'), '—');
    assert.match((await np.getByTestId('interval-note').textContent()) ?? '', /No interval of the totals/);
    // A markov run over exactly the page's period: the interval column and the error bars are its totals' intervals.
    const { from, to } = period();
    const pool = db.appPool({ max: 1 });
    await runModel(pool, A.tenant_id, { model: 'markov', from: new Date(from), to: new Date(to), trigger: 'cli', markov: { bootstrap: 100 } }).finally(() => pool.end());
    const markov = await apiGet(`/api/v1/attribution/channels?model=markov&${q()}`);
    assert.ok(markov.channels.length > 0 && markov.channels.every((c: { total_interval: unknown }) => c.total_interval));
    const mp = await visit('/channels?model=markov', 'channels-markov', (p) => p.locator('table tbody tr').first().waitFor());
    await tablesFit(mp);
    const first = markov.channels[0];
    assert.equal(await cell(mp, 0, 'Interval of the total (94 %)'), `${money(first.total_interval.lower_cents, first.currency)} – ${money(first.total_interval.upper_cents, first.currency)}`);
    assert.ok(await mp.getByText('94 % interval').first().isVisible(), 'the error bars have a legend entry');
    const page = owner.page;
    // The picker's fetch of the new model is awaited before the table is read: right after the URL changes the page
    // can still be between tables (a CI run read an empty header row there).
    const loaded = page.waitForResponse((res) => res.url().includes('/api/v1/attribution/channels') && res.url().includes('model=first_touch'));
    await page.getByLabel('Model').selectOption('first_touch');
    await page.waitForURL(/model=first_touch/);
    await loaded;
    await settle(page);
    await page.locator('table tbody tr').first().waitFor();
    const r = await apiGet(`/api/v1/attribution/channels?model=first_touch&${q()}`);
    assert.equal(await cell(page, 0, 'Attributed'), money(r.channels[0].attributed_cents, r.channels[0].currency));
  });

  test("Campaigns: a channel's row opens its campaigns with the performance report's spend, revenue, ROAS and CPA of each", async () => {
    const r = await apiGet(`/api/v1/performance?${days()}&model=last_touch&group_by=campaign`);
    const mine = r.lines.filter((l: { key: { channel: string } }) => l.key.channel === 'google_search_paid');
    assert.ok(mine.length >= 3, 'three campaigns with spend');
    assert.ok(mine.some((l: { attributed_cents: number; spend_cents: number }) => l.attributed_cents > 0 && l.spend_cents > 0), 'a campaign with both revenue and spend');
    const page = owner.page;
    await page.goto('/channels?model=last_touch');
    await page.getByRole('link', { name: `${channelName('google_search_paid')}: campaigns` }).click();
    await page.waitForURL(/\/campaigns\?channel=google_search_paid/);
    await visit(page.url().replace(base, ''), 'campaigns', (p) => p.locator('table tbody tr').first().waitFor());
    await tablesFit(page);
    assert.equal(await page.locator('table tbody tr').count(), mine.length);
    for (const [i, l] of mine.entries()) {
      assert.equal(await cell(page, i, 'Campaign'), l.key.campaign_name ?? l.key.campaign_id ?? '(no campaign)');
      assert.equal(await cell(page, i, 'Platform'), l.key.platform ? platformName(l.key.platform) : '—');
      assert.equal(await cell(page, i, 'Spend'), money(l.spend_cents, r.currency));
      assert.equal(await cell(page, i, 'Claimed'), money(l.attributed_cents, r.currency));
      assert.equal(await cell(page, i, 'Verified'), money(l.verified_cents, r.currency));
      assert.equal(await cell(page, i, 'ROAS (verified)'), ratio(l.roas.verified));
      assert.equal(await cell(page, i, 'ROAS (claimed)'), ratio(l.roas.claimed));
      assert.equal(await cell(page, i, 'CPA'), money(l.cpa_cents, r.currency));
    }
    // A rule model has no interval: no column of dashes, no interval note.
    const lastTouchHeadings = (await page.locator('table thead th').allTextContents()).map((h) => h.trim());
    assert.ok(!lastTouchHeadings.includes('Claimed ROAS interval (94 %)'), lastTouchHeadings.join(', '));
    assert.equal(await page.getByTestId('interval-note').count(), 0);
    const sum = (f: (l: { spend_cents: number; verified_cents: number; attributed_cents: number }) => number) => mine.reduce((a: number, l: Parameters<typeof f>[0]) => a + f(l), 0);
    assert.equal(await text(page, 'campaign-spend'), money(sum((l) => l.spend_cents), r.currency));
    assert.equal(await text(page, 'campaign-claimed'), money(sum((l) => l.attributed_cents), r.currency));
    assert.equal(await text(page, 'campaign-verified'), money(sum((l) => l.verified_cents), r.currency));
    // A Bayesian run over the period gives the claimed ROAS its interval (total interval / spend).
    await page.goto(`/campaigns?channel=google_search_paid&model=bayesian`);
    await page.locator('table tbody tr').first().waitFor();
    await settle(page);
    const b = await apiGet(`/api/v1/performance?${days()}&model=bayesian&group_by=campaign`);
    const withInterval = b.lines.filter((l: { key: { channel: string } }) => l.key.channel === 'google_search_paid');
    for (const [i, l] of withInterval.entries()) {
      assert.equal(await cell(page, i, 'Claimed ROAS interval (94 %)'), l.roas_interval ? `${ratio(l.roas_interval.lower)} – ${ratio(l.roas_interval.upper)}` : '—');
    }
    const note = (await page.getByTestId('interval-note').textContent()) ?? '';
    assert.match(note, withInterval.some((l: { roas_interval: unknown }) => l.roas_interval) ? /^Interval of each campaign's claimed ROAS: \S/ : /^No interval of the totals for this period: \S/);
  });

  test('Model comparison: every model column matches the comparison report', async () => {
    const r = await apiGet(`/api/v1/attribution/comparison?${q()}`);
    const page = await visit('/models', 'models', (p) => p.locator('table tbody tr').first().waitFor());
    const headers = (await page.locator('table thead th').allTextContents()).map((h) => h.trim());
    const rows = page.locator('table tbody tr');
    assert.equal(await rows.count(), r.channels.length);
    const first = r.channels[0];
    for (const [model, v] of Object.entries(first.models) as [string, { attributed_cents: number }][]) {
      const col = headers.findIndex((h) => h.toLowerCase().startsWith(model.replace('_', ' ').slice(0, 5)));
      assert.ok(col > 0, `a column for ${model}: ${headers.join('|')}`);
      assert.equal((await rows.first().locator('td').nth(col).textContent())?.trim(), money(v.attributed_cents, first.currency));
    }
    // The chart's height follows its own width, also after a resize: 360 px wide, 420 px at phone width (where the
    // legend wraps onto rows); it used to keep the height of the window the page was opened in.
    const height = () => page.locator('.chart').evaluate((e) => (e as HTMLElement).style.height);
    assert.equal(await height(), '360px');
    const size = page.viewportSize()!;
    await page.setViewportSize({ width: PHONE.width, height: size.height });
    await page.waitForFunction(() => (document.querySelector('.chart') as HTMLElement).style.height === '420px', undefined, { timeout: 10_000 });
    await page.setViewportSize(size);
    await page.waitForFunction(() => (document.querySelector('.chart') as HTMLElement).style.height === '360px', undefined, { timeout: 10_000 });
  });

  test('Conversion paths: the most common paths with their conversions', async () => {
    const r = await apiGet(`/api/v1/reports/paths?${q()}&limit=50`);
    assert.ok(r.paths.length > 3);
    // Every conversion of the period is on one path (the same conversions the reconciliation counts).
    const rec = await apiGet(`/api/v1/reconciliation?${q()}`);
    assert.equal(r.paths.reduce((s: number, p: { conversions: number }) => s + p.conversions, 0), rec.total.conversions);
    const page = await visit('/paths', 'paths', (p) => p.locator('table tbody tr').first().waitFor());
    const rows = page.locator('table tbody tr');
    assert.equal(await rows.count(), r.paths.length);
    assert.equal((await rows.first().locator('td').nth(1).textContent())?.trim(), count(r.paths[0].conversions));
    assert.deepEqual(
      (await rows.first().locator('ol.path li').allTextContents()).map((t) => t.trim()),
      r.paths[0].path.map(channelName),
    );
  });

  test('Reconciliation: totals, unmatched ledger revenue, per channel and per day', async () => {
    const r = await apiGet(`/api/v1/reconciliation?${q()}`);
    const page = await visit('/reconciliation', 'reconciliation', (p) => p.getByTestId('rec-claimed').waitFor());
    assert.equal(await text(page, 'rec-verified'), money(r.total.verified_cents, r.currency));
    assert.equal(await text(page, 'rec-unmatched'), money(r.total.unmatched_ledger_cents, r.currency));
    const tables = page.getByRole('table');
    assert.equal(await tables.nth(0).locator('tbody tr').count(), r.channels.length);
    assert.equal(await tables.nth(1).locator('tbody tr').count(), r.days.length);
  });

  test('Transactions: a payment found by its provider id, with its state timeline', async () => {
    const id = seedA.transactions[0]!;
    const t = await apiGet(`/api/v1/revenue/transactions/${id}`);
    const page = await visit(`/transactions?id=${id}`, 'transactions', (p) => p.getByTestId('tx-state').waitFor());
    assert.equal(await text(page, 'tx-state'), t.state);
    assert.equal(await text(page, 'tx-net'), money(t.net_cents, t.currency));
    assert.equal(await page.locator('ol.timeline li').count(), t.transitions.length);
    // Searching from the form.
    await page.getByLabel('Provider transaction id').fill(seedA.transactions[1]!);
    await page.getByRole('button', { name: 'Find' }).click();
    await page.waitForURL(new RegExp(`id=${seedA.transactions[1]}`));
    await settle(page);
    const u = await apiGet(`/api/v1/revenue/transactions/${seedA.transactions[1]}`);
    assert.equal(await text(page, 'tx-amount'), money(u.amount_cents, u.currency));
  });

  test('Dead events: the list, worker health, one opened; Settings: models and users', async () => {
    const list = await apiGet('/api/v1/dead-events?status=pending,in_progress');
    const page = await visit('/dead-events', 'dead-events', (p) => p.locator('table tbody tr').first().waitFor());
    assert.equal(await page.locator('table tbody tr').count(), list.items.length);
    const health = await apiGet('/api/v1/worker/health');
    assert.equal(await text(page, 'queue'), count(health.pending));
    await visit(`/dead-events?open=${seedA.deadEvents[0]}`, 'dead-event-open', (p) => p.getByTestId('detail-status').waitFor());
    assert.match((await page.locator('.detail').textContent())!, /fx_rate_missing/);
    const settings = await apiGet('/api/v1/attribution/settings');
    await visit('/settings', 'settings', (p) => p.getByLabel('Lookback window (days, 1–365)').waitFor());
    assert.equal(await page.getByLabel('Lookback window (days, 1–365)').inputValue(), String(settings.lookback_days));
    const users = await apiGet('/api/v1/users');
    assert.equal(await page.getByRole('region', { name: 'Users', exact: true }).locator('tbody tr').count(), users.items.length);
  });
});

describe('changing things', () => {
  test('a dead-event retry made in the UI changes the database, with the user and the note recorded', async () => {
    const { context, page } = await signedIn(A.tenant_id, 'fixer@acme.example', 'admin');
    const id = seedA.deadEvents[1]!;
    await page.goto(`/dead-events?open=${id}`);
    await page.getByLabel('Note for this action (optional)').fill('rate imported');
    await page.getByRole('button', { name: 'Retry' }).click();
    await page.getByRole('status').getByText('Retry: now in progress').waitFor();
    const row = (await su.query(`SELECT d.remediation_status, d.remediation_notes, e.processing_status FROM dead_events d JOIN attribution_events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id WHERE d.id = $1`, [id])).rows[0];
    assert.equal(row.remediation_status, 'in_progress');
    assert.equal(row.processing_status, 'pending');
    assert.match(row.remediation_notes, /fixer@acme\.example: retry: rate imported/);
    await context.close();
  });

  test('a spend file uploaded in Settings is imported: its rows are in the API, a bad file shows the problem and imports nothing', async () => {
    const { context, page } = await signedIn(A.tenant_id, 'marketer@acme.example', 'admin');
    await page.goto('/settings');
    const form = page.getByRole('form', { name: 'Spend import' });
    await form.getByLabel('Platform').selectOption('google_ads');
    await form.getByLabel('Spend file (CSV)').setInputFiles(join(import.meta.dirname, '..', '..', 'examples', 'google-ads-campaign-report.csv'));
    await form.getByRole('button', { name: 'Import spend' }).click();
    await page.getByTestId('spend-imported').waitFor();
    const rows = (await apiGet('/api/v1/spend?from=2026-01-01&to=2026-01-04&platform=google_ads&limit=1000')).rows;
    assert.ok(rows.length >= 6);
    assert.ok(rows.every((r: { source_file: string }) => r.source_file === 'google-ads-campaign-report.csv'));
    assert.match((await page.getByTestId('spend-imported').textContent())!, new RegExp(`${rows.length} rows \\(${rows.length} new`));
    // A file with a bad line: the problem's title and detail, nothing written.
    const bad = readFileSync(join(import.meta.dirname, '..', '..', 'examples', 'google-ads-campaign-report.csv'), 'utf8').replace('"1,198.00"', 'lots');
    await form.getByLabel('Spend file (CSV)').setInputFiles({ name: 'bad.csv', mimeType: 'text/csv', buffer: Buffer.from(bad) });
    await form.getByRole('button', { name: 'Import spend' }).click();
    await form.getByRole('alert').getByText('The spend file is not valid').waitFor();
    assert.match((await form.getByRole('alert').textContent())!, /line 7/);
    assert.equal((await su.query(`SELECT count(*)::int AS n FROM ad_spend WHERE tenant_id = $1 AND source_file = 'bad.csv'`, [A.tenant_id])).rows[0].n, 0);
    await context.close();
  });

  test('a viewer is not offered admin controls, and is refused (403) when it sends the request anyway', async () => {
    const { context, page } = await signedIn(A.tenant_id, 'viewer@acme.example', 'viewer');
    const id = seedA.deadEvents[2]!;
    await page.goto(`/dead-events?open=${id}`);
    await page.getByTestId('detail-status').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Retry' }).count(), 0);
    assert.ok(await page.getByText('an admin or owner can retry').isVisible());
    await page.goto('/settings');
    await page.getByLabel('Lookback window (days, 1–365)').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Save attribution settings' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Import spend' }).count(), 0, 'no spend import for a viewer');
    assert.ok(await page.getByLabel('Lookback window (days, 1–365)').isDisabled());
    const refused = await page.evaluate<{ status: number; code: string }, string>(async (deadId) => {
      const session = (await (await fetch('/api/v1/auth/session')).json()) as { csrf_token: string };
      const res = await fetch(`/api/v1/dead-events/${deadId}/retry`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrf_token }, body: '{}' });
      return { status: res.status, code: ((await res.json()) as { code: string }).code };
    }, id);
    assert.deepEqual(refused, { status: 403, code: 'forbidden' });
    assert.equal((await su.query(`SELECT remediation_status FROM dead_events WHERE id = $1`, [id])).rows[0].remediation_status, 'pending');
    await context.close();
  });

  test('CSRF: a state-changing request with the cookie but without the token is refused and changes nothing', async () => {
    const { context, page } = await signedIn(A.tenant_id, 'csrf@acme.example', 'admin');
    const id = seedA.deadEvents[2]!;
    const refused = await page.evaluate<{ status: number; code: string }, string>(async (deadId) => {
      const res = await fetch(`/api/v1/dead-events/${deadId}/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      return { status: res.status, code: ((await res.json()) as { code: string }).code };
    }, id);
    assert.deepEqual(refused, { status: 403, code: 'csrf_failed' });
    assert.equal((await su.query(`SELECT remediation_status FROM dead_events WHERE id = $1`, [id])).rows[0].remediation_status, 'pending');
    await context.close();
  });
});

describe('tenant A never sees tenant B', () => {
  test("by editing URLs: B's transaction and dead event answer as missing ones; no page shows B's data", async () => {
    const { context, page } = await signedIn(A.tenant_id, 'curious@acme.example', 'owner');
    await page.goto(`/transactions?id=${seedB.transactions[0]}`);
    await page.getByRole('alert').waitFor();
    assert.match((await page.getByRole('alert').textContent())!, /No such transaction/);
    await page.goto(`/dead-events?open=${seedB.deadEvents[0]}`);
    await page.locator('.detail [role=alert]').waitFor();
    assert.match((await page.locator('.detail [role=alert]').textContent())!, /No such dead event/);
    for (const path of ['/', '/channels', '/paths', '/reconciliation', '/dead-events', '/settings']) {
      await page.goto(path);
      await settle(page);
      const html = await page.content();
      assert.ok(!html.includes('borealis') && !html.includes(B.tenant_id), `${path} shows B's data`);
    }
    await context.close();
  });

  test("by replaying another session's requests: B's request replayed with A's cookie is refused; A's own token cannot act on B's rows", async () => {
    const a = await signedIn(A.tenant_id, 'replay-a@acme.example', 'admin');
    const b = await signedIn(B.tenant_id, 'replay-b@borealis.example', 'admin');
    // B's browser makes a request; we capture it as sent.
    const captured = new Promise<{ url: string; headers: Record<string, string>; body: string | null }>((resolve) =>
      b.page.on('request', (r) => r.method() === 'POST' && r.url().includes('/dead-events/') && resolve({ url: r.url(), headers: r.headers(), body: r.postData() })),
    );
    await b.page.goto(`/dead-events?open=${seedB.deadEvents[1]}`);
    await b.page.getByRole('button', { name: 'Start' }).click();
    const request = await captured;
    await b.page.getByRole('status').getByText('Start: now in progress').waitFor();
    // Replayed from A's browser (A's cookie, B's CSRF token): refused.
    const replayed = await a.page.evaluate<{ status: number; code: string }, { url: string; csrf: string }>(async ({ url, csrf }) => {
      const res = await fetch(url.replace('/start', '/reopen'), { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf }, body: '{}' });
      return { status: res.status, code: ((await res.json()) as { code: string }).code };
    }, { url: request.url, csrf: request.headers['x-csrf-token']! });
    assert.deepEqual(replayed, { status: 403, code: 'csrf_failed' });
    // With A's own token: B's dead event does not exist for A.
    const own = await a.page.evaluate<{ status: number; code: string }, string>(async (url) => {
      const session = (await (await fetch('/api/v1/auth/session')).json()) as { csrf_token: string };
      const res = await fetch(url.replace('/start', '/reopen'), { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrf_token }, body: '{}' });
      return { status: res.status, code: ((await res.json()) as { code: string }).code };
    }, request.url);
    assert.deepEqual(own, { status: 404, code: 'dead_event_not_found' });
    assert.equal((await su.query(`SELECT remediation_status FROM dead_events WHERE id = $1`, [seedB.deadEvents[1]])).rows[0].remediation_status, 'in_progress');
    await a.context.close();
    await b.context.close();
  });
});

describe('a period the retention rule pruned', () => {
  test("every report page shows the API's note on it (figures from aggregates, or days left out); none without one", async () => {
    const { context, page } = await signedIn(A.tenant_id, 'retention@acme.example', 'viewer');
    const day = new Date(Date.now() - 10 * 86_400_000).toISOString().slice(0, 10);
    // What retention leaves when it deletes a day's events: its allocations folded into a daily aggregate.
    await su.query(
      `INSERT INTO allocation_daily_aggregates (tenant_id, day, model_type, channel_code, currency, allocated_revenue_cents, attributed_conversions, conversions, allocations, confidence_sum, updated_at)
       VALUES ($1, $2, 'last_touch', 'email', 'USD', 12345, 3, 3, 3, 2.4, now())`,
      [A.tenant_id, day],
    );
    try {
      for (const [path, url, field] of [
        ['/', `/api/v1/reconciliation?${q()}`, 'pruned'],
        ['/reconciliation', `/api/v1/reconciliation?${q()}`, 'pruned'],
        ['/paths', `/api/v1/reports/paths?${q()}&limit=50`, 'pruned'],
        ['/channels', `/api/v1/attribution/channels?model=last_touch&${q()}`, 'from_aggregates'],
        ['/models', `/api/v1/attribution/comparison?${q()}`, 'from_aggregates'],
      ] as const) {
        const source = (await apiGet(url))[field];
        assert.equal(source?.first_day, day, `${url} names the pruned day`);
        await page.goto(path);
        await page.getByTestId('retention-note').waitFor();
        assert.equal((await page.getByTestId('retention-note').textContent())?.trim(), source.note, path);
      }
      await screenshot(page, 'models-retention-note');
    } finally {
      await su.query(`DELETE FROM allocation_daily_aggregates WHERE tenant_id = $1`, [A.tenant_id]);
    }
    for (const path of ['/', '/reconciliation', '/paths', '/channels', '/models']) {
      await page.goto(path);
      await settle(page);
      assert.equal(await page.getByTestId('retention-note').count(), 0, `${path}: no note when nothing was pruned`);
    }
    await context.close();
  });
});
