import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { runCli } from '../testing/cli.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { attributeConversion } from './entry.js';
import { MODEL_TYPES, MODEL_VERSIONS, type ModelType } from './models.js';
import { runModel } from './run.js';
import { finishRun, insertRun } from './runs.js';
import { schedulePass } from './scheduler.js';
import { validateSettingsChange, writeSettings } from './settings.js';
import { parseInstant } from './cli.js';
import { createTenant, insertEvents, type FixtureEvent } from './test-fixtures.js';
import { loadWindow } from './window.js';

let db: TestDatabase;
let app: pg.Pool;
let owner: pg.Pool;
let tenant: string;
let other: string;

const T0 = new Date('2026-03-01T00:00:00Z');
const DAY = 86_400_000;
const at = (days: number) => new Date(T0.getTime() + days * DAY);
const FROM = at(0);
const TO = at(10);
const CHANNELS = ['email', 'facebook_paid', 'google_search_paid', 'organic', 'referral'];

/** A deterministic population: 60 converting sessions and 40 non-converting ones, spread over ten days. */
function population(): FixtureEvent[] {
  const events: FixtureEvent[] = [];
  let k = 0;
  for (let s = 0; s < 100; s++) {
    const session = randomUUID();
    const touches = 1 + (s % 4);
    const start = 0.5 + (s % 9);
    for (let t = 0; t < touches; t++) events.push({ type: 'touchpoint', channel: CHANNELS[(s * 7 + t * 3) % CHANNELS.length]!, session, at: at(start + t * 0.05) });
    if (s < 60) events.push({ type: 'conversion', channel: 'direct', session, at: at(start + touches * 0.05), value: 1000 + ((k++ * 37) % 5000) });
  }
  return events;
}

