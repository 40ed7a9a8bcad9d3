import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import { tenantContextSql, withTenant } from '../db/tenant-context.js';
import { createTenant } from '../tenants/tenants.js';
import { createTestDatabase, superClient, testsRunOnCitus, type TestDatabase } from '../testing/db.js';
import { applyFact, transitionReasonSql } from './apply.js';
import { derive, EMPTY, join, path, type Knowledge } from './lattice.js';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`# fast-check seed ${seed} (FC_SEED=${seed} to replay)`);

const ids = fc.constantFrom('a', 'b', 'c', 'd');
const knowledgeArb: fc.Arbitrary<Knowledge> = fc.record({
  amount: fc.constantFrom(null, 1000),
  currency: fc.constantFrom(null, 'USD'),
  occurredAt: fc.option(fc.constantFrom('2024-01-01T00:00:00.000Z', '2024-01-02T00:00:00.000Z'), { nil: null }),
  captured: fc.boolean(),
  authorized: fc.boolean(),
  captures: fc.dictionary(ids, fc.integer({ min: 1, max: 600 })),
  capturedTotal: fc.constantFrom(0, 0, 500, 1000),
  refunds: fc.dictionary(ids, fc.integer({ min: 1, max: 600 })),
  refundedTotal: fc.integer({ min: 0, max: 1200 }),
  fullyRefunded: fc.boolean(),
  chargebacks: fc.dictionary(ids, fc.integer({ min: 1, max: 1000 })),
  disputes: fc.dictionary(ids, fc.constantFrom('needs_response', 'under_review', 'won', 'lost')),
  voided: fc.boolean(),
  orderId: fc.option(fc.constantFrom('o1', 'o2'), { nil: null }),
  details: fc.dictionary(fc.constantFrom('x', 'y'), fc.constantFrom('1', '2')),
}).map((k) => ({ ...k, currency: k.amount === null ? null : 'USD' }));

describe('what the ledger knows is a semilattice (order and repetition of deliveries do not matter)', () => {
  test('join is commutative, associative and idempotent; EMPTY is its identity', () => {
    fc.assert(
      fc.property(knowledgeArb, knowledgeArb, knowledgeArb, (a, b, c) => {
        assert.deepEqual(join(a, b), join(b, a));
        assert.deepEqual(join(join(a, b), c), join(a, join(b, c)));
        assert.deepEqual(join(a, a), join(a, EMPTY));
        assert.deepEqual(join(join(a, b), b), join(a, b));
      }),
      { seed, numRuns: 500 },
    );
  });

  test('any order of any multiset of snapshots derives the same row; figures stay within the amount', () => {
    fc.assert(
      fc.property(
        fc.array(knowledgeArb, { minLength: 1, maxLength: 6 }).chain((facts) =>
          fc.tuple(fc.constant(facts), fc.shuffledSubarray(facts, { minLength: facts.length, maxLength: facts.length })),
        ),
        ([facts, permuted]) => {
        const withAmount = facts.map((f) => ({ ...f, amount: 1000, currency: 'USD' }));
        const shuffled = permuted.map((f) => ({ ...f, amount: 1000, currency: 'USD' }));
        const a = derive(withAmount.reduce(join, EMPTY));
        const b = derive([...shuffled, ...shuffled].reduce(join, EMPTY));
        assert.deepEqual(a, b);
        assert.ok(a.refundedCents >= 0 && a.refundedCents <= 1000 && a.chargebackCents <= 1000 && a.netCents >= 0 && a.netCents <= 1000);
        if (a.state === 'authorized') assert.equal(a.netCents, 0);
      }),
      { seed, numRuns: 500 },
    );
  });

  test('paths follow authorized → captured → refunded | chargeback and never leave a final state', () => {
    assert.deepEqual(path(null, 'refunded'), ['authorized', 'captured', 'refunded']);
    assert.deepEqual(path(null, 'captured'), ['authorized', 'captured']);
    assert.deepEqual(path('authorized', 'chargeback'), ['captured', 'chargeback']);
    assert.deepEqual(path('captured', 'authorized'), []);
    assert.equal(path('refunded', 'chargeback'), null);
    assert.deepEqual(path('chargeback', 'chargeback'), []);
  });
});

