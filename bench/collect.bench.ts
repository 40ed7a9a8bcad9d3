// Benchmark: the browser endpoint next to the server endpoint, in the same run (issue 14).
//
// One database, one API server in a child process (bench/api-server.ts, so the load generator does not share its
// event loop), listening on 127.0.0.1; node's http client with keep-alive. Two contenders, each
// storing one touchpoint per request, 16 requests in flight, the table emptied between them:
//   - collect: POST /api/v1/collect?key=pk_… as the tracker sends a landing (text/plain body,
//              Origin of an allowed site, a desktop Chrome user agent): key lookup, origin check,
//              bot filter, enrichment (channel from UTM/click id/referrer, PII stripping, device class);
//   - events:  POST /api/v1/events with the secret key, the same touch as server-side JSON (the peer).
// Then identifies: POST /api/v1/collect with one identify per request (a new link each: insert,
// audit row, re-attribution check), 16 in flight.
// And the tracker's size as served: /sdk/v1/skeldir.js and .mjs, raw and gzip (level 9), against
// the 6 KB gzip budget.
// Rate limits are off (one tenant, one address pushing as hard as it can). The server logs every
// request as in production (to /dev/null). Figures on a shared 2-core machine are noisy: compare
// the ratio, not absolutes.
// Run: node --import tsx bench/collect.bench.ts   (BENCH_REQUESTS, BENCH_IDENTIFIES to resize)
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { startBenchServer } from './api-server.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20_000);
const IDENTIFIES = Number(process.env.BENCH_IDENTIFIES ?? 5_000);
const CONCURRENCY = 16;
const SITE = 'https://shop.example';
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const CAMPAIGNS = ['spring_sale', 'brand', 'retargeting', 'newsletter_12'];

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function post(address: URL, path: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: address.hostname, port: address.port, path, method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Runs `jobs` with `concurrency` in flight; returns per-job latencies in ms and the wall time. */
async function drive(jobs: (() => Promise<void>)[], concurrency: number): Promise<{ seconds: number; latencies: number[] }> {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < jobs.length) {
        const job = jobs[next++]!;
        const s = performance.now();
        await job();
        latencies.push(performance.now() - s);
      }
    }),
  );
  return { seconds: (performance.now() - t0) / 1000, latencies };
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const line = (name: string, n: number, r: { seconds: number; latencies: number[] }) =>
  `${name.padEnd(10)} ${Math.round(n / r.seconds).toLocaleString('en-US').padStart(7)} requests/s   p50 ${pct(r.latencies, 50).toFixed(2).padStart(6)} ms   p99 ${pct(r.latencies, 99).toFixed(2).padStart(6)} ms   (${n.toLocaleString('en-US')} in ${r.seconds.toFixed(1)} s)`;

function landing(i: number): { url: string; referrer: string } {
  const campaign = CAMPAIGNS[i % CAMPAIGNS.length]!;
  return i % 2
    ? { url: `${SITE}/landing/${i}?utm_source=google&utm_medium=cpc&utm_campaign=${campaign}&gclid=Cj0KCQiA${i}`, referrer: 'https://www.google.com/' }
    : { url: `${SITE}/p/${i}?utm_source=facebook&utm_medium=paid_social&utm_campaign=${campaign}&fbclid=IwAR${i}`, referrer: 'https://l.facebook.com/' };
}

