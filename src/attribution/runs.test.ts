import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { loadConfig } from '../config.js';
import { withTenant } from '../db/tenant-context.js';
import { buildApp, type App } from '../http/app.js';
import { createTenant } from '../tenants/tenants.js';
import { runCli } from '../testing/cli.js';
import { createTestDatabase, type TestDatabase } from '../testing/db.js';
import { runModel } from './run.js';
import { finishRun, insertRun } from './runs.js';
import { insertEvents, type FixtureEvent } from './test-fixtures.js';

/**
 * Which run a report shows: the channel report names the runs that wrote its allocations (id, time,
 * parameters); a later run that found no conversions, did not converge or failed never becomes the
 * model's "latest" run, and is still listed with its status.
 */
let db: TestDatabase;
let app: App;
let pool: pg.Pool;
let tenant: string;
let key: string;
let good: string;

const T0 = new Date('2026-04-01T00:00:00Z');
const at = (days: number) => new Date(T0.getTime() + days * 86_400_000);
const get = (url: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ tenant_id: tenant, api_key: key } = await createTenant(owner, { name: 'Runs', email: 'ops@runs.example' }));
  await owner.end();
  pool = db.appPool({ max: 2 });
  const events: FixtureEvent[] = [];
  const channels = ['email', 'facebook_paid', 'google_search_paid'];
  for (let s = 0; s < 24; s++) {
    const session = randomUUID();
    for (let t = 0; t < 1 + (s % 3); t++) events.push({ type: 'touchpoint', channel: channels[(s + t) % 3]!, session, at: at(1 + (s % 8) + t * 0.1) });
    if (s < 16) events.push({ type: 'conversion', channel: 'direct', session, at: at(1.5 + (s % 8)), value: 1000 + s });
  }
  await insertEvents(pool, tenant, events);
  const first = await runModel(pool, tenant, { model: 'markov', from: at(0), to: at(30), trigger: 'cli', markov: { bootstrap: 20, seed: 7 } });
  assert.equal(first.status, 'succeeded');
  good = first.runId;
  // Later: a run over a window without conversions, one that did not converge, one that failed.
  const empty = await runModel(pool, tenant, { model: 'markov', from: at(100), to: at(101), trigger: 'schedule' });
  assert.equal(empty.conversions, 0);
  for (const status of ['not_converged', 'failed'] as const) {
    await withTenant(pool, tenant, async (c) => {
      const id = await insertRun(c, { tenantId: tenant, model: 'markov', modelVersion: 'markov-v1', from: at(0), to: at(30), trigger: 'cli', parameters: {} });
      await finishRun(c, tenant, id, status === 'failed' ? { status, error: 'it broke' } : { status, conversions: 16, allocations: 0 });
    });
  }
  app = await buildApp({ db, config: loadConfig({}), logger: process.env.DEBUG_RUNS ? { level: 'error' } : false });
});
after(async () => {
  await app?.close();
  await pool?.end();
  await db?.drop();
});

test('the channel report names the run it shows: id, time, window, parameters, its rows', async () => {
  const res = await get(`/api/v1/attribution/channels?model=markov&from=${at(0).toISOString()}&to=${at(30).toISOString()}`);
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json();
  assert.equal(body.runs.length, 1, JSON.stringify(body.runs));
  const [run] = body.runs;
  assert.equal(run.id, good);
  assert.equal(run.status, 'succeeded');
  assert.equal(run.window_from, '2026-04-01T00:00:00.000000Z');
  assert.deepEqual(run.parameters.markov.bootstrap, 20);
  assert.match(run.finished_at, /^\d{4}-/);
  assert.ok(run.allocation_rows > 0);
  assert.equal(body.allocation_rows_without_run, 0);
  // The worker's per-conversion rows name no run.
  const linear = (await get(`/api/v1/attribution/channels?model=linear&from=${at(0).toISOString()}&to=${at(30).toISOString()}`)).json();
  assert.deepEqual([linear.runs, linear.allocation_rows_without_run], [[], 0], 'nothing computed: no run, no rows');
});

test('a later run that found no conversions, did not converge or failed never hides the last good one as latest; all are listed', async () => {
  const markov = (await get('/api/v1/attribution/models')).json().models.find((m: { model: string }) => m.model === 'markov');
  assert.equal(markov.latest_run.id, good);
  assert.equal(markov.latest_run.status, 'succeeded');
  assert.deepEqual(
    markov.recent_runs.map((r: { status: string; conversions: number | null }) => [r.status, r.conversions]),
    [['failed', null], ['not_converged', 16], ['succeeded', 0], ['succeeded', 16]],
    'newest first, whatever their status',
  );
  assert.equal(markov.recent_runs.at(-1).id, good);

  const env = { DATABASE_URL: db.url };
  const show = await runCli(['attribution', 'show', '--tenant', tenant], { env });
  assert.equal(show.code, 0, show.stderr);
  const out = JSON.parse(show.stdout);
  assert.deepEqual(out.latest_runs.map((r: { model: string; id: string }) => [r.model, r.id]), [['markov', good]]);
  assert.equal(out.recent_runs.length, 4);

  const report = await runCli(['attribution', 'report', '--tenant', tenant, '--model', 'markov', '--from', '2026-04-01', '--to', '2026-05-01'], { env });
  assert.equal(report.code, 0, report.stderr);
  const r = JSON.parse(report.stdout);
  assert.deepEqual(r.runs.map((x: { id: string }) => x.id), [good]);
  assert.equal(r.from, '2026-04-01T00:00:00.000000Z');
  assert.ok(r.channels.length > 0);
  const bad = await runCli(['attribution', 'report', '--tenant', tenant, '--model', 'nope', '--from', '2026-04-01', '--to', '2026-05-01'], { env });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--model must be one of/);
});

test('the progress of a run covers model fitting (bootstrap replicates, NUTS iterations), then the writes', async () => {
  const record = () => {
    const bars: { label: string; total: number; done: number; stopped: boolean }[] = [];
    return {
      bars,
      progress: {
        start(label: string, total: number) {
          const bar = { label, total, done: 0, stopped: false };
          bars.push(bar);
          return { tick: (n: number) => void (bar.done += n), stop: () => void (bar.stopped = true) };
        },
      },
    };
  };
  const markov = record();
  await runModel(pool, tenant, { model: 'markov', from: at(0), to: at(30), trigger: 'cli', markov: { bootstrap: 30, seed: 3 }, progress: markov.progress });
  assert.deepEqual(markov.bars.map((b) => [b.label, b.total, b.done, b.stopped]), [
    ['markov fitting (bootstrap replicates)', 30, 30, true],
    ['markov allocations', 16, 16, true],
  ]);
  const bayes = record();
  await runModel(pool, tenant, { model: 'bayesian', from: at(0), to: at(30), trigger: 'cli', bayesian: { chains: 4, warmup: 150, draws: 100, seed: 5 }, progress: bayes.progress });
  assert.deepEqual(bayes.bars[0], { label: 'bayesian fitting (NUTS iterations)', total: 4 * 250, done: 4 * 250, stopped: true });
});
