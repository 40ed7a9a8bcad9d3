// `npm run bench -- citus` (node --import tsx bench/citus.bench.ts): Skeldir on one node vs a Citus
// cluster (one coordinator + 2 workers), many tenants (issue 16).
//
// The cluster is started as scripts/test-citus.mjs starts it: Citus from the system PostgreSQL 15
// (installed from CITUS_SHARED_DIR, default ../shared/citus, by its install.sh when root), the
// cluster by its cluster.sh on ports BENCH_CITUS_PORT .. +2 (default 9730) in a temporary directory,
// stopped at the end. Without Citus it says why and exits 0.
//
// Two databases on the same servers, migrated to head:
//   - "1 node":  plain tables on the coordinator (no citus extension): one PostgreSQL;
//   - "cluster": the same schema distributed by `skeldir citus distribute` (22 tenant tables by
//                tenant_id over 32 shards on the 2 workers, reference tables on every node).
// On each, BENCH_TENANTS tenants (default 50), then:
//   1. ingestion: POST /api/v1/events/batch (100 events per request, BENCH_CONCURRENCY concurrent
//      requests, default 8, tenants round-robin) through the real API server (bench/api-server.ts,
//      a child process), BENCH_EVENTS events in all (default 50,000: 4 touchpoints per session, 20 %
//      of sessions convert);
//   2. worker: 2 workers (concurrency 1, batch 100) process those events from the first claim to an
//      empty queue (conversions are attributed with the tenants' models);
//   3. on the cluster, the share of the statements Citus ran that touched exactly one shard, per
//      phase, from citus_stat_counters (query_execution_single_shard vs _multi_shard; Citus 13.1+,
//      citus.enable_stat_counters on).
// Everything (three PostgreSQL servers, the API server, the workers, this load generator) shares this
// machine's cores: see docs/scaling.md "How it would grow" for what the figures can and cannot show.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startBenchServer } from './api-server.js';

const TENANTS = Number(process.env.BENCH_TENANTS ?? 50);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 50_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const BATCH = 100;
const WORKERS = 2;
const STALL_MS = Number(process.env.BENCH_STALL_MS ?? 30_000);

const root = join(import.meta.dirname, '..');
const shared = process.env.CITUS_SHARED_DIR ?? join(root, '..', 'shared', 'citus');

function skip(why: string): never {
  console.log(`citus bench skipped: ${why}`);
  process.exit(0);
}

const pgConfig = (what: string) => spawnSync(process.env.CITUS_PG_BINDIR ? join(process.env.CITUS_PG_BINDIR, 'pg_config') : 'pg_config', [what], { encoding: 'utf8' });
const lib = pgConfig('--pkglibdir');
if (lib.status !== 0) skip('no PostgreSQL server installed (pg_config not found)');
const bin = pgConfig('--bindir').stdout.trim();
if (!existsSync(join(lib.stdout.trim(), 'citus.so'))) {
  const install = join(shared, 'install.sh');
  if (!existsSync(install)) skip(`Citus is not installed in ${lib.stdout.trim()} and ${install} does not exist`);
  if (process.getuid?.() !== 0) skip(`Citus is not installed, and installing it from ${shared} needs root`);
  if (spawnSync('bash', [install], { stdio: 'inherit' }).status !== 0) skip(`${install} failed`);
}
const clusterSh = process.env.CITUS_CLUSTER_SH ?? join(shared, 'cluster.sh');
if (!existsSync(clusterSh)) skip(`no cluster script (${clusterSh})`);
if (process.getuid?.() === 0 && spawnSync('id', ['postgres']).status !== 0) skip('running as root without a postgres user (initdb refuses root)');

const port = Number(process.env.BENCH_CITUS_PORT ?? 9730);
const base = mkdtempSync(join(tmpdir(), 'skeldir-citus-bench-'));
chmodSync(base, 0o777);
const clusterEnv = { ...process.env, PATH: `${bin}:${process.env.PATH}`, CITUS_BASE: base, COORD_PORT: String(port), WORKER1_PORT: String(port + 1), WORKER2_PORT: String(port + 2), SKELDIR_ROLES: '1' };
const stopCluster = () => {
  spawnSync('bash', [clusterSh, 'stop'], { env: clusterEnv, stdio: 'ignore' });
  rmSync(base, { recursive: true, force: true });
};
process.on('SIGINT', () => { stopCluster(); process.exit(130); });
if (spawnSync('bash', [clusterSh, 'start'], { env: clusterEnv, stdio: 'ignore' }).status !== 0) {
  stopCluster();
  console.error('citus bench: the cluster did not start');
  process.exit(1);
}
process.env.TEST_DATABASE_URL = `postgres://postgres@127.0.0.1:${port}/postgres`;
process.env.SKELDIR_TEST_CITUS_WORKERS = `127.0.0.1:${port + 1},127.0.0.1:${port + 2}`;

const { createTestDatabase, superClient } = await import('../src/testing/db.js');
const { SchemaMigrator } = await import('../src/migrations/migrator.js');
const { createTenant } = await import('../src/tenants/tenants.js');
const { journeys, countByStatus } = await import('../src/worker/test-fixtures.js');
const { DEFAULT_WORKER_OPTIONS } = await import('../src/worker/options.js');
const { Worker } = await import('../src/worker/worker.js');
type TestDatabase = Awaited<ReturnType<typeof createTestDatabase>>;

