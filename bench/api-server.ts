// The API under benchmark, in a child process of its own so that its CPU is measured apart from the
// load generator's (bench/ingestion.bench.ts, bench/collect.bench.ts). It logs as in production (one
// JSON line per request, redaction on), written to /dev/null so the figure is the server's cost, not
// the terminal's. No rate limits: a benchmark is one tenant on one address pushing as hard as it can,
// and the default budget (SKELDIR_RATE_LIMIT_PER_MINUTE, 6,000 requests a minute per tenant) would cap
// it at 100 requests/s. BENCH_SERVER_PROF=<dir>: a CPU profile of each phase (V8's sampling profiler,
// as --cpu-prof), started and stopped around it, written to <dir>/<phase>.cpuprofile.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface BenchServer {
  address: URL;
  /** The server process's user + system CPU so far, in seconds. */
  cpuSeconds(): Promise<number>;
  /** The same, user and system apart, in seconds. */
  cpu(): Promise<{ user: number; system: number }>;
  /** POST /events' group commit so far: transactions and the events they wrote (skeldir_ingest_group_events). */
  groups(): Promise<{ transactions: number; events: number }>;
  /** Starts or stops the CPU profile of a phase (nothing without BENCH_SERVER_PROF). */
  profile(what: 'start' | 'stop', phase: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startBenchServer(db: { url: string; roles: unknown }): Promise<BenchServer> {
  const server = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_ROLE: 'api-server', BENCH_DATABASE_URL: db.url, BENCH_ROLES: JSON.stringify(db.roles) },
  });
  const address = new URL(await new Promise<string>((resolve) => server.once('message', (m: { address: string }) => resolve(m.address))));
  const ask = <T>(message: unknown) =>
    new Promise<T>((resolve) => {
      server.once('message', (m: T) => resolve(m));
      server.send(message as string);
    });
  return {
    address,
    cpu: async () => {
      const { cpu } = await ask<{ cpu: NodeJS.CpuUsage }>('cpu');
      return { user: cpu.user / 1e6, system: cpu.system / 1e6 };
    },
    cpuSeconds: async () => {
      const { cpu } = await ask<{ cpu: NodeJS.CpuUsage }>('cpu');
      return (cpu.user + cpu.system) / 1e6;
    },
    groups: async () => (await ask<{ groups: { transactions: number; events: number } }>('groups')).groups,
    profile: async (what, phase) => {
      if (process.env.BENCH_SERVER_PROF) await ask({ profile: what, phase });
    },
    stop: async () => {
      server.send('stop');
      await new Promise((r) => server.once('exit', r));
    },
  };
}

async function serve(): Promise<void> {
  const { databaseAt } = await import('../src/db/database.js');
  const { buildApp } = await import('../src/http/app.js');
  const { loadConfig } = await import('../src/config.js');
  const { default: pino } = await import('pino');
  const db = databaseAt(process.env.BENCH_DATABASE_URL!, JSON.parse(process.env.BENCH_ROLES!));
  const app = await buildApp({
    db,
    config: loadConfig({}),
    logger: { stream: pino.destination({ dest: '/dev/null', sync: true }) },
    rateLimit: { max: 0 },
    collectRateLimit: { perKey: 0, perAddress: 0 },
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  process.send!({ address });
  const { Session } = await import('node:inspector/promises');
  const inspector = process.env.BENCH_SERVER_PROF ? new Session() : undefined;
  if (inspector) {
    inspector.connect();
    await inspector.post('Profiler.enable');
  }
  process.on('message', async (m: unknown) => {
    if (m === 'cpu') process.send!({ cpu: process.cpuUsage() });
    if (m === 'groups') {
      const { values } = await app.metrics.ingestGroup.get();
      const of = (name: string) => values.find((v) => v.metricName === name)?.value ?? 0;
      process.send!({ groups: { transactions: of('skeldir_ingest_group_events_count'), events: of('skeldir_ingest_group_events_sum') } });
    }
    if (inspector && typeof m === 'object' && m && 'profile' in m) {
      const { profile, phase } = m as { profile: 'start' | 'stop'; phase: string };
      if (profile === 'start') await inspector.post('Profiler.start');
      else {
        const { writeFileSync } = await import('node:fs');
        const { profile: data } = await inspector.post('Profiler.stop');
        writeFileSync(`${process.env.BENCH_SERVER_PROF}/${phase}.cpuprofile`, JSON.stringify(data));
      }
      process.send!({ profiled: profile });
    }
    if (m === 'stop') {
      await app.close();
      process.exit(0);
    }
  });
}

if (process.env.BENCH_ROLE === 'api-server') await serve();
