// Benchmark: the web app. (1) What a first visit loads: the JavaScript and CSS of dist/web,
// gzipped (goal: JavaScript <= 250 KB). (2) The API calls each page makes, with a signed-in
// session (cookie, CSRF), on one tenant holding BENCH_EVENTS events (default 1,000,000: sessions
// of 5 events, every 5th a conversion with an order, 90 days up to now), allocations of two rule
// models for every conversion, a ledger row for 3 of 4 orders, 1,000 dead events. Each page's
// calls run BENCH_RUNS times (default 30) over the default period (the last 30 days); prints
// p50 / p95 per page and call (goal: p95 <= 200 ms).
// Run: npm run bench -- web   (BENCH_EVENTS=20000 for a quick check)
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type pg from 'pg';
import { loadConfig } from '../src/config.js';
import { buildApp } from '../src/http/app.js';
import { WEB_ROOT } from '../src/http/web.js';
import { createTestDatabase, stopTestServer, superClient } from '../src/testing/db.js';
import { inviteUser } from '../src/users/users.js';
import { BENCH_TENANT as TENANT, seedWebTenant } from './web-seed.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const P95_GOAL_MS = 200;
const BUNDLE_GOAL_KB = 250;

function bundle(): void {
  if (!existsSync(join(WEB_ROOT, 'first-load.json'))) throw new Error('dist/web is missing: run npm run build first');
  const first = JSON.parse(readFileSync(join(WEB_ROOT, 'first-load.json'), 'utf8')) as { js: string[]; css: string[] };
  let js = 0;
  let all = 0;
  for (const f of readdirSync(join(WEB_ROOT, 'assets')).filter((x) => /\.(js|css)$/.test(x))) {
    const raw = readFileSync(join(WEB_ROOT, 'assets', f));
    const gz = gzipSync(raw, { level: 9 }).length;
    const isFirst = first.js.includes(f) || first.css.includes(f);
    if (f.endsWith('.js')) all += gz;
    if (f.endsWith('.js') && isFirst) js += gz;
    console.log(`  ${f.padEnd(28)} ${(raw.length / 1024).toFixed(1).padStart(7)} KiB, ${(gz / 1024).toFixed(1).padStart(6)} KiB gzipped${isFirst ? ' (first load)' : ' (on demand: charts)'}`);
  }
  console.log(`first-load JavaScript: ${(js / 1024).toFixed(1)} KiB gzipped (goal <= ${BUNDLE_GOAL_KB} KB: ${js / 1000 <= BUNDLE_GOAL_KB ? 'met' : 'NOT met'}); all JavaScript, charts included: ${(all / 1024).toFixed(1)} KiB`);
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  console.log('bundle (dist/web):');
  bundle();
  const db = await createTestDatabase('head');
  const su = await superClient(db);
  const t0 = Date.now();
  await seedWebTenant(su, EVENTS);
  console.log(`\nseeded ${EVENTS.toLocaleString('en')} events in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const app = await buildApp({ db, config: loadConfig({ SKELDIR_RATE_LIMIT_PER_MINUTE: '0' }), logger: false });
  try {
    const invitation = await inviteUser(app.appPool, TENANT, { email: 'bench@bench.example', role: 'owner' }, loadConfig({}).web);
    const accept = await app.inject({ method: 'POST', url: '/api/v1/auth/invitations/accept', payload: { token: invitation.invitation_url.split('#')[1], password: 'bench password 123' } });
    const cookie = `skeldir_session=${accept.cookies.find((c) => c.name === 'skeldir_session')!.value}`;
    const day = new Date().toISOString().slice(0, 10);
    const to = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString();
    const from = new Date(Date.parse(`${day}T00:00:00Z`) - 29 * 86_400_000).toISOString();
    const period = new URLSearchParams({ from, to }).toString();
    const tx = (await su.query(`SELECT split_part(transaction_id, ':', 3) AS id FROM revenue_ledger WHERE tenant_id = $1 LIMIT 1`, [TENANT])).rows[0].id;
    const dead = (await su.query(`SELECT id FROM dead_events WHERE tenant_id = $1 LIMIT 1`, [TENANT])).rows[0].id;
    const conversions = (await su.query(`SELECT count(*)::int AS n FROM attribution_events WHERE tenant_id = $1 AND event_type = 'conversion' AND event_timestamp >= $2 AND event_timestamp < $3`, [TENANT, from, to])).rows[0].n;
    console.log(`period: the last 30 days, ${conversions.toLocaleString('en')} conversions`);
    const pages: Record<string, string[]> = {
      'every page (session)': ['/api/v1/auth/session'],
      Overview: [`/api/v1/reconciliation?${period}`],
      Channels: [`/api/v1/attribution/channels?model=last_touch&${period}`],
      'Model comparison': [`/api/v1/attribution/comparison?${period}`],
      'Conversion paths': [`/api/v1/reports/paths?${period}&limit=50`],
      Reconciliation: [`/api/v1/reconciliation?${period}`],
      Transactions: [`/api/v1/revenue/transactions/${tx}`],
      'Dead events': ['/api/v1/dead-events?status=pending,in_progress&limit=100', '/api/v1/worker/health', `/api/v1/dead-events/${dead}`],
      Settings: ['/api/v1/attribution/settings', '/api/v1/users'],
    };
    console.log(`\n${'page'.padEnd(22)} ${'call'.padEnd(48)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)}`);
    let worst = 0;
    for (const [page, urls] of Object.entries(pages)) {
      for (const url of urls) {
        const times: number[] = [];
        for (let i = 0; i < RUNS + 2; i++) {
          const started = performance.now();
          const res = await app.inject({ method: 'GET', url, headers: { cookie } });
          const ms = performance.now() - started;
          if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body.slice(0, 300)}`);
          if (i >= 2) times.push(ms); // two warm-up calls
        }
        times.sort((a, b) => a - b);
        worst = Math.max(worst, pct(times, 95));
        console.log(`${page.padEnd(22)} ${url.split('?')[0]!.padEnd(48)} ${pct(times, 50).toFixed(1).padStart(8)} ${pct(times, 95).toFixed(1).padStart(8)}`);
      }
    }
    console.log(`\nworst p95: ${worst.toFixed(1)} ms (goal <= ${P95_GOAL_MS} ms: ${worst <= P95_GOAL_MS ? 'met' : 'NOT met'})`);
  } finally {
    await app.close();
    await su.end();
    await db.drop();
    await stopTestServer();
  }
}

await main();