async function main(): Promise<void> {
  const { createTestDatabase, stopTestServer, superClient } = await import('../src/testing/db.js');
  const { createTenant } = await import('../src/tenants/tenants.js');
  const { createPublishableKey } = await import('../src/collect/publishable-keys.js');
  const { trackerSizes } = await import('../src/collect/sdk.js');

  const db = await createTestDatabase('head');
  const su = await superClient(db);
  const owner = db.ownerPool({ max: 1 });
  const { tenant_id: tenant, api_key: key } = await createTenant(owner, { name: 'Bench', email: 'ops@bench.example' });
  const pk = (await createPublishableKey(owner, tenant, { name: 'bench', allowed_origins: [SITE] }, 'http://127.0.0.1')).key;
  await owner.end();
  const server = await startBenchServer(db);
  const { address } = server;
  const reset = () => su.query('TRUNCATE attribution_events CASCADE');
  const count = async () => Number((await su.query('SELECT count(*) AS n FROM attribution_events')).rows[0].n);
  const collectPath = `/api/v1/collect?key=${encodeURIComponent(pk)}`;
  const browser = { origin: SITE, 'user-agent': CHROME, 'content-type': 'text/plain;charset=UTF-8' };
  const secret = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

  const collectBody = (i: number) => {
    const l = landing(i);
    return JSON.stringify({
      sent_at: new Date().toISOString(),
      events: [{ type: 'touch', event_id: `ev_${randomBytes(9).toString('base64url')}`, timestamp: new Date().toISOString(), anonymous_id: `a_${i}`, session_id: `s_${i}`, url: l.url, referrer: l.referrer }],
    });
  };
  const eventBody = (i: number) => {
    const l = landing(i);
    const u = new URL(l.url);
    return JSON.stringify({
      idempotency_key: randomUUID(),
      event_type: 'touchpoint',
      event_timestamp: new Date().toISOString(),
      session_id: `s_${i}`,
      anonymous_id: `a_${i}`,
      utm_source: u.searchParams.get('utm_source'),
      utm_medium: u.searchParams.get('utm_medium'),
      utm_campaign: u.searchParams.get('utm_campaign'),
      ...(u.searchParams.has('gclid') ? { gclid: u.searchParams.get('gclid') } : { fbclid: u.searchParams.get('fbclid') }),
      referrer: l.referrer,
      landing_url: l.url,
    });
  };

  try {
    const sizes = trackerSizes();
    console.log(`collect benchmark: ${REQUESTS.toLocaleString('en-US')} touches through each endpoint, then ${IDENTIFIES.toLocaleString('en-US')} identifies; ${CONCURRENCY} in flight; server ${address.host}`);

    // Warm-up of both paths: JIT, pools, the key caches.
    await drive(Array.from({ length: 500 }, (_, i) => async () => void (await post(address, collectPath, browser, collectBody(i)))), CONCURRENCY);
    await drive(Array.from({ length: 500 }, (_, i) => async () => void (await post(address, '/api/v1/events', secret, eventBody(i)))), CONCURRENCY);
    await reset();

    const collectBodies = Array.from({ length: REQUESTS }, (_, i) => collectBody(i));
    const collect = await drive(
      collectBodies.map((body) => async () => {
        const r = await post(address, collectPath, browser, body);
        if (r.status !== 204) throw new Error(`collect: ${r.status} ${r.body}`);
      }),
      CONCURRENCY,
    );
    const storedCollect = await count();
    if (storedCollect !== REQUESTS) throw new Error(`collect stored ${storedCollect} touches, expected ${REQUESTS}`);
    const sample = (await su.query(`SELECT channel, campaign_id FROM attribution_events ORDER BY random() LIMIT 1`)).rows[0];
    await reset();

    const eventBodies = Array.from({ length: REQUESTS }, (_, i) => eventBody(i));
    const events = await drive(
      eventBodies.map((body) => async () => {
        const r = await post(address, '/api/v1/events', secret, body);
        if (r.status !== 201) throw new Error(`events: ${r.status} ${r.body}`);
      }),
      CONCURRENCY,
    );
    const storedEvents = await count();
    if (storedEvents !== REQUESTS) throw new Error(`events stored ${storedEvents} touches, expected ${REQUESTS}`);

    const identifyBodies = Array.from({ length: IDENTIFIES }, (_, i) =>
      JSON.stringify({ events: [{ type: 'identify', event_id: `id_${randomBytes(9).toString('base64url')}`, timestamp: new Date().toISOString(), anonymous_id: `a_${i}`, user_id: `user-${i % 1000}` }] }),
    );
    const identifies = await drive(
      identifyBodies.map((body) => async () => {
        const r = await post(address, collectPath, browser, body);
        if (r.status !== 204) throw new Error(`identify: ${r.status} ${r.body}`);
      }),
      CONCURRENCY,
    );
    const links = Number((await su.query('SELECT count(*) AS n FROM identity_links')).rows[0].n);
    if (links !== IDENTIFIES) throw new Error(`identifies stored ${links} links, expected ${IDENTIFIES}`);

    console.log(line('collect', REQUESTS, collect) + `   (sample: ${sample.channel} / ${sample.campaign_id})`);
    console.log(line('events', REQUESTS, events));
    console.log(line('identify', IDENTIFIES, identifies));
    console.log(`ratio: collect/events ${((100 * (REQUESTS / collect.seconds)) / (REQUESTS / events.seconds)).toFixed(0)} % (the browser endpoint's extra work: key, origin, bot filter, enrichment)`);
    const kb = (n: number) => `${(n / 1024).toFixed(2)} KB`;
    console.log(`tracker: skeldir.js ${kb(sizes.classic)} raw, ${kb(sizes.classicGzip)} gzip; skeldir.mjs ${kb(sizes.module)} raw, ${kb(sizes.moduleGzip)} gzip; budget 6 KB gzip: ${Math.max(sizes.classicGzip, sizes.moduleGzip) <= 6144 ? 'meets' : 'MISSES'} (${((100 * Math.max(sizes.classicGzip, sizes.moduleGzip)) / 6144).toFixed(0)} % of it)`);
  } finally {
    await server.stop();
    agent.destroy();
    await su.end();
    await db.drop();
    await stopTestServer();
  }
}

await main();
