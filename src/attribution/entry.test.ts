import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { attributeConversion } from './entry.js';
import { writeSettings } from './settings.js';
import { createTenant, daysBefore, insertEvents } from './test-fixtures.js';

let db: TestDatabase;
let app: pg.Pool;
let tenant: string;
let other: string;

before(async () => {
  db = await createTestDatabase('head');
  app = db.appPool({ max: 4 });
  const su = await superClient(db);
  tenant = await createTenant(su);
  other = await createTenant(su, 'other');
  await su.end();
});
after(async () => {
  await app?.end();
  await db?.drop();
});

async function allocations(eventId: string) {
  return withTenant(app, tenant, async (c) =>
    (
      await c.query<{ id: string; model_type: string; channel_code: string; cents: number; ratio: string; confidence: string; updated_at: Date; created_at: Date }>(
        `SELECT id, model_type, channel_code, allocated_revenue_cents AS cents, allocation_ratio::text AS ratio,
                confidence_score::text AS confidence, updated_at, created_at
         FROM attribution_allocations WHERE event_id = $1 ORDER BY model_type, channel_code`,
        [eventId],
      )
    ).rows,
  );
}

describe('attributeConversion (the worker entry point)', () => {
  test('writes the default heuristic models inside the caller transaction; sums are exact; recompute is byte-identical', async () => {
    const session = randomUUID();
    const t0 = new Date('2026-03-31T12:00:00Z');
    const [, , , conv] = await insertEvents(app, tenant, [
      { type: 'touchpoint', channel: 'email', session, at: daysBefore(t0, 10) },
      { type: 'touchpoint', channel: 'google_search_paid', session, at: daysBefore(t0, 5) },
      { type: 'touchpoint', channel: 'facebook_paid', session, at: daysBefore(t0, 1) },
      { type: 'conversion', channel: 'direct', session, at: t0, value: 1001 },
    ]);
    const result = await withTenant(app, tenant, (c) => attributeConversion(c, tenant, conv!));
    assert.deepEqual(result.models, ['first_touch', 'last_touch', 'linear', 'time_decay', 'position_based']);
    const rows = await allocations(conv!);
    assert.equal(result.allocations, rows.length);
    for (const model of result.models) {
      const mine = rows.filter((r) => r.model_type === model);
      assert.equal(mine.reduce((a, r) => a + r.cents, 0), 1001, model);
      for (const r of mine) assert.equal(r.created_at.toISOString(), t0.toISOString());
    }
    const linear = rows.filter((r) => r.model_type === 'linear').map((r) => [r.channel_code, r.cents, r.ratio]);
    // 1001 / 3 = 333.67 each: floors give 999, the two leftover units go to the first channels in code order (equal remainders).
    assert.deepEqual(linear, [['email', 334, '0.33334'], ['facebook_paid', 334, '0.33333'], ['google_search_paid', 333, '0.33333']]);
    const pb = rows.filter((r) => r.model_type === 'position_based').map((r) => [r.channel_code, r.cents]);
    assert.deepEqual(pb, [['email', 401], ['facebook_paid', 400], ['google_search_paid', 200]]);

    const again = await withTenant(app, tenant, (c) => attributeConversion(c, tenant, conv!));
    assert.deepEqual(again, result);
    assert.deepEqual(await allocations(conv!), rows, 'same ids, same updated_at: nothing rewritten');
  });

  test('rolls back with the caller transaction', async () => {
    const session = randomUUID();
    const [conv] = await insertEvents(app, tenant, [{ type: 'conversion', channel: 'email', session, at: new Date(), value: 500 }]);
    await assert.rejects(
      withTenant(app, tenant, async (c) => {
        await attributeConversion(c, tenant, conv!);
        throw new Error('worker failed after attributing');
      }),
    );
    assert.equal((await allocations(conv!)).length, 0);
    // A conversion with no touchpoint is credited to its own channel.
    await withTenant(app, tenant, (c) => attributeConversion(c, tenant, conv!));
    const rows = await allocations(conv!);
    assert.deepEqual(new Set(rows.map((r) => r.channel_code)), new Set(['email']));
    assert.ok(rows.every((r) => r.cents === 500 && r.ratio === '1.00000'));
  });

  test('typed errors for data problems, nothing written', async () => {
    const session = randomUUID();
    const [touch, noValue] = await insertEvents(app, tenant, [
      { type: 'touchpoint', channel: 'email', session, at: new Date() },
      { type: 'conversion', channel: 'email', session, at: new Date(), value: null },
    ]);
    const code = async (tenantId: string, ctxTenant: string, id: string) =>
      withTenant(app, ctxTenant, (c) => attributeConversion(c, tenantId, id)).then(
        () => 'ok',
        (e: { code?: string }) => e.code,
      );
    assert.equal(await code(tenant, tenant, touch!), 'attribution_not_a_conversion');
    assert.equal(await code(tenant, tenant, noValue!), 'attribution_conversion_without_value');
    assert.equal(await code(tenant, tenant, randomUUID()), 'attribution_conversion_not_found');
    // Another tenant's context cannot see the conversion at all.
    assert.equal(await code(other, other, noValue!), 'attribution_conversion_not_found');
    assert.equal(await code(tenant, other, noValue!), 'attribution_tenant_context_mismatch');
    assert.equal((await allocations(touch!)).length + (await allocations(noValue!)).length, 0);
  });
});