/**
 * The constraint a violation names. On Citus the rows live on the workers' shards, whose errors
 * reach the coordinator with their SQLSTATE and message only (no constraint field): there the name
 * is read from the message, a CHECK's less its shard suffix, a ledger trigger's from the message it
 * raises (one per constraint, src/migrations/revisions/202611280020…, 202611280300…, 202611280409…).
 */
const TRIGGER_MESSAGES: [RegExp, string][] = [
  [/^revenue_ledger row \S+: illegal state transition /, 'revenue_ledger_state_machine'],
  [/^revenue_ledger row \S+: transaction_id, amount_cents, currency and tenant_id never change$/, 'revenue_ledger_immutable_columns'],
  [/^revenue_ledger row \S+: (refunded_cents and chargeback_cents are cumulative and never shrink|captured_cents is cumulative and never shrinks)$/, 'revenue_ledger_cumulative_amounts'],
  [/^revenue_ledger: a row cannot be inserted in state /, 'revenue_ledger_initial_state'],
];
function constraintOf(e: { constraint?: string; message: string }): string | undefined {
  if (e.constraint !== undefined || !testsRunOnCitus()) return e.constraint;
  const check = /violates check constraint "(.+?)(_\d+)?"/.exec(e.message);
  if (check) return check[1];
  return TRIGGER_MESSAGES.find(([re]) => re.test(e.message))?.[1];
}