interface Phase { events: number; seconds: number; error?: string; single?: number; multi?: number; cpu?: Cpu }
/** CPU seconds of each PostgreSQL server (and of the API server, ingestion only) during a phase. */
type Cpu = Record<string, number>;

const NODES = ['coord', 'worker1', 'worker2'] as const;
const fields = (stat: string) => stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
/**
 * CPU seconds used so far by one server: its postmaster and live children (utime + stime) plus
 * the children it reaped (cutime + cstime), from Linux /proc; 0 elsewhere.
 */
function serverCpu(node: string): number {
  try {
    const pid = Number(readFileSync(join(base, node, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const own = fields(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        const f = fields(readFileSync(`/proc/${e}/stat`, 'utf8'));
        if (Number(f[1]) === pid) ticks += Number(f[11]) + Number(f[12]);
      } catch {
        // ended meanwhile
      }
    }
    return ticks / 100;
  } catch {
    return 0;
  }
}
const cpuNow = (): Cpu => Object.fromEntries(NODES.map((n) => [n, serverCpu(n)]));
const cpuSince = (a: Cpu, b: Cpu): Cpu => Object.fromEntries(Object.keys(b).map((k) => [k, b[k]! - (a[k] ?? 0)]));
interface Run { label: string; ingest: Phase; worker: Phase }

/** Request bodies: each tenant's journeys, 100 events a batch, tenants interleaved. */
function bodies(): { tenant: number; body: string }[] {
  const perTenant = Math.floor(EVENTS / TENANTS);
  const out: { tenant: number; body: string }[][] = [];
  for (let t = 0; t < TENANTS; t++) {
    const events = journeys({ events: perTenant, touches: 4, conversionRate: 0.2, seed: 900 + t }).map((e) => ({
      idempotency_key: randomUUID(),
      event_type: e.type,
      event_timestamp: e.at.toISOString(),
      session_id: e.session,
      channel: e.channel,
      ...(e.type === 'conversion' ? { conversion_value_cents: e.value, currency: 'USD', order_id: `order-${randomUUID()}` } : {}),
    }));
    const mine: { tenant: number; body: string }[] = [];
    for (let i = 0; i < events.length; i += BATCH) mine.push({ tenant: t, body: JSON.stringify({ events: events.slice(i, i + BATCH) }) });
    out.push(mine);
  }
  const interleaved: { tenant: number; body: string }[] = [];
  for (let i = 0; out.some((m) => i < m.length); i++) for (const m of out) if (m[i]) interleaved.push(m[i]!);
  return interleaved;
}

async function counters(su: pg.Client): Promise<{ single: number; multi: number } | undefined> {
  const r = await su.query<{ s: string; m: string }>(
    `SELECT query_execution_single_shard::text AS s, query_execution_multi_shard::text AS m FROM citus_stat_counters WHERE name = current_database()`).catch(() => undefined);
  return r?.rows[0] ? { single: Number(r.rows[0].s), multi: Number(r.rows[0].m) } : undefined;
}

async function measure(label: string, db: TestDatabase, citus: boolean): Promise<Run> {
  const su = await superClient(db);
  if (citus) await su.query(`SELECT citus_stat_counters_reset(oid) FROM pg_database WHERE datname = current_database()`);
  const owner = db.ownerPool({ max: 1 });
  const keys: string[] = [];
  for (let t = 0; t < TENANTS; t++) keys.push((await createTenant(owner, { name: `Bench ${t}`, email: `ops+${t}@bench.example` })).api_key);
  await owner.end();
  const work = bodies();
  const server = await startBenchServer(db);
  const c0 = citus ? await counters(su) : undefined;
  const p0 = cpuNow();
  const api0 = await server.cpuSeconds();
  let next = 0;
  let failure: string | undefined;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (!failure) {
      const item = work[next++];
      if (!item) return;
      const res = await fetch(new URL('/api/v1/events/batch', server.address), {
        method: 'POST', headers: { authorization: `Bearer ${keys[item.tenant]}`, 'content-type': 'application/json' }, body: item.body,
      });
      if (res.status !== 200 && res.status !== 201 && res.status !== 207) failure = `HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`;
      else await res.arrayBuffer();
    }
  }));
  const ingestSeconds = (performance.now() - t0) / 1000;
  const ingestCpu = { ...cpuSince(p0, cpuNow()), api: (await server.cpuSeconds()) - api0 };
  await server.stop();
  const stored = (await countByStatus(su)).pending;
  const c1 = citus ? await counters(su) : undefined;
  const ingest: Phase = { events: stored, seconds: ingestSeconds, cpu: ingestCpu, ...(failure ? { error: failure } : {}),
    ...(c0 && c1 ? { single: c1.single - c0.single, multi: c1.multi - c0.multi } : {}) };
  await su.query('VACUUM ANALYZE attribution_events');

  let errorSeen: string | undefined;
  // The first error the workers log (the message of the error, or of its cause).
  const note = (o: object, m?: string) => {
    const err = (o as { err?: { message?: string; cause?: { message?: string } } }).err;
    errorSeen ??= `${m ?? ''}: ${err?.cause?.message ?? err?.message ?? JSON.stringify(o).slice(0, 300)}`;
  };
  const log = { debug() {}, info() {}, warn: note, error: note };
  const workers = Array.from({ length: WORKERS }, () => new Worker(db, { ...DEFAULT_WORKER_OPTIONS, concurrency: 1, batchSize: BATCH, pollMs: 20 }, log));
  const w0 = performance.now();
  const q0 = cpuNow();
  let stall: string | undefined;
  try {
    await Promise.all(workers.map((w) => w.start()));
    let last = stored;
    let lastChange = performance.now();
    for (;;) {
      const { pending } = await countByStatus(su);
      if (pending === 0) break;
      if (pending < last) { last = pending; lastChange = performance.now(); }
      if (performance.now() - lastChange > STALL_MS) { stall = `no progress for ${STALL_MS / 1000} s with ${pending} pending${errorSeen ? `; the worker logged: ${errorSeen}` : ''}`; break; }
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (error) {
    stall = `the worker did not start: ${(error as Error).message}`;
  }
  const workerSeconds = (performance.now() - w0) / 1000;
  const workerCpu = cpuSince(q0, cpuNow());
  await Promise.all(workers.map((w) => w.stop().catch(() => {})));
  const { processed } = await countByStatus(su);
  const c2 = citus ? await counters(su) : undefined;
  const worker: Phase = { events: processed, seconds: workerSeconds, cpu: workerCpu, ...(stall ? { error: stall } : {}),
    ...(c1 && c2 ? { single: c2.single - c1.single, multi: c2.multi - c1.multi } : {}) };
  await su.end();
  return { label, ingest, worker };
}

const rate = (p: Phase) => Math.round(p.events / p.seconds);
const share = (p: Phase) => p.single === undefined ? '' : `   single-shard ${p.single.toLocaleString('en-US')} / multi-shard ${p.multi!.toLocaleString('en-US')} statements = ${((100 * p.single) / Math.max(1, p.single + p.multi!)).toFixed(1)} % single-shard`;
/** CPU milliseconds per 1,000 events of each server (1 node: the coordinator's server is the one node). */
const cpuLine = (r: Run, p: Phase) => !p.cpu || p.events === 0 ? '' :
  `\n           cpu per 1,000 events: ${Object.entries(p.cpu).filter(([k, v]) => v > 0 || k === 'api').map(([k, v]) => `${r.label === '1 node' && k === 'coord' ? 'postgres' : k} ${Math.round((1e6 * v) / p.events)} ms`).join(', ')}`;
const line = (what: string, r: Run, p: Phase) =>
  `${what.padEnd(10)} ${r.label.padEnd(8)} ${String(rate(p)).padStart(7)} events/s  (${p.events.toLocaleString('en-US')} events in ${p.seconds.toFixed(1)} s)${share(p)}${p.error ? `\n           ${r.label}: NOT MEASURED: ${p.error}` : cpuLine(r, p)}`;

try {
  console.log(`citus bench: ${TENANTS} tenants, ${EVENTS.toLocaleString('en-US')} events (batches of ${BATCH}, ${CONCURRENCY} concurrent requests), ${WORKERS} workers; ` +
    `${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} at start`);
  // 1 node: plain tables on the coordinator (a database without the extension, migrated to head).
  const single = await createTestDatabase('empty');
  const m = new SchemaMigrator(single.ownerPool({ max: 2 }), { roles: single.roles });
  await m.upgrade('head');
  await m.close();
  const one = await measure('1 node', single, false);
  await single.drop();
  const cluster = await createTestDatabase('head');
  const su = await superClient(cluster);
  await su.query(`ALTER SYSTEM SET citus.enable_stat_counters = on`);
  await su.query(`SELECT pg_reload_conf()`);
  const shards = (await su.query<{ n: string; w: string }>(`SELECT count(*)::text AS n, count(DISTINCT nodeport)::text AS w FROM pg_dist_shard JOIN pg_dist_shard_placement USING (shardid) WHERE logicalrelid = 'attribution_events'::regclass`)).rows[0]!;
  await su.end();
  const two = await measure('cluster', cluster, true);
  await cluster.drop();
  console.log(`cluster: coordinator + 2 workers, attribution_events in ${shards.n} shards on ${shards.w} workers`);
  console.log(line('ingestion', one, one.ingest));
  console.log(line('ingestion', two, two.ingest));
  console.log(line('worker', one, one.worker));
  console.log(line('worker', two, two.worker));
  if (!one.ingest.error && !two.ingest.error) console.log(`ratio cluster / 1 node: ingestion ${(rate(two.ingest) / rate(one.ingest)).toFixed(2)}` +
    (!one.worker.error && !two.worker.error ? `, worker ${(rate(two.worker) / rate(one.worker)).toFixed(2)}` : ''));
  console.log(`load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
} finally {
  stopCluster();
}
process.exit(0);