describe('last_non_direct and channel exclusions, configured per tenant', () => {
  test('the worker writes last_non_direct; excluded channels leave the rule models\' paths; a change of exclusions rewrites the rows', async () => {
    const session = randomUUID();
    const t0 = new Date('2026-04-30T12:00:00Z');
    const [, , , conv] = await insertEvents(app, other, [
      { type: 'touchpoint', channel: 'google_search_paid', session, at: daysBefore(t0, 6) },
      { type: 'touchpoint', channel: 'email', session, at: daysBefore(t0, 3) },
      { type: 'touchpoint', channel: 'direct', session, at: daysBefore(t0, 1) },
      { type: 'conversion', channel: 'direct', session, at: t0, value: 900 },
    ]);
    const rowsOf = async (model: string) =>
      withTenant(app, other, async (c) =>
        (await c.query<{ channel_code: string; cents: number; model_metadata: { parameters: Record<string, unknown> } }>(
          `SELECT channel_code, allocated_revenue_cents AS cents, model_metadata FROM attribution_allocations WHERE event_id = $1 AND model_type = $2 ORDER BY channel_code`,
          [conv, model],
        )).rows,
      );
    await withTenant(app, other, async (c) => {
      await writeSettings(c, other, { models: ['last_touch', 'last_non_direct', 'linear'] });
      await attributeConversion(c, other, conv!);
    });
    assert.deepEqual((await rowsOf('last_touch')).map((r) => [r.channel_code, r.cents]), [['direct', 900]]);
    assert.deepEqual((await rowsOf('last_non_direct')).map((r) => [r.channel_code, r.cents]), [['email', 900]]);
    assert.deepEqual((await rowsOf('linear')).map((r) => [r.channel_code, r.cents]), [['direct', 300], ['email', 300], ['google_search_paid', 300]]);
    await withTenant(app, other, async (c) => {
      await writeSettings(c, other, { excludedChannels: ['email', 'direct'] });
      await attributeConversion(c, other, conv!);
    });
    assert.deepEqual((await rowsOf('last_non_direct')).map((r) => [r.channel_code, r.cents]), [['google_search_paid', 900]]);
    assert.deepEqual((await rowsOf('linear')).map((r) => [r.channel_code, r.cents]), [['google_search_paid', 900]]);
    assert.deepEqual((await rowsOf('linear'))[0]!.model_metadata.parameters.excluded_channels, ['direct', 'email']);
    await assert.rejects(withTenant(app, other, (c) => writeSettings(c, other, { excludedChannels: ['Not A Code'] })), { code: 'attribution_settings_invalid' });
    await withTenant(app, other, (c) => writeSettings(c, other, { excludedChannels: [], models: ['first_touch', 'last_touch', 'linear', 'time_decay', 'position_based'] }));
  });
});
