// `npm run bench -- exports`: exporting BENCH_EXPORT_ROWS allocations (default 1,000,000) of one tenant, next to
// `COPY (the same query) TO STDOUT` of the same rows in the same run on the same database.
//
// - skeldir: the installed command, `skeldir export allocations --tenant T --format csv|ndjson --out /dev/null`, in a
//   child process (compiled dist/, as users run it), which reports its own peak RSS (getrusage maxrss) at exit;
//   once for a 1,000-row period too, so the figure can be read as "memory does not grow with the export".
// - COPY: pg-copy-streams reading `COPY (SELECT <the export's columns> … ORDER BY created_at, id) TO STDOUT (FORMAT
//   csv, HEADER)` as the application role in the tenant's context, bytes counted and dropped: the server's own
//   encoder and one statement, the ceiling a keyset export of the same rows can approach.
// Another tenant holds a tenth as many rows, so the tenant predicate has something to exclude.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { to as copyTo } from 'pg-copy-streams';
import { withTenant } from '../src/db/tenant-context.js';
import { DATASETS } from '../src/exports/datasets.js';
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

/** The installed CLI in a child process; it prints its peak RSS from an exit hook loaded with --import. */
function cli(args: string[]): Promise<{ seconds: number; rows: number; maxRssMiB: number }> {
  const hook = 'data:text/javascript,' + encodeURIComponent(`process.on('exit', () => process.stderr.write('maxrss_kib=' + process.resourceUsage().maxRSS + '\\n'))`);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['--import', hook, join(ROOT, 'bin', 'skeldir.js'), ...args], {
      env: { ...process.env, DATABASE_URL: db.url, SKELDIR_FROM_SOURCE: '0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      const rows = Number(/exported (\d+)/.exec(err)?.[1]);
      const rss = Number(/maxrss_kib=(\d+)/.exec(err)?.[1]);
      if (code !== 0 || !rows) reject(new Error(`skeldir ${args.join(' ')} exited ${code}: ${err}`));
      else resolve({ seconds, rows, maxRssMiB: rss / 1024 });
    });
  });
}

async function copy(): Promise<{ seconds: number; bytes: number }> {
  const d = DATASETS.allocations;
  const sql = `COPY (SELECT ${d.columns.map((c) => c.sql).join(', ')} FROM ${d.from} WHERE ${d.tenantColumn} = '${tenant}'
                ORDER BY ${d.time}, ${d.id}) TO STDOUT WITH (FORMAT csv, HEADER)`;
  const pool = db.appPool({ max: 1 });
  try {
    const started = performance.now();
    let bytes = 0;
    await withTenant(pool, tenant, (c) =>
      pipeline(c.query(copyTo(sql)), new Writable({ write: (chunk: Buffer, _e, cb) => ((bytes += chunk.length), cb()) })),
    );
    return { seconds: (performance.now() - started) / 1000, bytes };
  } finally {
    await pool.end();
  }
}

const rate = (rows: number, s: number) => `${Math.round(rows / s).toLocaleString('en')} rows/s`;
const small = await cli(['export', 'allocations', '--tenant', tenant, '--format', 'csv', '--to', '2026-01-01T00:23:20Z', '--out', '/dev/null']);
console.log(`skeldir export, ${small.rows.toLocaleString('en')} rows (csv): ${small.seconds.toFixed(2)} s, peak RSS ${small.maxRssMiB.toFixed(0)} MiB (process start-up included)`);
const results: Record<string, { seconds: number; rows: number; maxRssMiB: number }> = {};
for (const format of ['csv', 'ndjson']) {
  const r = await cli(['export', 'allocations', '--tenant', tenant, '--format', format, '--out', '/dev/null']);
  results[format] = r;
  console.log(`skeldir export, ${r.rows.toLocaleString('en')} allocations (${format}): ${r.seconds.toFixed(2)} s, ${rate(r.rows, r.seconds)}, peak RSS ${r.maxRssMiB.toFixed(0)} MiB`);
}
const c = await copy();
console.log(`COPY … TO STDOUT (csv), the same ${ROWS.toLocaleString('en')} rows: ${c.seconds.toFixed(2)} s, ${rate(ROWS, c.seconds)}, ${(c.bytes / 2 ** 20).toFixed(0)} MiB`);
console.log(`skeldir csv export at ${((c.seconds / results.csv!.seconds) * 100).toFixed(0)} % of COPY's speed (process start-up included); peak RSS ${results.csv!.maxRssMiB.toFixed(0)} MiB for ${ROWS.toLocaleString('en')} rows vs ${small.maxRssMiB.toFixed(0)} MiB for ${small.rows.toLocaleString('en')}`);

await su.end();
await db.drop();
await stopTestServer();
