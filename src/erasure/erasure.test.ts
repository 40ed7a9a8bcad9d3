import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { attributeConversion } from '../attribution/entry.js';
import { loadConfig } from '../config.js';
import { withTenant } from '../db/tenant-context.js';
import { buildApp, type App } from '../http/app.js';
import { createTenant } from '../tenants/tenants.js';
import { runCli } from '../testing/cli.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { inviteUser } from '../users/users.js';
import { erasePerson } from './erase.js';
import { COUNT_NAMES, ERASED, scrubJson } from './steps.js';

let db: TestDatabase;
let app: App;
let appPool: pg.Pool;
let su: pg.Client;
let A: { tenant_id: string; api_key: string };
let B: { tenant_id: string; api_key: string };
const web = loadConfig({}).web;

/** The order number of each seeded conversion, by person and day. */
const orders = new Map<string, string>();
/** The browsers (anonymous ids) the identity graph links to each seeded person, by tenant and person: one theirs alone, one shared. */
const browsers = new Map<string, { own: string; shared: string }>();
const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const del = (userId: string, key = A.api_key) => app.inject({ method: 'DELETE', url: `/api/v1/people/${encodeURIComponent(userId)}`, headers: auth(key) });

/** A person's life in a tenant: sessions of touchpoints (one anonymous), a conversion with an order, and more. */
async function seedPerson(tenant: { tenant_id: string; api_key: string }, person: string, o: { other?: string; day?: number } = {}) {
  const day = String(o.day ?? 10).padStart(2, '0');
  const order = `order-${randomUUID()}`; // a merchant's order number: nothing of the person in it
  const s1 = randomUUID();
  const s2 = randomUUID();
  const events: Record<string, unknown>[] = [
    { idempotency_key: `${person}-t1-${day}`, event_type: 'touchpoint', event_timestamp: `2026-03-${day}T09:00:00Z`, session_id: s1, user_id: person, utm_source: 'google', utm_medium: 'cpc', campaign_id: `camp for ${person}` },
    { idempotency_key: randomUUID(), event_type: 'touchpoint', event_timestamp: `2026-03-${day}T09:30:00Z`, session_id: s1, channel: 'email' }, // anonymous, same session
    { idempotency_key: randomUUID(), event_type: 'touchpoint', event_timestamp: `2026-03-${day}T10:00:00Z`, session_id: s2, user_id: person, channel: 'facebook_paid' },
    { idempotency_key: randomUUID(), event_type: 'conversion', event_timestamp: `2026-03-${day}T11:00:00Z`, session_id: s2, user_id: person, channel: 'direct', conversion_value_cents: 4999, currency: 'EUR', order_id: order },
  ];
  if (o.other) events.push({ idempotency_key: randomUUID(), event_type: 'touchpoint', event_timestamp: `2026-03-${day}T09:45:00Z`, session_id: s1, user_id: o.other, channel: 'organic' });
  const res = await app.inject({ method: 'POST', url: '/api/v1/events/batch', headers: auth(tenant.api_key), payload: { events } });
  orders.set(`${tenant.tenant_id}/${person}/${o.day ?? 10}`, order);
  assert.equal(res.statusCode, 200, res.body);
  assert.ok(res.json().results.every((r: { status: number }) => r.status === 201), res.body);
  const t = tenant.tenant_id;
  await withTenant(appPool, t, async (c) => {
    const conv = await c.query<{ id: string }>(`SELECT id FROM attribution_events WHERE tenant_id = $1 AND order_id = $2`, [t, order]);
    await attributeConversion(c, t, conv.rows[0]!.id);
    // The worker gave up on one of their events once (its dead event copies the payload) … (read, then inserted
    // with its values: Citus ran the INSERT … SELECT from attribution_events, tenant_id taken from the row or not,
    // as COPY on the coordinator, which row-level security refuses: "COPY FROM not supported with row-level security")
    const failed = await c.query<{ id: string; event_type: string; raw_payload: unknown }>(
      `SELECT id, event_type, raw_payload FROM attribution_events WHERE tenant_id = $1 AND raw_payload->>'idempotency_key' = $2`,
      [t, `${person}-t1-${day}`],
    );
    for (const e of failed.rows) {
      await c.query(
        `INSERT INTO dead_events (tenant_id, event_id, source, error_code, error_type, error_message, error_detail, event_type, raw_payload)
         VALUES ($1, $2, 'worker', 'data', 'data', 'failed', '{}', $3, $4)`,
        [t, e.id, e.event_type, e.raw_payload],
      );
    }
    // … a signed webhook that could not be used carried their id, with no event behind it …
    await c.query(
      `INSERT INTO dead_events (tenant_id, source, error_code, error_type, error_message, error_detail, event_type, raw_payload)
       VALUES ($1, 'webhook', 'unusable', 'validation', $3, '{}', 'charge.succeeded', $2)`,
      [t, { data: { object: { customer: { reference: person, email: 'someone@example.com' } } } }, `no amount for customer ${person}`],
    );
    // … their payment is in the ledger, with their id in its metadata …
    await c.query(
      `INSERT INTO revenue_ledger (tenant_id, transaction_id, order_id, state, amount_cents, currency, revenue_cents, verification_source, verification_timestamp, metadata)
       VALUES ($1::uuid, $1::text || ':stripe:ch_' || $2::text, $2, 'captured', 4999, 'EUR', 4999, 'stripe', '2026-03-${day}T11:00:05Z', $3)`,
      [t, order, { provider: 'stripe', customer: person, note: `paid by ${person}`, fx: { rate: '1.08', date: '2026-03-10', source: 'ecb' }, [person]: true }],
    );
    // … the identity graph links two browsers to them, one shared with someone else, and keeps an audit of it …
    const own = `anon-${randomUUID()}`;
    const shared = `anon-${randomUUID()}`;
    browsers.set(`${t}/${person}`, { own, shared });
    for (const [anon, user] of [[own, person], [shared, person], [shared, `someone-else-${randomUUID()}`]] as const) {
      await c.query(`INSERT INTO identity_links (tenant_id, anonymous_id, user_id, source, linked_at) VALUES ($1, $2, $3, 'api', now())`, [t, anon, user]);
      await c.query(`INSERT INTO identity_changes (tenant_id, action, anonymous_id, user_id, source) VALUES ($1, 'link', $2, $3, 'api')`, [t, anon, user]);
    }
    for (const anon of [own, shared]) {
      await c.query(
        `INSERT INTO attribution_events (tenant_id, idempotency_key, event_type, event_timestamp, occurred_at, session_id, channel, anonymous_id, raw_payload, processing_status)
         VALUES ($1::uuid, $1::text || ':ext:' || $2::text, 'touchpoint', '2026-03-${day}T08:00:00Z', '2026-03-${day}T08:00:00Z', gen_random_uuid(), 'organic', $2, '{}', 'processed')`,
        [t, anon],
      );
    }
    // … a webhook delivery noted it …
    await c.query(
      `INSERT INTO webhook_deliveries (tenant_id, provider, provider_event_id, event_type, status, detail, pending_fact, pending_reference)
       VALUES ($1::uuid, 'stripe', $2, 'charge.refunded', 'pending', $3, $4, $1::text || ':stripe:ch_later')`,
      [t, `evt_${randomUUID()}`, `waiting for ${person}`, { amount: 100, who: person }],
    );
  });
}

