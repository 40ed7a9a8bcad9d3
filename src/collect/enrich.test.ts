/**
 * Enrichment of collected touches (pure functions): campaign parameters and click ids from the
 * landing URL, personal data stripped from it (property-based), the referrer reduced to its
 * origin, device classes, bot recognition, and the origin rules of publishable keys.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { deviceClass, isBotTraffic, piiReason, readLanding, readReferrer } from './enrich.js';
import { normaliseOrigin, originAllowed } from './keys.js';

describe('readLanding', () => {
  test('reads utm_* and every click id; keeps them and harmless parameters in the URL', () => {
    const l = readLanding(
      'https://Shop.Example/p/shoes?utm_source=Google&utm_medium=cpc&utm_campaign=Spring%20Sale&utm_content=ad-3&utm_term=red+shoes' +
        '&gclid=Cj0KCQiA&gbraid=0AAAA&wbraid=1BBBB&fbclid=IwAR0x&ttclid=E.C.P.x&msclkid=5f3a&li_fat_id=abc-123&size=42',
    )!;
    assert.deepEqual(l.utm, { utm_source: 'Google', utm_medium: 'cpc', utm_campaign: 'Spring Sale', utm_content: 'ad-3', utm_term: 'red shoes' });
    assert.deepEqual(l.clickIds, { gclid: 'Cj0KCQiA', gbraid: '0AAAA', wbraid: '1BBBB', fbclid: 'IwAR0x', ttclid: 'E.C.P.x', msclkid: '5f3a', li_fat_id: 'abc-123' });
    assert.equal(l.host, 'shop.example');
    assert.deepEqual(l.stripped, []);
    assert.ok(l.url.startsWith('https://shop.example/p/shoes?utm_source=Google&') && l.url.endsWith('&size=42'), l.url);
  });

  test('strips e-mail addresses, tokens, credentials, phone and card numbers, the fragment and user:password', () => {
    const l = readLanding(
      'https://user:pw@shop.example/users/jane.doe%40mail.example/orders?email=jane%40doe.example&contact=bob@x.example&token=abc' +
        '&access_token=ya29.a0AfH6SMB&jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig&ref=newsletter&phone=%2B44%2020%207946%200958' +
        '&cc=4111%201111%201111%201111&num=4111111111111111&password=hunter2&customer_email=x&q=boots&reset=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg' +
        '#access_token=secret',
    )!;
    assert.equal(l.url, 'https://shop.example/users/redacted/orders?ref=newsletter&q=boots');
    assert.deepEqual(l.stripped.sort(), ['access_token', 'cc', 'contact', 'customer_email', 'email', 'jwt', 'num', 'password', 'phone', 'reset', 'token'].sort());
  });

  test('a campaign parameter holding an e-mail address is not read, and is removed', () => {
    const l = readLanding('https://shop.example/?utm_source=newsletter&utm_campaign=jane%40doe.example')!;
    assert.deepEqual(l.utm, { utm_source: 'newsletter' });
    assert.equal(l.url, 'https://shop.example/?utm_source=newsletter');
  });

  test('not an http(s) URL: null', () => {
    for (const bad of ['javascript:alert(1)', 'ftp://x.example/', 'not a url', 'data:text/html,hi', '']) assert.equal(readLanding(bad), null, bad);
  });

  test('property: no e-mail address or JWT put in any parameter survives, whatever its name', () => {
    const name = fc.stringMatching(/^[a-z_]{1,12}$/);
    const email = fc.emailAddress();
    const jwt = fc.tuple(fc.base64String({ minLength: 8, maxLength: 20 }), fc.base64String({ minLength: 8, maxLength: 40 })).map(([a, b]) => `eyJ${a.replace(/[+/=]/g, 'x')}.${b.replace(/[+/=]/g, 'y')}.s1g`);
    fc.assert(
      fc.property(fc.array(fc.tuple(name, fc.oneof(email, jwt)), { minLength: 1, maxLength: 5 }), fc.array(fc.tuple(name, fc.stringMatching(/^[a-z0-9]{1,8}$/)), { maxLength: 5 }), (secrets, harmless) => {
        const params = new URLSearchParams();
        for (const [k, v] of [...secrets, ...harmless]) params.append(k, v);
        const l = readLanding(`https://shop.example/page?${params}`)!;
        const decoded = decodeURIComponent(l.url.replace(/\+/g, ' '));
        for (const [, v] of secrets) assert.ok(!decoded.includes(v), `${v} survived in ${l.url}`);
        // Harmless values under names that are not personal-data names stay.
        for (const [k, v] of harmless) if (piiReason(k, v) === null && !secrets.some(([s]) => s === k)) assert.ok(new URL(l.url).searchParams.getAll(k).includes(v), `${k}=${v} kept`);
      }),
      { numRuns: 300 },
    );
  });

  test('property: campaign parameters and click ids are always read as sent (trimmed, at most 255 characters)', () => {
    const value = fc.stringMatching(/^[A-Za-z0-9_.-]{1,300}$/);
    fc.assert(
      fc.property(value, value, (source, gclid) => {
        const l = readLanding(`https://shop.example/?utm_source=${encodeURIComponent(source)}&gclid=${encodeURIComponent(gclid)}`)!;
        assert.equal(l.utm.utm_source, source.slice(0, 255));
        assert.equal(l.clickIds.gclid, gclid.slice(0, 255));
      }),
      { numRuns: 200 },
    );
  });
});

test('readReferrer keeps the origin only, and nothing for the site itself or a non-http referrer', () => {
  assert.deepEqual(readReferrer('https://www.google.com/search?q=jane+doe', 'shop.example'), { origin: 'https://www.google.com', host: 'www.google.com' });
  assert.equal(readReferrer('https://shop.example/cart', 'shop.example'), null);
  assert.equal(readReferrer('android-app://com.google.android.gm/', 'shop.example'), null);
  assert.equal(readReferrer('', 'shop.example'), null);
  assert.equal(readReferrer(undefined, 'shop.example'), null);
});

test('deviceClass: phones, tablets, desktops; client hints win', () => {
  const cases: [string, string][] = [
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1', 'mobile'],
    ['Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36', 'mobile'],
    ['Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1', 'tablet'],
    ['Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 Chrome/131.0 Safari/537.36', 'tablet'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36', 'desktop'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15', 'desktop'],
    ['Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0', 'desktop'],
    ['SomethingElse/1.0', 'other'],
  ];
  for (const [ua, expected] of cases) assert.equal(deviceClass(ua), expected, ua);
  assert.equal(deviceClass('Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0', '?1'), 'mobile');
});

test('isBotTraffic: crawlers, link previews, HTTP libraries, headless browsers, automation, no user agent', () => {
  const bots = [
    'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)',
    'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)',
    'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)',
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36',
    'Go-http-client/1.1',
    'Wget/1.21.4',
  ];
  for (const ua of bots) assert.equal(isBotTraffic(ua, {}), true, ua);
  const chrome = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
  assert.equal(isBotTraffic(chrome, {}), false);
  assert.equal(isBotTraffic(chrome, { webdriver: true }), true);
  assert.equal(isBotTraffic(chrome, { brandHint: '"Chromium";v="131", "HeadlessChrome";v="131"' }), true);
  assert.equal(isBotTraffic(undefined, {}), true);
  assert.equal(isBotTraffic('  ', {}), true);
});

test('allowed origins: normalised as browsers send them; wildcards cover subdomains only', () => {
  assert.equal(normaliseOrigin('HTTPS://Shop.Example:443/'), 'https://shop.example');
  assert.equal(normaliseOrigin('http://localhost:3000'), 'http://localhost:3000');
  assert.equal(normaliseOrigin('https://*.Shop.Example'), 'https://*.shop.example');
  const allowed = ['https://shop.example', 'https://*.blog.example', 'http://localhost:3000'];
  for (const o of ['https://shop.example', 'https://a.blog.example', 'https://a.b.blog.example', 'http://localhost:3000']) assert.equal(originAllowed(o, allowed), true, o);
  for (const o of ['https://blog.example', 'http://shop.example', 'https://shop.example:8443', 'https://evilblog.example', 'https://shop.example.evil', 'null', 'https://shop.example/', 'HTTPS://SHOP.EXAMPLE', 'http://localhost:3001', ''])
    assert.equal(originAllowed(o, allowed), false, o);
});
