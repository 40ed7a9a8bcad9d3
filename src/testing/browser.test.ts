import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { axeViolations, launchBrowser, PHONE, resolveChromium, screenshot, seriousViolations, unpackSparticuz, type TestBrowser } from './browser.js';

const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>probe</title></head>
<body><main><h1>Probe</h1><p id="out">not clicked</p><button id="b" type="button">Press</button></main>
<script>document.getElementById('b').addEventListener('click', () => { document.getElementById('out').textContent = 'clicked ' + document.cookie; });</script>
</body></html>`;
const BAD_PAGE = `<!doctype html><html><body><img src="x.png"><p style="color:#ccc;background:#fff">faint</p><input></body></html>`;

let server: Server;
let base: string;

before(async () => {
  server = createServer((req, res) => {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    if (req.url === '/bad') return res.end(BAD_PAGE);
    res.setHeader('set-cookie', 'probe=1; Path=/; SameSite=Lax');
    res.end(PAGE);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** What each Chromium must do: load a page, run its script on a click, keep contexts apart, screenshot. */
async function exercise(b: TestBrowser, name: string): Promise<void> {
  const first = await b.newContext({ baseURL: base });
  const page = await first.newPage();
  await page.goto('/');
  await page.getByRole('button', { name: 'Press' }).click();
  assert.equal(await page.locator('#out').textContent(), 'clicked probe=1');
  const shot = await screenshot(page, `harness-${name}`);
  assert.ok(existsSync(shot));
  assert.deepEqual([...readFileSync(shot).subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
  // A second context has its own cookie jar: no cookie before it loads the page.
  const second = await b.newContext({ ...PHONE, baseURL: base });
  assert.deepEqual(await second.cookies(), []);
  assert.equal((await first.cookies()).length, 1);
  const phone = await second.newPage();
  await phone.goto('/');
  assert.equal(await phone.evaluate<number>('window.innerWidth'), PHONE.width);
  await first.close();
  await second.close();
}

describe('browser harness', () => {
  test('the resolved Chromium (CHROMIUM_PATH, the system one, else @sparticuz/chromium) runs pages', async () => {
    const b = await launchBrowser();
    try {
      await exercise(b, b.chromium.source.replace(/\W+/g, '-'));
    } finally {
      await b.close();
    }
  });

  test('the @sparticuz/chromium fallback runs pages too (the path a fresh machine takes)', async () => {
    const resolved = await resolveChromium();
    if (resolved.source === '@sparticuz/chromium') return; // the test above already drove it
    const b = await launchBrowser({ chromium: { path: await unpackSparticuz(), source: '@sparticuz/chromium' } });
    try {
      assert.match(b.browser.version(), /^\d+\./);
      await exercise(b, 'sparticuz');
    } finally {
      await b.close();
    }
  });

  test('CHROMIUM_PATH that does not exist is an error, not a silent fallback', async () => {
    await assert.rejects(resolveChromium({ CHROMIUM_PATH: '/nonexistent/chromium' }), /CHROMIUM_PATH=\/nonexistent\/chromium does not exist/);
  });

  test('axe-core finds serious violations on a bad page and none on a good one', async () => {
    const b = await launchBrowser();
    try {
      const page = await (await b.newContext({ baseURL: base })).newPage();
      await page.goto('/bad');
      const bad = seriousViolations(await axeViolations(page));
      assert.ok(bad.some((line) => line.includes('image-alt')), bad.join('\n'));
      await page.goto('/');
      assert.deepEqual(seriousViolations(await axeViolations(page)), []);
    } finally {
      await b.close();
    }
  });
});
