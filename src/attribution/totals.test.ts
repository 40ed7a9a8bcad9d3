import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import { loadConfig } from '../config.js';
import { withTenant } from '../db/tenant-context.js';
import { buildApp, type App } from '../http/app.js';
import { createTenant } from '../tenants/tenants.js';
import { runCli } from '../testing/cli.js';
import { createTestDatabase, type TestDatabase } from '../testing/db.js';
import { channelMask, journeySetFrom, maskChannels } from './journey-set.js';
import { addToTotals, emptyTotalDraws } from './population.js';
import { runModel } from './run.js';
import { buildTotalTerms } from './totals.js';
import { insertEvents, type FixtureEvent } from './test-fixtures.js';
import type { WindowConversion } from './window.js';

/**
 * Intervals of channel and campaign totals (attribution_run_totals): stored per run, equal to the
 * allocations they sum, shown by /attribution/channels and the CLI only when they are the run's
 * totals of exactly the period asked for.
 */
let db: TestDatabase;
let app: App;
let pool: pg.Pool;
let tenant: string;
let key: string;
let otherTenant: string;
const runs: Record<string, string> = {};

const T0 = new Date('2026-04-01T00:00:00Z');
const at = (days: number) => new Date(T0.getTime() + days * 86_400_000);
const FROM = at(0).toISOString();
const TO = at(30).toISOString();
const get = (url: string, apiKey = key) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${apiKey}` } });

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ tenant_id: tenant, api_key: key } = await createTenant(owner, { name: 'Totals', email: 'ops@totals.example' }));
  ({ tenant_id: otherTenant } = await createTenant(owner, { name: 'Other', email: 'ops@other-totals.example' }));
  await owner.end();
  pool = db.appPool({ max: 3 });
  const events: FixtureEvent[] = [];
  const channels = ['email', 'facebook_paid', 'google_search_paid', 'organic'];
  for (let s = 0; s < 160; s++) {
    const session = randomUUID();
    for (let t = 0; t < 1 + (s % 3); t++) {
      const channel = channels[(s * 7 + t) % 4]!;
      events.push({ type: 'touchpoint', channel, session, at: at(1 + (s % 20) + t * 0.1), campaign: channel === 'organic' ? null : `${channel}-c${(s + t) % 2}` });
    }
    if (s % 5 < 3) events.push({ type: 'conversion', channel: 'direct', session, at: at(1.5 + (s % 20)), value: 1000 + 13 * s, currency: s % 10 === 0 ? 'EUR' : 'USD' });
  }
  await insertEvents(pool, tenant, events);
  for (const model of ['markov', 'shapley', 'bayesian', 'linear'] as const) {
    const r = await runModel(pool, tenant, { model, from: at(0), to: at(30), trigger: 'cli', markov: { bootstrap: 200 }, shapley: { bootstrap: 200 } });
    assert.equal(r.status, 'succeeded', `${model}: ${JSON.stringify(r.diagnostics)}`);
    runs[model] = r.runId;
  }
  app = await buildApp({ db, config: loadConfig({}), logger: false });
});
after(async () => {
  await app?.close();
  await pool?.end();
  await db?.drop();
});

describe('attribution_run_totals', () => {
  test('per run, channel and campaign: the total equals the SQL sum of the run\'s allocations, inside its interval', async () => {
    for (const model of ['markov', 'shapley', 'bayesian'] as const) {
      const { totals, sums } = await withTenant(pool, tenant, async (c) => ({
        totals: (await c.query(`SELECT level, channel_code, campaign_id, currency, total_cents::text, lower_cents::text, upper_cents::text, interval_method, draws, interval_mass::text, convergence_r_hat, effective_sample_size FROM attribution_run_totals WHERE run_id = $1`, [runs[model]])).rows,
        sums: (await c.query(
          `SELECT 'channel' AS level, channel_code, '' AS campaign_id, e.currency, sum(allocated_revenue_cents)::text AS cents
             FROM attribution_allocations a JOIN attribution_events e ON e.tenant_id = a.tenant_id AND e.id = a.event_id WHERE a.model_type = $1 GROUP BY 1, 2, 3, 4
           UNION ALL
           SELECT 'campaign', channel_code, coalesce(a.campaign_id, ''), e.currency, sum(allocated_revenue_cents)::text
             FROM attribution_allocations a JOIN attribution_events e ON e.tenant_id = a.tenant_id AND e.id = a.event_id WHERE a.model_type = $1 GROUP BY 1, 2, 3, 4`,
          [model],
        )).rows,
      }));
      const k = (r: { level: string; channel_code: string; campaign_id: string; currency: string }) => `${r.level}/${r.channel_code}/${r.campaign_id}/${r.currency}`;
      assert.deepEqual(new Map(totals.map((t) => [k(t), t.total_cents])), new Map(sums.map((s) => [k(s), s.cents])), model);
      assert.ok(totals.some((t) => t.level === 'campaign' && t.campaign_id !== '') && totals.some((t) => t.currency === 'EUR'), model);
      for (const t of totals) {
        assert.ok(BigInt(t.lower_cents) <= BigInt(t.total_cents) && BigInt(t.total_cents) <= BigInt(t.upper_cents), `${model} ${k(t)}`);
        assert.equal(t.interval_mass, '0.940');
        assert.equal(t.interval_method, model === 'bayesian' ? 'posterior_draws' : 'bootstrap');
        if (model === 'bayesian') assert.equal(t.draws, 4000);
        else assert.ok(t.draws <= 200 && t.draws >= 190, `${model}: ${t.draws} finite replicates`);
        assert.equal(t.convergence_r_hat === null, model !== 'bayesian' || BigInt(t.lower_cents) === BigInt(t.upper_cents));
      }
      // Real intervals: some totals are uncertain.
      assert.ok(totals.some((t) => BigInt(t.upper_cents) - BigInt(t.lower_cents) > 100n), model);
    }
    // The rule model stores none.
    const linear = await withTenant(pool, tenant, (c) => c.query(`SELECT count(*)::int AS n FROM attribution_run_totals WHERE run_id = $1`, [runs.linear]));
    assert.equal(linear.rows[0].n, 0);
  });

  test('bayesian rows carry their channel total\'s R-hat and ESS', async () => {
    const r = await withTenant(pool, tenant, (c) =>
      c.query(
        `SELECT DISTINCT a.channel_code, e.currency, a.convergence_r_hat::text AS row_rhat, a.effective_sample_size AS row_ess, t.convergence_r_hat::text AS rhat, t.effective_sample_size AS ess
           FROM attribution_allocations a JOIN attribution_events e ON e.tenant_id = a.tenant_id AND e.id = a.event_id
           JOIN attribution_run_totals t ON t.tenant_id = a.tenant_id AND t.run_id = $1 AND t.level = 'channel' AND t.channel_code = a.channel_code AND t.currency = e.currency
          WHERE a.model_type = 'bayesian' AND t.convergence_r_hat IS NOT NULL`,
        [runs.bayesian],
      ),
    );
    assert.ok(r.rows.length > 0);
    for (const x of r.rows) {
      assert.equal(Number(x.row_rhat).toFixed(4), Number(x.rhat).toFixed(4));
      assert.equal(x.row_ess, x.ess);
      assert.ok(Number(x.rhat) <= 1.01 && x.ess >= 400);
    }
  });

  test('rows are visible only to their tenant (forced row-level security)', async () => {
    const other = await withTenant(pool, otherTenant, (c) => c.query(`SELECT count(*)::int AS n FROM attribution_run_totals`));
    const mine = await withTenant(pool, tenant, (c) => c.query(`SELECT count(*)::int AS n FROM attribution_run_totals`));
    assert.ok(mine.rows[0].n > 0);
    assert.equal(other.rows[0].n, 0);
    // Nor can another tenant write a row naming this tenant.
    await assert.rejects(
      withTenant(pool, otherTenant, (c) =>
        c.query(`INSERT INTO attribution_run_totals (tenant_id, run_id, level, channel_code, currency, total_cents, lower_cents, upper_cents, interval_mass, interval_method, draws)
                 VALUES ($1, $2, 'channel', 'email', 'USD', 1, 0, 2, 0.94, 'bootstrap', 1)`, [tenant, runs.markov]),
      ),
      /row-level security/,
    );
    const noContext = await pool.query(`SELECT count(*)::int AS n FROM attribution_run_totals`);
    assert.equal(noContext.rows[0].n, 0);
  });
});

describe('total_interval in the channel report', () => {
  test('/attribution/channels over the run\'s window: each line\'s total_interval is its run total\'s; summed bounds renamed', async () => {
    for (const model of ['markov', 'shapley', 'bayesian'] as const) {
      const res = await get(`/api/v1/attribution/channels?model=${model}&from=${FROM}&to=${TO}`);
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.equal(body.total_intervals.run_id, runs[model]);
      const stored = await withTenant(pool, tenant, (c) => c.query(`SELECT channel_code, currency, lower_cents::int AS lo, upper_cents::int AS hi, draws FROM attribution_run_totals WHERE run_id = $1 AND level = 'channel'`, [runs[model]]));
      const byKey = new Map(stored.rows.map((r) => [`${r.channel_code}/${r.currency}`, r]));
      assert.equal(body.channels.length, stored.rows.length);
      for (const line of body.channels) {
        const s = byKey.get(`${line.channel}/${line.currency}`)!;
        assert.deepEqual([line.total_interval.lower_cents, line.total_interval.upper_cents, line.total_interval.draws], [s.lo, s.hi, s.draws]);
        assert.equal(line.total_interval.mass, 0.94);
        assert.ok(line.total_interval.lower_cents <= line.attributed_cents && line.attributed_cents <= line.total_interval.upper_cents);
        assert.equal('credible_interval' in line, false);
        assert.equal(line.summed_allocation_bounds === null, model !== 'bayesian');
      }
    }
  });

  test('no interval when it would not be the run total of the period: a sub-period, a rule model, a run of another window over some rows', async () => {
    const sub = (await get(`/api/v1/attribution/channels?model=bayesian&from=${FROM}&to=${at(10).toISOString()}`)).json();
    assert.equal(sub.total_intervals.run_id, null);
    assert.match(sub.total_intervals.note, /window exactly/);
    assert.ok(sub.channels.length > 0 && sub.channels.every((l: { total_interval: unknown }) => l.total_interval === null));
    const linear = (await get(`/api/v1/attribution/channels?model=linear&from=${FROM}&to=${TO}`)).json();
    assert.ok(linear.channels.every((l: { total_interval: unknown }) => l.total_interval === null));
    assert.match(linear.total_intervals.note, /rule models/);

    // CLI: the same figures.
    const cli = await runCli(['attribution', 'report', '--tenant', tenant, '--model', 'markov', '--from', FROM, '--to', TO], { env: { DATABASE_URL: db.url } });
    assert.equal(cli.code, 0, cli.stderr);
    const printed = JSON.parse(cli.stdout);
    const http = (await get(`/api/v1/attribution/channels?model=markov&from=${FROM}&to=${TO}`)).json();
    assert.deepEqual(printed.channels.map((l: { total_interval: unknown }) => l.total_interval), http.channels.map((l: { total_interval: unknown }) => l.total_interval));
    assert.equal(printed.total_intervals.run_id, runs.markov);

    // A markov run of another window rewrites the conversions of [10, 30): the [0, 30) figures now mix two runs.
    const other = await runModel(pool, tenant, { model: 'markov', from: at(10), to: at(30), trigger: 'cli', markov: { bootstrap: 50, seed: 99 } });
    assert.equal(other.status, 'succeeded');
    const mixed = (await get(`/api/v1/attribution/channels?model=markov&from=${FROM}&to=${TO}`)).json();
    assert.ok(mixed.runs.length === 2 || mixed.runs.length === 1);
    if (mixed.runs.length === 2) {
      assert.equal(mixed.total_intervals.run_id, null);
      assert.ok(mixed.channels.every((l: { total_interval: unknown }) => l.total_interval === null));
    }
    // Its own window has its own totals.
    const own = (await get(`/api/v1/attribution/channels?model=markov&from=${at(10).toISOString()}&to=${TO}`)).json();
    assert.equal(own.total_intervals.run_id, other.runId);
    assert.ok(own.channels.every((l: { total_interval: { draws: number } | null }) => l.total_interval !== null && l.total_interval.draws <= 50));
  });
});

describe('total terms', () => {
  test('Σ over masks of weight × share equals Σ over conversions of value × share × campaign part, for any paths and shares', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            path: fc.array(fc.record({ c: fc.integer({ min: 0, max: 3 }), k: fc.constantFrom(null, 'a', 'b') }), { minLength: 1, maxLength: 5 }),
            value: fc.integer({ min: 1, max: 100000 }),
            eur: fc.boolean(),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        fc.integer({ min: 1, max: 1000 }),
        (convs, seed) => {
          const names = ['a_ch', 'b_ch', 'c_ch', 'd_ch'];
          const js = journeySetFrom(convs.map((x) => ({ path: x.path.map((t) => names[t.c]!), converted: true })));
          const conversions: WindowConversion[] = convs.map((x, j) => ({
            id: String(j), channel: 'direct', campaign: null, at: 0, atText: '', valueCents: BigInt(x.value), currency: x.eur ? 'EUR' : 'USD',
            touches: x.path.map((t) => ({ channel: names[t.c]!, at: 0, campaign: t.k })),
          }));
          const { terms, keys } = buildTotalTerms(js, conversions);
          // Arbitrary shares per mask (positive, normalised), one "draw".
          const shareOf = (mask: number) => {
            const ch = maskChannels(mask);
            const w = ch.map((c) => ((c + 1) * 7919 + seed * mask) % 97 + 1);
            const s = w.reduce((a, b) => a + b, 0);
            return Float64Array.from(w.map((x) => x / s));
          };
          const draws = emptyTotalDraws(terms, 1, 1);
          for (const mask of new Set(convs.map((_, j) => channelMask(js, j)))) addToTotals(draws, terms.byMask.get(mask), shareOf(mask), 0);
          const direct = new Map<string, number>();
          conversions.forEach((conv, j) => {
            const mask = channelMask(js, j);
            const share = shareOf(mask);
            maskChannels(mask).forEach((c, i) => {
              const mine = conv.touches.filter((t) => t.channel === js.channels[c]);
              const add = (k: string, v: number) => direct.set(k, (direct.get(k) ?? 0) + v);
              add(`channel/${js.channels[c]}//${conv.currency}`, Number(conv.valueCents) * share[i]!);
              for (const t of mine) add(`campaign/${js.channels[c]}/${t.campaign ?? ''}/${conv.currency}`, (Number(conv.valueCents) * share[i]!) / mine.length);
            });
          });
          assert.equal(keys.length, direct.size);
          keys.forEach((k, q) => {
            const expected = direct.get(`${k.level}/${k.channel}/${k.campaign}/${k.currency}`)!;
            assert.ok(Math.abs(draws.values[q]! - expected) < 1e-6 * Math.max(1, expected), `${JSON.stringify(k)}: ${draws.values[q]} vs ${expected}`);
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});
