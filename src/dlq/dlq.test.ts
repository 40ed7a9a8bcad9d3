import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import { loadConfig } from '../config.js';
import { tenantContextSql, withTenant } from '../db/tenant-context.js';
import { buildApp, type App } from '../http/app.js';
import { createTenant } from '../tenants/tenants.js';
import { runCli } from '../testing/cli.js';
import { createTestDatabase, lockWaiters, superClient, type TestDatabase } from '../testing/db.js';
import { DEFAULT_WORKER_OPTIONS } from '../worker/options.js';
import { insertPendingEvents } from '../worker/test-fixtures.js';
import { Worker } from '../worker/worker.js';
import { REMEDIATION_ACTIONS, type RemediationAction, type RemediationStatus } from './transitions.js';
import { INSTANT_TEXT } from '../db/timestamps.js';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`# fast-check seed ${seed} (FC_SEED=${seed} to replay)`);

let db: TestDatabase;
let su: pg.Client;
let appPool: pg.Pool;
let app: App;
let A: { tenant_id: string; api_key: string };
let B: { tenant_id: string; api_key: string };

before(async () => {
  db = await createTestDatabase('head');
  su = await superClient(db);
  const owner = db.ownerPool({ max: 1 });
  A = await createTenant(owner, { name: 'Alpha', email: 'ops@alpha.example' });
  B = await createTenant(owner, { name: 'Beta', email: 'ops@beta.example' });
  await owner.end();
  appPool = db.appPool({ max: 3 });
  app = await buildApp({ db, config: loadConfig({}), logger: false });
});
after(async () => {
  await app?.close();
  await appPool?.end();
  await su?.end();
  await db?.drop();
});

interface DeadSpec {
  status?: RemediationStatus;
  errorType?: string;
  eventType?: string;
  source?: string;
  createdAt?: string;
  /** Link a failed event (retryable); false for a legacy-style dead event without one. */
  withEvent?: boolean;
}

/** A dead event as the worker leaves it (a failed event and its dead_events row), in the tenant's context. */
async function deadEvent(tenant: string, spec: DeadSpec = {}): Promise<{ id: string; eventId: string | null }> {
  return withTenant(appPool, tenant, async (c) => {
    let eventId: string | null = null;
    const type = spec.eventType ?? 'conversion';
    if (spec.withEvent !== false) {
      eventId = randomUUID();
      await c.query(
        `INSERT INTO attribution_events (id, tenant_id, event_type, channel, session_id, event_timestamp, occurred_at, conversion_value_cents,
           revenue_cents, idempotency_key, raw_payload, processing_status, retry_count)
         VALUES ($1::uuid, $2::uuid, $3, 'email', gen_random_uuid(), now(), now(), 500, 500, $2::text || ':ext:' || $1::text, '{"k": 1}', 'failed', 6)`,
        [eventId, tenant, type],
      );
    }
    const r = await c.query<{ id: string }>(
      `INSERT INTO dead_events (tenant_id, event_id, source, event_type, error_type, error_code, error_message, error_traceback, error_detail,
         retry_count, raw_payload, remediation_status, created_at)
       VALUES ($1, $2, $3, $4, $5, 'sqlstate_P0001', 'it broke', 'Error: it broke\n    at x', '{"code": "sqlstate_P0001"}', 6, '{"k": 1}', $6, $7)
       RETURNING id`,
      [tenant, eventId, spec.source ?? 'worker', type, spec.errorType ?? 'internal', spec.status ?? 'pending', spec.createdAt ?? new Date().toISOString()],
    );
    return { id: r.rows[0]!.id, eventId };
  });
}

const auth = (t: { api_key: string }) => ({ authorization: `Bearer ${t.api_key}` });

function problem(res: { statusCode: number; headers: Record<string, unknown>; json(): any }, status: number, code: string) {
  assert.equal(res.statusCode, status, JSON.stringify(res.json()));
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json();
  assert.equal(body.code, code);
  assert.equal(body.type, `/problems/${code}`);
  return body;
}

async function act(id: string, action: RemediationAction, tenant = A, body?: unknown) {
  return app.inject({
    method: 'POST',
    url: `/api/v1/dead-events/${id}/${action}`,
    headers: auth(tenant),
    ...(body === undefined ? {} : { payload: body as object }),
  });
}