describe('the state machine is enforced by the database (direct SQL as the application role)', () => {
  let db: TestDatabase;
  let appPool: pg.Pool;
  let tenant: string;
  let other: string;
  before(async () => {
    db = await createTestDatabase('head');
    const owner = db.ownerPool({ max: 1 });
    tenant = (await createTenant(owner, { name: 'Ledger', email: 'ops@ledger.example' })).tenant_id;
    other = (await createTenant(owner, { name: 'Other', email: 'ops@other.example' })).tenant_id;
    await owner.end();
    appPool = db.appPool({ max: 4 });
  });
  after(async () => {
    await appPool?.end();
    await db?.drop();
  });

  const inTenant = <T>(fn: (c: pg.PoolClient) => Promise<T>, t = tenant) => withTenant(appPool, t, fn);
  let n = 0;
  const insertSql = `INSERT INTO revenue_ledger (tenant_id, transaction_id, state, previous_state, amount_cents, currency, revenue_cents, verification_source, verification_timestamp)
       VALUES ($1, $2, $3, 'forged', $4, 'USD', 0, 'test', now()) RETURNING id`;
  /** A row in `state`: born authorized or captured, a terminal state reached by its legal transition. */
  async function insert(c: pg.PoolClient, state = 'authorized', amount = 1000): Promise<string> {
    const terminal = state === 'refunded' || state === 'chargeback';
    const { rows } = await c.query(insertSql, [tenant, `${tenant}:stripe:sql_${++n}`, terminal ? 'captured' : state, amount]);
    if (terminal) await c.query(`UPDATE revenue_ledger SET state = $2 WHERE id = $1`, [rows[0].id, state]);
    return rows[0].id;
  }
  const rejected = async (fn: (c: pg.PoolClient) => Promise<unknown>, constraint: string) => {
    await assert.rejects(inTenant(fn), (e: { code?: string; constraint?: string; message: string }) => {
      assert.equal(e.code, '23514', e.message);
      assert.equal(constraintOf(e), constraint, e.message);
      return true;
    });
  };
  const transitions = (c: pg.PoolClient, id: string) =>
    c.query(`SELECT from_state, to_state, reason FROM revenue_state_transitions WHERE ledger_id = $1 ORDER BY transitioned_at, id`, [id]).then((r) => r.rows);

  test('legal moves: previous_state and the transition row are written by the database, in the same transaction', async () => {
    await inTenant(async (c) => {
      const id = await insert(c);
      let row = (await c.query(`SELECT previous_state, revenue_cents, is_verified, verified_at FROM revenue_ledger WHERE id = $1`, [id])).rows[0];
      assert.deepEqual([row.previous_state, row.revenue_cents, row.is_verified, row.verified_at], [null, 1000, false, null], 'previous_state cannot be forged on insert');
      await c.query(transitionReasonSql('manual capture'));
      await c.query(`UPDATE revenue_ledger SET state = 'captured' WHERE id = $1`, [id]);
      await c.query(`UPDATE revenue_ledger SET refunded_cents = 250, previous_state = 'forged' WHERE id = $1`, [id]);
      row = (await c.query(`SELECT state, previous_state, revenue_cents, is_verified, verified_at FROM revenue_ledger WHERE id = $1`, [id])).rows[0];
      assert.deepEqual([row.state, row.previous_state, row.revenue_cents, row.is_verified], ['captured', 'authorized', 750, true], 'legacy columns follow; a forged previous_state is ignored');
      assert.ok(row.verified_at instanceof Date);
      await c.query(`UPDATE revenue_ledger SET state = 'refunded' WHERE id = $1`, [id]);
      row = (await c.query(`SELECT state, previous_state, refunded_cents, revenue_cents FROM revenue_ledger WHERE id = $1`, [id])).rows[0];
      assert.deepEqual([row.state, row.previous_state, row.refunded_cents, row.revenue_cents], ['refunded', 'captured', 1000, 0], 'refunded means fully refunded');
      assert.deepEqual(await transitions(c, id), [
        { from_state: null, to_state: 'authorized', reason: null },
        { from_state: 'authorized', to_state: 'captured', reason: 'manual capture' },
        { from_state: 'captured', to_state: 'refunded', reason: 'manual capture' },
      ]);
    });
  });

  test('every illegal transition is rejected, and nothing of it is written', async () => {
    const illegal: [string, string][] = [
      ['captured', 'authorized'], ['authorized', 'refunded'], ['authorized', 'chargeback'], ['refunded', 'captured'], ['refunded', 'authorized'],
      ['refunded', 'chargeback'], ['chargeback', 'refunded'], ['chargeback', 'captured'], ['chargeback', 'authorized'],
    ];
    for (const [from, to] of illegal) {
      const id = await inTenant((c) => insert(c, from));
      await rejected((c) => c.query(`UPDATE revenue_ledger SET state = $2 WHERE id = $1`, [id, to]), 'revenue_ledger_state_machine');
      const after = await inTenant(async (c) => ({ state: (await c.query(`SELECT state FROM revenue_ledger WHERE id = $1`, [id])).rows[0].state, t: await transitions(c, id) }));
      assert.equal(after.state, from, `${from} -> ${to}`);
      assert.equal(after.t[after.t.length - 1].to_state, from, `${from} -> ${to}: no transition written`);
      assert.equal(after.t.length, from === 'refunded' || from === 'chargeback' ? 2 : 1, `${from} -> ${to}: only the transitions that made the row`);
    }
    // An unknown state is still refused by the document's CHECK, under its own name.
    const id = await inTenant((c) => insert(c, 'captured'));
    await rejected((c) => c.query(`UPDATE revenue_ledger SET state = 'settled' WHERE id = $1`, [id]), 'ck_revenue_ledger_state_valid');
  });

  test('amount, currency and transaction id never change; cumulative refunds never shrink', async () => {
    const id = await inTenant((c) => insert(c, 'captured'));
    await rejected((c) => c.query(`UPDATE revenue_ledger SET amount_cents = 999 WHERE id = $1`, [id]), 'revenue_ledger_immutable_columns');
    await rejected((c) => c.query(`UPDATE revenue_ledger SET transaction_id = 'x' WHERE id = $1`, [id]), 'revenue_ledger_immutable_columns');
    await rejected((c) => c.query(`UPDATE revenue_ledger SET currency = 'EUR' WHERE id = $1`, [id]), 'revenue_ledger_immutable_columns');
    await inTenant((c) => c.query(`UPDATE revenue_ledger SET refunded_cents = 400 WHERE id = $1`, [id]));
    await rejected((c) => c.query(`UPDATE revenue_ledger SET refunded_cents = 300 WHERE id = $1`, [id]), 'revenue_ledger_cumulative_amounts');
    await rejected((c) => c.query(`UPDATE revenue_ledger SET refunded_cents = 1001 WHERE id = $1`, [id]), 'ck_revenue_ledger_refunded_cents_range');
    // A partial capture: captured_cents only grows; the legacy revenue_cents counts what was captured.
    await inTenant((c) => c.query(`UPDATE revenue_ledger SET captured_cents = 700 WHERE id = $1`, [id]));
    assert.equal((await inTenant((c) => c.query(`SELECT revenue_cents FROM revenue_ledger WHERE id = $1`, [id]))).rows[0].revenue_cents, 300, '700 captured - 400 refunded');
    await rejected((c) => c.query(`UPDATE revenue_ledger SET captured_cents = 600 WHERE id = $1`, [id]), 'revenue_ledger_cumulative_amounts');
    await rejected((c) => c.query(`UPDATE revenue_ledger SET captured_cents = NULL WHERE id = $1`, [id]), 'revenue_ledger_cumulative_amounts');
    await rejected((c) => c.query(`UPDATE revenue_ledger SET captured_cents = 1001 WHERE id = $1`, [id]), 'ck_revenue_ledger_captured_cents_range');
  });

  test('a row is born authorized or captured only: refunded and chargeback are reached by transitions', async () => {
    for (const state of ['refunded', 'chargeback']) {
      await rejected((c) => c.query(insertSql, [tenant, `${tenant}:stripe:born_${state}`, state, 1000]), 'revenue_ledger_initial_state');
    }
    for (const state of ['authorized', 'captured']) {
      const id = await inTenant((c) => c.query(insertSql, [tenant, `${tenant}:stripe:born_${state}`, state, 1000]).then((r) => r.rows[0].id));
      assert.deepEqual((await inTenant((c) => transitions(c, id))).map((t) => `${t.from_state}->${t.to_state}`), [`null->${state}`]);
    }
    // An unknown state is still the document's CHECK's to refuse, under its own name.
    await rejected((c) => c.query(insertSql, [tenant, `${tenant}:stripe:born_settled`, 'settled', 1000]), 'ck_revenue_ledger_state_valid');
  });

  test('the application role cannot DELETE a ledger row (so a transaction id can never be re-inserted with another amount or state)', async () => {
    const id = await inTenant((c) => insert(c, 'captured', 5000));
    await assert.rejects(inTenant((c) => c.query(`DELETE FROM revenue_ledger WHERE id = $1`, [id])), { code: '42501' });
    await assert.rejects(inTenant((c) => c.query(`DELETE FROM revenue_ledger`)), { code: '42501' });
    const row = await inTenant(async (c) => ({
      ledger: (await c.query(`SELECT transaction_id, state, amount_cents FROM revenue_ledger WHERE id = $1`, [id])).rows[0],
      transitions: (await transitions(c, id)).length,
    }));
    assert.deepEqual([row.ledger.state, row.ledger.amount_cents, row.transitions], ['captured', 5000, 1]);
    await assert.rejects(inTenant((c) => c.query(insertSql, [tenant, row.ledger.transaction_id, 'captured', 1])), { code: '23505' });
  });

  test('the application role cannot write the audit trail itself, nor see or touch another tenant', async () => {
    const id = await inTenant((c) => insert(c, 'captured'));
    await assert.rejects(
      inTenant((c) => c.query(`INSERT INTO revenue_state_transitions (ledger_id, from_state, to_state) VALUES ($1, 'captured', 'refunded')`, [id])),
      { code: '42501' },
    );
    await assert.rejects(inTenant((c) => c.query(`UPDATE revenue_state_transitions SET to_state = 'x' WHERE ledger_id = $1`, [id])), { code: '42501' });
    const seen = await inTenant((c) => c.query(`UPDATE revenue_ledger SET state = 'refunded' WHERE id = $1`, [id]), other);
    assert.equal(seen.rowCount, 0, 'the other tenant updates nothing');
  });

  // On Citus both sides take the order's lock on the worker holding the tenant's shard (the shards'
  // statement trigger there, the payment by a statement routed to that shard): the wait is checked
  // there, an advisory lock of the second transaction not granted on a worker, not on the coordinator.
  test('a payment and a conversion of the same order in concurrent transactions: the allocations end verified, whichever commits first', async () => {
    const capture = (c: pg.PoolClient, order: string) =>
      applyFact(c, { tenantId: tenant, provider: 'stripe', reason: 'test', reportingCurrency: 'USD' }, {
        target: `ch_${order}`, aliases: [], knowledge: { ...EMPTY, amount: 900, currency: 'USD', captured: true, orderId: order },
      });
    const conversion = async (c: pg.PoolClient, order: string) => {
      const event = (await c.query(
        `INSERT INTO attribution_events (tenant_id, event_type, channel, session_id, event_timestamp, occurred_at, raw_payload, revenue_cents, idempotency_key, order_id)
         VALUES ($1, 'conversion', 'email', gen_random_uuid(), now(), now(), '{}', 900, $3, $2) RETURNING id`, [tenant, order, `${tenant}:ext:${order}`])).rows[0].id;
      await c.query(
        `INSERT INTO attribution_allocations (tenant_id, event_id, channel_code, allocated_revenue_cents, allocation_ratio, confidence_score, model_type)
         VALUES ($1, $2, 'email', 900, 1, 1, 'last_touch')`, [tenant, event]);
      return event as string;
    };
    // Whether the backend (one server: its pid; Citus: its global pid) waits for an advisory lock (Citus: on a worker).
    const waitsSql = testsRunOnCitus()
      ? `SELECT count(*)::int AS n FROM citus_locks WHERE global_pid = $1 AND locktype = 'advisory' AND NOT granted
            AND nodeid IN (SELECT nodeid FROM pg_dist_node WHERE groupid <> 0)`
      : `SELECT count(*)::int AS n FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND NOT granted`;
    const idSql = testsRunOnCitus() ? 'SELECT citus_backend_gpid() AS pid' : 'SELECT pg_backend_pid() AS pid';
    // Waits until the other connection is blocked on the order lock (or its statement ended: then the race is lost and the assertion says so).
    const blocked = async (pid: string, pending: Promise<unknown>) => {
      let settled = false;
      void pending.then(() => (settled = true), () => (settled = true));
      const probe = await superClient(db); // another role's locks are visible to a superuser only
      try {
        for (;;) {
          const r = await probe.query<{ n: number }>(waitsSql, [pid]);
          if (r.rows[0]!.n > 0) return;
          if (settled) {
            await pending; // surfaces its error
            assert.fail('the second transaction did not wait for the order lock');
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      } finally {
        await probe.end();
      }
    };
    for (const first of ['payment', 'conversion'] as const) {
      const order = `O-RACE-${first}`;
      const [a, b] = [await appPool.connect(), await appPool.connect()];
      try {
        for (const c of [a, b]) {
          await c.query('BEGIN');
          await c.query(tenantContextSql(tenant));
        }
        const pidB = String((await b.query<{ pid: string }>(idSql)).rows[0]!.pid);
        let event: Promise<string> | string;
        if (first === 'payment') {
          await capture(a, order); // uncommitted capture
          const pending = conversion(b, order); // its trigger waits for the payment's order lock
          await blocked(pidB, pending);
          await a.query('COMMIT');
          event = await pending;
          await b.query('COMMIT');
        } else {
          event = await conversion(a, order); // uncommitted allocations (order lock held shared)
          const pending = capture(b, order); // waits for the order lock before marking allocations
          await blocked(pidB, pending);
          await a.query('COMMIT');
          await pending;
          await b.query('COMMIT');
        }
        const v = await inTenant((c) => c.query(`SELECT verified, verification_source FROM attribution_allocations WHERE event_id = $1`, [event]));
        assert.deepEqual(v.rows, [{ verified: true, verification_source: 'stripe' }], `${first} first`);
      } finally {
        for (const c of [a, b]) {
          await c.query('ROLLBACK').catch(() => undefined);
          c.release();
        }
      }
    }
  });

  test('applyFact walks the machine: a refund snapshot of an unseen payment is born authorized, then captured and refunded', async () => {
    const r = await inTenant((c) =>
      applyFact(c, { tenantId: tenant, provider: 'stripe', reason: 'test', reportingCurrency: 'USD' }, {
        target: 'ch_walk',
        aliases: [],
        knowledge: { ...EMPTY, amount: 700, currency: 'USD', captured: true, refundedTotal: 700, fullyRefunded: true },
      }),
    );
    assert.equal(r.status, 'applied');
    const t = await inTenant(async (c) => transitions(c, r.status === 'applied' ? r.ledgerId : ''));
    assert.deepEqual(t.map((x) => `${x.from_state}->${x.to_state}`), ['null->authorized', 'authorized->captured', 'captured->refunded']);
  });
});
