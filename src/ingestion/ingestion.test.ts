import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../config.js';
import { buildApp, type App } from '../http/app.js';
import { createTenant } from '../tenants/tenants.js';
import { createTestDatabase, superClient, testsRunOnCitus, type TestDatabase } from '../testing/db.js';
import { formatInstant } from '../db/timestamps.js';
import { canonicalJson, parseTimestamp } from './prepare.js';

let db: TestDatabase;
let app: App;
let su: pg.Client;
let tenant: string;
let key: string;
let otherTenant: string;

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ tenant_id: tenant, api_key: key } = await createTenant(owner, { name: 'Alpha', email: 'ops@alpha.example' }));
  ({ tenant_id: otherTenant } = await createTenant(owner, { name: 'Beta', email: 'ops@beta.example' }));
  await owner.end();
  app = await buildApp({ db, config: loadConfig({}), logger: false, rateLimit: { max: 0 } });
  su = await superClient(db);
});
after(async () => {
  await su?.end();
  await app?.close();
  await db?.drop();
});

const auth = () => ({ authorization: `Bearer ${key}` });
function event(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    idempotency_key: `k-${randomUUID()}`,
    event_type: 'conversion',
    event_timestamp: '2026-03-01T12:00:00.123456+01:00',
    session_id: randomUUID(),
    channel: 'google_search_paid',
    conversion_value_cents: 4999,
    currency: 'EUR',
    ...overrides,
  };
}
const post = (body: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/api/v1/events', headers: { ...auth(), ...headers }, payload: body as object });
const raw = (payload: string | Buffer, contentType = 'application/json') =>
  app.inject({ method: 'POST', url: '/api/v1/events', headers: { ...auth(), 'content-type': contentType }, payload });
const postBatch = (events: unknown[], headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/api/v1/events/batch', headers: { ...auth(), ...headers }, payload: { events } });
async function countEvents(): Promise<number> {
  return Number((await su.query('SELECT count(*) AS n FROM attribution_events')).rows[0].n);
}

function assertProblem(res: { statusCode: number; headers: Record<string, unknown>; json(): any }, status: number, code: string, field?: string) {
  assert.equal(res.statusCode, status, JSON.stringify(res.json()));
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json();
  assert.equal(body.code, code);
  assert.equal(body.status, status);
  if (field !== undefined) assert.equal(body.field, field);
  return body;
}

describe('POST /api/v1/events', () => {
  test('201 on first receipt: the event lands pending, tenant-scoped, with the legacy columns filled', async () => {
    const body = event({ user_id: 'user-42', order_id: 'order-9', campaign_id: 'spring' });
    const res = await post(body);
    assert.equal(res.statusCode, 201, res.body);
    const out = res.json();
    assert.equal(out.idempotency_key, body.idempotency_key);
    assert.equal(out.event_type, 'conversion');
    assert.equal(out.event_timestamp, '2026-03-01T11:00:00.123456Z', 'in UTC, to the microsecond as sent');
    assert.equal(out.session_id, body.session_id);
    assert.equal(out.user_id, 'user-42');
    assert.equal(out.order_id, 'order-9');
    assert.equal(out.campaign_id, 'spring');
    assert.equal(out.channel, 'google_search_paid');
    assert.equal(out.conversion_value_cents, 4999);
    assert.equal(out.currency, 'EUR');
    assert.equal(out.processing_status, 'pending');
    const { rows } = await su.query(
      `SELECT tenant_id, idempotency_key, processing_status, processed_at, occurred_at = event_timestamp AS same_time,
              to_char(event_timestamp AT TIME ZONE 'UTC', 'HH24:MI:SS.US') AS t, raw_payload, revenue_cents, octet_length(request_hash) AS h
         FROM attribution_events WHERE id = $1`,
      [out.id],
    );
    const row = rows[0];
    assert.equal(row.tenant_id, tenant);
    assert.equal(row.idempotency_key, `${tenant}:ext:${body.idempotency_key}`);
    assert.equal(row.processing_status, 'pending');
    assert.equal(row.processed_at, null);
    assert.equal(row.same_time, true);
    assert.equal(row.t, '11:00:00.123456', 'microseconds kept');
    assert.deepEqual(row.raw_payload, body);
    assert.equal(row.revenue_cents, 4999);
    assert.equal(row.h, 32);
  });

  test('a replay of the same key and body is a 200 with the same event and no new row', async () => {
    const body = event();
    const first = await post(body);
    assert.equal(first.statusCode, 201);
    const before = await countEvents();
    // Key order and the key's place (header instead of field) do not make a different body.
    const { idempotency_key: k, ...rest } = body;
    const reordered = Object.fromEntries(Object.entries(rest).reverse());
    for (const replay of [() => post(body), () => post(reordered, { 'idempotency-key': String(k) })]) {
      const res = await replay();
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), first.json());
    }
    assert.equal(await countEvents(), before);
  });

  test('the same key with a different body is a 409 naming the event, and changes nothing', async () => {
    const body = event();
    const first = await post(body);
    const before = await countEvents();
    const res = await post({ ...body, conversion_value_cents: 5000 });
    const problem = assertProblem(res, 409, 'idempotency_key_reused', 'body/idempotency_key');
    assert.equal(problem.event_id, first.json().id);
    assert.equal(await countEvents(), before);
    const again = await app.inject({ method: 'GET', url: `/api/v1/events/${first.json().id}`, headers: auth() });
    assert.equal(again.json().conversion_value_cents, 4999);
    const { idempotency_key: k, ...rest } = body;
    assertProblem(await post({ ...rest, order_id: 'other' }, { 'idempotency-key': String(k) }), 409, 'idempotency_key_reused', 'headers/idempotency-key');
  });

  test('keys are tenant-scoped: another tenant may use the same client key', async () => {
    const owner = db.ownerPool({ max: 1 });
    const other = await createTenant(owner, { name: 'Gamma', email: 'ops@gamma.example' });
    await owner.end();
    const body = event();
    const a = await post(body);
    const b = await app.inject({ method: 'POST', url: '/api/v1/events', headers: { authorization: `Bearer ${other.api_key}` }, payload: body });
    assert.equal(a.statusCode, 201);
    assert.equal(b.statusCode, 201, 'not a replay of the other tenant\'s event');
    assert.notEqual(a.json().id, b.json().id);
  });

  test('50 concurrent requests with one key: exactly one row, every response the same event', async () => {
    const body = event();
    const responses = await Promise.all(Array.from({ length: 50 }, () => post(body)));
    const statuses = responses.map((r) => r.statusCode).sort();
    assert.deepEqual(statuses, [...Array(49).fill(200), 201].sort(), responses.map((r) => r.body).join('\n').slice(0, 500));
    assert.equal(new Set(responses.map((r) => r.json().id)).size, 1);
    const { rows } = await su.query('SELECT count(*)::int AS n FROM attribution_events WHERE idempotency_key = $1', [`${tenant}:ext:${body.idempotency_key}`]);
    assert.equal(rows[0].n, 1);
  });

  test('a new event wakes the worker: NOTIFY skeldir_events with the tenant id', async () => {
    const listener = await superClient(db);
    try {
      const received: string[] = [];
      listener.on('notification', (n) => n.channel === 'skeldir_events' && received.push(String(n.payload)));
      await listener.query('LISTEN skeldir_events');
      const body = event();
      assert.equal((await post(body)).statusCode, 201);
      await post(body); // a replay inserts nothing and notifies nothing
      await listener.query('SELECT 1'); // flush pending notifications
      for (let i = 0; i < 50 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(received, [tenant]);
    } finally {
      await listener.end();
    }
  });

  test('touchpoints without a value show no currency; utm fields give the channel and the campaign', async () => {
    const res = await post(event({ event_type: 'touchpoint', channel: undefined, conversion_value_cents: undefined, currency: undefined, utm_source: 'Facebook', utm_medium: 'CPC', utm_campaign: 'summer' }));
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().channel, 'facebook_paid');
    assert.equal(res.json().campaign_id, 'summer');
    assert.equal(res.json().currency, null);
    assert.equal(res.json().conversion_value_cents, null);
  });

  test('a session id that is not a UUID (a GA client id) is stored as its name-based UUID v5; a UUID as it is; anonymous_id is kept', async () => {
    const ga = 'GA1.2.1234567890.1700000000';
    const a = await post(event({ session_id: ga, anonymous_id: 'anon-Abc_123' }));
    const b = await post(event({ session_id: ga }));
    assert.equal(a.statusCode, 201, a.body);
    // UUIDv5(UUIDv5(URL namespace, "skeldir:session_id"), "GA1.2.1234567890.1700000000"), as docs/ingestion.md states.
    assert.equal(a.json().session_id, 'd67f2997-dc05-5e95-88c5-cfa8640a6b59');
    assert.equal(b.json().session_id, a.json().session_id, 'the same opaque id, the same session');
    assert.equal(a.json().anonymous_id, 'anon-Abc_123');
    assert.equal(b.json().anonymous_id, null);
    const upper = randomUUID().toUpperCase();
    assert.equal((await post(event({ session_id: upper }))).json().session_id, upper.toLowerCase());
    const { rows } = await su.query(`SELECT anonymous_id FROM attribution_events WHERE id = $1`, [a.json().id]);
    assert.equal(rows[0].anonymous_id, 'anon-Abc_123');
  });

  test('a conversion of value 0 is accepted (with its currency)', async () => {
    const res = await post(event({ conversion_value_cents: 0, currency: 'USD' }));
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().conversion_value_cents, 0);
    assert.equal(res.json().currency, 'USD');
  });

  test('text fields take any printable Unicode, emoji and accents included', async () => {
    const res = await post(event({ user_id: 'Zoë 🙂 李', campaign_id: 'été—2026' }));
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().user_id, 'Zoë 🙂 李');
  });

  test('zero-decimal and three-decimal currencies are accepted as minor units', async () => {
    for (const [currency, value] of [['JPY', 1200], ['KWD', 1500]] as const) {
      const res = await post(event({ currency, conversion_value_cents: value }));
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json().currency, currency);
    }
  });
});

