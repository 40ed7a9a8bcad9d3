// `npm run bench -- exports`: exporting BENCH_EXPORT_ROWS allocations (default 1,000,000) of one tenant, next to
// `COPY (the same query) TO STDOUT` of the same rows in the same run on the same database.
//
// - skeldir: the installed command, `skeldir export allocations --tenant T --format csv|ndjson --out /dev/null`, in a
//   child process (compiled dist/, as users run it), which reports its own peak RSS (getrusage maxrss) at exit;
//   once for 1,000- and 100,000-row periods too, so the figures can be read as "memory does not grow with the export".
// - COPY (bench/exports-copy.ts, a process of its own, peak RSS measured the same way): pg-copy-streams reading
//   `COPY (SELECT <the export's columns> … ORDER BY created_at, id) TO STDOUT (FORMAT csv, HEADER)` as the
//   application role in the tenant's context, bytes counted and dropped: the server's own encoder and one
//   statement, the ceiling a keyset export of the same rows can approach.
// Another tenant holds a tenth as many rows, so the tenant predicate has something to exclude.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createTestDatabase, stopTestServer, superClient } from '../src/testing/db.js';
import { ROOT } from '../src/testing/cli.js';
import { insertTenants } from '../src/worker/test-fixtures.js';

const ROWS = Number(process.env.BENCH_EXPORT_ROWS ?? 1_000_000);
const PER_CONVERSION = 5; // the five rule models, as the worker writes them

const db = await createTestDatabase('head');
const su = await superClient(db);
const [tenant, other] = (await insertTenants(su, 2)) as [string, string];

async function seed(t: string, allocations: number): Promise<void> {
  const conversions = Math.ceil(allocations / PER_CONVERSION);
  for (let from = 0; from < conversions; from += 50_000) {
    const n = Math.min(50_000, conversions - from);
    await su.query(
      `WITH ev AS (
         INSERT INTO attribution_events (tenant_id, event_type, channel, session_id, event_timestamp, occurred_at, revenue_cents,
           conversion_value_cents, currency, idempotency_key, raw_payload, processing_status, processed_at)
         SELECT $1::uuid, 'conversion', 'email', gen_random_uuid(), ts, ts, 0, 10000, 'USD', $1::text || ':ext:' || gen_random_uuid(), '{}', 'processed', ts
           FROM (SELECT timestamptz '2026-01-01' + (($2::int + g) * interval '7 seconds') AS ts FROM generate_series(1, $3::int) g) s
         RETURNING id, event_timestamp)
       INSERT INTO attribution_allocations (tenant_id, event_id, channel_code, allocated_revenue_cents, allocation_ratio, model_version,
         model_type, confidence_score, created_at, model_metadata)
       SELECT $1::uuid, ev.id, (ARRAY['email','organic','direct','referral','facebook_paid'])[m], 2000, 0.2, '1',
              (ARRAY['first_touch','last_touch','linear','time_decay','position_based'])[m], 0.8, ev.event_timestamp, '{}'
         FROM ev CROSS JOIN generate_series(1, ${PER_CONVERSION}) m`,
      [t, from, n],
    );
  }
  await su.query('ANALYZE attribution_allocations; ANALYZE attribution_events');
}

