import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type pg from 'pg';
import { attributeConversion } from '../attribution/entry.js';
import { loadConfig } from '../config.js';
import { withTenant } from '../db/tenant-context.js';
import { buildApp, type App } from '../http/app.js';
import { createTenant } from '../tenants/tenants.js';
import { runCli } from '../testing/cli.js';
import { createTestDatabase, type TestDatabase } from '../testing/db.js';
import { retentionService } from './cli.js';
import { REDACTED, runRetention } from './retention.js';

let db: TestDatabase;
let app: App;
let appPool: pg.Pool;
let A: { tenant_id: string; api_key: string };
let B: { tenant_id: string; api_key: string };

const DAY = 86_400_000;
const day = (daysAgo: number) => new Date(Math.floor((Date.now() - daysAgo * DAY) / DAY) * DAY);
const auth = (key: string) => ({ authorization: `Bearer ${key}` });

/** n sessions of a touchpoint and a conversion at noon UTC, `daysAgo` days ago. */
async function seed(tenant: { tenant_id: string; api_key: string }, daysAgo: number, n: number): Promise<void> {
  const noon = new Date(day(daysAgo).getTime() + 12 * 3600_000);
  const events = [];
  for (let i = 0; i < n; i++) {
    const session = randomUUID();
    events.push({ idempotency_key: randomUUID(), event_type: 'touchpoint', event_timestamp: new Date(noon.getTime() - 3600_000).toISOString(), session_id: session, utm_source: 'google', utm_medium: 'cpc' });
    events.push({ idempotency_key: randomUUID(), event_type: 'conversion', event_timestamp: noon.toISOString(), session_id: session, channel: 'email', conversion_value_cents: 1000 + i, currency: 'USD' });
  }
  const res = await app.inject({ method: 'POST', url: '/api/v1/events/batch', headers: auth(tenant.api_key), payload: { events } });
  assert.equal(res.statusCode, 200, res.body);
  const t = tenant.tenant_id;
  await withTenant(appPool, t, async (c) => {
    const { rows } = await c.query<{ id: string }>(`SELECT id FROM attribution_events WHERE tenant_id = $1 AND event_type = 'conversion' AND processing_status = 'pending'`, [t]);
    for (const r of rows) await attributeConversion(c, t, r.id);
    await c.query(`UPDATE attribution_events SET processing_status = 'processed', processed_at = now() WHERE tenant_id = $1`, [t]);
    await c.query(
      `INSERT INTO dead_events (tenant_id, source, error_code, error_type, error_message, error_detail, event_type, raw_payload, created_at)
       VALUES ($1, 'ingestion', 'x', 'validation', 'bad', '{}', 'touchpoint', '{"secret": "payload"}', $2)`,
      [t, noon],
    );
  });
}

const channels = async (key: string, fromDaysAgo: number, toDaysAgo: number) => {
  const res = await app.inject({ method: 'GET', url: `/api/v1/attribution/channels?model=linear&from=${day(fromDaysAgo).toISOString()}&to=${day(toDaysAgo).toISOString()}`, headers: auth(key) });
  assert.equal(res.statusCode, 200, res.body);
  return res.json();
};
/** A report route over [fromDaysAgo, toDaysAgo) days ago. */
const report = async (key: string, path: string, fromDaysAgo: number, toDaysAgo: number) => {
  const res = await app.inject({ method: 'GET', url: `/api/v1/${path}${path.includes('?') ? '&' : '?'}from=${day(fromDaysAgo).toISOString()}&to=${day(toDaysAgo).toISOString()}`, headers: auth(key) });
  assert.equal(res.statusCode, 200, res.body);
  return res.json();
};
const REPORTS = ['attribution/comparison', 'reconciliation', 'reports/paths', 'performance?model=linear'] as const;
const counts = (t: string) =>
  withTenant(appPool, t, async (c) => ({
    events: Number((await c.query(`SELECT count(*) FROM attribution_events WHERE tenant_id = $1`, [t])).rows[0].count),
    redacted: Number((await c.query(`SELECT count(*) FROM attribution_events WHERE tenant_id = $1 AND raw_payload = $2`, [t, REDACTED])).rows[0].count),
    deadRedacted: Number((await c.query(`SELECT count(*) FROM dead_events WHERE tenant_id = $1 AND raw_payload = $2`, [t, REDACTED])).rows[0].count),
    aggregates: Number((await c.query(`SELECT count(*) FROM allocation_daily_aggregates WHERE tenant_id = $1`, [t])).rows[0].count),
  }));

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  A = await createTenant(owner, { name: 'Alpha', email: 'ops@alpha.example' });
  B = await createTenant(owner, { name: 'Beta', email: 'ops@beta.example' });
  await owner.end();
  appPool = db.appPool({ max: 3 });
  app = await buildApp({ db, config: loadConfig({}), logger: false });
  for (const t of [A, B]) {
    await seed(t, 200, 4); // older than the event rule: folded and deleted
    await seed(t, 60, 3); // older than the payload rule only: payloads redacted
    await seed(t, 2, 2); // recent: untouched
  }
});
after(async () => {
  await app?.close();
  await appPool?.end();
  await db?.drop();
});

