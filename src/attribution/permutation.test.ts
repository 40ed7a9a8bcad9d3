import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { attributeConversion } from './entry.js';
import { HEURISTIC_MODELS, type ModelType } from './models.js';
import { runModel } from './run.js';
import { createTenant, insertEvents, type FixtureEvent } from './test-fixtures.js';

/**
 * Input order must not matter: the same events (same ids), stored in a different order, give the
 * same allocation rows and the same fitted population models. Each ordering deletes the tenant's
 * events and re-inserts them in that order (so the heap order, which is what an ORDER BY without a
 * total tie-break would leak, differs), then recomputes the rules over the window, the worker's
 * per-conversion rules, and Markov and Shapley over the window.
 */

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`# fast-check seed ${seed} (FC_SEED=${seed} to replay)`);

const T0 = Date.parse('2026-05-01T00:00:00Z');
const HOUR = 3_600_000;
const FROM = new Date(T0);
const TO = new Date(T0 + 10 * 24 * HOUR);
const WINDOW_MODELS: ModelType[] = [...HEURISTIC_MODELS, 'markov', 'shapley'];

let db: TestDatabase;
let app: pg.Pool;
let tenant: string;

before(async () => {
  db = await createTestDatabase('head');
  app = db.appPool({ max: 2 });
  const su = await superClient(db);
  tenant = await createTenant(su, 'permutation').finally(() => su.end());
});
after(async () => {
  await app?.end();
  await db?.drop();
});

/**
 * A small population with many ties: few sessions and users, times on a coarse grid (so touches of
 * one journey often share an instant and only the event id orders them), conversions with values.
 */
const population = fc
  .uniqueArray(
    fc.record({
      id: fc.uuid({ version: 4 }),
      conversion: fc.integer({ min: 0, max: 3 }).map((k) => k === 0),
      channel: fc.constantFrom('email', 'organic', 'referral', 'facebook_paid', 'google_search_paid'),
      session: fc.integer({ min: 0, max: 3 }),
      user: fc.option(fc.integer({ min: 0, max: 1 }), { freq: 3 }),
      slot: fc.integer({ min: 0, max: 7 }),
      value: fc.integer({ min: 0, max: 100_000 }),
    }),
    { minLength: 3, maxLength: 24, selector: (e) => e.id },
  )
  // Always at least one tie and one conversion on it: two touches of session 0 at the same instant
  // (only their ids order them), then a conversion of that session.
  .map((xs) => [
    { ...xs[0]!, conversion: false, channel: 'email', session: 0, slot: 0 },
    { ...xs[1]!, conversion: false, channel: 'organic', session: 0, slot: 0 },
    { ...xs[2]!, conversion: true, session: 0, slot: 1 },
    ...xs.slice(3),
  ])
  .map((xs) =>
    xs.map(
      (x): FixtureEvent => ({
        id: x.id,
        type: x.conversion ? 'conversion' : 'touchpoint',
        channel: x.conversion ? 'direct' : x.channel,
        session: `00000000-0000-4000-8000-00000000000${x.session}`,
        userId: x.user === null ? null : `user-${x.user}`,
        at: new Date(T0 + 24 * HOUR + x.slot * 6 * HOUR),
        value: x.conversion ? x.value : null,
      }),
    ),
  );

interface Outcome {
  windowRows: unknown[];
  workerRows: unknown[];
  fits: unknown[];
}

async function snapshot(): Promise<unknown[]> {
  return withTenant(app, tenant, async (c) =>
    (
      await c.query(
        `SELECT event_id, model_type, channel_code, allocated_revenue_cents, allocation_ratio::text, confidence_score::text,
                credible_interval_lower_cents, credible_interval_upper_cents, convergence_r_hat::text, effective_sample_size,
                model_version, model_metadata - 'run_id' AS metadata, created_at
         FROM attribution_allocations ORDER BY event_id, model_type, channel_code`,
      )
    ).rows,
  );
}

/** Stores `events` in this order, recomputes everything, returns what was stored. */
async function computeInOrder(events: readonly FixtureEvent[]): Promise<Outcome> {
  // Deleting the events cascades to their allocations.
  await withTenant(app, tenant, (c) => c.query(`DELETE FROM attribution_events`));
  await insertEvents(app, tenant, events);
  const fits: unknown[] = [];
  for (const model of WINDOW_MODELS) {
    const s = await runModel(app, tenant, { model, from: FROM, to: TO, trigger: 'cli', markov: { bootstrap: 10 }, shapley: { bootstrap: 10 } });
    fits.push({ model, status: s.status, conversions: s.conversions, journeys: s.journeys, results: s.results, diagnostics: s.diagnostics });
  }
  const windowRows = await snapshot();
  // The worker's path (journeys.ts) for every conversion, in the order they were stored.
  await withTenant(app, tenant, async (c) => {
    for (const e of events) if (e.type === 'conversion') await attributeConversion(c, tenant, e.id!);
  });
  const workerRows = (await snapshot()).filter((r) => HEURISTIC_MODELS.includes((r as { model_type: never }).model_type));
  return { windowRows, workerRows, fits };
}

describe('input order changes nothing (in the database)', () => {
  test('the same events stored in shuffled orders give identical allocation rows and identical Markov and Shapley fits', async () => {
    await fc.assert(
      fc.asyncProperty(
        population.chain((events) =>
          fc.tuple(fc.constant(events), fc.shuffledSubarray(events, { minLength: events.length, maxLength: events.length })),
        ),
        async ([events, shuffled]) => {
          const a = await computeInOrder(events);
          const b = await computeInOrder(shuffled);
          assert.deepEqual(b.fits, a.fits);
          assert.deepEqual(b.windowRows, a.windowRows);
          assert.deepEqual(b.workerRows, a.workerRows);
          // Every conversion got allocations from every window model (the property is not vacuous).
          const conversions = events.filter((e) => e.type === 'conversion').length;
          for (const m of WINDOW_MODELS) {
            assert.equal(new Set(a.windowRows.filter((r) => (r as { model_type: string }).model_type === m).map((r) => (r as { event_id: string }).event_id)).size, conversions, m);
          }
        },
      ),
      { seed, numRuns: 12 },
    );
  });
});
