/**
 * Property-based fuzz of the ingestion routes (issue 4): ≥ 10,000 generated bad requests per run,
 * each a valid event broken in one or more ways (or a broken body altogether). Every answer must be
 * a 4xx RFC 9457 problem (a batch: 200 with a problem for every item), never a 5xx, and nothing may
 * be written. The seed is printed; FUZZ_SEED=<n> replays a run, FUZZ_RUNS=<n> changes its size.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import { loadConfig } from '../config.js';
import { buildApp, type App } from '../http/app.js';
import { createTenant } from '../tenants/tenants.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);

let db: TestDatabase;
let app: App;
let su: pg.Client;
let key: string;

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  ({ api_key: key } = await createTenant(owner, { name: 'Fuzz', email: 'ops@fuzz.example' }));
  await owner.end();
  app = await buildApp({ db, config: loadConfig({}), logger: false, rateLimit: { max: 0 } });
  su = await superClient(db);
});
after(async () => {
  await su?.end();
  await app?.close();
  await db?.drop();
});

const FIELDS = ['idempotency_key', 'event_type', 'event_timestamp', 'session_id', 'user_id', 'channel', 'utm_source', 'utm_medium', 'utm_campaign', 'campaign_id', 'conversion_value_cents', 'currency', 'order_id'] as const;
const STRING_FIELDS = ['idempotency_key', 'event_timestamp', 'session_id', 'user_id', 'channel', 'utm_source', 'utm_medium', 'utm_campaign', 'campaign_id', 'order_id'] as const;
const REQUIRED = ['event_type', 'event_timestamp', 'session_id'] as const;
const LIMITS: Record<string, number> = { idempotency_key: 200, user_id: 255, channel: 100, utm_source: 255, utm_medium: 255, utm_campaign: 255, campaign_id: 255, order_id: 255 };

const validEvent = fc.record({
  idempotency_key: fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/),
  event_type: fc.constantFrom('touchpoint', 'conversion'),
  event_timestamp: fc.date({ min: new Date('2001-01-01T00:00:00Z'), max: new Date('2026-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString()),
  session_id: fc.uuid({ version: 4 }),
  channel: fc.constantFrom('email', 'facebook', 'google_search_paid', 'whatever'),
  conversion_value_cents: fc.integer({ min: 0, max: 2_147_483_647 }),
  currency: fc.constantFrom('USD', 'EUR', 'JPY', 'KWD'),
});

const wrongType = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 }));
const junkString = fc.string({ unit: 'binary', maxLength: 40 });

/** One way to break an event (each guaranteed to make it invalid). */
type Mutation = (e: Record<string, unknown>) => void;
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !(FIELDS as readonly string[]).includes(k)), fc.jsonValue({ maxDepth: 2 })).map(
    ([k, v]): Mutation => (e) => void Object.defineProperty(e, k, { value: v, enumerable: true, writable: true, configurable: true }),
  ),
  fc.tuple(fc.constantFrom(...STRING_FIELDS), wrongType).map(([f, v]): Mutation => (e) => void (e[f] = v)),
  fc.tuple(fc.constantFrom('conversion_value_cents'), fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.array(fc.nat()))).map(([f, v]): Mutation => (e) => void (e[f] = v)),
  fc.constantFrom(...REQUIRED).map((f): Mutation => (e) => void delete e[f]),
  fc.integer({ max: -1 }).map((v): Mutation => (e) => void (e.conversion_value_cents = v)),
  fc.oneof(fc.maxSafeNat().map((v) => v + 2_147_483_648), fc.double({ min: 2_147_483_648, noNaN: true }), fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d))).map(
    (v): Mutation => (e) => void (e.conversion_value_cents = v),
  ),
  fc.oneof(
    fc.stringMatching(/^[A-Z]{3}$/).filter((c) => !KNOWN.has(c)),
    fc.stringMatching(/^[a-z]{3}$/),
    fc.string({ maxLength: 6 }).filter((c) => !KNOWN.has(c)),
  ).map((c): Mutation => (e) => void (e.currency = c)),
  fc.constant<Mutation>((e) => {
    e.conversion_value_cents ??= 100;
    delete e.currency;
  }),
  fc.oneof(
    junkString,
    fc.date({ noInvalidDate: true }).map((d) => d.toISOString().replace('Z', '')),
    fc.date({ min: new Date(Date.now() + 3 * 86_400_000), max: new Date('9999-12-31T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString()),
    fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('1999-12-31T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString()),
    fc.tuple(fc.integer({ min: 2001, max: 2025 }), fc.integer({ min: 13, max: 99 }), fc.integer({ min: 1, max: 28 })).map(([y, m, d]) => `${y}-${m}-${String(d).padStart(2, '0')}T00:00:00Z`),
    fc.tuple(fc.integer({ min: 2001, max: 2025 }), fc.constantFrom('02-30', '02-31', '04-31', '06-31', '09-31', '11-31')).map(([y, md]) => `${y}-${md}T00:00:00Z`),
  ).map((t): Mutation => (e) => void (e.event_timestamp = t)),
  // Any id of 1-255 visible ASCII characters is a session id (mapped onto a UUID): junk outside that.
  fc.oneof(junkString.filter((s) => !/^[\x21-\x7E]{1,255}$/.test(s)), fc.uuid().map((u) => `${u} 0`), fc.constant('x'.repeat(256))).map(
    (s): Mutation => (e) => void (e.session_id = s),
  ),
  fc.tuple(fc.constantFrom(...STRING_FIELDS), fc.constantFrom('\u0000', '\u0001', '\u001f', '\u007f', '\n', '\t')).map(
    ([f, c]): Mutation => (e) => void (e[f] = `a${c}b`),
  ),
  // Characters that are not text: lone UTF-16 surrogates (JSON can escape them; PostgreSQL cannot store
  // them), C1 controls, line and paragraph separators; spliced into a string field at any position.
  fc.tuple(
    fc.constantFrom(...STRING_FIELDS),
    fc.oneof(fc.integer({ min: 0xd800, max: 0xdfff }), fc.integer({ min: 0x80, max: 0x9f }), fc.constantFrom(0x2028, 0x2029)).map((c) => String.fromCharCode(c)),
    fc.nat(),
  ).map(([f, c, at]): Mutation => (e) => {
    const value = typeof e[f] === 'string' ? (e[f] as string) : 'ab';
    const cut = at % (value.length + 1);
    e[f] = value.slice(0, cut) + c + value.slice(cut);
  }),
  // A currency without its value is refused (a conversion needs one, a currency needs one). The currency is
  // put back if an earlier mutation removed it, or a touchpoint would become valid.
  fc.constant<Mutation>((e) => {
    delete e.conversion_value_cents;
    e.currency ??= 'USD';
  }),
  fc.constantFrom(...Object.keys(LIMITS)).map((f): Mutation => (e) => void (e[f] = 'x'.repeat(LIMITS[f]! + 1))),
  fc.constantFrom(...STRING_FIELDS.filter((f) => f !== 'event_timestamp' && f !== 'session_id')).map((f): Mutation => (e) => void (e[f] = '')),
  fc.constantFrom('has space', '', 'ünïcode', 'tab\there').map((k): Mutation => (e) => void (e.idempotency_key = k)),
  fc.constantFrom('purchase', 'Touchpoint', '', 'conversion ').map((t): Mutation => (e) => void (e.event_type = t)),
  fc.integer({ min: 9, max: 20 }).map((depth): Mutation => (e) => {
    let v: unknown = 1;
    for (let i = 0; i < depth; i++) v = [v];
    e.campaign_id = v;
  }),
);
// The currencies the ISO list knows (filled before the run).
const KNOWN = new Set<string>();

/** Path parameters that are not an event id of this tenant: junk, near-UUIDs, malformed escapes. */
const junkId = fc.oneof(
  junkString.map(encodeURIComponent),
  fc.uuid().chain((u) => fc.constantFrom(`urn:uuid:${u}`, `URN:UUID:${u}`, `{${u}}`, u.replaceAll('-', ''), `${u}0`, ` ${u}`, u)).map(encodeURIComponent),
  fc.stringMatching(/^(?:%[0-9A-Fa-f]{0,2}|[A-Za-z0-9._~:-]){1,24}$/),
  // A surrogate encoded as if it were a character (CESU-8, %ED%A0%80 …): not UTF-8, so not a URL.
  fc.tuple(fc.integer({ min: 0xd800, max: 0xdfff }), fc.uuid()).map(([c, u]) => `${u.slice(0, 8)}%ED%${(0x80 | ((c >> 6) & 0x3f)).toString(16)}%${(0x80 | (c & 0x3f)).toString(16)}`),
);

/** A request: a broken event (single or batch), a broken body, or a GET of something that is no event. */
const request = fc.oneof(
  { weight: 1, arbitrary: junkId.map((id) => ({ kind: 'get' as const, url: `/api/v1/events/${id}`, body: '', contentType: 'application/json' })) },
  { weight: 6, arbitrary: fc.tuple(validEvent, fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.boolean()).map(([e, ms, batch]) => {
    const event: Record<string, unknown> = { ...e };
    for (const m of ms) m(event);
    return { kind: batch ? 'batch' : 'single', body: JSON.stringify(batch ? { events: [event] } : event), contentType: 'application/json' } as const;
  }) },
  { weight: 1, arbitrary: fc.tuple(validEvent, fc.constantFrom('__proto__', 'constructor', 'prototype')).map(([e, k]) => ({
    kind: 'single' as const,
    body: JSON.stringify(e).replace(/^\{/, `{"${k}":{"polluted":true},`),
    contentType: 'application/json',
  })) },
  { weight: 1, arbitrary: fc.tuple(validEvent, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([e, at, bytes]) => {
    const text = Buffer.from(JSON.stringify(e));
    const cut = at % text.length;
    // 0xff never appears in UTF-8; the other bytes make most sequences invalid too.
    return { kind: 'single' as const, body: Buffer.concat([text.subarray(0, cut), Buffer.from([0xff, ...bytes]), text.subarray(cut)]), contentType: 'application/json' };
  }) },
  { weight: 1, arbitrary: fc.tuple(validEvent, fc.nat()).map(([e, at]) => {
    const text = JSON.stringify(e);
    return { kind: 'single' as const, body: text.slice(0, at % text.length), contentType: 'application/json' };
  }) },
  { weight: 1, arbitrary: fc.oneof(fc.jsonValue({ maxDepth: 3 }).filter((v) => v === null || typeof v !== 'object' || Array.isArray(v)), fc.constant({})).map((v) => ({
    kind: 'single' as const,
    body: JSON.stringify(v),
    contentType: 'application/json',
  })) },
  { weight: 1, arbitrary: fc.oneof(
    fc.constant({ events: [] }),
    fc.constant({}),
    fc.jsonValue({ maxDepth: 2 }).map((v) => ({ events: v })).filter((b) => !Array.isArray(b.events) || b.events.length === 0),
    validEvent.map((e) => ({ events: [e], extra: true })),
  ).map((b) => ({ kind: 'batch' as const, body: JSON.stringify(b), contentType: 'application/json' })) },
  { weight: 1, arbitrary: fc.tuple(validEvent, fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x')).map(([e, ct]) => ({
    kind: 'single' as const,
    body: JSON.stringify(e),
    contentType: ct,
  })) },
);

test(`${RUNS} generated bad requests: a 4xx problem every time, no 5xx, nothing written`, async (t) => {
  const { CURRENCY_EXPONENTS, NO_MINOR_UNIT } = await import('../money/currencies.js');
  for (const c of [...CURRENCY_EXPONENTS.keys(), ...NO_MINOR_UNIT]) if (!NO_MINOR_UNIT.has(c)) KNOWN.add(c);
  t.diagnostic(`fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED}), ${RUNS} runs`);
  const count = async () => Number((await su.query('SELECT count(*) AS n FROM attribution_events')).rows[0].n);
  const before = await count();
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(request, async (r) => {
      const res =
        r.kind === 'get'
          ? await app.inject({ method: 'GET', url: r.url, headers: { authorization: `Bearer ${key}` } })
          : await app.inject({
              method: 'POST',
              url: r.kind === 'batch' ? '/api/v1/events/batch' : '/api/v1/events',
              headers: { authorization: `Bearer ${key}`, 'content-type': r.contentType },
              payload: r.body,
            });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (r.kind === 'batch' && res.statusCode === 200) {
        const out = res.json();
        assert.equal(out.created + out.replayed, 0, res.body);
        for (const item of out.results) {
          assert.ok(item.problem && item.status >= 400 && item.status < 500 && item.problem.code && item.problem.type, res.body);
        }
        return;
      }
      assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${res.statusCode}: ${res.body.slice(0, 300)}`);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      const problem = res.json();
      assert.equal(problem.status, res.statusCode);
      assert.equal(typeof problem.code, 'string');
      assert.equal(problem.type, `/problems/${problem.code}`);
      assert.equal(typeof problem.detail, 'string');
    }),
    { numRuns: RUNS, seed: SEED },
  );
  t.diagnostic(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
  assert.equal(await count(), before, 'no row written');
});
