import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { loadConfig } from '../config.js';
import { buildApp, type App } from '../http/app.js';
import { runCli } from '../testing/cli.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { API_KEY_PREFIX, generateApiKey, hashesEqual, looksLikeApiKey } from './api-keys.js';
import { ApiKeyAuthenticator } from './authenticator.js';
import { createTenant, parseGrace, revokeApiKeys, rotateApiKey } from './tenants.js';
import { INSTANT_TEXT } from '../db/timestamps.js';

let db: TestDatabase;
let app: App;
let su: pg.Client;
let owner: pg.Pool;

before(async () => {
  db = await createTestDatabase('head');
  // No authentication cache here: every request asks the database, so key changes show at once.
  app = await buildApp({ db, config: loadConfig({}), logger: false, authCacheTtlMs: 0, rateLimit: { max: 0 } });
  su = await superClient(db);
  owner = db.ownerPool({ max: 2 });
});
after(async () => {
  await owner?.end();
  await su?.end();
  await app?.close();
  await db?.drop();
});

const cli = (args: string[]) => runCli(['tenant', ...args], { env: { DATABASE_URL: db.url } });
const whoami = (key: string | undefined) =>
  app.inject({ method: 'GET', url: '/api/v1/tenant', headers: key === undefined ? {} : { authorization: `Bearer ${key}` } });
/** The 401 body without its per-request id: must be byte-identical whatever the cause. */
async function unauthorizedBody(key: string | undefined): Promise<string> {
  const res = await whoami(key);
  assert.equal(res.statusCode, 401, `expected 401 for ${key?.slice(0, 8)}…, got ${res.statusCode} ${res.body}`);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json();
  assert.equal(body.request_id, res.headers['x-request-id']);
  delete body.request_id;
  return JSON.stringify(body);
}

describe('API keys', () => {
  test('256 random bits with a recognisable prefix; only the SHA-256 is stored', async () => {
    const key = generateApiKey();
    assert.ok(key.startsWith(API_KEY_PREFIX) && looksLikeApiKey(key));
    assert.equal(Buffer.from(key.slice(4), 'base64url').length, 32);
    assert.notEqual(generateApiKey(), generateApiKey());
    const created = await createTenant(owner, { name: 'Hash', email: 'ops@hash.example' });
    const { rows } = await su.query('SELECT row_to_json(t)::text AS row FROM tenants t WHERE id = $1', [created.tenant_id]);
    assert.ok(!rows[0].row.includes(created.api_key.slice(4)), 'the key is not stored');
    assert.ok(rows[0].row.includes(createHash('sha256').update(created.api_key).digest('hex')));
  });

  test('hash comparison is exact (timingSafeEqual)', () => {
    const h = createHash('sha256').update('x').digest('hex');
    assert.equal(hashesEqual(h, h), true);
    assert.equal(hashesEqual(h, h.replace(/.$/, (c) => (c === '0' ? '1' : '0'))), false);
    assert.equal(hashesEqual(h, h.slice(1)), false);
  });

  test('grace periods: 0 or a duration up to 30 days', () => {
    assert.equal(parseGrace('0'), 0);
    assert.equal(parseGrace('90s'), 90_000);
    assert.equal(parseGrace('24h'), 86_400_000);
    assert.equal(parseGrace('30d'), 30 * 86_400_000);
    for (const bad of ['31d', '-1h', '5', '1w', '', 'h']) assert.throws(() => parseGrace(bad), { code: 'grace_invalid' });
  });
});

