// The exports benchmark's peer, in a process of its own (bench/exports.bench.ts runs it) so its peak RSS is
// measured as the export's is: `COPY (the export's query) TO STDOUT (FORMAT csv, HEADER)` read by the same driver
// (pg-copy-streams) as the application role in the tenant's context, bytes counted and dropped. Prints
// `copied <bytes> bytes in <seconds> s` on stdout; peak RSS comes from the parent's exit hook.
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { to as copyTo } from 'pg-copy-streams';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/database.js';
import { withTenant } from '../src/db/tenant-context.js';
import { DATASETS } from '../src/exports/datasets.js';

const tenant = process.env.BENCH_TENANT!;
const d = DATASETS.allocations;
const sql = `COPY (SELECT ${d.columns.map((c) => c.sql).join(', ')} FROM ${d.from} WHERE ${d.tenantColumn} = '${tenant}'
              ORDER BY ${d.time}, ${d.id}) TO STDOUT WITH (FORMAT csv, HEADER)`;
const db = await openDatabase(loadConfig());
const pool = db.appPool({ max: 1 });
const started = performance.now();
let bytes = 0;
await withTenant(pool, tenant, (c) => pipeline(c.query(copyTo(sql)), new Writable({ write: (chunk: Buffer, _e, cb) => ((bytes += chunk.length), cb()) })));
const seconds = (performance.now() - started) / 1000;
await pool.end();
await db.close();
process.stdout.write(`copied ${bytes} bytes in ${seconds} s\n`);