async function insertRun(tenant: string, from: string, to: string): Promise<string> {
  return withTenant(appPool, tenant, async (c) =>
    (await c.query<{ id: string }>(
      `INSERT INTO attribution_model_runs (tenant_id, model_type, model_version, window_from, window_to, trigger, parameters, status)
       VALUES ($1, 'markov', '1', $2, $3, 'cli', '{}', 'succeeded') RETURNING id`,
      [tenant, from, to],
    )).rows[0]!.id,
  );
}

/**
 * Every text-like and JSON column of every table, from the catalogue (so a table added later is covered without
 * editing this test): the rows whose value contains `needle`, per table.column, leaving out the rows of `exceptTenant`.
 */
async function scan(needle: string, exceptTenant: string): Promise<Record<string, number>> {
  const { rows: cols } = await su.query<{ table: string; column: string; has_tenant: boolean }>(
    `SELECT c.relname AS table, a.attname AS column,
            EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped) AS has_tenant
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       JOIN pg_type ty ON ty.oid = a.atttypid
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
        AND (ty.typcategory = 'S' OR ty.typname IN ('json', 'jsonb') OR (ty.typcategory = 'A' AND ty.typelem IN (SELECT oid FROM pg_type WHERE typcategory = 'S' OR typname IN ('json', 'jsonb'))))
      ORDER BY 1, 2`,
  );
  assert.ok(cols.length > 50, `the catalogue lists the columns (${cols.length})`);
  const hits: Record<string, number> = {};
  for (const c of cols) {
    const exclude = c.has_tenant ? ` AND tenant_id IS DISTINCT FROM $2::uuid` : c.table === 'tenants' ? ` AND id <> $2::uuid` : '';
    const params = exclude ? [needle, exceptTenant] : [needle];
    const { rows } = await su.query<{ n: string }>(`SELECT count(*) AS n FROM "${c.table}" WHERE strpos("${c.column}"::text, $1) > 0${exclude}`, params);
    if (Number(rows[0]!.n) > 0) hits[`${c.table}.${c.column}`] = Number(rows[0]!.n);
  }
  return hits;
}

