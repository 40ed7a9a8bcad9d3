/**
 * Property-based tests of the identity graph (issue 14), against PostgreSQL: random browsers,
 * people, touches and conversions, then random sequences of links and unlinks through
 * linkIdentities / unlinkIdentities, each in its own transaction as the API makes them.
 *
 * - Edges: the graph holds exactly the model's edge set; every change that changed something is
 *   audited once and marked recomputed; a change that changed nothing is not audited.
 * - Merges: every conversion's path (worker and window runs alike) is the touches of its session,
 *   of its own browser and of every browser linked to its person, in the lookback; links never
 *   chain (a browser shared by two people does not merge their other browsers).
 * - Re-attribution exactly once: after any sequence, the allocations equal a from-scratch
 *   recompute, and every model's allocations of a conversion sum to its value.
 * - Idempotence: repeating every link changes nothing (no audit row, rows byte-identical).
 * - Order independence: the same links in another order give the same graph and allocations.
 * And, with the worker: a conversion not processed yet is left to the worker (which then sees
 * the link); one the worker is processing while the link is made is waited for, then recomputed.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import { attributeConversion } from '../attribution/entry.js';
import { loadConversionForUpdate, loadPath } from '../attribution/journeys.js';
import { createTenant, insertEvents, type FixtureEvent } from '../attribution/test-fixtures.js';
import { loadWindow } from '../attribution/window.js';
import { tenantContextSql, withTenant } from '../db/tenant-context.js';
import { createTestDatabase, lockWaiters, superClient, type TestDatabase } from '../testing/db.js';
import { linkIdentities, unlinkIdentities } from './graph.js';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`# fast-check seed ${seed} (FC_SEED=${seed} to replay)`);

const DAY = 86_400_000;
const T0 = Date.parse('2026-04-01T00:00:00Z');
const LOOKBACK = 30;
const CHANNELS = ['email', 'organic', 'referral', 'facebook_paid', 'google_search_paid'];
const BROWSERS = ['b0', 'b1', 'b2', 'b3'];
const USERS = ['u0', 'u1'];

let db: TestDatabase;
let app: pg.Pool;
let su: pg.Client;

before(async () => {
  db = await createTestDatabase('head');
  app = db.appPool({ max: 2 });
  su = await superClient(db);
});
after(async () => {
  await su?.end();
  await app?.end();
  await db?.drop();
});

interface Touch { browser: number | null; session: number; channel: string; at: number }
interface Conv { user: number; browser: number | null; session: number; at: number; value: number }
type Op = { kind: 'link' | 'unlink'; browser: number; user: number } | { kind: 'unlinkAll'; user: number };

const instant = fc.record({ day: fc.integer({ min: 0, max: 45 }), hour: fc.integer({ min: 0, max: 23 }) }).map(({ day, hour }) => T0 + day * DAY + hour * 3_600_000);
const touchArb = fc.record({
  browser: fc.option(fc.integer({ min: 0, max: BROWSERS.length - 1 }), { freq: 4 }),
  session: fc.integer({ min: 0, max: 3 }),
  channel: fc.constantFrom(...CHANNELS),
  at: instant,
});
const convArb = fc.record({
  user: fc.integer({ min: 0, max: USERS.length - 1 }),
  browser: fc.option(fc.integer({ min: 0, max: BROWSERS.length - 1 }), { freq: 3 }),
  session: fc.integer({ min: 0, max: 3 }),
  at: instant,
  value: fc.integer({ min: 0, max: 1_000_000 }),
});
const linkArb = fc.record({ browser: fc.integer({ min: 0, max: BROWSERS.length - 1 }), user: fc.integer({ min: 0, max: USERS.length - 1 }) });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: linkArb.map((l) => ({ kind: 'link' as const, ...l })) },
  { weight: 2, arbitrary: linkArb.map((l) => ({ kind: 'unlink' as const, ...l })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: USERS.length - 1 }).map((user) => ({ kind: 'unlinkAll' as const, user })) },
);
const world = fc.record({
  touches: fc.array(touchArb, { minLength: 1, maxLength: 14 }),
  conversions: fc.array(convArb, { minLength: 1, maxLength: 4 }),
});

/** A tenant holding the world's events (processed and attributed, as the worker leaves them), and their ids. */
async function plant(w: { touches: Touch[]; conversions: Conv[] }): Promise<{ tenant: string; sessions: string[]; conversionIds: string[] }> {
  const tenant = await createTenant(su, 'identity property');
  const sessions = [0, 1, 2, 3].map(() => randomUUID());
  const events: FixtureEvent[] = [
    ...w.touches.map((t): FixtureEvent => ({ type: 'touchpoint', channel: t.channel, session: sessions[t.session]!, at: new Date(t.at), anonymousId: t.browser === null ? null : BROWSERS[t.browser]! })),
    ...w.conversions.map((c): FixtureEvent => ({
      type: 'conversion',
      channel: 'direct',
      session: sessions[c.session]!,
      at: new Date(c.at),
      value: c.value,
      userId: USERS[c.user]!,
      anonymousId: c.browser === null ? null : BROWSERS[c.browser]!,
    })),
  ];
  const ids = await insertEvents(app, tenant, events);
  const conversionIds = ids.slice(w.touches.length);
  await withTenant(app, tenant, async (c) => {
    for (const id of conversionIds) await attributeConversion(c, tenant, id);
  });
  return { tenant, sessions, conversionIds };
}