describe('bad input: a specific 4xx problem naming the field, and nothing written', () => {
  const future = new Date(Date.now() + 3 * 86_400_000).toISOString();
  const cases: [string, () => Promise<any>, number, string, string | undefined][] = [
    ['unknown field', () => post(event({ colour: 'red' })), 400, 'validation_failed', 'body/colour'],
    ['missing event_type', () => post(event({ event_type: undefined })), 400, 'validation_failed', 'body/event_type'],
    ['wrong event_type', () => post(event({ event_type: 'purchase' })), 400, 'validation_failed', 'body/event_type'],
    ['value as a string', () => post(event({ conversion_value_cents: '5' })), 400, 'validation_failed', 'body/conversion_value_cents'],
    ['value not an integer', () => post(event({ conversion_value_cents: 10.5 })), 400, 'validation_failed', 'body/conversion_value_cents'],
    ['negative value', () => post(event({ conversion_value_cents: -1 })), 400, 'validation_failed', 'body/conversion_value_cents'],
    ['value beyond the integer column', () => post(event({ conversion_value_cents: 2_147_483_648 })), 400, 'validation_failed', 'body/conversion_value_cents'],
    ['value beyond 2^53', () => post(event({ conversion_value_cents: 1e300 })), 400, 'validation_failed', 'body/conversion_value_cents'],
    ['value without currency', () => post(event({ currency: undefined })), 422, 'currency_required', 'body/currency'],
    ['unknown currency', () => post(event({ currency: 'ABC' })), 422, 'currency_invalid', 'body/currency'],
    ['currency without minor unit', () => post(event({ currency: 'XAU' })), 422, 'currency_invalid', 'body/currency'],
    ['malformed currency', () => post(event({ currency: 'usd' })), 400, 'validation_failed', 'body/currency'],
    ['timestamp without offset', () => post(event({ event_timestamp: '2026-03-01T12:00:00' })), 400, 'validation_failed', 'body/event_timestamp'],
    ['unparsable timestamp', () => post(event({ event_timestamp: 'yesterday' })), 400, 'validation_failed', 'body/event_timestamp'],
    ['impossible date', () => post(event({ event_timestamp: '2026-02-30T12:00:00Z' })), 422, 'timestamp_invalid', 'body/event_timestamp'],
    ['hour 24', () => post(event({ event_timestamp: '2026-02-10T24:00:00Z' })), 422, 'timestamp_invalid', 'body/event_timestamp'],
    ['far future', () => post(event({ event_timestamp: future })), 422, 'timestamp_out_of_range', 'body/event_timestamp'],
    ['before 2000', () => post(event({ event_timestamp: '1999-12-31T23:59:59Z' })), 422, 'timestamp_out_of_range', 'body/event_timestamp'],
    ['session id with a space', () => post(event({ session_id: 'GA1.2 123' })), 400, 'validation_failed', 'body/session_id'],
    ['over-long opaque session id', () => post(event({ session_id: 'x'.repeat(256) })), 400, 'validation_failed', 'body/session_id'],
    ['anonymous id with a space', () => post(event({ anonymous_id: 'a b' })), 400, 'validation_failed', 'body/anonymous_id'],
    ['over-long campaign', () => post(event({ campaign_id: 'x'.repeat(256) })), 400, 'validation_failed', 'body/campaign_id'],
    ['over-long key', () => post(event({ idempotency_key: 'k'.repeat(201) })), 400, 'validation_failed', 'body/idempotency_key'],
    ['blank user id', () => post(event({ user_id: '  ' })), 400, 'validation_failed', 'body/user_id'],
    ['control character', () => post(event({ order_id: 'a\u0007b' })), 400, 'validation_failed', 'body/order_id'],
    ['C1 control character', () => post(event({ user_id: 'a\u0085b' })), 400, 'validation_failed', 'body/user_id'],
    ['line separator U+2028', () => post(event({ campaign_id: 'a\u2028b' })), 400, 'validation_failed', 'body/campaign_id'],
    ['paragraph separator U+2029', () => post(event({ channel: 'a\u2029b' })), 400, 'validation_failed', 'body/channel'],
    ['NUL byte', () => post(event({ order_id: 'a\u0000b' })), 400, 'nul_character', 'body/order_id'],
    ['lone surrogate in a value', () => raw(JSON.stringify(event()).replace(/\}$/, ',"user_id":"u\\ud800"}')), 400, 'invalid_unicode', 'body/user_id'],
    ['lone surrogate in a field name', () => raw(JSON.stringify(event()).replace(/\}$/, ',"\\udfff":1}')), 400, 'invalid_unicode', 'body'],
    ['__proto__ key', () => raw(JSON.stringify(event()).replace(/^\{/, '{"__proto__":{"x":1},')), 400, 'forbidden_key', 'body'],
    ['constructor key', () => post(event({ constructor: { prototype: {} } })), 400, 'forbidden_key', 'body'],
    ['nesting too deep', () => post(event({ campaign_id: [[[[[[[[[1]]]]]]]]] })), 400, 'too_deep', 'body/campaign_id/0/0/0/0/0/0/0'],
    ['invalid UTF-8', () => raw(Buffer.concat([Buffer.from('{"order_id":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])), 400, 'invalid_utf8', 'body'],
    ['empty body', () => raw(''), 400, 'empty_body', 'body'],
    ['malformed JSON', () => raw('{"event_type":'), 400, 'malformed_json', 'body'],
    ['not an object', () => raw('[1,2]'), 400, 'validation_failed', 'body'],
    ['wrong content type', () => raw(JSON.stringify(event()), 'text/plain'), 415, 'unsupported_media_type', 'headers/content-type'],
    ['a charset other than UTF-8', () => raw(JSON.stringify(event()), 'application/json; charset=iso-8859-1'), 415, 'unsupported_media_type', 'headers/content-type'],
    ['body too large', () => post(event({ campaign_id: 'x'.repeat(70_000) })), 413, 'payload_too_large', 'body'],
    ['a conversion without a value', () => post(event({ conversion_value_cents: undefined, currency: undefined })), 422, 'conversion_value_required', 'body/conversion_value_cents'],
    ['a conversion with a currency but no value', () => post(event({ conversion_value_cents: undefined })), 422, 'conversion_value_required', 'body/conversion_value_cents'],
    ['a touchpoint with a currency but no value', () => post(event({ event_type: 'touchpoint', conversion_value_cents: undefined })), 422, 'conversion_value_required', 'body/conversion_value_cents'],
    ['no idempotency key', () => post(event({ idempotency_key: undefined })), 400, 'idempotency_key_missing', 'body/idempotency_key'],
    ['header and field differ', () => post(event(), { 'idempotency-key': 'other' }), 400, 'idempotency_key_mismatch', 'body/idempotency_key'],
    ['header key malformed', () => post(event({ idempotency_key: undefined }), { 'idempotency-key': 'has space' }), 400, 'idempotency_key_invalid', 'headers/idempotency-key'],
  ];
  for (const [name, send, status, code, field] of cases) {
    test(name, async () => {
      const before = await countEvents();
      assertProblem(await send(), status, code, field);
      assert.equal(await countEvents(), before, 'no row written');
    });
  }
});

describe('POST /api/v1/events/batch', () => {
  test('per-item results: one bad item does not sink the others', async () => {
    const good = event();
    const replayed = event();
    await post(replayed);
    const reused = event();
    await post(reused);
    const before = await countEvents();
    const res = await postBatch([
      good,
      { ...event(), currency: 'ZZZ' },
      replayed,
      { ...reused, conversion_value_cents: 1 },
      { ...event(), colour: 'red' },
      { ...good }, // the same key twice in one batch: a replay of the first
      { ...good, order_id: 'x' }, // the same key, different body
      'not an object',
      { ...event(), conversion_value_cents: undefined, currency: undefined },
    ]);
    assert.equal(res.statusCode, 200, res.body);
    const out = res.json();
    assert.deepEqual(out.results.map((r: any) => r.status), [201, 422, 200, 409, 400, 200, 409, 400, 422]);
    assert.deepEqual(out.results.map((r: any) => r.index), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(out.results[8].problem.code, 'conversion_value_required');
    assert.equal(out.results[8].problem.field, 'body/events/8/conversion_value_cents');
    assert.equal(out.results[1].problem.code, 'currency_invalid');
    assert.equal(out.results[1].problem.field, 'body/events/1/currency');
    assert.equal(out.results[3].problem.code, 'idempotency_key_reused');
    assert.equal(out.results[4].problem.field, 'body/events/4/colour');
    assert.equal(out.results[7].problem.field, 'body/events/7');
    assert.equal(out.results[5].event.id, out.results[0].event.id);
    assert.deepEqual([out.created, out.replayed, out.failed], [1, 2, 6]);
    assert.equal(await countEvents(), before + 1);
  });

  test('a batch of new events is one round trip to the server (the usual three on Citus), each item still its own result', async () => {
    await postBatch([event()]); // the API key and channel rules cached, the insert prepared on the connection
    // Every query the app's pool sends while the batch is handled (coalescer-store.test.ts counts the same way).
    const pool = app.appPool;
    const sent: string[] = [];
    const connect = pool.connect.bind(pool);
    const clients = new Set<pg.PoolClient>();
    (pool as unknown as { connect: () => Promise<pg.PoolClient> }).connect = async () => {
      const c = await connect();
      if (!clients.has(c)) {
        clients.add(c);
        const query = c.query.bind(c) as (...a: unknown[]) => unknown;
        (c as unknown as { query: (...a: unknown[]) => unknown }).query = (...a: unknown[]) => {
          const q = a[0] as string | { text: string };
          sent.push((typeof q === 'string' ? q : q.text).slice(0, 60));
          return query(...a);
        };
      }
      return c;
    };
    const events = [event(), event({ event_type: 'touchpoint', conversion_value_cents: undefined, currency: undefined }), event()];
    let res;
    try {
      res = await postBatch([...events, { ...event(), currency: 'ZZZ' }]);
    } finally {
      (pool as unknown as { connect: typeof connect }).connect = connect;
      for (const c of clients) delete (c as unknown as { query?: unknown }).query;
    }
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().results.map((r: any) => r.status), [201, 201, 201, 422]);
    assert.equal(sent.length, testsRunOnCitus() ? 3 : 1, JSON.stringify(sent));
    const keys = events.map((e) => `${tenant}:ext:${e.idempotency_key}`);
    const { rows } = await su.query('SELECT count(*)::int AS n FROM attribution_events WHERE idempotency_key = ANY($1)', [keys]);
    assert.equal(rows[0].n, 3);
  });

  test('a batch replayed as a whole creates nothing new', async () => {
    const events = Array.from({ length: 20 }, () => event());
    const first = await postBatch(events);
    assert.equal(first.json().created, 20);
    const before = await countEvents();
    const again = await postBatch(events);
    assert.equal(again.json().replayed, 20);
    assert.deepEqual(again.json().results.map((r: any) => r.event.id), first.json().results.map((r: any) => r.event.id));
    assert.equal(await countEvents(), before);
  });

  test('concurrent overlapping batches neither deadlock nor duplicate', async () => {
    const events = Array.from({ length: 60 }, () => event());
    const shuffled = () => [...events].sort(() => Math.random() - 0.5);
    const responses = await Promise.all(Array.from({ length: 6 }, () => postBatch(shuffled())));
    for (const r of responses) assert.equal(r.statusCode, 200, r.body);
    assert.equal(responses.reduce((n, r) => n + r.json().created, 0), 60);
    const keys = events.map((e) => `${tenant}:ext:${e.idempotency_key}`);
    const { rows } = await su.query('SELECT count(*)::int AS n FROM attribution_events WHERE idempotency_key = ANY($1)', [keys]);
    assert.equal(rows[0].n, 60);
  });

  test('the envelope is checked as a whole: empty, over 1,000, unknown fields, a header key', async () => {
    const before = await countEvents();
    assertProblem(await postBatch([]), 400, 'validation_failed', 'body/events');
    assertProblem(await postBatch(Array.from({ length: 1001 }, () => event())), 400, 'validation_failed', 'body/events');
    assertProblem(await app.inject({ method: 'POST', url: '/api/v1/events/batch', headers: auth(), payload: { events: [event()], extra: 1 } }), 400, 'validation_failed', 'body/extra');
    assertProblem(await postBatch([event()], { 'idempotency-key': 'k' }), 400, 'idempotency_header_on_batch', 'headers/idempotency-key');
    assert.equal(await countEvents(), before);
  });

  test('a lone surrogate anywhere in a batch is a 400 naming it; nothing is written', async () => {
    const before = await countEvents();
    const body = JSON.stringify({ events: [event(), event()] }).replace(/\}\]\}$/, ',"order_id":"\\udc00x"}]}');
    assert.match(body, /udc00/);
    const res = await app.inject({ method: 'POST', url: '/api/v1/events/batch', headers: { ...auth(), 'content-type': 'application/json' }, payload: body });
    assertProblem(res, 400, 'invalid_unicode', 'body/events/1/order_id');
    assert.equal(await countEvents(), before);
  });

  test('quotes, backslashes, braces, commas and NULL-like text survive the batch insert\'s array literals, column by column', async () => {
    const odd = ['a"b', 'back\\slash', '\\"', '{x,y}', 'NULL', 'é😀 ,', '"'];
    const events = odd.map((v, i) =>
      event({
        idempotency_key: `k-${i}-${v.replace(/[^\x21-\x7e]/g, '')}-${randomUUID()}`,
        user_id: v,
        order_id: `o ${v}`,
        campaign_id: v,
        utm_term: v,
        ...(i % 2 ? { anonymous_id: `anon${v.replace(/[^\x21-\x7e]/g, '')}` } : {}),
      }),
    );
    // One without any optional text: NULLs between quoted elements.
    events.push(event({ event_type: 'touchpoint', conversion_value_cents: undefined, currency: undefined }));
    const res = await postBatch(events);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().created, events.length, res.body);
    for (const [i, e] of events.entries()) {
      const { rows } = await su.query(
        'SELECT idempotency_key, user_id, order_id, campaign_id, anonymous_id, raw_payload, conversion_value_cents FROM attribution_events WHERE idempotency_key = $1',
        [`${tenant}:ext:${e.idempotency_key}`],
      );
      assert.equal(rows.length, 1, String(e.idempotency_key));
      const row = rows[0];
      assert.equal(row.user_id, e.user_id ?? null);
      assert.equal(row.order_id, e.order_id ?? null);
      assert.equal(row.campaign_id, e.campaign_id ?? null);
      assert.equal(row.anonymous_id, e.anonymous_id ?? null);
      assert.equal(row.conversion_value_cents, e.conversion_value_cents ?? null);
      assert.deepEqual(row.raw_payload, JSON.parse(JSON.stringify(e)), 'raw_payload is the event as received');
      assert.equal(res.json().results[i].event.idempotency_key, e.idempotency_key);
      // The 201's event (built from the prepared event) is the stored event as GET shows it.
      const got = await app.inject({ method: 'GET', url: `/api/v1/events/${res.json().results[i].event.id}`, headers: auth() });
      assert.deepEqual(res.json().results[i].event, got.json());
    }
    // Replayed: the same events (their hashes match), none created.
    const again = await postBatch(events);
    assert.deepEqual([again.json().created, again.json().replayed], [0, events.length]);
  });

  test('the 201s print each event_timestamp as the stored row holds it (offsets, 0-6 fractional digits, lower case)', async () => {
    const stamps = [
      '2026-03-01T12:00:00.57Z', '2026-03-01t12:00:00.29z', '2026-01-01T00:30:00.000001+15:59', '2025-12-31T23:59:59.999999-15:59',
      '2024-02-29T23:59:59.1+00:00', '2000-01-01T00:00:00Z', '2020-06-30T12:34:56.123456-07:30',
      ...Array.from({ length: 40 }, (_, i) => {
        const t = new Date(Date.UTC(2001, 0, 1) + i * 7_777_777_777 + (i % 7) * 123);
        const fraction = ['', '.5', '.05', '.123', '.1234', '.12345', '.999999'][i % 7];
        return `${t.toISOString().slice(0, 19)}${fraction}${i % 3 ? `+0${i % 10}:${String(i % 60).padStart(2, '0')}` : 'Z'}`;
      }),
    ];
    const events = stamps.map((event_timestamp) => event({ event_timestamp }));
    const res = await postBatch(events);
    assert.equal(res.json().created, events.length, res.body);
    const { rows } = await su.query<{ idempotency_key: string; event_timestamp: Date }>(
      'SELECT idempotency_key, event_timestamp FROM attribution_events WHERE idempotency_key = ANY($1::text[])',
      [events.map((e) => `${tenant}:ext:${e.idempotency_key}`)],
    );
    const stored = new Map(rows.map((r) => [r.idempotency_key, formatInstant(r.event_timestamp)]));
    for (const [i, e] of events.entries()) {
      assert.equal(res.json().results[i].event.event_timestamp, stored.get(`${tenant}:ext:${e.idempotency_key}`), String(e.event_timestamp));
    }
  });

  test('1,000 events in one batch', async () => {
    const res = await postBatch(Array.from({ length: 1000 }, () => event()));
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().created, 1000);
  });
});

