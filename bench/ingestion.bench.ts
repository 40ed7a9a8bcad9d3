// Benchmark: ingestion throughput and latency through the real HTTP server (issue 4).
//
// One run, one database, three contenders inserting the same kind of rows into attribution_events:
//   - single:  POST /api/v1/events, one event per request, 16 requests in flight;
//   - batch:   POST /api/v1/events/batch, 100 events per request, 4 requests in flight;
//   - ceiling: the same rows straight through pg as the application role (tenant context set,
//              row-level security on), multi-row INSERT … ON CONFLICT DO NOTHING of 100 rows,
//              4 connections: what the database alone can take, no HTTP, no validation.
// The API server runs in a child process (so the load generator does not share its event loop),
// listening on 127.0.0.1; the client is node's http with keep-alive. The table is emptied between
// contenders. The server logs every request as in production (to /dev/null); its per-tenant rate
// limit is off (see serve()). Figures on a shared 2-core machine are noisy: compare the ratios, not absolutes.
// Run: node --import tsx bench/ingestion.bench.ts   (BENCH_SINGLE, BENCH_BATCH_EVENTS to resize)
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const SINGLE = Number(process.env.BENCH_SINGLE ?? 20_000);
const BATCH_EVENTS = Number(process.env.BENCH_BATCH_EVENTS ?? 100_000);
const BATCH_SIZE = 100;
const SINGLE_CONCURRENCY = 16;
const BATCH_CONCURRENCY = 4;

