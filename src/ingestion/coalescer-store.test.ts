import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { createTenant } from '../tenants/tenants.js';
import { createTestDatabase, superClient, testsRunOnCitus, type TestDatabase } from '../testing/db.js';
import { defaultRuleSet } from '../channels/classify.js';
import { writeGroup } from './coalescer-store.js';
import { ingestEvents } from './ingest.js';
import { prepareEvent, type PreparedEvent } from './prepare.js';

let db: TestDatabase;
let pool: pg.Pool;
let su: pg.Client;
let tenant: string;
let other: string;

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ tenant_id: tenant } = await createTenant(owner, { name: 'Group store', email: 'ops@gs.example' }));
  ({ tenant_id: other } = await createTenant(owner, { name: 'Other', email: 'ops@other.example' }));
  await owner.end();
  pool = db.appPool({ max: 2 });
  su = await superClient(db);
});
after(async () => {
  await su?.end();
  await pool?.end();
  await db?.drop();
});

const rules = defaultRuleSet(['email', 'unknown']);
const prepared = (overrides: Record<string, unknown> = {}, tenantId = tenant): PreparedEvent =>
  prepareEvent(
    tenantId,
    { idempotency_key: randomUUID(), event_type: 'touchpoint', event_timestamp: '2026-01-01T00:00:00Z', session_id: randomUUID(), channel: 'email', ...overrides } as never,
    { pointer: 'body', rules, now: Date.now() },
  );

/** Every statement the server ran for our application name, counted by the test's own pool. */
async function statementsOf(fn: () => Promise<unknown>): Promise<number> {
  let n = 0;
  const clients = new Set<pg.PoolClient>();
  const connect = pool.connect.bind(pool);
  (pool as unknown as { connect: () => Promise<pg.PoolClient> }).connect = async () => {
    const c = await connect();
    if (!clients.has(c)) {
      clients.add(c);
      const query = c.query.bind(c) as (...a: unknown[]) => unknown;
      (c as unknown as { query: (...a: unknown[]) => unknown }).query = (...a: unknown[]) => (n++, query(...a));
    }
    return c;
  };
  try {
    await fn();
  } finally {
    (pool as unknown as { connect: typeof connect }).connect = connect;
    for (const c of clients) delete (c as unknown as { query?: unknown }).query;
  }
  return n;
}

test('a group of new events is one round trip (after the statement is prepared on the connection) and stored as given', async () => {
  await writeGroup(pool, tenant, [prepared()]); // prepares on this connection
  await writeGroup(pool, tenant, [prepared()]); // and the other
  // Quotes, backslashes, braces, commas, non-ASCII and NULLs in every text array.
  const tricky = `o'k "q" \\ back {a,b} , é ∑ NULL`;
  const events = [
    prepared({ user_id: tricky, campaign_id: tricky }),
    prepared({ event_type: 'conversion', conversion_value_cents: 1234, currency: 'EUR', order_id: tricky, user_id: 'NULL' }),
    prepared({ anonymous_id: tricky }),
  ];
  let outcomes: Awaited<ReturnType<typeof writeGroup>> = [];
  // On Citus the one-round-trip write is off (its PREPARE does not reach the workers): the usual path's
  // BEGIN with the tenant, the insert, COMMIT; what is stored must be the same.
  assert.equal(await statementsOf(async () => (outcomes = await writeGroup(pool, tenant, events))), testsRunOnCitus() ? 3 : 1);
  assert.deepEqual(outcomes.map((o) => o.status), [201, 201, 201]);
  const { rows } = await su.query(
    `SELECT idempotency_key, tenant_id::text, user_id, campaign_id, order_id, anonymous_id, conversion_value_cents, currency, raw_payload::text AS raw,
            encode(request_hash, 'hex') AS hash FROM attribution_events WHERE idempotency_key = ANY($1) ORDER BY idempotency_key`,
    [events.map((e) => e.scopedKey)],
  );
  const byKey = new Map(rows.map((r) => [r.idempotency_key, r]));
  for (const [i, e] of events.entries()) {
    const r = byKey.get(e.scopedKey)!;
    assert.deepEqual(
      [r.tenant_id, r.user_id, r.campaign_id, r.order_id, r.anonymous_id, r.conversion_value_cents, r.currency, r.hash],
      [tenant, e.userId, e.campaignId, e.orderId, e.anonymousId, e.valueCents, e.currency, e.requestHash],
      `event ${i}`,
    );
    assert.deepEqual(JSON.parse(r.raw), JSON.parse(e.raw));
    assert.equal((outcomes[i] as { event: { idempotency_key: string } }).event.idempotency_key, e.clientKey);
  }
  assert.equal(byKey.get(events[1]!.scopedKey)!.user_id, 'NULL', 'the text NULL is a string, not a null');
});

test('replays and reused keys in a group get 200 and 409 as on the usual path; new ones 201', async () => {
  const stored = prepared();
  await withTenant(pool, tenant, (c) => ingestEvents(c, tenant, [stored]));
  const replay = { ...stored };
  const reused = { ...prepared(), scopedKey: stored.scopedKey, clientKey: stored.clientKey };
  const fresh = prepared();
  const outcomes = await writeGroup(pool, tenant, [fresh, replay]);
  assert.deepEqual(outcomes.map((o) => o.status), [201, 200]);
  assert.equal((await writeGroup(pool, tenant, [reused]))[0]!.status, 409);
  // The same key twice in one group: the first creates, the second replays (the usual path, whole).
  const twice = prepared();
  assert.deepEqual((await writeGroup(pool, tenant, [twice, { ...twice }])).map((o) => o.status), [201, 200]);
});

test('the tenant context is the group\'s; a failing group rolls back and leaves the connection usable', async () => {
  const e = prepared({}, other);
  assert.equal((await writeGroup(pool, other, [e]))[0]!.status, 201);
  const { rows } = await su.query('SELECT tenant_id::text FROM attribution_events WHERE idempotency_key = $1', [e.scopedKey]);
  assert.deepEqual(rows, [{ tenant_id: other }]);
  // A statement that fails inside the one round trip (a timestamp PostgreSQL cannot read) rejects, writes nothing …
  const bad = { ...prepared(), timestamp: 'not a time' };
  await assert.rejects(writeGroup(pool, tenant, [bad, prepared()]), /invalid input syntax for type timestamp/);
  assert.equal((await su.query('SELECT count(*)::int AS n FROM attribution_events WHERE idempotency_key = $1', [bad.scopedKey])).rows[0].n, 0);
  // … and the connections are usable afterwards (the failed transaction was rolled back).
  assert.equal((await writeGroup(pool, tenant, [prepared()]))[0]!.status, 201);
});

test('quoteLiteral writes what pg.escapeLiteral writes, for any text', async () => {
  const { escapeLiteral } = await import('pg');
  const { quoteLiteral } = await import('./coalescer-store.js');
  const fc = (await import('fast-check')).default;
  const text = fc.oneof(fc.string({ unit: 'binary' }), fc.stringMatching(/^['\\"a{},]*$/), fc.constantFrom('', "'", '\\', "\\'", "a'b\\c"));
  fc.assert(fc.property(text, (s) => quoteLiteral(s) === escapeLiteral(s)), { numRuns: 5000 });
});