/** Applies one operation as the API does (its own transaction); returns what changed. */
async function apply(tenant: string, op: Op): Promise<number> {
  return withTenant(app, tenant, async (c) => {
    if (op.kind === 'link') return (await linkIdentities(c, tenant, [{ anonymousId: BROWSERS[op.browser]!, userId: USERS[op.user]!, at: new Date(T0).toISOString() }], { source: 'api', keyId: null })).linked;
    const r = await unlinkIdentities(c, tenant, USERS[op.user]!, op.kind === 'unlink' ? BROWSERS[op.browser]! : null, 'api');
    return r.unlinked.length;
  });
}

/** The model: the edge set after the operations, as "browser user" strings. */
function modelEdges(ops: readonly Op[]): Set<string> {
  const edges = new Set<string>();
  for (const op of ops) {
    if (op.kind === 'link') edges.add(`${op.browser} ${op.user}`);
    else if (op.kind === 'unlink') edges.delete(`${op.browser} ${op.user}`);
    else for (const e of [...edges]) if (e.endsWith(` ${op.user}`)) edges.delete(e);
  }
  return edges;
}

/** The model's path of a conversion: channels of its person's touches in the lookback, in time order (ties as a set). */
function modelPathChannels(w: { touches: Touch[] }, c: Conv, edges: Set<string>): string[] {
  return w.touches
    .filter((t) => t.at <= c.at && t.at >= c.at - LOOKBACK * DAY)
    .filter((t) => t.session === c.session || (t.browser !== null && (t.browser === c.browser || edges.has(`${t.browser} ${c.user}`))))
    .map((t) => t.channel)
    .sort();
}

async function edgesOf(tenant: string): Promise<Set<string>> {
  const { rows } = await su.query(`SELECT anonymous_id, user_id FROM identity_links WHERE tenant_id = $1`, [tenant]);
  return new Set(rows.map((r) => `${BROWSERS.indexOf(r.anonymous_id)} ${USERS.indexOf(r.user_id)}`));
}

async function allocationRows(tenant: string): Promise<string[]> {
  const { rows } = await su.query(
    `SELECT event_id, model_type, channel_code, campaign_id, allocated_revenue_cents, allocation_ratio::text, updated_at
       FROM attribution_allocations WHERE tenant_id = $1 ORDER BY event_id, model_type, channel_code, campaign_id NULLS FIRST`,
    [tenant],
  );
  return rows.map((r) => JSON.stringify(r));
}

