// `npm run bench -- reconciliation`: the reconciliation statement on the web bench's tenant (bench/web-seed.ts,
// BENCH_EVENTS events, default 200,000), over the last 30 days, for last_touch and linear, with the planner's
// default join methods and with RECONCILIATION_SETTINGS (nested loops ruled out), interleaved BENCH_RUNS times
// (default 7) so both see the same machine; prints the medians of planning and execution time (EXPLAIN ANALYZE)
// and the ratio of the two settings.
import { BENCH_TENANT, seedWebTenant } from './web-seed.js';
import { RECONCILIATION_SETTINGS, RECONCILIATION_SQL, reconciliationParams } from '../src/reconciliation/report.js';
import { createTestDatabase, stopTestServer, superClient } from '../src/testing/db.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 200_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const db = await createTestDatabase('head');
const su = await superClient(db);
await seedWebTenant(su, EVENTS);
const day = new Date().toISOString().slice(0, 10);
const to = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000);
const from = new Date(Date.parse(`${day}T00:00:00Z`) - 29 * 86_400_000);
const pool = db.appPool({ max: 1 });
const c = await pool.connect();
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const variants = {
  default: `SET LOCAL work_mem = '64MB'`,
  settings: Object.entries(RECONCILIATION_SETTINGS).map(([k, v]) => `SET LOCAL ${k} = '${v}'`).join('; '),
};
try {
  for (const model of ['last_touch', 'linear']) {
    const res = { default: { plan: [] as number[], exec: [] as number[] }, settings: { plan: [] as number[], exec: [] as number[] } };
    for (let i = 0; i < RUNS; i++) {
      for (const k of ['default', 'settings'] as const) {
        await c.query(`BEGIN; SELECT set_config('app.current_tenant_id', '${BENCH_TENANT}', true); ${variants[k]}`);
        const r = await c.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${RECONCILIATION_SQL}`, reconciliationParams(BENCH_TENANT, from, to, model, 'USD'));
        await c.query('COMMIT');
        res[k].plan.push(r.rows[0]['QUERY PLAN'][0]['Planning Time']);
        res[k].exec.push(r.rows[0]['QUERY PLAN'][0]['Execution Time']);
      }
    }
    for (const [k, v] of Object.entries(res)) {
      console.log(`${EVENTS.toLocaleString('en')} events, ${model}, ${k.padEnd(8)}: planning median ${median(v.plan).toFixed(0)} ms, execution median ${median(v.exec).toFixed(0)} ms (${v.exec.map((x) => x.toFixed(0)).join(' ')})`);
    }
    console.log(`  ${model}: RECONCILIATION_SETTINGS at ${((median(res.settings.exec) / median(res.default.exec)) * 100).toFixed(0)} % of the default plan's execution time`);
  }
} finally {
  c.release();
  await pool.end();
  await su.end();
  await db.drop();
  await stopTestServer();
}