function event(i: number): Record<string, unknown> {
  const conversion = i % 5 === 0;
  return {
    idempotency_key: randomUUID(),
    event_type: conversion ? 'conversion' : 'touchpoint',
    event_timestamp: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
    session_id: randomUUID(),
    user_id: `user-${i % 5000}`,
    ...(i % 2 ? { channel: 'google_search_paid' } : { utm_source: 'facebook', utm_medium: 'cpc' }),
    campaign_id: `campaign-${i % 50}`,
    ...(conversion ? { conversion_value_cents: 1000 + (i % 9000), currency: 'USD', order_id: `order-${i}` } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// The load generator.
interface Result {
  events: number;
  seconds: number;
  latencies: number[];
  /** CPU seconds spent by the API process (or, for the ceiling, the pg client) and by PostgreSQL backends. */
  nodeCpu: number;
  pgCpu: number;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function post(address: URL, path: string, key: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: address.hostname, port: address.port, path, method: 'POST', agent, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
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

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const fmt = (r: Result, unit: string) =>
  `${Math.round(r.events / r.seconds).toLocaleString('en-US').padStart(8)} events/s   p50 ${pct(r.latencies, 50).toFixed(2).padStart(7)} ms   p99 ${pct(r.latencies, 99).toFixed(2).padStart(7)} ms per ${unit}   (${r.events.toLocaleString('en-US')} events in ${r.seconds.toFixed(1)} s)`;
/** CPU per event, and what two otherwise idle cores could sustain at that cost (load-independent). */
const cpuLine = (r: Result) => {
  const perEvent = (r.nodeCpu + r.pgCpu) / r.events;
  return `cpu per 1,000 events: node ${((1000 * r.nodeCpu) / r.events * 1000).toFixed(0)} ms + postgres ${((1000 * r.pgCpu) / r.events * 1000).toFixed(0)} ms  →  ≈ ${Math.round(2 / perEvent).toLocaleString('en-US')} events/s on 2 idle cores`;
};

/** CPU seconds used so far by each backend connected to the current database (Linux /proc; empty elsewhere). */
async function backendCpu(client: pg.Client): Promise<Map<number, number>> {
  const { readFileSync } = await import('node:fs');
  const { rows } = await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
  const out = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      out.set(pid, (Number(fields[11]) + Number(fields[12])) / 100); // utime + stime (fields 14, 15), USER_HZ
    } catch {
      // the backend ended meanwhile
    }
  }
  return out;
}
/** CPU the backends spent between two readings (a backend that connected meanwhile counts from 0). */
const cpuBetween = (a: Map<number, number>, b: Map<number, number>) => [...b].reduce((sum, [pid, t]) => sum + t - (a.get(pid) ?? 0), 0);

async function main(): Promise<void> {
  const { createTestDatabase, stopTestServer, superClient } = await import('../src/testing/db.js');
  const { createTenant } = await import('../src/tenants/tenants.js');
  const { withTenant } = await import('../src/db/tenant-context.js');
  const { prepareEvent } = await import('../src/ingestion/prepare.js');
  const { defaultRuleSet } = await import('../src/channels/classify.js');

  const db = await createTestDatabase('head');
  const su = await superClient(db);
  const owner = db.ownerPool({ max: 1 });
  const { tenant_id: tenant, api_key: key } = await createTenant(owner, { name: 'Bench', email: 'ops@bench.example' });
  await owner.end();
  const server = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ['--import', 'tsx', ...(process.env.BENCH_SERVER_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_SERVER_PROF}`] : [])],
    env: { ...process.env, BENCH_ROLE: 'server', BENCH_DATABASE_URL: db.url, BENCH_ROLES: JSON.stringify(db.roles) },
  });
  const address = new URL(await new Promise<string>((resolve) => server.once('message', (m: { address: string }) => resolve(m.address))));
  const reset = () => su.query('TRUNCATE attribution_events CASCADE');
  const serverCpu = () =>
    new Promise<number>((resolve) => {
      server.once('message', (m: { cpu: NodeJS.CpuUsage }) => resolve((m.cpu.user + m.cpu.system) / 1e6));
      server.send('cpu');
    });
  /** Runs a phase and measures the CPU it cost: the API process (or this process for the ceiling) and PostgreSQL. */
  const measured = async (events: number, local: boolean, run: () => Promise<{ seconds: number; latencies: number[] }>): Promise<Result> => {
    const node0 = local ? process.cpuUsage() : await serverCpu();
    const pg0 = await backendCpu(su);
    const r = await run();
    const pg1 = await backendCpu(su);
    const node1 = local ? process.cpuUsage(node0 as NodeJS.CpuUsage) : await serverCpu();
    const nodeCpu = local ? ((node1 as NodeJS.CpuUsage).user + (node1 as NodeJS.CpuUsage).system) / 1e6 : (node1 as number) - (node0 as number);
    return { events, ...r, nodeCpu, pgCpu: cpuBetween(pg0, pg1) };
  };
  try {
    console.log(`ingestion benchmark: ${SINGLE.toLocaleString('en-US')} single events (concurrency ${SINGLE_CONCURRENCY}), ${BATCH_EVENTS.toLocaleString('en-US')} events in batches of ${BATCH_SIZE} (concurrency ${BATCH_CONCURRENCY}) and the same through pg; server ${address.host}`);

    // Warm-up: JIT, pools, the authentication cache.
    await drive(Array.from({ length: 1000 }, (_, i) => async () => void (await post(address, '/api/v1/events', key, JSON.stringify(event(i))))), SINGLE_CONCURRENCY);
    await reset();

    // single
    const singles = Array.from({ length: SINGLE }, (_, i) => JSON.stringify(event(i)));
    const single = await measured(SINGLE, false, () =>
      drive(
        singles.map((body) => async () => {
          const r = await post(address, '/api/v1/events', key, body);
          if (r.status !== 201) throw new Error(`single: ${r.status} ${r.body}`);
        }),
        SINGLE_CONCURRENCY,
      ),
    );
    await reset();

    // batch
    const batches = Array.from({ length: Math.ceil(BATCH_EVENTS / BATCH_SIZE) }, (_, b) =>
      JSON.stringify({ events: Array.from({ length: BATCH_SIZE }, (_, i) => event(b * BATCH_SIZE + i)) }),
    );
    const batch = await measured(batches.length * BATCH_SIZE, false, () =>
      drive(
        batches.map((body) => async () => {
          const r = await post(address, '/api/v1/events/batch', key, body);
          if (r.status !== 200 || JSON.parse(r.body).created !== BATCH_SIZE) throw new Error(`batch: ${r.status} ${r.body.slice(0, 300)}`);
        }),
        BATCH_CONCURRENCY,
      ),
    );
    const stored = Number((await su.query('SELECT count(*) AS n FROM attribution_events')).rows[0].n);
    if (stored !== batch.events) throw new Error(`batch stored ${stored} rows, expected ${batch.events}`);
    await reset();

    // ceiling: the same rows (same columns, same values, prepared the same way) through pg.
    const rules = defaultRuleSet();
    const rows = Array.from({ length: batches.length }, (_, bi) =>
      Array.from({ length: BATCH_SIZE }, (_, i) => {
        const e = event(bi * BATCH_SIZE + i);
        return prepareEvent(tenant, e as never, { pointer: 'body', rules, now: Date.now() });
      }),
    );
    const pool = db.appPool({ max: BATCH_CONCURRENCY });
    await Promise.all(Array.from({ length: BATCH_CONCURRENCY }, () => pool.query('SELECT 1'))); // connect before measuring
    const COLS = 15;
    const ceiling = await measured(rows.length * BATCH_SIZE, true, () => drive(
      rows.map((chunk) => async () => {
        const values: unknown[] = [];
        const tuples = chunk.map((e, i) => {
          values.push(tenant, e.scopedKey, e.eventType, e.timestamp, e.timestamp, e.sessionId, e.userId, e.channel, e.campaignId, e.valueCents, e.currency, e.orderId, e.raw, e.valueCents ?? 0, e.requestHash);
          const p = (k: number) => `$${i * COLS + k}`;
          return `(${p(1)}::uuid, ${p(2)}, ${p(3)}, ${p(4)}::timestamptz, ${p(5)}::timestamptz, ${p(6)}::uuid, ${p(7)}, ${p(8)}, ${p(9)}, ${p(10)}::int, ${p(11)}, ${p(12)}, ${p(13)}::jsonb, ${p(14)}::int, decode(${p(15)}, 'hex'), 'pending', NULL)`;
        });
        await withTenant(pool, tenant, (client) =>
          client.query(
            `INSERT INTO attribution_events (tenant_id, idempotency_key, event_type, event_timestamp, occurred_at, session_id, user_id, channel,
               campaign_id, conversion_value_cents, currency, order_id, raw_payload, revenue_cents, request_hash, processing_status, processed_at)
             VALUES ${tuples.join(', ')} ON CONFLICT (idempotency_key) DO NOTHING`,
            values,
          ),
        );
      }),
      BATCH_CONCURRENCY,
    ));
    await pool.end();

    const rate = (r: Result) => r.events / r.seconds;
    console.log(`single   ${fmt(single, 'request')}`);
    console.log(`batch    ${fmt(batch, 'request of 100')}`);
    console.log(`ceiling  ${fmt(ceiling, 'INSERT of 100')}`);
    console.log(`single   ${cpuLine(single)}`);
    console.log(`batch    ${cpuLine(batch)}`);
    console.log(`ceiling  ${cpuLine(ceiling)}   (node here = the pg client)`);
    console.log(`ratios: batch/ceiling ${(100 * rate(batch) / rate(ceiling)).toFixed(0)} % (goal ≥ 50 %), single/ceiling ${(100 * rate(single) / rate(ceiling)).toFixed(0)} %, batch/single ${(rate(batch) / rate(single)).toFixed(1)}x`);
    console.log(`goals: single ${Math.round(rate(single)) >= 2000 ? 'meets' : 'MISSES'} 2,000 events/s; batch ${rate(batch) >= 0.5 * rate(ceiling) ? 'meets' : 'MISSES'} 50 % of the ceiling`);
  } finally {
    server.send('stop');
    await new Promise((r) => server.once('exit', r));
    agent.destroy();
    await su.end();
    await db.drop();
    await stopTestServer();
  }
}

// ---------------------------------------------------------------------------------------------
// The server process.
async function serve(): Promise<void> {
  const { databaseAt } = await import('../src/db/database.js');
  const { buildApp } = await import('../src/http/app.js');
  const { loadConfig } = await import('../src/config.js');
  const db = databaseAt(process.env.BENCH_DATABASE_URL!, JSON.parse(process.env.BENCH_ROLES!));
  const { default: pino } = await import('pino');
  // Production logging (one JSON line per request, redaction on), written to /dev/null instead of
  // stdout so the figure is the server's cost, not the terminal's. No rate limit: the benchmark is
  // one tenant pushing as hard as it can, and the default budget (SKELDIR_RATE_LIMIT_PER_MINUTE,
  // 6,000 requests a minute per tenant) would cap it at 100 requests/s.
  const app = await buildApp({ db, config: loadConfig({}), logger: { stream: pino.destination({ dest: '/dev/null', sync: true }) }, rateLimit: { max: 0 } });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  process.send!({ address });
  process.on('message', async (m) => {
    if (m === 'cpu') process.send!({ cpu: process.cpuUsage() });
    if (m === 'stop') {
      await app.close();
      process.exit(0);
    }
  });
}


if (process.env.BENCH_ROLE === 'server') await serve();
else await main();