/** What the rows would be if every conversion were attributed from scratch now (rolled back). */
async function freshAllocations(tenant: string, conversionIds: string[]): Promise<string[]> {
  const client = await app.connect();
  try {
    await client.query('BEGIN');
    await client.query(tenantContextSql(tenant));
    await client.query(`DELETE FROM attribution_allocations WHERE tenant_id = $1`, [tenant]);
    for (const id of conversionIds) await attributeConversion(client, tenant, id);
    const { rows } = await client.query(
      `SELECT event_id, model_type, channel_code, campaign_id, allocated_revenue_cents, allocation_ratio::text
         FROM attribution_allocations WHERE tenant_id = $1 ORDER BY event_id, model_type, channel_code, campaign_id NULLS FIRST`,
      [tenant],
    );
    return rows.map((r) => JSON.stringify(r));
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

const withoutUpdateTimes = (rows: string[]) => rows.map((r) => { const { updated_at: _, ...rest } = JSON.parse(r); return JSON.stringify(rest); });

describe('the identity graph, property-based', () => {
  test('any sequence of links and unlinks: the model graph, audited once each, journeys through it, re-attributed exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(world, fc.array(opArb, { minLength: 1, maxLength: 10 }), async (w, ops) => {
        const { tenant, sessions, conversionIds } = await plant(w);
        let changed = 0;
        for (const op of ops) changed += await apply(tenant, op);
        const edges = modelEdges(ops);
        assert.deepEqual([...(await edgesOf(tenant))].sort(), [...edges].sort(), 'the graph is the model graph');

        const audit = await su.query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE recomputed_at IS NULL)::int AS pending FROM identity_changes WHERE tenant_id = $1`, [tenant]);
        assert.equal(audit.rows[0].n, changed, 'one audit row per change that changed something');
        assert.equal(audit.rows[0].pending, 0, 'every change re-attributed');

        // Journeys: the worker's path and the window's path both follow the graph, and match the model.
        const window = await withTenant(app, tenant, (c) => loadWindow(c, tenant, new Date(T0), new Date(T0 + 50 * DAY), LOOKBACK));
        for (const [i, id] of conversionIds.entries()) {
          const c = w.conversions[i]!;
          const path = await withTenant(app, tenant, async (cl) => loadPath(cl, tenant, await loadConversionForUpdate(cl, tenant, id), LOOKBACK));
          assert.deepEqual(path.map((t) => t.channel).sort(), modelPathChannels(w, c, edges), `path of conversion ${i} (${JSON.stringify(c)}, sessions ${sessions.length})`);
          const inWindow = window.conversions.find((x) => x.id === id)!;
          assert.deepEqual(inWindow.touches, path, `window path of conversion ${i}`);
        }

        // Exactly once: what the changes left equals attributing everything afresh; sums exact.
        const rows = await allocationRows(tenant);
        assert.deepEqual(withoutUpdateTimes(rows), await freshAllocations(tenant, conversionIds));
        const sums = await su.query(
          `SELECT e.conversion_value_cents AS value, a.model_type, sum(a.allocated_revenue_cents)::bigint AS total
             FROM attribution_allocations a JOIN attribution_events e ON e.tenant_id = a.tenant_id AND e.id = a.event_id WHERE a.tenant_id = $1
            GROUP BY e.id, e.conversion_value_cents, a.model_type`,
          [tenant],
        );
        assert.equal(sums.rows.length, conversionIds.length * 5, 'five default models per conversion');
        for (const s of sums.rows) assert.equal(Number(s.total), Number(s.value), `${s.model_type}`);

        // Idempotence: every link again changes nothing at all.
        for (const e of edges) {
          const [b, u] = e.split(' ').map(Number) as [number, number];
          assert.equal(await apply(tenant, { kind: 'link', browser: b, user: u }), 0);
        }
        assert.deepEqual(await allocationRows(tenant), rows, 'rows byte-identical');
        const auditAfter = await su.query(`SELECT count(*)::int AS n FROM identity_changes WHERE tenant_id = $1`, [tenant]);
        assert.equal(auditAfter.rows[0].n, changed, 'no audit row for a link that exists');
      }),
      { numRuns: Number(process.env.FC_RUNS ?? 25), seed },
    );
  });

  test('order independence: the same links in any order give the same graph and the same allocations', async () => {
    await fc.assert(
      fc.asyncProperty(
        world,
        fc.uniqueArray(linkArb, { minLength: 1, maxLength: 8, selector: (l) => `${l.browser} ${l.user}` }).chain((links) => fc.tuple(fc.constant(links), fc.shuffledSubarray(links, { minLength: links.length, maxLength: links.length }))),
        async (w, [links, shuffled]) => {
          const a = await plant(w);
          const b = await plant(w);
          for (const l of links) await apply(a.tenant, { kind: 'link', ...l });
          for (const l of shuffled) await apply(b.tenant, { kind: 'link', ...l });
          assert.deepEqual([...(await edgesOf(a.tenant))].sort(), [...(await edgesOf(b.tenant))].sort());
          const strip = async (t: { tenant: string; conversionIds: string[] }) =>
            withoutUpdateTimes(await allocationRows(t.tenant)).map((r) => {
              const row = JSON.parse(r);
              return JSON.stringify({ ...row, event_id: t.conversionIds.indexOf(row.event_id) });
            }).sort();
          assert.deepEqual(await strip(a), await strip(b));
        },
      ),
      { numRuns: Number(process.env.FC_RUNS ?? 12), seed },
    );
  });

  test('links never chain: a browser shared by two people counts in both journeys, and merges nothing else', async () => {
    const w = {
      touches: [
        { browser: 0, session: 0, channel: 'email', at: T0 + 1 * DAY }, // shared computer
        { browser: 1, session: 1, channel: 'organic', at: T0 + 2 * DAY }, // u0's phone
        { browser: 2, session: 2, channel: 'referral', at: T0 + 2 * DAY }, // u1's phone
      ],
      conversions: [
        { user: 0, browser: null, session: 3, at: T0 + 3 * DAY, value: 1000 },
        { user: 1, browser: null, session: 3, at: T0 + 3 * DAY, value: 1000 },
      ],
    };
    const { tenant, conversionIds } = await plant(w);
    for (const op of [{ browser: 0, user: 0 }, { browser: 0, user: 1 }, { browser: 1, user: 0 }, { browser: 2, user: 1 }]) await apply(tenant, { kind: 'link', ...op });
    const { rows } = await su.query(
      `SELECT event_id, array_agg(channel_code ORDER BY channel_code) AS channels FROM attribution_allocations WHERE tenant_id = $1 AND model_type = 'linear' GROUP BY event_id`,
      [tenant],
    );
    const of = (id: string) => rows.find((r) => r.event_id === id)!.channels;
    assert.deepEqual(of(conversionIds[0]!), ['email', 'organic']);
    assert.deepEqual(of(conversionIds[1]!), ['email', 'referral']);
  });
});

describe('re-attribution and the worker', () => {
  const w = {
    touches: [{ browser: 0, session: 0, channel: 'email', at: T0 + DAY }],
    conversions: [{ user: 0, browser: null, session: 1, at: T0 + 2 * DAY, value: 4321 }],
  };
  const linearOf = async (tenant: string, id: string) =>
    (await su.query(`SELECT channel_code FROM attribution_allocations WHERE tenant_id = $1 AND event_id = $2 AND model_type = 'linear' ORDER BY 1`, [tenant, id])).rows.map((r) => r.channel_code);

  test('a conversion the worker has not processed yet is left to it: the link recomputes nothing, the worker then sees the link', async () => {
    const { tenant, conversionIds } = await plant(w);
    const id = conversionIds[0]!;
    await su.query(`UPDATE attribution_events SET processing_status = 'pending' WHERE id = $1`, [id]);
    const r = await withTenant(app, tenant, (c) => linkIdentities(c, tenant, [{ anonymousId: 'b0', userId: 'u0', at: new Date(T0).toISOString() }], { source: 'api', keyId: null }));
    assert.equal(r.conversionsRecomputed, 0);
    assert.deepEqual(await linearOf(tenant, id), ['direct'], 'untouched until the worker processes it');
    await withTenant(app, tenant, (c) => attributeConversion(c, tenant, id)); // what the worker does
    assert.deepEqual(await linearOf(tenant, id), ['email']);
  });

  test('a conversion the worker is processing while the link is made: the link waits for it, then recomputes it with the link', async () => {
    const { tenant, conversionIds } = await plant(w);
    const id = conversionIds[0]!;
    await su.query(`UPDATE attribution_events SET processing_status = 'pending' WHERE id = $1`, [id]);
    // The worker's batch: claims the conversion (FOR UPDATE), attributes it without the link (not committed yet).
    const workerTx = await app.connect();
    try {
      await workerTx.query('BEGIN');
      await workerTx.query(tenantContextSql(tenant));
      await workerTx.query(`SELECT id FROM attribution_events WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, [tenant, id]);
      const linking = withTenant(app, tenant, (c) => linkIdentities(c, tenant, [{ anonymousId: 'b0', userId: 'u0', at: new Date(T0).toISOString() }], { source: 'api', keyId: null }));
      // The link's transaction waits on the worker's row lock.
      for (let waited = 0; ; waited += 20) {
        // lockWaiters: on Citus the waiting statement is the shard's, on a worker.
        if ((await lockWaiters(su, '%FOR NO KEY UPDATE OF c%')) > 0) break;
        assert.ok(waited < 20_000, 'the link waits for the worker');
        await new Promise((r) => setTimeout(r, 20));
      }
      await attributeConversion(workerTx, tenant, id);
      await workerTx.query(`UPDATE attribution_events SET processing_status = 'processed' WHERE tenant_id = $1 AND id = $2`, [tenant, id]);
      await workerTx.query('COMMIT');
      const r = await linking;
      assert.equal(r.conversionsRecomputed, 1, 'processed by the time the lock was granted: recomputed');
    } finally {
      workerTx.release();
    }
    assert.deepEqual(await linearOf(tenant, id), ['email'], 'the worker\'s stale rows were replaced');
    const sums = await su.query(`SELECT model_type, sum(allocated_revenue_cents)::int AS s FROM attribution_allocations WHERE event_id = $1 GROUP BY 1`, [id]);
    for (const s of sums.rows) assert.equal(s.s, 4321, s.model_type);
  });
});