describe('retention', () => {
  const env = () => ({ DATABASE_URL: db.url });

  test('settings: skeldir retention configure and PUT /api/v1/retention/settings, with bad input refused', async () => {
    const r = await runCli(['retention', 'configure', '--tenant', A.tenant_id, '--payload-days', '30', '--event-days', '90', '--dead-event-payload-days', '30'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { payload_days: 30, event_days: 90, dead_event_payload_days: 30 });
    const got = await app.inject({ method: 'GET', url: '/api/v1/retention/settings', headers: auth(A.api_key) });
    assert.deepEqual(got.json(), { payload_days: 30, event_days: 90, dead_event_payload_days: 30 });
    assert.deepEqual((await app.inject({ method: 'GET', url: '/api/v1/retention/settings', headers: auth(B.api_key) })).json(), { payload_days: null, event_days: null, dead_event_payload_days: null });
    for (const payload of [{ event_days: 0 }, { event_days: 1.5 }, { payload_days: '30' }, { keep: 1 }]) {
      const bad = await app.inject({ method: 'PUT', url: '/api/v1/retention/settings', headers: auth(B.api_key), payload });
      assert.equal(bad.statusCode, 400, JSON.stringify(payload));
    }
    const put = await app.inject({ method: 'PUT', url: '/api/v1/retention/settings', headers: auth(B.api_key), payload: { dead_event_payload_days: 365 } });
    assert.deepEqual(put.json(), { payload_days: null, event_days: null, dead_event_payload_days: 365 });
    for (const args of [['retention', 'configure', '--tenant', A.tenant_id, '--event-days', '0'], ['retention', 'configure', '--tenant', 'x'], ['retention', 'run', '--tenant', 'x']]) {
      const bad = await runCli(args, { env: env() });
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
    }
  });

  test('--dry-run says what would happen and changes nothing', async () => {
    const before = await counts(A.tenant_id);
    const r = await runCli(['retention', 'run', '--tenant', A.tenant_id, '--dry-run'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const [report] = JSON.parse(r.stdout);
    assert.equal(report.dry_run, true);
    assert.equal(report.events_deleted, 8);
    assert.ok(report.allocations_folded >= 4 * 5);
    assert.equal(report.payloads_redacted, 6);
    assert.equal(report.dead_event_payloads_redacted, 2, 'the 200- and 60-day-old dead events');
    assert.deepEqual(await counts(A.tenant_id), before);
  });

  test('a run folds old allocations into daily aggregates: the report over the pruned period answers the same and says so', async () => {
    const oldBefore = await channels(A.api_key, 210, 190);
    const recentBefore = await channels(A.api_key, 5, 0);
    assert.equal(oldBefore.from_aggregates, null);
    const before: Record<string, { old: any; all: any; recent: any }> = {};
    for (const path of REPORTS) before[path] = { old: await report(A.api_key, path, 210, 190), all: await report(A.api_key, path, 210, 0), recent: await report(A.api_key, path, 5, 0) };
    for (const path of REPORTS) {
      assert.equal(before[path]!.old[path === 'attribution/comparison' ? 'from_aggregates' : 'pruned'], null, path);
    }
    assert.equal(before['reconciliation']!.old.total.conversions, 4);
    assert.ok(before['reports/paths']!.old.paths.length > 0);
    const dry = (await runRetention(appPool, A.tenant_id, { dryRun: true })).allocations_folded;

    const r = await runCli(['retention', 'run'], { env: env() }); // every tenant with rules: A only (B's rule keeps a year)
    assert.equal(r.code, 0, r.stderr);
    const reports = JSON.parse(r.stdout);
    assert.deepEqual(reports.map((x: { tenant_id: string }) => x.tenant_id).sort(), [A.tenant_id, B.tenant_id].sort());
    const a = reports.find((x: { tenant_id: string }) => x.tenant_id === A.tenant_id);
    assert.equal(a.events_deleted, 8);
    assert.equal(a.allocations_folded, dry);
    assert.equal(a.payloads_redacted, 6);

    const oldAfter = await channels(A.api_key, 210, 190);
    assert.deepEqual(oldAfter.channels, oldBefore.channels, 'same channels, money, conversions and confidence');
    assert.equal(oldAfter.from_aggregates.days, 1);
    assert.match(oldAfter.from_aggregates.note, /daily aggregates/);
    const recentAfter = await channels(A.api_key, 5, 0);
    assert.deepEqual(recentAfter, recentBefore, 'recent periods are untouched and say nothing of aggregates');

    // The model comparison adds the aggregated days in, for every model, and says so; over a period of pruned
    // and live days it answers the same as before.
    const comparison = await report(A.api_key, 'attribution/comparison', 210, 190);
    assert.ok(before['attribution/comparison']!.old.channels.length > 0);
    assert.deepEqual(comparison.channels, before['attribution/comparison']!.old.channels, 'every model: same money, conversions and confidence');
    assert.deepEqual(comparison.from_aggregates, { ...oldAfter.from_aggregates, note: comparison.from_aggregates.note });
    assert.match(comparison.from_aggregates.note, /come from daily aggregates/);
    const comparisonAll = await report(A.api_key, 'attribution/comparison', 210, 0);
    assert.deepEqual(comparisonAll.channels, before['attribution/comparison']!.all.channels);
    assert.equal(comparisonAll.from_aggregates.days, 1);
    // Reconciliation and paths cannot be rebuilt from aggregates: they say which days they leave out.
    const rec = await report(A.api_key, 'reconciliation', 210, 190);
    assert.equal(rec.total.conversions, 0);
    assert.deepEqual([rec.pruned.days, rec.pruned.first_day, rec.pruned.last_day], [1, oldAfter.from_aggregates.first_day, oldAfter.from_aggregates.first_day]);
    assert.match(rec.pruned.note, /are left out: .*keep no orders to verify/);
    const paths = await report(A.api_key, 'reports/paths', 210, 190);
    assert.deepEqual(paths.paths, []);
    assert.equal(paths.pruned.days, 1);
    assert.match(paths.pruned.note, /are left out: .*keep no paths/);
    // The performance report reads live allocations only: it leaves the pruned days' conversions and revenue out
    // and says so (spend is never pruned).
    assert.ok(before['performance?model=linear']!.old.totals.conversions > 0);
    const perf = await report(A.api_key, 'performance?model=linear', 210, 190);
    assert.equal(perf.totals.conversions, 0);
    assert.equal(perf.totals.attributed_cents, 0);
    assert.deepEqual([perf.pruned.days, perf.pruned.first_day], [1, oldAfter.from_aggregates.first_day]);
    assert.match(perf.pruned.note, /are left out of conversions, attributed and verified revenue/);
    for (const path of ['reconciliation', 'reports/paths', 'performance?model=linear'] as const) {
      const all = await report(A.api_key, path, 210, 0);
      assert.equal(all.pruned.days, 1, path);
      const recent = await report(A.api_key, path, 5, 0);
      assert.deepEqual(recent, before[path]!.recent, `${path}: a recent period is untouched and says nothing`);
      assert.equal(recent.pruned, null);
      // The other tenant's pruned days are not this tenant's.
      assert.equal((await report(B.api_key, path, 210, 190)).pruned, null, `${path}: tenant B`);
    }
    assert.deepEqual(await report(A.api_key, 'attribution/comparison', 5, 0), before['attribution/comparison']!.recent);
    // The CLI's channel report adds them too.
    const cli = await runCli(['attribution', 'report', '--tenant', A.tenant_id, '--model', 'linear', '--from', day(210).toISOString(), '--to', day(190).toISOString()], { env: env() });
    assert.equal(cli.code, 0, cli.stderr);
    const cliReport = JSON.parse(cli.stdout);
    assert.deepEqual(cliReport.channels, oldAfter.channels);
    assert.deepEqual(cliReport.from_aggregates, oldAfter.from_aggregates);

    const c = await counts(A.tenant_id);
    assert.equal(c.events, 3 * 2 + 2 * 2);
    assert.equal(c.redacted, 3 * 2);
    assert.equal(c.deadRedacted, 2);
    assert.ok(c.aggregates > 0);
    // The other tenant's data is untouched (its rule only covers dead events older than a year).
    const b = await counts(B.tenant_id);
    assert.deepEqual(b, { events: 18, redacted: 0, deadRedacted: 0, aggregates: 0 });

    // A second run finds nothing more to do.
    const again = await runRetention(appPool, A.tenant_id);
    assert.deepEqual([again.events_deleted, again.payloads_redacted, again.dead_event_payloads_redacted], [0, 0, 0]);
  });

  test('batches: small batches give the same result; pending events are never removed', async () => {
    await withTenant(appPool, B.tenant_id, (c) => c.query(`INSERT INTO retention_settings (tenant_id, event_days, payload_days) VALUES ($1, 90, 30) ON CONFLICT (tenant_id) DO UPDATE SET event_days = 90, payload_days = 30`, [B.tenant_id]));
    await withTenant(appPool, B.tenant_id, (c) =>
      c.query(`UPDATE attribution_events SET processing_status = 'pending' WHERE tenant_id = $1 AND id = (SELECT id FROM attribution_events WHERE tenant_id = $1 AND event_timestamp < $2 LIMIT 1)`, [B.tenant_id, day(150)]),
    );
    const before = await channels(B.api_key, 210, 190);
    const r = await runRetention(appPool, B.tenant_id, { batchSize: 2 });
    assert.equal(r.events_deleted, 7, 'the pending one stays');
    assert.ok(r.batches >= 4);
    const after = await channels(B.api_key, 210, 190);
    // The pending touchpoint has no allocations: the money is all there.
    assert.deepEqual(after.channels, before.channels);
  });

  test('the scheduler in skeldir start applies the rules', async () => {
    const owner = db.ownerPool({ max: 1 });
    const t = await createTenant(owner, { name: 'Gamma', email: 'ops@gamma.example' });
    await owner.end();
    const g = { tenant_id: t.tenant_id, api_key: t.api_key };
    await seed(g, 200, 2);
    await withTenant(appPool, g.tenant_id, (c) => c.query(`INSERT INTO retention_settings (tenant_id, event_days) VALUES ($1, 30)`, [g.tenant_id]));
    const handle = await retentionService.start(db, loadConfig({}), pino({ level: 'silent' }));
    try {
      for (let i = 0; i < 100 && (await counts(g.tenant_id)).events > 0; i++) await new Promise((r) => setTimeout(r, 100));
    } finally {
      await handle.stop();
    }
    assert.equal((await counts(g.tenant_id)).events, 0);
  });
});