before(async () => {
  db = await createTestDatabase('head');
  const owner = db.ownerPool({ max: 1 });
  A = await createTenant(owner, { name: 'Alpha', email: 'ops@alpha.example' });
  B = await createTenant(owner, { name: 'Beta', email: 'ops@beta.example' });
  await owner.end();
  appPool = db.appPool({ max: 3 });
  su = await superClient(db);
  app = await buildApp({ db, config: loadConfig({}), logger: false });
});
after(async () => {
  await app?.close();
  await appPool?.end();
  await su?.end();
  await db?.drop();
});

describe('DELETE /api/v1/people/{user_id}', () => {
  const person = `person-${randomUUID()}`;
  const other = `other-${randomUUID()}`;
  let staleRun: string;
  let oldRun: string;

  before(async () => {
    await seedPerson(A, person, { other });
    await seedPerson(A, other, { day: 12 });
    await seedPerson(B, person); // the same id in another tenant: another person, untouched
    staleRun = await insertRun(A.tenant_id, '2026-03-01T00:00:00Z', '2026-04-01T00:00:00Z');
    oldRun = await insertRun(A.tenant_id, '2020-01-01T00:00:00Z', '2020-02-01T00:00:00Z');
  });

  test('erases the person; afterwards no text or JSON column of any table holds the id (outside the other tenant)', async () => {
    const before = await scan(person, B.tenant_id);
    for (const where of ['attribution_events.user_id', 'attribution_events.raw_payload', 'attribution_events.campaign_id', 'dead_events.raw_payload', 'revenue_ledger.metadata', 'webhook_deliveries.detail', 'identity_links.user_id', 'identity_changes.user_id']) {
      assert.ok(before[where]! > 0, `the scan sees ${where} before (${JSON.stringify(before)})`);
    }
    const ownBefore = await scan(browsers.get(`${A.tenant_id}/${person}`)!.own, B.tenant_id);
    for (const where of ['attribution_events.anonymous_id', 'identity_links.anonymous_id', 'identity_changes.anonymous_id']) assert.equal(ownBefore[where], 1, `the scan sees their browser in ${where} (${JSON.stringify(ownBefore)})`);
    const channelsBefore = (await app.inject({ method: 'GET', url: '/api/v1/attribution/channels?model=linear&from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z', headers: auth(A.api_key) })).json();

    const allocations = await withTenant(appPool, A.tenant_id, async (c) =>
      Number((await c.query(`SELECT count(*) FROM attribution_allocations a JOIN attribution_events e ON e.tenant_id = a.tenant_id AND e.id = a.event_id WHERE e.tenant_id = $1 AND e.user_id = $2`, [A.tenant_id, person])).rows[0].count),
    );
    assert.ok(allocations >= 5);
    const res = await del(person);
    assert.equal(res.statusCode, 200, res.body);
    const receipt = res.json();
    assert.deepEqual(receipt.counts, {
      events: 5, // three with the user_id, one anonymous in their session, one of the browser linked to them alone
      allocations, // one conversion, five rules, a row per channel credited
      dead_events: 2, // the worker's copy and the webhook payload
      ledger_rows_scrubbed: 1,
      webhook_deliveries_scrubbed: 1,
      model_runs_marked_stale: 1,
      identity_links: 2,
      identity_changes_scrubbed: 2,
    });
    assert.match(receipt.derived.model_runs, /marked stale: 1/);

    assert.deepEqual(await scan(person, B.tenant_id), {}, 'the id is nowhere');
    // The browser linked to the person alone is gone from every table (its events, its link, the
    // audit trail); the browser they shared stays only where it is the other person's.
    const { own, shared } = browsers.get(`${A.tenant_id}/${person}`)!;
    assert.deepEqual(await scan(own, B.tenant_id), {}, 'their own browser is nowhere');
    // (the seed names the shared browser's event after it: idempotency_key)
    assert.deepEqual(await scan(shared, B.tenant_id), { 'attribution_events.anonymous_id': 1, 'attribution_events.idempotency_key': 1, 'identity_changes.anonymous_id': 1, 'identity_links.anonymous_id': 1 });
    const inB = await scan(person, A.tenant_id);
    assert.ok(inB['attribution_events.user_id']! >= 3 && inB['revenue_ledger.metadata'] === 1, `B's person is untouched: ${JSON.stringify(inB)}`);

    // The other person keeps everything, including their touchpoint in the erased person's session.
    const left = await withTenant(appPool, A.tenant_id, (c) => c.query(`SELECT user_id, count(*)::int AS n FROM attribution_events WHERE tenant_id = $1 GROUP BY 1 ORDER BY 1`, [A.tenant_id]));
    // (null: the other person's browsers, and the browser the erased person shared with someone else)
    assert.deepEqual(left.rows, [{ user_id: other, n: 4 }, { user_id: null, n: 1 + 2 + 1 }]);
    const links = await withTenant(appPool, A.tenant_id, (c) => c.query(`SELECT count(*)::int AS n FROM identity_links WHERE tenant_id = $1`, [A.tenant_id]));
    assert.equal(links.rows[0].n, 1 + 3, "the someone-else link of the shared browser and the other person's seed stay");

    // The payment stays, money and FX untouched; only the id is gone from its metadata.
    const ledger = await withTenant(appPool, A.tenant_id, (c) => c.query(`SELECT amount_cents, state, order_id, metadata FROM revenue_ledger WHERE tenant_id = $1 AND order_id = $2`, [A.tenant_id, orders.get(`${A.tenant_id}/${person}/10`)]));
    assert.equal(ledger.rows.length, 1);
    assert.equal(ledger.rows[0].amount_cents, 4999);
    assert.equal(ledger.rows[0].state, 'captured');
    assert.deepEqual(ledger.rows[0].metadata, { provider: 'stripe', customer: ERASED, note: ERASED, fx: { rate: '1.08', date: '2026-03-10', source: 'ecb' }, [ERASED]: true });

    // Runs of the window are stale; a run of another period is not.
    const runs = await withTenant(appPool, A.tenant_id, (c) => c.query(`SELECT id, stale_reason FROM attribution_model_runs WHERE tenant_id = $1`, [A.tenant_id]));
    assert.deepEqual(Object.fromEntries(runs.rows.map((r) => [r.id, r.stale_reason])), { [staleRun]: 'erasure', [oldRun]: null });

    // Reports are computed from what is left: the conversion no longer counts.
    const channelsAfter = (await app.inject({ method: 'GET', url: '/api/v1/attribution/channels?model=linear&from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z', headers: auth(A.api_key) })).json();
    const total = (r: { channels: { conversions: number }[] }) => r.channels.reduce((s, c) => s + c.conversions, 0);
    assert.ok(total(channelsAfter) < total(channelsBefore), `${JSON.stringify(channelsBefore)} → ${JSON.stringify(channelsAfter)}`);

    // The audit row: when, by whom, the counts; the id itself is covered by the scan above.
    const audit = await withTenant(appPool, A.tenant_id, (c) => c.query(`SELECT id, requested_by, counts FROM erasure_audit WHERE tenant_id = $1`, [A.tenant_id]));
    assert.deepEqual(audit.rows, [{ id: receipt.erasure_id, requested_by: 'api', counts: receipt.counts }]);
  });

  test('idempotent: a repeat answers 200 with zero counts and records its own audit row', async () => {
    const res = await del(person);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().counts, Object.fromEntries(COUNT_NAMES.map((n) => [n, 0])));
    const audit = await withTenant(appPool, A.tenant_id, (c) => c.query(`SELECT count(*)::int AS n FROM erasure_audit WHERE tenant_id = $1`, [A.tenant_id]));
    assert.equal(audit.rows[0].n, 2);
  });

  test('isolation: erasing in one tenant never touches another, and the other tenant cannot see the audit', async () => {
    const res = await del(person, B.api_key);
    assert.equal(res.json().counts.events, 5, "B's own person");
    const audits = await withTenant(appPool, B.tenant_id, (c) => c.query(`SELECT requested_by FROM erasure_audit`));
    assert.equal(audits.rows.length, 1, "B sees only its own erasure");
  });

  test('a web user must be an admin or the owner; no credentials is a 401; bad ids are 400 problems', async () => {
    assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/people/${other}` })).statusCode, 401);
    const browser = async (role: string) => {
      const invitation = await inviteUser(appPool, A.tenant_id, { email: `${role}-${randomUUID().slice(0, 8)}@alpha.example`, role }, web);
      const r = await app.inject({ method: 'POST', url: '/api/v1/auth/invitations/accept', payload: { token: invitation.invitation_url.slice(invitation.invitation_url.indexOf('#') + 1), password: 'correct horse battery staple' } });
      assert.equal(r.statusCode, 200, r.body);
      const cookie = r.cookies.find((c) => c.name === 'skeldir_session')!;
      return { cookie: `skeldir_session=${cookie.value}`, 'x-csrf-token': r.json().csrf_token as string };
    };
    const analyst = await app.inject({ method: 'DELETE', url: `/api/v1/people/${other}`, headers: await browser('analyst') });
    assert.equal(analyst.statusCode, 403, analyst.body);
    assert.equal(analyst.json().code, 'forbidden');
    const adminHeaders = await browser('admin');
    const admin = await app.inject({ method: 'DELETE', url: `/api/v1/people/${other}`, headers: adminHeaders });
    assert.equal(admin.statusCode, 200, admin.body);
    assert.equal(admin.json().counts.events, 6, 'their four, their browser\'s, and their touchpoint in the first person\'s session');
    const audit = await withTenant(appPool, A.tenant_id, (c) => c.query(`SELECT requested_by FROM erasure_audit WHERE id = $1`, [admin.json().erasure_id]));
    assert.match(audit.rows[0].requested_by, /^admin-.*@alpha\.example$/);

    for (const [url, code] of [
      [`/api/v1/people/${'x'.repeat(256)}`, 'validation_failed'],
      // A NUL in any path parameter is refused for every route before authentication (src/http/app.ts).
      ['/api/v1/people/a%00b', 'validation_failed'],
    ] as const) {
      const r = await app.inject({ method: 'DELETE', url, headers: auth(A.api_key) });
      assert.equal(r.statusCode, 400, `${url}: ${r.body}`);
      assert.equal(r.json().code, code);
    }
    // 255 characters of 4-byte UTF-8, percent-encoded, fit in a path parameter.
    const long = await del('😀'.repeat(127) + 'x');
    assert.equal(long.statusCode, 200, long.body);
  });
});

describe('batches', () => {
  test('a person with many events is erased in many short transactions, with the same result', async () => {
    const person = `many-${randomUUID()}`;
    for (let d = 1; d <= 6; d++) await seedPerson(A, person, { day: d });
    const receipt = await erasePerson(appPool, { tenantId: A.tenant_id, userId: person, requestedBy: 'test', batchSize: 3 });
    assert.equal(receipt.counts.events, 6 * 5);
    assert.ok(receipt.counts.allocations >= 6 * 5);
    assert.equal(receipt.counts.dead_events, 6 * 2);
    assert.equal(receipt.counts.ledger_rows_scrubbed, 6);
    assert.deepEqual(await scan(person, B.tenant_id), {});
  });

  test('a short id is matched as a whole value only, so it scrubs nothing that merely contains it', () => {
    assert.deepEqual(scrubJson({ a: '42', b: 'ch_4242', c: ['42', { '42': 1 }] }, '42'), { a: ERASED, b: 'ch_4242', c: [ERASED, { [ERASED]: 1 }] });
    assert.deepEqual(scrubJson({ b: 'paid by user-12345678' }, 'user-12345678'), { b: ERASED });
  });
});

describe('skeldir people erase', () => {
  test('erases and prints the receipt; bad input exits 2', async () => {
    const person = `cli-${randomUUID()}`;
    await seedPerson(A, person, { day: 20 });
    const env = { DATABASE_URL: db.url };
    const r = await runCli(['people', 'erase', '--tenant', A.tenant_id, person], { env });
    assert.equal(r.code, 0, r.stderr);
    const receipt = JSON.parse(r.stdout);
    assert.equal(receipt.counts.events, 5);
    assert.deepEqual(await scan(person, B.tenant_id), {});
    const audit = await withTenant(appPool, A.tenant_id, (c) => c.query(`SELECT requested_by FROM erasure_audit WHERE id = $1`, [receipt.erasure_id]));
    assert.match(audit.rows[0].requested_by, /^cli:/);
    for (const args of [
      ['people', 'erase', '--tenant', A.tenant_id, ''],
      ['people', 'erase', '--tenant', 'acme', person],
      ['people', 'erase', '--tenant', randomUUID(), person],
      ['people', 'erase', person],
    ]) {
      const bad = await runCli(args, { env });
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
      assert.equal(bad.stdout, '');
    }
  });
});