const t0 = performance.now();
await seed(tenant, ROWS);
await seed(other, Math.ceil(ROWS / 10));
console.log(`seeded ${ROWS.toLocaleString('en')} allocations (+ ${Math.ceil(ROWS / 10).toLocaleString('en')} of another tenant) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

/** A node process (the installed CLI, or the COPY peer) that prints its peak RSS from an exit hook loaded with --import. */
function child(argv: string[], env: Record<string, string> = {}): Promise<{ seconds: number; stdout: string; stderr: string; maxRssMiB: number }> {
  const hook = 'data:text/javascript,' + encodeURIComponent(`process.on('exit', () => process.stderr.write('maxrss_kib=' + process.resourceUsage().maxRSS + '\\n'))`);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const proc = spawn(process.execPath, ['--import', hook, ...argv], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: db.url, SKELDIR_FROM_SOURCE: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (err += d));
    proc.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      const rss = Number(/maxrss_kib=(\d+)/.exec(err)?.[1]);
      if (code !== 0 || !rss) reject(new Error(`${argv.join(' ')} exited ${code}: ${err}`));
      else resolve({ seconds, stdout: out, stderr: err, maxRssMiB: rss / 1024 });
    });
  });
}

async function cli(args: string[], node: string[] = []): Promise<{ seconds: number; rows: number; maxRssMiB: number }> {
  const r = await child([...node, join(ROOT, 'bin', 'skeldir.js'), ...args]);
  const rows = Number(/exported (\d+)/.exec(r.stderr)?.[1]);
  if (!rows) throw new Error(`skeldir ${args.join(' ')}: ${r.stderr}`);
  return { seconds: r.seconds, rows, maxRssMiB: r.maxRssMiB };
}

async function copy(): Promise<{ seconds: number; copySeconds: number; bytes: number; maxRssMiB: number }> {
  const r = await child(['--import', 'tsx', join(ROOT, 'bench', 'exports-copy.ts')], { BENCH_TENANT: tenant });
  const m = /copied (\d+) bytes in ([\d.]+) s/.exec(r.stdout);
  if (!m) throw new Error(`COPY peer: ${r.stdout} ${r.stderr}`);
  return { seconds: r.seconds, copySeconds: Number(m[2]), bytes: Number(m[1]), maxRssMiB: r.maxRssMiB };
}

const rate = (rows: number, s: number) => `${Math.round(rows / s).toLocaleString('en')} rows/s`;
// 5 allocations every 7 s from 2026-01-01: these ends cut about 1,000 and 100,000 rows.
for (const to of ['2026-01-01T00:23:20Z', '2026-01-02T14:53:20Z']) {
  const r = await cli(['export', 'allocations', '--tenant', tenant, '--format', 'csv', '--to', to, '--out', '/dev/null']);
  console.log(`skeldir export, ${r.rows.toLocaleString('en')} allocations (csv): ${r.seconds.toFixed(2)} s, ${rate(r.rows, r.seconds)}, peak RSS ${r.maxRssMiB.toFixed(0)} MiB (process start-up included)`);
}
const results: Record<string, { seconds: number; rows: number; maxRssMiB: number }> = {};
for (const format of ['csv', 'ndjson']) {
  const r = await cli(['export', 'allocations', '--tenant', tenant, '--format', format, '--out', '/dev/null']);
  results[format] = r;
  console.log(`skeldir export, ${r.rows.toLocaleString('en')} allocations (${format}): ${r.seconds.toFixed(2)} s, ${rate(r.rows, r.seconds)}, peak RSS ${r.maxRssMiB.toFixed(0)} MiB`);
}
// Peak RSS alone cannot tell a leak from a heap V8 lets grow before it collects: the whole export again with the
// old generation capped at 48 MiB, which fails (heap out of memory) if anything held grows with the rows.
const capped = await cli(['export', 'allocations', '--tenant', tenant, '--format', 'csv', '--out', '/dev/null'], ['--max-old-space-size=48']);
console.log(`skeldir export, ${capped.rows.toLocaleString('en')} allocations (csv) with --max-old-space-size=48: ${capped.seconds.toFixed(2)} s, ${rate(capped.rows, capped.seconds)}, peak RSS ${capped.maxRssMiB.toFixed(0)} MiB`);
const c = await copy();
// The peer runs under tsx (its start-up compiles TypeScript), so its rate is of the COPY statement alone: the
// comparison favours COPY by the export's own start-up (~0.3 s).
console.log(`COPY … TO STDOUT (csv), the same ${ROWS.toLocaleString('en')} rows, own process: ${c.copySeconds.toFixed(2)} s in COPY (${c.seconds.toFixed(2)} s with start-up), ${rate(ROWS, c.copySeconds)}, ${(c.bytes / 2 ** 20).toFixed(0)} MiB of CSV, peak RSS ${c.maxRssMiB.toFixed(0)} MiB (tsx loaded)`);
console.log(`skeldir csv export at ${((c.copySeconds / results.csv!.seconds) * 100).toFixed(0)} % of COPY's speed (start-up counted against the export only); peak RSS ${results.csv!.maxRssMiB.toFixed(0)} MiB vs COPY's ${c.maxRssMiB.toFixed(0)} MiB`);

await su.end();
await db.drop();
await stopTestServer();