interface Row {
  id: string;
  event_id: string;
  model_type: string;
  channel_code: string;
  cents: number;
  ratio: string;
  confidence: string;
  lower: number | null;
  upper: number | null;
  r_hat: string | null;
  ess: number | null;
  model_version: string;
  model_metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

async function allocations(tenantId = tenant, model?: string): Promise<Row[]> {
  return withTenant(app, tenantId, async (c) =>
    (
      await c.query<Row>(
        `SELECT id, event_id, model_type, channel_code, allocated_revenue_cents AS cents, allocation_ratio::text AS ratio,
                confidence_score::text AS confidence, credible_interval_lower_cents AS lower, credible_interval_upper_cents AS upper,
                convergence_r_hat::text AS r_hat, effective_sample_size AS ess, model_version, model_metadata, created_at, updated_at
         FROM attribution_allocations WHERE ($1::text IS NULL OR model_type = $1) ORDER BY model_type, event_id, channel_code`,
        [model ?? null],
      )
    ).rows,
  );
}

async function conversionValues(tenantId = tenant): Promise<Map<string, number>> {
  return withTenant(app, tenantId, async (c) => {
    const r = await c.query<{ id: string; v: number }>(`SELECT id, conversion_value_cents AS v FROM attribution_events WHERE event_type = 'conversion'`);
    return new Map(r.rows.map((x) => [x.id, x.v]));
  });
}

function assertExactSums(rows: Row[], values: Map<string, number>, model: string, expectConversions: number) {
  const sums = new Map<string, number>();
  const ratios = new Map<string, number>();
  for (const r of rows.filter((x) => x.model_type === model)) {
    assert.ok(r.cents >= 0);
    sums.set(r.event_id, (sums.get(r.event_id) ?? 0) + r.cents);
    ratios.set(r.event_id, (ratios.get(r.event_id) ?? 0) + Math.round(Number(r.ratio) * 100000));
    const c = Number(r.confidence);
    assert.ok(c >= 0 && c <= 1);
  }
  assert.equal(sums.size, expectConversions, `${model}: conversions with allocations`);
  for (const [event, sum] of sums) {
    assert.equal(sum, values.get(event), `${model}: allocations of ${event} sum to its value`);
    assert.equal(ratios.get(event), 100000, `${model}: ratios of ${event} sum to 1`);
  }
}

before(async () => {
  db = await createTestDatabase('head');
  app = db.appPool({ max: 4 });
  owner = db.ownerPool({ max: 1 });
  const su = await superClient(db);
  tenant = await createTenant(su, 'engine');
  other = await createTenant(su, 'other');
  await su.end();
  await insertEvents(app, tenant, population());
});
after(async () => {
  await app?.end();
  await owner?.end();
  await db?.drop();
});

const cli = (args: string[]) => runCli(['attribution', ...args], { env: { DATABASE_URL: db.url } });

describe('skeldir attribution run', () => {
  test('markov through the CLI: progress on stderr, summary on stdout, exact sums, removal effects stored with the run', async () => {
    const res = await cli(['run', '--tenant', tenant, '--model', 'markov', '--from', '2026-03-01', '--to', '2026-03-11', '--bootstrap', '20']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /markov allocations: 0\/60/);
    assert.match(res.stderr, /markov allocations: 60\/60 done/);
    const out = JSON.parse(res.stdout);
    assert.equal(out.status, 'succeeded');
    assert.equal(out.conversions, 60);
    assert.equal(out.journeys, 100);
    const markovRows = await allocations(tenant, 'markov');
    assertExactSums(markovRows, await conversionValues(), 'markov', 60);
    assert.equal(out.allocations, markovRows.length);
    const run = await withTenant(app, tenant, async (c) => (await c.query(`SELECT * FROM attribution_model_runs WHERE id = $1`, [out.run_id])).rows[0]);
    assert.equal(run.status, 'succeeded');
    assert.equal(run.allocations, markovRows.length);
    assert.equal(run.parameters.markov.bootstrap, 20);
    const re = run.results.removal_effects as Record<string, number>;
    assert.deepEqual(Object.keys(re).sort(), CHANNELS);
    for (const v of Object.values(re)) assert.ok(v > 0 && v <= 1);
  });

  test('every model over the window: exact sums, ratios summing to 1, each row records its version and parameters', async () => {
    for (const model of MODEL_TYPES) {
      if (model === 'markov') continue;
      const summary = await runModel(app, tenant, {
        model,
        from: FROM,
        to: TO,
        trigger: 'cli',
        shapley: { bootstrap: 20 },
      });
      assert.equal(summary.status, 'succeeded', `${model}: ${JSON.stringify(summary.diagnostics)}`);
    }
    const rows = await allocations();
    const values = await conversionValues();
    for (const model of MODEL_TYPES) assertExactSums(rows, values, model, 60);
    for (const r of rows) {
      assert.equal(r.model_version, MODEL_VERSIONS[r.model_type as ModelType]);
      assert.ok(r.model_metadata.parameters && r.model_metadata.confidence && r.model_metadata.run_id);
      if (r.model_type === 'bayesian') {
        assert.ok(r.lower !== null && r.upper !== null && r.lower <= r.cents && r.cents <= r.upper);
        assert.ok(r.r_hat !== null && Number(r.r_hat) <= 1.01 && r.ess !== null && r.ess >= 400);
      } else {
        assert.ok(r.lower === null && r.upper === null && r.r_hat === null && r.ess === null);
      }
    }
  });

  test('recomputing with the same inputs leaves byte-identical rows (same ids, same updated_at), Bayesian included (same seed)', async () => {
    const before = await allocations();
    // bayesian: the defaults, as in the previous test (4 chains × 1,000 draws on this 100-journey window, ~1 s).
    for (const model of ['linear', 'markov', 'shapley', 'bayesian'] as const) {
      const s = await runModel(app, tenant, { model, from: FROM, to: TO, trigger: 'cli', markov: { bootstrap: 20 }, shapley: { bootstrap: 20 } });
      // Nothing written, and the run says so (allocations = rows the run wrote).
      assert.equal(s.allocations, 0, model);
      const stored = await withTenant(app, tenant, async (c) => (await c.query<{ allocations: number }>(`SELECT allocations FROM attribution_model_runs WHERE id = $1`, [s.runId])).rows[0]!.allocations);
      assert.equal(stored, 0, model);
    }
    assert.deepEqual(await allocations(), before);
  });

  test('the population matters: non-converting journeys change Markov credit; a changed parameter rewrites the rows', async () => {
    const before = await allocations(tenant, 'markov');
    // More journeys that touch email and do not convert: email's removal effect must drop.
    const extra: FixtureEvent[] = [];
    for (let i = 0; i < 30; i++) extra.push({ type: 'touchpoint', channel: 'email', session: randomUUID(), at: at(5 + i * 0.01) });
    const ids = await insertEvents(app, tenant, extra);
    const s1 = await runModel(app, tenant, { model: 'markov', from: FROM, to: TO, trigger: 'cli', markov: { bootstrap: 20 } });
    const s0 = await withTenant(app, tenant, async (c) => (await c.query(`SELECT results FROM attribution_model_runs WHERE model_type = 'markov' ORDER BY started_at LIMIT 1`)).rows[0].results);
    assert.ok((s1.results.removal_effects as Record<string, number>).email! < (s0.removal_effects as Record<string, number>).email!);
    const after = await allocations(tenant, 'markov');
    assert.notDeepEqual(after.map((r) => [r.event_id, r.channel_code, r.cents]), before.map((r) => [r.event_id, r.channel_code, r.cents]));
    // The run counts the rows it rewrote: those whose id changed.
    const oldIds = new Set(before.map((r) => r.id));
    assert.equal(s1.allocations, after.filter((r) => !oldIds.has(r.id)).length);
    assert.ok(s1.allocations > 0);
    assertExactSums(after, await conversionValues(), 'markov', 60);
    await withTenant(app, tenant, (c) => c.query(`DELETE FROM attribution_events WHERE id = ANY($1)`, [ids]));
  });

  test('a bayesian run that does not converge stores nothing, is recorded as not_converged, and the CLI exits 1', async () => {
    const kept = await allocations(tenant, 'bayesian');
    const res = await cli(['run', '--tenant', tenant, '--model', 'bayesian', '--from', '2026-03-01', '--to', '2026-03-11', '--warmup', '100', '--draws', '100', '--seed', '7']);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /did not converge/);
    assert.equal(JSON.parse(res.stdout).status, 'not_converged');
    assert.deepEqual(await allocations(tenant, 'bayesian'), kept);
    const statuses = await withTenant(app, tenant, async (c) => (await c.query(`SELECT status FROM attribution_model_runs WHERE model_type = 'bayesian' ORDER BY started_at`)).rows.map((r) => r.status));
    // The two earlier runs (first computation, unchanged recompute) succeeded; this one did not converge.
    assert.deepEqual(statuses, ['succeeded', 'succeeded', 'not_converged']);
  });

  test('bad input: a clear message, exit 2, nothing written', async () => {
    const count = async () => (await allocations()).length;
    const n = await count();
    // Through the CLI (each spawn costs seconds: a few representative cases) …
    const cases: Array<[string[], RegExp]> = [
      [['run', '--tenant', tenant, '--model', 'magic', '--from', '2026-03-01', '--to', '2026-03-02'], /--model must be one of/],
      [['run', '--tenant', randomUUID(), '--model', 'linear', '--from', '2026-03-01', '--to', '2026-03-02'], /no tenant/],
    ];
    for (const [args, message] of cases) {
      const res = await cli(args);
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, message);
    }
    // … and the same validation in-process for the rest.
    const code = (f: () => unknown) => {
      try {
        f();
        return 'ok';
      } catch (e) {
        return (e as { code?: string }).code;
      }
    };
    assert.equal(code(() => parseInstant('--from', '2026-02-30')), 'attribution_window_invalid');
    assert.equal(code(() => parseInstant('--from', '2026-03-01T10:00')), 'attribution_window_invalid'); // no offset
    assert.equal(code(() => parseInstant('--from', '2026-03-01T10:00:00+02:00')), 'ok');
    // Outside years 0001–9999 UTC: valid syntax and a valid JS Date, but not a storable window.
    assert.equal(code(() => parseInstant('--from', '0000-01-01')), 'attribution_window_invalid');
    assert.equal(code(() => parseInstant('--from', '0001-01-01T00:30:00+01:00')), 'attribution_window_invalid');
    assert.equal(code(() => parseInstant('--to', '9999-12-31T23:59:59-23:59')), 'attribution_window_invalid');
    assert.equal(code(() => parseInstant('--from', '0001-01-01')), 'ok');
    assert.equal(code(() => parseInstant('--to', '9999-12-31T23:59:59Z')), 'ok');
    assert.equal(code(() => validateSettingsChange({ lookbackDays: 0 })), 'attribution_settings_invalid');
    assert.equal(code(() => validateSettingsChange({ halfLifeDays: 0.0001 })), 'attribution_settings_invalid');
    assert.equal(code(() => validateSettingsChange({ models: [] })), 'attribution_settings_invalid');
    assert.equal(code(() => validateSettingsChange({ models: ['linear', 'nope'] })), 'attribution_settings_invalid');
    await assert.rejects(runModel(app, tenant, { model: 'linear', from: TO, to: FROM, trigger: 'cli' }), { code: 'attribution_window_invalid' });
    assert.equal(await count(), n);
  });
});