describe('GET /api/v1/events/{id}', () => {
  test('returns the event; a missing id and another tenant\'s id answer alike', async () => {
    const created = (await post(event())).json();
    const res = await app.inject({ method: 'GET', url: `/api/v1/events/${created.id}`, headers: auth() });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), created);
    const { rows } = await su.query(
      `INSERT INTO attribution_events (tenant_id, idempotency_key, event_type, event_timestamp, occurred_at, session_id, channel, raw_payload)
       VALUES ($1::uuid, $1::text || ':ext:b', 'touchpoint', now(), now(), gen_random_uuid(), 'direct', '{}') RETURNING id`,
      [otherTenant],
    );
    const strip = (r: any) => {
      const b = r.json();
      delete b.request_id;
      return JSON.stringify(b).replaceAll(rows[0].id, 'ID').replaceAll(missing, 'ID');
    };
    const missing = randomUUID();
    const theirs = await app.inject({ method: 'GET', url: `/api/v1/events/${rows[0].id}`, headers: auth() });
    const none = await app.inject({ method: 'GET', url: `/api/v1/events/${missing}`, headers: auth() });
    assertProblem(theirs, 404, 'not_found');
    assert.equal(strip(theirs), strip(none));
    assertProblem(await app.inject({ method: 'GET', url: '/api/v1/events/not-a-uuid', headers: auth() }), 400, 'validation_failed', 'params/id');
  });
});

describe('channel classification through ingestion', () => {
  test('the rules run against the live taxonomy', async () => {
    const res = await post(event({ channel: undefined, utm_source: 'google', utm_medium: 'cpc' }));
    assert.equal(res.json().channel, 'google_search_paid');
  });
});

describe('helpers', () => {
  test('parseTimestamp applies offsets and refuses impossible dates', () => {
    assert.equal(parseTimestamp('2026-03-01T12:00:00+01:00'), Date.UTC(2026, 2, 1, 11));
    assert.equal(parseTimestamp('2024-02-29T00:00:00Z'), Date.UTC(2024, 1, 29));
    assert.equal(parseTimestamp('2023-02-29T00:00:00Z'), null);
    assert.equal(parseTimestamp('2026-01-01T00:00:00+16:00'), null);
    assert.equal(parseTimestamp('2026-01-01T00:00:60Z'), null);
  });
  test('canonicalJson ignores key order', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] }), canonicalJson({ a: [{ c: 2, d: 1 }], b: 1 }));
  });
});