describe('listing', () => {
  let mine: string[];
  before(async () => {
    await su.query('DELETE FROM dead_events');
    const specs: DeadSpec[] = [
      { createdAt: '2026-11-01T10:00:00Z', errorType: 'data', eventType: 'conversion' },
      { createdAt: '2026-11-02T10:00:00Z', errorType: 'internal', eventType: 'touchpoint', status: 'in_progress' },
      { createdAt: '2026-11-03T10:00:00Z', errorType: 'data', eventType: 'conversion', status: 'resolved' },
      { createdAt: '2026-11-03T10:00:00Z', errorType: 'validation', eventType: 'pageview', status: 'ignored' },
      { createdAt: '2026-11-04T10:00:00Z', errorType: 'internal', source: 'legacy', withEvent: false },
    ];
    mine = [];
    for (const s of specs) mine.push((await deadEvent(A.tenant_id, s)).id);
    await deadEvent(B.tenant_id, { createdAt: '2026-11-02T12:00:00Z' });
  });

  const list = async (query: string, tenant = A) => app.inject({ method: 'GET', url: `/api/v1/dead-events${query}`, headers: auth(tenant) });

  test('newest first, keyset pages that neither skip nor repeat, only the tenant\'s own', async () => {
    const seen: string[] = [];
    const dates: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await list(`?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.ok(body.items.length <= 2);
      seen.push(...body.items.map((d: { id: string }) => d.id));
      dates.push(...body.items.map((d: { created_at: string }) => d.created_at));
      for (const d of body.items) {
        assert.equal(d.tenant_id, undefined, 'the tenant id is not echoed');
        assert.equal(d.error_traceback, undefined, 'the list carries summaries');
      }
      cursor = body.next_cursor;
      pages++;
    } while (cursor);
    assert.equal(pages, 3);
    assert.deepEqual([...seen].sort(), [...mine].sort(), "exactly A's five, no duplicates");
    assert.deepEqual(dates, [...dates].sort().reverse(), 'newest first');
    const b = (await list('', B)).json();
    assert.equal(b.items.length, 1, 'B sees only its own');
    assert.ok(!mine.includes(b.items[0].id));
  });

  test('filters: status, error_type, event_type, source, from/to', async () => {
    const ids = async (q: string) => (await list(q)).json().items.map((d: { id: string }) => d.id).sort();
    assert.deepEqual(await ids('?status=pending'), [mine[0], mine[4]].sort());
    assert.deepEqual(await ids('?status=in_progress,resolved'), [mine[1], mine[2]].sort());
    assert.deepEqual(await ids('?error_type=data'), [mine[0], mine[2]].sort());
    assert.deepEqual(await ids('?event_type=pageview'), [mine[3]]);
    assert.deepEqual(await ids('?source=legacy'), [mine[4]]);
    assert.deepEqual(await ids('?from=2026-11-02T00:00:00Z&to=2026-11-04T00:00:00Z'), [mine[1], mine[2], mine[3]].sort());
    assert.deepEqual(await ids('?status=pending&error_type=internal'), [mine[4]]);
  });

  test('bad parameters are 400 problems naming them', async () => {
    problem(await list('?status=lost'), 400, 'validation_failed');
    problem(await list('?limit=0'), 400, 'validation_failed');
    problem(await list('?limit=201'), 400, 'validation_failed');
    problem(await list('?from=yesterday'), 400, 'validation_failed');
    problem(await list('?colour=red'), 400, 'validation_failed');
    const bad = problem(await list('?cursor=bm90LWEtY3Vyc29y'), 400, 'dead_event_cursor_invalid');
    assert.equal(bad.field, 'cursor');
  });

  test('inputs that once gave 500s: leap second, years outside 0001-9999, out-of-range cursors, NUL in filters', async () => {
    const leap = problem(await list('?from=2026-12-31T23:59:60Z'), 400, 'validation_failed');
    assert.equal(leap.field, 'from');
    assert.match(leap.detail, /leap seconds are not accepted/);
    for (const q of ['?to=2026-06-30T23:59:60Z', '?from=0000-01-01T00:00:00Z', '?to=9999-12-31T23:59:59-23:59', '?from=0001-01-01T00:30:00+01:00']) {
      const p = problem(await list(q), 400, 'validation_failed');
      assert.ok(p.field.endsWith(q.slice(1, q.indexOf('='))), `${q}: field ${p.field}`);
    }
    const id = randomUUID();
    for (const us of ['9999999999999999999', '-9000000000000000000', '253402300800000000', '-62135596800000001']) {
      const cursor = Buffer.from(`${us}:${id}`).toString('base64url');
      problem(await list(`?cursor=${cursor}`), 400, 'dead_event_cursor_invalid');
    }
    for (const q of ['?event_type=%00', '?source=a%00b', '?error_type=%00', '?error_type=data%00']) {
      const p = problem(await list(q), 400, 'validation_failed');
      assert.match(p.field, /error_type|event_type|source/, q);
    }
    // The bounds themselves are fine.
    const edges = await list('?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59.999Z');
    assert.equal(edges.statusCode, 200, edges.body);
    assert.equal(edges.json().items.length, 5);
    const lowest = Buffer.from(`-62135596800000000:${id}`).toString('base64url');
    assert.equal((await list(`?cursor=${lowest}`)).statusCode, 200);
  });

  test('no query string gives a 500 (property: random values for every filter)', async () => {
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 12 }),
      fc.constantFrom('2026-12-31T23:59:60Z', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59-23:59', '2026-02-30T00:00:00Z', '\u0000', '-1', '1e400'),
    );
    const field = fc.constantFrom('status', 'error_type', 'event_type', 'source', 'from', 'to', 'limit', 'cursor');
    const cursorOf = fc.tuple(fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }), fc.uuid()).map(([n, u]) => Buffer.from(`${n}:${u}`).toString('base64url'));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(fc.tuple(field, text), fc.tuple(fc.constant('cursor'), cursorOf)), { minLength: 1, maxLength: 4 }), async (pairs) => {
        const q = pairs.map(([k, v]) => `${k}=${encodeURIComponent(v).replace(/%(?![0-9A-F]{2})/g, '%25')}`).join('&');
        const res = await list(`?${q}`);
        assert.ok(res.statusCode === 200 || res.statusCode === 400, `?${q}: ${res.statusCode} ${res.body}`);
      }),
      { seed, numRuns: 150 },
    );
  });

  test('one dead event in full; another tenant\'s is simply not found', async () => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/dead-events/${mine[0]}`, headers: auth(A) });
    assert.equal(res.statusCode, 200, res.body);
    const d = res.json();
    assert.equal(d.error_traceback, 'Error: it broke\n    at x');
    assert.deepEqual(d.raw_payload, { k: 1 });
    assert.equal(d.event_status, 'failed');
    assert.equal(d.remediation_status, 'pending');
    const other = problem(await app.inject({ method: 'GET', url: `/api/v1/dead-events/${mine[0]}`, headers: auth(B) }), 404, 'dead_event_not_found');
    const missing = problem(await app.inject({ method: 'GET', url: `/api/v1/dead-events/${randomUUID()}`, headers: auth(B) }), 404, 'dead_event_not_found');
    assert.equal(other.title, missing.title);
    problem(await app.inject({ method: 'GET', url: `/api/v1/dead-events/not-a-uuid`, headers: auth(A) }), 400, 'validation_failed');
  });
});