describe('settings', () => {
  test('half_life_days takes up to 3 decimals as written (1.005 is valid although 1.005 × 1000 is not an integer in floating point)', async () => {
    const code = (fn: () => void) => {
      try {
        fn();
        return 'ok';
      } catch (e) {
        return (e as { code: string }).code;
      }
    };
    for (const ok of [1.005, 0.001, 2.675, 0.3, 7, 364.999, 365]) assert.equal(code(() => validateSettingsChange({ halfLifeDays: ok })), 'ok', String(ok));
    for (const bad of [0.0005, 1.0005, 0.1 + 0.2, 1e-7, 365.001, 0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.equal(code(() => validateSettingsChange({ halfLifeDays: bad })), 'attribution_settings_invalid', String(bad));
    }
    // Stored exactly: through the CLI, and read back.
    const su = await superClient(db);
    const t = await createTenant(su, 'half-life').finally(() => su.end());
    const res = await cli(['configure', '--tenant', t, '--half-life-days', '1.005']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(JSON.parse(res.stdout).half_life_days, 1.005);
    const stored = await withTenant(app, t, async (c) => (await c.query<{ h: string }>(`SELECT half_life_days::text AS h FROM attribution_settings`)).rows[0]!.h);
    assert.equal(stored, '1.005');
  });
});

describe('stored runs', () => {
  test('NaN and ±Infinity in results and diagnostics are stored as strings, not null (a not_converged run keeps its reason)', async () => {
    const runId = await withTenant(app, tenant, (c) =>
      insertRun(c, { tenantId: tenant, model: 'bayesian', modelVersion: 'bayesian/1', from: FROM, to: TO, trigger: 'cli', parameters: {} }),
    );
    await withTenant(app, tenant, (c) =>
      finishRun(c, tenant, runId, {
        status: 'not_converged',
        results: { hazards: { email: { mean: 0.01, rhat: Number.NaN } }, draws: Float64Array.from([1, Number.POSITIVE_INFINITY]) },
        diagnostics: { converged: false, max_rhat: Number.POSITIVE_INFINITY, min_ess_bulk: 12.5, low: Number.NEGATIVE_INFINITY },
      }),
    );
    const row = await withTenant(app, tenant, async (c) => (await c.query<{ results: unknown; diagnostics: unknown }>(`SELECT results, diagnostics FROM attribution_model_runs WHERE id = $1`, [runId])).rows[0]!);
    assert.deepEqual(row.diagnostics, { converged: false, max_rhat: 'Infinity', min_ess_bulk: 12.5, low: '-Infinity' });
    assert.deepEqual(row.results, { hazards: { email: { mean: 0.01, rhat: 'NaN' } }, draws: [1, 'Infinity'] });
  });
});

describe('journeys', () => {
  test('session or user_id stitching within the lookback window; later touches, other users and other tenants excluded', async () => {
    const session = randomUUID();
    const otherSession = randomUUID();
    const conv = randomUUID();
    const c = at(40);
    await insertEvents(app, tenant, [
      { type: 'touchpoint', channel: 'email', session, at: new Date(c.getTime() - 30 * DAY) }, // exactly 30 days: in
      { type: 'touchpoint', channel: 'organic', session, at: new Date(c.getTime() - 30 * DAY - 1) }, // just outside
      { type: 'touchpoint', channel: 'referral', session: otherSession, at: new Date(c.getTime() - DAY), userId: 'u-1' }, // same user, other session: in
      { type: 'touchpoint', channel: 'tiktok_paid', session: randomUUID(), at: new Date(c.getTime() - DAY), userId: 'u-2' }, // other user
      { type: 'touchpoint', channel: 'facebook_paid', session, at: new Date(c.getTime() + 1) }, // after the conversion
      { type: 'conversion', channel: 'direct', session, at: c, value: 900, userId: 'u-1', id: conv },
    ]);
    // Another tenant with the same session id must not leak into the path.
    await insertEvents(app, other, [{ type: 'touchpoint', channel: 'google_display_paid', session, at: new Date(c.getTime() - DAY) }]);
    await withTenant(app, tenant, (cl) => attributeConversion(cl, tenant, conv));
    const linear = (await allocations(tenant, 'linear')).filter((r) => r.event_id === conv);
    assert.deepEqual(linear.map((r) => [r.channel_code, r.cents]), [['email', 450], ['referral', 450]]);
    // The same rule over a window (population models use it).
    await runModel(app, tenant, { model: 'first_touch', from: at(39), to: at(41), trigger: 'cli' });
    const first = (await allocations(tenant, 'first_touch')).filter((r) => r.event_id === conv);
    assert.deepEqual(first.map((r) => [r.channel_code, r.cents]), [['email', 900]]);
  });

  test('a window run skips a conversion without a value (legacy / direct SQL): no allocations, counted, its touches become a non-converting journey', async () => {
    const su = await superClient(db);
    const t = await createTenant(su, 'valueless').finally(() => su.end());
    const [a, b] = [randomUUID(), randomUUID()];
    const [paid, unpaid] = [randomUUID(), randomUUID()];
    await insertEvents(app, t, [
      { type: 'touchpoint', channel: 'email', session: a, at: at(1) },
      { type: 'conversion', channel: 'direct', session: a, at: at(1.5), value: 1000, id: paid },
      { type: 'touchpoint', channel: 'organic', session: b, at: at(2) },
      { type: 'conversion', channel: 'direct', session: b, at: at(2.5), value: null, id: unpaid },
    ]);
    const run = await runModel(app, t, { model: 'markov', from: FROM, to: TO, trigger: 'cli', markov: { bootstrap: 10 } });
    assert.equal(run.status, 'succeeded');
    assert.equal(run.conversions, 1);
    assert.equal(run.skippedWithoutValue, 1);
    // One converting journey (email) and one non-converting journey (organic, the valueless conversion's path).
    assert.equal(run.journeys, 2);
    const rows = await allocations(t, 'markov');
    assert.deepEqual(rows.map((r) => [r.event_id, r.channel_code, r.cents]), [[paid, 'email', 1000]]);
    const stored = await withTenant(app, t, async (c) => (await c.query<{ d: { skipped_without_value: number } }>(`SELECT diagnostics AS d FROM attribution_model_runs WHERE id = $1`, [run.runId])).rows[0]!.d);
    assert.equal(stored.skipped_without_value, 1);
  });
  test("the worker entry point follows the tenant's settings (models, lookback, half-life)", async () => {
    await withTenant(app, other, (c) => writeSettings(c, other, { models: ['time_decay', 'markov'], lookbackDays: 2, halfLifeDays: 1 }));
    const session = randomUUID();
    const conv = randomUUID();
    const c = at(50);
    await insertEvents(app, other, [
      { type: 'touchpoint', channel: 'email', session, at: new Date(c.getTime() - 3 * DAY) }, // outside 2 days
      { type: 'touchpoint', channel: 'organic', session, at: new Date(c.getTime() - DAY) },
      { type: 'touchpoint', channel: 'referral', session, at: c },
      { type: 'conversion', channel: 'direct', session, at: c, value: 300, id: conv },
    ]);
    const result = await withTenant(app, other, (cl) => attributeConversion(cl, other, conv));
    assert.deepEqual(result, { models: ['time_decay'], allocations: 2 }); // markov is computed by runs, not per conversion
    const rows = await allocations(other);
    assert.deepEqual(rows.map((r) => [r.model_type, r.channel_code, r.cents]), [['time_decay', 'organic', 100], ['time_decay', 'referral', 200]]);
    // Isolation: the first tenant sees none of it, and vice versa.
    assert.equal((await allocations(tenant)).filter((r) => r.event_id === conv).length, 0);
    assert.equal(rows.filter((r) => r.event_id !== conv).length, 0);
  });
  test('the lookback is days × 24 h whatever the session time zone (Europe/Berlin across the DST change), in the worker and in window runs', async () => {
    // Berlin moves to summer time on 2026-03-29. Counted in calendar days of that zone, "30 days
    // before 2026-04-15 12:00Z" would be 2026-03-16 13:00Z; the engine's rule (and window.ts's
    // in-memory filter) is 30 × 86,400,000 ms: 2026-03-16 12:00Z.
    const session = randomUUID();
    const conv = randomUUID();
    const c = new Date('2026-04-15T12:00:00Z');
    await insertEvents(app, tenant, [
      { type: 'touchpoint', channel: 'email', session, at: new Date(c.getTime() - 30 * DAY) }, // exactly 30 × 24 h: in
      { type: 'touchpoint', channel: 'organic', session, at: new Date(c.getTime() - 30 * DAY - 1) }, // 1 ms earlier: out
      { type: 'conversion', channel: 'direct', session, at: c, value: 700, id: conv },
    ]);
    const berlin = <T>(fn: (cl: pg.PoolClient) => Promise<T>) =>
      withTenant(app, tenant, async (cl) => {
        await cl.query(`SET LOCAL TimeZone = 'Europe/Berlin'`);
        return fn(cl);
      });
    await berlin((cl) => attributeConversion(cl, tenant, conv));
    const linear = (await allocations(tenant, 'linear')).filter((r) => r.event_id === conv);
    assert.deepEqual(linear.map((r) => [r.channel_code, r.cents]), [['email', 700]]);
    // A window starting at the conversion: the SQL pre-filter must fetch the same touches the
    // in-memory rule keeps.
    const window = await berlin((cl) => loadWindow(cl, tenant, c, new Date(c.getTime() + 1), 30));
    assert.deepEqual(window.conversions.map((x) => [x.id, x.touches.map((t) => t.channel)]), [[conv, ['email']]]);
    await withTenant(app, tenant, (cl) => cl.query(`DELETE FROM attribution_events WHERE session_id = $1`, [session]));
  });
});

describe('scheduler', () => {
  test('recomputes configured population models when due, once per interval', async () => {
    await withTenant(app, tenant, (c) => writeSettings(c, tenant, { models: ['linear', 'markov'], recomputeIntervalMinutes: 60, recomputeWindowDays: 30 }));
    const now = at(12);
    const first = await schedulePass(owner, app, { now });
    // `other` has markov configured too (previous test) with default interval: both tenants run.
    assert.deepEqual(first.map((r) => r.model).sort(), ['markov', 'markov']);
    assert.ok(first.every((r) => r.status === 'succeeded'));
    const again = await schedulePass(owner, app, { now: new Date(now.getTime() + 30 * 60_000) });
    assert.deepEqual(again, []);
    const later = await schedulePass(owner, app, { now: new Date(Date.now() + 2 * DAY) });
    assert.ok(later.some((r) => r.model === 'markov'));
    const triggers = await withTenant(app, tenant, async (c) => (await c.query(`SELECT trigger FROM attribution_model_runs WHERE trigger = 'schedule'`)).rowCount);
    assert.ok((triggers ?? 0) >= 2);
  });
});

describe('skeldir attribution schedule --once', () => {
  test('a run that fails is reported and the pass exits 1; the other tenants still run', async () => {
    // An operator extended channel_taxonomy; one tenant's window then has 31 distinct channels,
    // more than population models handle (30): its markov run throws.
    const su = await superClient(db);
    let failing: string;
    let fine: string;
    try {
      await su.query(
        `INSERT INTO channel_taxonomy (code, family, is_paid, display_name)
         SELECT 'extra_' || i, 'unknown', false, 'Extra ' || i FROM generate_series(1, 21) i ON CONFLICT (code) DO NOTHING`,
      );
      failing = await createTenant(su, 'schedule failing');
      fine = await createTenant(su, 'schedule fine');
    } finally {
      await su.end();
    }
    const codes = [...CHANNELS, 'direct', 'facebook_brand', 'google_display_paid', 'tiktok_paid', 'unknown', ...Array.from({ length: 21 }, (_, i) => `extra_${i + 1}`)];
    assert.equal(new Set(codes).size, 31);
    const now = Date.now();
    const session = randomUUID();
    await insertEvents(app, failing, [
      ...codes.map((channel, i) => ({ type: 'touchpoint' as const, channel, session, at: new Date(now - DAY + i * 1000) })),
      { type: 'conversion', channel: 'direct', session, at: new Date(now - DAY / 2), value: 5000 },
    ]);
    const s2 = randomUUID();
    await insertEvents(app, fine, [
      { type: 'touchpoint', channel: 'email', session: s2, at: new Date(now - DAY) },
      { type: 'conversion', channel: 'direct', session: s2, at: new Date(now - DAY / 2), value: 900 },
    ]);
    for (const t of [failing, fine]) await withTenant(app, t, (c) => writeSettings(c, t, { models: ['markov'], recomputeWindowDays: 7 }));

    const res = await cli(['schedule', '--once']);
    assert.equal(res.code, 1, res.stderr);
    const out = JSON.parse(res.stdout) as Array<{ tenant_id: string; run_id: string | null; model: string; status: string; error?: string }>;
    const bad = out.find((r) => r.tenant_id === failing);
    const good = out.find((r) => r.tenant_id === fine);
    assert.equal(bad?.status, 'failed');
    assert.match(bad?.error ?? '', /31 distinct channels/);
    assert.equal(good?.status, 'succeeded');
    assert.match(res.stderr, /scheduled attribution run failed/);
    const row = await withTenant(app, failing, async (c) => (await c.query<{ status: string; error: string; trigger: string }>(`SELECT status, error, trigger FROM attribution_model_runs WHERE id = $1`, [bad!.run_id])).rows[0]);
    assert.equal(row?.status, 'failed');
    assert.equal(row?.trigger, 'schedule');
    assert.match(row?.error ?? '', /31 distinct channels/);

    // Once the failing tenant is fixed (here: its extra-channel touches removed), the next pass exits 0.
    await withTenant(app, failing, (c) => c.query(`DELETE FROM attribution_events WHERE channel LIKE 'extra_%'`));
    await withTenant(app, failing, (c) => writeSettings(c, failing, { recomputeIntervalMinutes: 5 }));
    // Each run's new start read first, then written as a value: Citus refuses `started_at - interval …`
    // (a STABLE function of a column) in an UPDATE.
    await withTenant(owner, failing, async (c) => {
      const runs = await c.query<{ id: string; started_at: string }>(`SELECT id, (started_at - interval '1 hour')::text AS started_at FROM attribution_model_runs WHERE tenant_id = $1`, [failing]);
      for (const r of runs.rows) await c.query(`UPDATE attribution_model_runs SET started_at = $3::timestamptz WHERE tenant_id = $1 AND id = $2`, [failing, r.id, r.started_at]);
    });
    const again = await cli(['schedule', '--once']);
    assert.equal(again.code, 0, again.stderr);
    assert.ok((JSON.parse(again.stdout) as Array<{ tenant_id: string; status: string }>).some((r) => r.tenant_id === failing && r.status === 'succeeded'));
  });
});