describe('skeldir tenant (CLI)', () => {
  test('create, rotate-key with a grace period, revoke-key --previous-only, revoke-key, list', async () => {
    const created = await cli(['create', '--name', 'Acme', '--email', 'ops@acme.example']);
    assert.equal(created.code, 0, created.stderr);
    const { tenant_id, api_key: first } = JSON.parse(created.stdout);
    assert.equal((await whoami(first)).json().id, tenant_id);

    const rotated = await cli(['rotate-key', tenant_id, '--grace', '2h']);
    assert.equal(rotated.code, 0, rotated.stderr);
    const r = JSON.parse(rotated.stdout);
    assert.equal(r.tenant_id, tenant_id);
    assert.notEqual(r.api_key, first);
    const until = Date.parse(r.previous_key_valid_until) - Date.now();
    assert.ok(until > 3600_000 && until <= 7200_000, r.previous_key_valid_until);
    assert.equal((await whoami(r.api_key)).statusCode, 200, 'the new key works');
    assert.equal((await whoami(first)).statusCode, 200, 'the old key works during its grace period');

    const listed = await cli(['list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const row = JSON.parse(listed.stdout).find((t: { tenant_id: string }) => t.tenant_id === tenant_id);
    assert.equal(row.name, 'Acme');
    assert.equal(row.current_key, 'active');
    assert.equal(row.keys_in_grace.length, 1);
    assert.match(row.keys_in_grace[0], INSTANT_TEXT, 'one timestamp precision: microseconds');
    assert.match(row.created_at, INSTANT_TEXT);
    assert.ok(!listed.stdout.includes(r.api_key) && !listed.stdout.includes(first), 'list never shows keys');
    const table = await cli(['list']);
    assert.match(table.stdout, /^TENANT ID\s+NAME/);
    assert.match(table.stdout, new RegExp(`${tenant_id}\\s+Acme\\s+ops@acme\\.example`));

    const previous = await cli(['revoke-key', tenant_id, '--previous-only']);
    assert.equal(previous.code, 0, previous.stderr);
    assert.deepEqual(JSON.parse(previous.stdout), { tenant_id, revoked: 1, current_key_revoked: false });
    assert.equal((await whoami(first)).statusCode, 401, 'the old key stops at once');
    assert.equal((await whoami(r.api_key)).statusCode, 200, 'the current key still works');

    const all = await cli(['revoke-key', tenant_id]);
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(JSON.parse(all.stdout), { tenant_id, revoked: 1, current_key_revoked: true });
    assert.equal((await whoami(r.api_key)).statusCode, 401);
    const afterRevoke = JSON.parse((await cli(['list', '--json'])).stdout).find((t: { tenant_id: string }) => t.tenant_id === tenant_id);
    assert.equal(afterRevoke.current_key, 'revoked');

    const reissued = JSON.parse((await cli(['rotate-key', tenant_id])).stdout);
    assert.equal(reissued.previous_key_valid_until, null, 'a revoked key gets no grace');
    assert.equal((await whoami(reissued.api_key)).json().id, tenant_id);
  });

  test('bad input: a message on stderr, a non-zero exit, nothing written', async () => {
    const count = async () => Number((await su.query('SELECT count(*) AS n FROM tenants')).rows[0].n);
    const before = await count();
    // Through the command (exit codes and messages), in parallel to keep the suite quick …
    const runs = await Promise.all(
      ([
        [['create', '--name', 'X', '--email', 'not-an-address'], 2, /not a valid e-mail address/],
        [['rotate-key', '00000000-0000-4000-8000-000000000000'], 1, /no tenant/],
        [['revoke-key', 'nope'], 2, /not a tenant id/],
        [['rotate-key', '00000000-0000-4000-8000-000000000000', '--grace', '1y'], 2, /--grace/],
      ] as const).map(async ([args, code, message]) => ({ args, code, message, res: await cli([...args]) })),
    );
    for (const { args, code, message, res } of runs) {
      assert.equal(res.code, code, `${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, message);
      assert.equal(res.stdout, '');
    }
    // … and the rest of the rules through the functions the commands call.
    await assert.rejects(createTenant(owner, { name: 'X', email: 'a@localhost' }), { code: 'tenant_email_invalid' });
    await assert.rejects(createTenant(owner, { name: 'X', email: `${'a'.repeat(65)}@x.example` }), { code: 'tenant_email_invalid' });
    await assert.rejects(createTenant(owner, { name: '   ', email: 'ops@x.example' }), { code: 'tenant_name_invalid' });
    await assert.rejects(createTenant(owner, { name: 'a\u0007b', email: 'ops@x.example' }), { code: 'tenant_name_invalid' });
    await assert.rejects(rotateApiKey(owner, 'nope'), { code: 'tenant_id_invalid' });
    await assert.rejects(revokeApiKeys(owner, '00000000-0000-4000-8000-000000000000'), { code: 'tenant_not_found' });
    assert.equal(await count(), before);
  });
});

describe('the same 401 for every kind of bad key', () => {
  test('missing, malformed, unknown, revoked, rotated out (grace over, or no grace) and a legacy placeholder', async () => {
    const a = await createTenant(owner, { name: 'A', email: 'ops@a.example' });
    const b = await createTenant(owner, { name: 'B', email: 'ops@b.example' });
    const c = await createTenant(owner, { name: 'C', email: 'ops@c.example' });
    // Revoked.
    await revokeApiKeys(owner, a.tenant_id);
    // Rotated out with a grace period that then ends (moved into the past by hand).
    const bRotated = await rotateApiKey(owner, b.tenant_id, 3600_000);
    assert.equal((await whoami(b.api_key)).statusCode, 200);
    await su.query(`UPDATE tenant_api_keys_retired SET retired_at = now() - interval '2 hours', expires_at = now() - interval '1 second' WHERE tenant_id = $1`, [b.tenant_id]);
    // Rotated out without grace.
    const cRotated = await rotateApiKey(owner, c.tenant_id, 0);
    assert.equal((await whoami(bRotated.api_key)).statusCode, 200);
    assert.equal((await whoami(cRotated.api_key)).statusCode, 200);

    const bodies = new Set<string>();
    for (const key of [
      undefined, // missing
      '', // empty
      'hello', // malformed
      `${a.api_key}x`, // too long
      `skd_${'A'.repeat(43)}`, // well-formed, unknown
      a.api_key, // revoked
      b.api_key, // rotated out, grace over
      c.api_key, // rotated out, no grace
    ]) {
      bodies.add(await unauthorizedBody(key));
    }
    const basic = await app.inject({ method: 'GET', url: '/api/v1/tenant', headers: { authorization: `Basic ${a.api_key}` } });
    const basicBody = basic.json();
    delete basicBody.request_id;
    bodies.add(JSON.stringify(basicBody));
    assert.equal(bodies.size, 1, [...bodies].join('\n'));
    const body = JSON.parse([...bodies][0]!);
    assert.equal(body.code, 'unauthorized');
    assert.equal(body.status, 401);
  });
});

describe('authentication cache', () => {
  test('a revoked key stops within the cache TTL (clock moved, not waited for)', async () => {
    let now = 1_000_000;
    const pool = db.appPool({ max: 1 });
    try {
      const auth = new ApiKeyAuthenticator(pool, { ttlMs: 5000, now: () => now });
      const t = await createTenant(owner, { name: 'Cached', email: 'ops@cached.example' });
      assert.equal(await auth.authenticate(t.api_key), t.tenant_id);
      await revokeApiKeys(owner, t.tenant_id);
      now += 4999;
      assert.equal(await auth.authenticate(t.api_key), t.tenant_id, 'still cached inside the bound');
      now += 1;
      assert.equal(await auth.authenticate(t.api_key), null, 'refused once the bound has passed');
      // Failures are not cached: a key issued now works at once.
      const fresh = await rotateApiKey(owner, t.tenant_id, 0);
      assert.equal(await auth.authenticate(fresh.api_key), t.tenant_id);
    } finally {
      await pool.end();
    }
  });

  test('the app uses the bound too', async () => {
    let now = 5_000_000;
    const cached = await buildApp({ db, config: loadConfig({}), logger: false, clock: () => now, rateLimit: { max: 0 } });
    try {
      const t = await createTenant(owner, { name: 'App cached', email: 'ops@appcached.example' });
      const ask = () => cached.inject({ method: 'GET', url: '/api/v1/tenant', headers: { authorization: `Bearer ${t.api_key}` } });
      assert.equal((await ask()).statusCode, 200);
      await revokeApiKeys(owner, t.tenant_id);
      now += 5000;
      assert.equal((await ask()).statusCode, 401);
    } finally {
      await cached.close();
    }
  });
});