describe('remediation moves', () => {
  type Model = { status: RemediationStatus; inFlight: boolean };
  /** What the API must answer, from the workflow of the issue: pending → in_progress → resolved | ignored, in_progress → pending. */
  function expected(m: Model, action: RemediationAction): { ok: true; next: Model } | { ok: false; code: string } {
    if (m.inFlight) return { ok: false, code: 'dead_event_retry_in_flight' };
    const moves: Record<RemediationAction, [RemediationStatus[], RemediationStatus]> = {
      start: [['pending'], 'in_progress'],
      retry: [['pending', 'in_progress'], 'in_progress'],
      resolve: [['in_progress'], 'resolved'],
      ignore: [['in_progress'], 'ignored'],
      reopen: [['in_progress'], 'pending'],
    };
    const [from, to] = moves[action];
    if (!from.includes(m.status)) return { ok: false, code: 'dead_event_transition_not_allowed' };
    return { ok: true, next: { status: to, inFlight: action === 'retry' } };
  }

  test('every sequence of actions follows the workflow; everything else is a 409 and changes nothing (model-based)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...REMEDIATION_ACTIONS), { minLength: 1, maxLength: 7 }), async (actions) => {
        const dead = await deadEvent(A.tenant_id);
        let model: Model = { status: 'pending', inFlight: false };
        for (const action of actions) {
          const before = (await su.query(`SELECT remediation_status, remediation_notes, retry_count FROM dead_events WHERE id = $1`, [dead.id])).rows[0];
          const res = await act(dead.id, action);
          const want = expected(model, action);
          if (want.ok) {
            assert.equal(res.statusCode, 200, `${action} from ${model.status}: ${res.body}`);
            model = want.next;
            assert.equal(res.json().remediation_status, model.status);
          } else {
            const body = problem(res, 409, want.code);
            if (want.code === 'dead_event_transition_not_allowed') {
              assert.equal(body.from, model.status);
              assert.equal(body.action, action);
              assert.ok(Array.isArray(body.allowed_actions));
            }
            const after = (await su.query(`SELECT remediation_status, remediation_notes, retry_count FROM dead_events WHERE id = $1`, [dead.id])).rows[0];
            assert.deepEqual(after, before, 'a refused move changes nothing');
          }
          const row = (await su.query(`SELECT d.remediation_status, d.resolved_at, e.processing_status FROM dead_events d JOIN attribution_events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id WHERE d.id = $1`, [dead.id])).rows[0];
          assert.equal(row.remediation_status, model.status);
          assert.equal(row.resolved_at !== null, model.status === 'resolved' || model.status === 'ignored', 'resolved_at iff final');
          assert.equal(row.processing_status, model.inFlight ? 'pending' : 'failed', 'the event is queued only by a retry');
        }
      }),
      { seed, numRuns: 25 },
    );
  });

  test('the 409 says what is possible; notes are appended per action; no body is fine', async () => {
    const { id } = await deadEvent(A.tenant_id);
    const refused = problem(await act(id, 'resolve', A, { notes: 'done?' }), 409, 'dead_event_transition_not_allowed');
    assert.match(refused.detail, /cannot resolve a dead event that is pending; possible now: start, retry \(start it first/);
    assert.deepEqual(refused.allowed_actions, ['start', 'retry']);
    let res = await act(id, 'start');
    assert.equal(res.statusCode, 200, res.body);
    res = await act(id, 'ignore', A, { notes: 'duplicate of an order\nalready booked' });
    assert.equal(res.statusCode, 200, res.body);
    const d = res.json();
    assert.equal(d.remediation_status, 'ignored');
    assert.ok(d.resolved_at);
    const lines = d.remediation_notes.split('\n');
    assert.match(lines[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z api: start$/);
    assert.match(lines[1], /^\d{4}-\d\d-\d\dT[\d:.]+Z api: ignore: duplicate of an order$/);
    assert.equal(lines[2], 'already booked');
    problem(await act(id, 'reopen'), 409, 'dead_event_transition_not_allowed');
  });

  test('bad bodies and ids are 400s; another tenant gets 404 and changes nothing', async () => {
    const { id } = await deadEvent(A.tenant_id);
    problem(await act(id, 'start', A, { notes: 'x'.repeat(2001) }), 400, 'validation_failed');
    problem(await act(id, 'start', A, { notes: '   ' }), 400, 'dead_event_notes_invalid');
    problem(await act(id, 'start', A, { notes: 'bell\u0007' }), 400, 'dead_event_notes_invalid');
    problem(await act(id, 'start', A, { notes: 'x', extra: 1 }), 400, 'validation_failed');
    problem(await act(id, 'start', A, { notes: 5 }), 400, 'validation_failed');
    problem(await act('nope', 'start'), 400, 'validation_failed');
    for (const action of REMEDIATION_ACTIONS) problem(await act(id, action, B), 404, 'dead_event_not_found');
    const row = (await su.query(`SELECT remediation_status, remediation_notes FROM dead_events WHERE id = $1`, [id])).rows[0];
    assert.deepEqual(row, { remediation_status: 'pending', remediation_notes: null });
  });

  test('a move racing the worker\'s batch waits for it and sees its outcome (no deadlock, no 500)', async () => {
    const { id, eventId } = await deadEvent(A.tenant_id);
    assert.equal((await act(id, 'retry')).statusCode, 200);
    // A worker's batch in flight: it holds the event (its claim), and will resolve the dead event.
    const worker = await appPool.connect();
    try {
      await worker.query('BEGIN');
      await worker.query(tenantContextSql(A.tenant_id));
      await worker.query(`SELECT 1 FROM attribution_events WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, [A.tenant_id, eventId]);
      const pending = act(id, 'resolve');
      for (let i = 0; ; i++) {
        if ((await lockWaiters(su)) > 0) break;
        assert.ok(i < 400, 'the action waits for the batch');
        await new Promise((r) => setTimeout(r, 25));
      }
      await worker.query(`UPDATE attribution_events SET processing_status = 'processed' WHERE tenant_id = $1 AND id = $2`, [A.tenant_id, eventId]);
      await worker.query(`UPDATE dead_events SET remediation_status = 'resolved', resolved_at = now() WHERE tenant_id = $1 AND event_id = $2`, [A.tenant_id, eventId]);
      await worker.query('COMMIT');
      problem(await pending, 409, 'dead_event_transition_not_allowed');
    } finally {
      await worker.query('ROLLBACK').catch(() => {});
      worker.release();
    }
    assert.equal((await su.query(`SELECT remediation_status FROM dead_events WHERE id = $1`, [id])).rows[0].remediation_status, 'resolved');
  });

  test('a dead event without an event (legacy source) cannot be retried', async () => {
    const { id } = await deadEvent(A.tenant_id, { withEvent: false, source: 'ingestion' });
    const body = problem(await act(id, 'retry'), 409, 'dead_event_not_retryable');
    assert.match(body.detail, /no event to re-queue/);
    assert.equal((await act(id, 'start')).statusCode, 200);
    assert.equal((await act(id, 'resolve')).statusCode, 200, 'it can still be resolved');
  });
});

describe('retry end to end', () => {
  // The worker does not run on Citus yet (scripts/test-citus.mjs, src/worker/worker.test.ts): this one
  // test needs it; the API's side of a retry is tested on Citus by the remediation tests above.
  test('a conversion without value dies; after the data is fixed, an API retry gets it processed and the dead event resolved', async () => {
    await su.query(`DELETE FROM attribution_events WHERE processing_status = 'pending'`);
    const [eventId] = await insertPendingEvents(appPool, B.tenant_id, [{ type: 'conversion', channel: 'email', session: randomUUID(), at: new Date('2026-10-01T00:00:00Z'), value: null }]);
    const options = { ...DEFAULT_WORKER_OPTIONS, concurrency: 1, pollMs: 50 };
    const waitFor = async (sql: string) => {
      for (let i = 0; i < 600; i++) {
        if ((await su.query(sql, [eventId])).rows[0]?.ok) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`timed out: ${sql}`);
    };
    // Stopped also when the wait fails: a running worker would keep the test file from ending.
    const running = async (until: string) => {
      const w = new Worker(db, options);
      await w.start();
      try {
        await waitFor(until);
      } finally {
        await w.stop();
      }
    };
    await running(`SELECT processing_status = 'failed' AS ok FROM attribution_events WHERE id = $1`);
    const listed = (await app.inject({ method: 'GET', url: '/api/v1/dead-events?error_type=data&status=pending', headers: auth(B) })).json().items;
    const dead = listed.find((d: { event_id: string }) => d.event_id === eventId);
    assert.ok(dead, 'listed with its error type');
    assert.equal(dead.error_code, 'attribution_conversion_without_value');

    await withTenant(appPool, B.tenant_id, (c) => c.query(`UPDATE attribution_events SET conversion_value_cents = 1234 WHERE id = $1`, [eventId]));
    const res = await act(dead.id, 'retry', B, { notes: 'value restored from the order' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().remediation_status, 'in_progress');
    assert.equal(res.json().event_status, 'pending');
    assert.equal(res.json().retry_count, dead.retry_count + 1);
    assert.ok(res.json().last_retry_at);
    problem(await act(dead.id, 'resolve', B), 409, 'dead_event_retry_in_flight');

    await running(`SELECT remediation_status = 'resolved' AS ok FROM dead_events WHERE event_id = $1`);
    const final = (await app.inject({ method: 'GET', url: `/api/v1/dead-events/${dead.id}`, headers: auth(B) })).json();
    assert.equal(final.event_status, 'processed');
    assert.ok(final.resolved_at);
    assert.match(final.remediation_notes, /api: retry: value restored from the order\n.*worker: retry succeeded/);
    const sum = (await su.query(`SELECT model_type, sum(allocated_revenue_cents)::int AS s FROM attribution_allocations WHERE event_id = $1 GROUP BY 1`, [eventId])).rows;
    assert.ok(sum.length > 0 && sum.every((r) => r.s === 1234), 'allocated with the fixed value');
  });
});

describe('OpenAPI', () => {
  test('documents the dead-event routes with their security scheme', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    for (const path of ['/api/v1/dead-events', '/api/v1/dead-events/{id}', ...REMEDIATION_ACTIONS.map((a) => `/api/v1/dead-events/{id}/${a}`)]) {
      const op = doc.paths[path]?.get ?? doc.paths[path]?.post;
      assert.ok(op, path);
      assert.deepEqual(op.security, [{ apiKey: [] }, { session: [] }], path);
    }
    assert.ok(doc.paths['/metrics']?.get, '/metrics is documented too');
  });
});

describe('the dlq command', () => {
  test('list across tenants or for one, show, start; moves refused with exit 1; usage errors exit 2', async () => {
    const env = { DATABASE_URL: db.url };
    const a = await deadEvent(A.tenant_id, { createdAt: '2030-01-01T00:00:00Z', errorType: 'timeout' });
    const b = await deadEvent(B.tenant_id, { createdAt: '2030-01-02T00:00:00Z', errorType: 'timeout' });

    let r = await runCli(['dlq', 'list', '--error-type', 'timeout'], { env });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^created_at\s+id\s+tenant\s+status\s+event_type\s+error_type\s+retries\s+message$/);
    assert.equal(lines.length, 3, r.stdout);
    assert.ok(lines[1]!.includes(b.id) && lines[1]!.includes(B.tenant_id), 'newest first, with its tenant');
    assert.ok(lines[2]!.includes(a.id) && lines[2]!.includes(A.tenant_id));

    r = await runCli(['dlq', 'list', '--tenant', A.tenant_id, '--error-type', 'timeout', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).items.map((d: { id: string }) => d.id), [a.id]);
    assert.match(JSON.parse(r.stdout).items[0].created_at, INSTANT_TEXT, 'one timestamp precision: microseconds');

    r = await runCli(['dlq', 'show', a.id, '--tenant', A.tenant_id], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).error_traceback, 'Error: it broke\n    at x');

    r = await runCli(['dlq', 'resolve', a.id, '--tenant', A.tenant_id], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot resolve a dead event that is pending/);

    r = await runCli(['dlq', 'start', a.id, '--tenant', B.tenant_id], { env });
    assert.equal(r.code, 1, 'another tenant: not found');
    assert.match(r.stderr, /no dead event/);

    r = await runCli(['dlq', 'start', a.id, '--tenant', A.tenant_id, '--notes', 'on it'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `dead event ${a.id}: pending -> in_progress\n`);

    r = await runCli(['dlq', 'start', a.id], { env });
    assert.equal(r.code, 2, 'missing --tenant');
    r = await runCli(['dlq', 'list', '--status', 'lost'], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--status: "lost" is not one of/);

    // --from/--to: the same instants as the API; refused before touching the database.
    const bad = await Promise.all(
      [
        ['--from', '2026-12-31T23:59:60Z', /--from must be an RFC 3339 date-time.*leap seconds are not accepted/],
        ['--to', '9999-12-31T23:59:59-23:59', /--to must be in years 0001–9999/],
        ['--from', '0000-01-01', /--from must be in years 0001–9999/],
        ['--from', '2026-02-30', /--from must be an RFC 3339 date-time/],
        ['--to', '2026-11-01T10:00:00', /--to must be an RFC 3339 date-time with an offset/],
      ].map(async ([flag, value, why]) => ({ why: why as RegExp, r: await runCli(['dlq', 'list', flag as string, value as string], { env }) })),
    );
    for (const { why, r } of bad) {
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, why);
    }
    r = await runCli(['dlq', 'list', '--from', '0001-01-01', '--to', '9999-12-31T23:59:59.999Z', '--error-type', 'timeout', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).items.length, 2);
  });
});
