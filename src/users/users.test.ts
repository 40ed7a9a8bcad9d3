import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { loadConfig, type WebConfig } from '../config.js';
import { buildApp, type App } from '../http/app.js';
import { createTenant } from '../tenants/tenants.js';
import { runCli } from '../testing/cli.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { LoginThrottle } from './throttle.js';
import { acceptInvitation, inviteUser, login, resolveSession, TOUCH_EVERY_MS } from './users.js';

let db: TestDatabase;
let su: pg.Client;
let appPool: pg.Pool;
let app: App;
let A: { tenant_id: string; api_key: string };
let B: { tenant_id: string; api_key: string };
const web: WebConfig = loadConfig({}).web;
const PASSWORD = 'correct horse battery staple';

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

interface Browser {
  cookie: string;
  csrf: string;
}

function tokenOf(url: string): string {
  return url.slice(url.indexOf('#') + 1);
}

/** Invites (through the library, as the CLI does) and accepts: a signed-in browser of a new user. */
async function signedIn(tenant: string, email: string, role: string): Promise<Browser & { userId: string }> {
  const invitation = await inviteUser(appPool, tenant, { email, role }, web);
  const res = await app.inject({ method: 'POST', url: '/api/v1/auth/invitations/accept', payload: { token: tokenOf(invitation.invitation_url), password: PASSWORD } });
  assert.equal(res.statusCode, 200, res.body);
  const cookie = res.cookies.find((c) => c.name === 'skeldir_session')!;
  return { cookie: `skeldir_session=${cookie.value}`, csrf: res.json().csrf_token, userId: invitation.user.id };
}

function as(b: Browser, method: string, url: string, payload?: unknown, csrf: string | null = b.csrf) {
  return app.inject({
    method: method as 'GET',
    url,
    headers: { cookie: b.cookie, ...(csrf ? { 'x-csrf-token': csrf } : {}) },
    ...(payload !== undefined ? { payload: payload as object } : {}),
  });
}

describe('invitations', () => {
  test('skeldir user invite prints a one-time link; it sets the password, signs in with a hardened cookie, and works once', async () => {
    const cli = await runCli(['user', 'invite', '--tenant', A.tenant_id, '--email', 'Lead@Alpha.Example', '--role', 'admin'], {
      env: { DATABASE_URL: db.url, SKELDIR_PUBLIC_URL: 'https://skeldir.alpha.example' },
    });
    assert.equal(cli.code, 0, cli.stderr);
    const out = JSON.parse(cli.stdout);
    assert.equal(out.user.email, 'lead@alpha.example');
    assert.equal(out.user.role, 'admin');
    assert.equal(out.user.status, 'invited');
    assert.match(out.invitation_url, new RegExp(`^https://skeldir\\.alpha\\.example/invite#${A.tenant_id}\\.[A-Za-z0-9_-]{43}$`));
    assert.ok(Date.parse(out.expires_at) - Date.now() > 71 * 3600_000);

    const accept = (password: string) => app.inject({ method: 'POST', url: '/api/v1/auth/invitations/accept', payload: { token: tokenOf(out.invitation_url), password } });
    const short = await accept('short');
    assert.equal(short.statusCode, 400);
    assert.equal(short.json().code, 'password_invalid');
    const res = await accept(PASSWORD);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().user.email, 'lead@alpha.example');
    assert.equal(res.json().tenant.name, 'Alpha');
    const cookie = res.cookies.find((c) => c.name === 'skeldir_session')!;
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.path, '/');
    assert.ok(cookie.expires);
    // Only hashes are stored.
    const { rows } = await su.query(`SELECT password_hash FROM tenant_users WHERE email = 'lead@alpha.example'`);
    assert.match(rows[0].password_hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    const stored = await su.query(`SELECT token_hash FROM user_sessions`);
    assert.ok(stored.rows.every((r) => !cookie.value.includes(r.token_hash)));

    const again = await accept('another long password');
    assert.equal(again.statusCode, 400);
    assert.equal(again.json().code, 'invitation_invalid');
    const list = await runCli(['user', 'list', '--tenant', A.tenant_id], { env: { DATABASE_URL: db.url } });
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout).map((u: { email: string; status: string }) => [u.email, u.status]), [['lead@alpha.example', 'active']]);
  });

  test('the CLI refuses a bad role or e-mail (exit 2) and an active user (exit 1), writing nothing', async () => {
    const before = (await su.query('SELECT count(*)::int AS n FROM tenant_users')).rows[0].n;
    const env = { DATABASE_URL: db.url };
    const role = await runCli(['user', 'invite', '--tenant', A.tenant_id, '--email', 'x@alpha.example', '--role', 'god'], { env });
    assert.equal(role.code, 2);
    assert.match(role.stderr, /"god" is not a role: give viewer, analyst, admin, owner/);
    const email = await runCli(['user', 'invite', '--tenant', A.tenant_id, '--email', 'not-an-email', '--role', 'viewer'], { env });
    assert.equal(email.code, 2);
    const exists = await runCli(['user', 'invite', '--tenant', A.tenant_id, '--email', 'lead@alpha.example', '--role', 'viewer'], { env });
    assert.equal(exists.code, 1);
    assert.match(exists.stderr, /already a user/);
    assert.equal((await su.query('SELECT count(*)::int AS n FROM tenant_users')).rows[0].n, before);
  });

  test('an invitation expires; a new one replaces the old link', async () => {
    const now = new Date();
    const first = await inviteUser(appPool, A.tenant_id, { email: 'late@alpha.example', role: 'viewer' }, web, now);
    const later = new Date(now.getTime() + web.invitationMs);
    await assert.rejects(acceptInvitation(appPool, tokenOf(first.invitation_url), PASSWORD, web, later), { code: 'invitation_invalid' });
    const second = await inviteUser(appPool, A.tenant_id, { email: 'late@alpha.example', role: 'analyst' }, web, now);
    assert.equal(second.user.id, first.user.id);
    await assert.rejects(acceptInvitation(appPool, tokenOf(first.invitation_url), PASSWORD, web, now), { code: 'invitation_invalid' });
    const session = await acceptInvitation(appPool, tokenOf(second.invitation_url), PASSWORD, web, now);
    assert.equal(session.principal.role, 'analyst');
  });

  test("a link naming another tenant, or forged, is refused like any invalid link", async () => {
    const inv = await inviteUser(appPool, A.tenant_id, { email: 'forged@alpha.example', role: 'viewer' }, web);
    const secret = tokenOf(inv.invitation_url).split('.')[1];
    for (const token of [`${B.tenant_id}.${secret}`, 'garbage', `${A.tenant_id}.${'A'.repeat(43)}`]) {
      const res = await app.inject({ method: 'POST', url: '/api/v1/auth/invitations/accept', payload: { token, password: PASSWORD } });
      assert.equal(res.statusCode, 400, token);
      assert.equal(res.json().code, 'invitation_invalid');
    }
  });
});

describe('sign-in', () => {
  test('login → session works on the API → logout ends it and clears the cookie', async () => {
    await signedIn(A.tenant_id, 'owner@alpha.example', 'owner');
    const res = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: 'OWNER@alpha.example', password: PASSWORD } });
    assert.equal(res.statusCode, 200, res.body);
    const b: Browser = { cookie: `skeldir_session=${res.cookies[0]!.value}`, csrf: res.json().csrf_token };
    const tenant = await as(b, 'GET', '/api/v1/tenant');
    assert.equal(tenant.statusCode, 200);
    assert.equal(tenant.json().id, A.tenant_id);
    const me = await as(b, 'GET', '/api/v1/auth/session');
    const { user, ...rest } = me.json() as { user: { email: string; role: string } } & Record<string, unknown>;
    assert.deepEqual(rest, { kind: 'session', tenant: { id: A.tenant_id, name: 'Alpha' }, role: 'owner', csrf_token: b.csrf });
    assert.equal(user.email, 'owner@alpha.example');
    const out = await as(b, 'POST', '/api/v1/auth/logout');
    assert.equal(out.statusCode, 204);
    const cleared = out.cookies.find((c) => c.name === 'skeldir_session')!;
    assert.equal(cleared.value, '');
    const after = await as(b, 'GET', '/api/v1/tenant');
    assert.equal(after.statusCode, 401);
    assert.match(after.json().detail, /session has ended/);
    // Every 401 names its ways in (RFC 9110 §11.6.1): an API key, or signing in again.
    assert.equal(after.headers['www-authenticate'], 'Bearer realm="skeldir", Session realm="skeldir"');
  });

  test('a wrong password and an unknown e-mail get the same answer; failures are throttled per e-mail', async () => {
    const wrong = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: 'owner@alpha.example', password: 'not the password' } });
    const unknown = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: 'nobody@alpha.example', password: 'not the password' } });
    assert.equal(wrong.statusCode, 401);
    assert.equal(unknown.statusCode, 401);
    assert.equal(wrong.json().detail, unknown.json().detail);
    assert.equal(wrong.json().code, 'login_failed');
    assert.equal(wrong.headers['www-authenticate'], 'Session realm="skeldir"', 'a 401 carries its challenge');
    for (let i = 0; i < 4; i++) await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: 'owner@alpha.example', password: 'guess ' + i } });
    // The right password no longer helps: the e-mail is throttled before any check.
    const blocked = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: 'owner@alpha.example', password: PASSWORD } });
    assert.equal(blocked.statusCode, 429);
    assert.equal(blocked.json().code, 'login_throttled');
    assert.ok(Number(blocked.headers['retry-after']) > 0);
  });

  test('the throttle window slides, and a success clears the e-mail', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const t = new LoginThrottle(appPool, { perEmail: 2, perAddress: 3, windowMs: 1000, now: () => now });
    await t.recordFailure('a@x.io', '1.1.1.1');
    assert.equal(await t.retryAfterMs('A@x.io', '1.1.1.1'), 0);
    now += 100;
    await t.recordFailure('a@x.io', '1.1.1.1');
    assert.equal(await t.retryAfterMs('a@x.io', '2.2.2.2'), 900);
    now += 901;
    assert.equal(await t.retryAfterMs('a@x.io', '2.2.2.2'), 0);
    await t.recordFailure('b@x.io', '1.1.1.1');
    await t.recordFailure('c@x.io', '1.1.1.1');
    assert.ok((await t.retryAfterMs('d@x.io', '1.1.1.1')) > 0, 'per address');
    await t.recordSuccess('b@x.io');
    assert.ok((await t.retryAfterMs('d@x.io', '1.1.1.1')) > 0, 'a success does not clear the address');
    // Digests only: no e-mail or address in clear, and failures past the window are deleted as new ones are recorded.
    const rows = (await su.query<{ key_hash: Buffer; failed_at: Date }>(`SELECT key_hash, failed_at FROM login_failures`)).rows;
    assert.ok(rows.every((r) => r.key_hash.length === 32 && !r.key_hash.toString('latin1').includes('x.io')));
    now += 5000;
    await t.recordFailure('e@x.io', '3.3.3.3');
    assert.equal((await su.query(`SELECT count(*)::int AS n FROM login_failures WHERE failed_at <= $1`, [new Date(now - 1000)])).rows[0].n, 0);
  });

  test('the throttle is shared by every API process: failures made through one refuse sign-in through another', async () => {
    const other = await buildApp({ db, config: loadConfig({}), logger: false });
    try {
      const email = 'shared-throttle@alpha.example';
      for (let i = 0; i < 5; i++) {
        const via = i % 2 === 0 ? app : other;
        assert.equal((await via.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: 'guess ' + i } })).statusCode, 401);
      }
      for (const via of [app, other]) {
        const res = await via.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: 'guess 6' } });
        assert.equal(res.statusCode, 429);
        assert.equal(res.json().code, 'login_throttled');
      }
    } finally {
      await other.close();
    }
    // The application role cannot read or change the failures itself, only call the functions.
    await assert.rejects(appPool.query('SELECT * FROM login_failures'), /permission denied/);
    await assert.rejects(appPool.query('DELETE FROM login_failures'), /permission denied/);
  });

  test('sign-in from another site is refused (login CSRF)', async () => {
    for (const headers of [{ origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }]) {
      const res = await app.inject({ method: 'POST', url: '/api/v1/auth/login', headers, payload: { email: 'lead@alpha.example', password: PASSWORD } });
      assert.equal(res.statusCode, 403);
      assert.equal(res.json().code, 'csrf_failed');
      assert.equal(res.cookies.length, 0);
    }
  });

  test('one e-mail in two tenants: the password picks, and when it opens both the user chooses', async () => {
    await signedIn(A.tenant_id, 'both@shared.example', 'viewer');
    await signedIn(B.tenant_id, 'both@shared.example', 'admin');
    const res = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: 'both@shared.example', password: PASSWORD } });
    assert.equal(res.statusCode, 409);
    assert.equal(res.json().code, 'login_tenant_ambiguous');
    assert.deepEqual(
      res.json().tenants.map((t: { name: string }) => t.name).sort(),
      ['Alpha', 'Beta'],
    );
    const chosen = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: 'both@shared.example', password: PASSWORD, tenant_id: B.tenant_id } });
    assert.equal(chosen.statusCode, 200);
    assert.equal(chosen.json().tenant.id, B.tenant_id);
    assert.equal(chosen.json().role, 'admin');
  });

  test('a sign-in naming its tenant reads that tenant\'s users only (one shard on Citus): the same answers as filtering every tenant\'s', async () => {
    await signedIn(A.tenant_id, 'named@shared.example', 'viewer');
    const failed = { code: 'login_failed' };
    const s = await login(appPool, { email: 'Named@Shared.example', password: PASSWORD, tenantId: A.tenant_id.toUpperCase() }, web);
    assert.equal(s.principal.tenantId, A.tenant_id);
    await assert.rejects(login(appPool, { email: 'named@shared.example', password: 'not the password', tenantId: A.tenant_id }, web), failed);
    // A tenant where the e-mail has no user, a tenant id that names no tenant, one that is no UUID: no candidate.
    for (const tenantId of [B.tenant_id, '00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
      await assert.rejects(login(appPool, { email: 'named@shared.example', password: PASSWORD, tenantId }, web), failed, tenantId);
    }
    // A removed (disabled) user of the named tenant is no candidate either.
    await su.query(`UPDATE tenant_users SET disabled_at = now() WHERE tenant_id = $1 AND email = 'named@shared.example'`, [A.tenant_id]);
    await assert.rejects(login(appPool, { email: 'named@shared.example', password: PASSWORD, tenantId: A.tenant_id }, web), failed);
  });

  test('sessions end after the idle timeout and at the absolute expiry; activity is recorded once a minute', async () => {
    const t0 = new Date();
    await inviteUser(appPool, A.tenant_id, { email: 'idle@alpha.example', role: 'viewer' }, web, t0).then((i) => acceptInvitation(appPool, tokenOf(i.invitation_url), PASSWORD, web, t0));
    const s = await login(appPool, { email: 'idle@alpha.example', password: PASSWORD }, web, t0);
    const at = (ms: number) => new Date(t0.getTime() + ms);
    assert.ok(await resolveSession(appPool, s.token, web, at(web.sessionIdleMs - 1)));
    const seen = async () => (await su.query(`SELECT last_seen_at FROM user_sessions WHERE id = $1`, [s.principal.sessionId])).rows[0].last_seen_at.getTime();
    assert.equal(await seen(), at(web.sessionIdleMs - 1).getTime());
    assert.ok(await resolveSession(appPool, s.token, web, at(web.sessionIdleMs - 1 + TOUCH_EVERY_MS - 1)));
    assert.equal(await seen(), at(web.sessionIdleMs - 1).getTime(), 'not written again within a minute');
    assert.equal(await resolveSession(appPool, s.token, web, at(2 * web.sessionIdleMs - 1)), null, 'idle');
    // Keep it active until the absolute end: it still ends there.
    // (Activity is recorded at most once a minute, so a step of the idle timeout less a minute.)
    for (let now = web.sessionIdleMs - 1 + (web.sessionIdleMs - TOUCH_EVERY_MS); now < web.sessionMaxMs; now += web.sessionIdleMs - TOUCH_EVERY_MS) {
      assert.ok(await resolveSession(appPool, s.token, web, at(now)), `active at ${now}`);
    }
    assert.equal(await resolveSession(appPool, s.token, web, at(web.sessionMaxMs)), null, 'absolute');
  });

  test('sign out everywhere ends every session of the user, not other users', async () => {
    const first = await signedIn(A.tenant_id, 'travel@alpha.example', 'viewer');
    const res = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: 'travel@alpha.example', password: PASSWORD } });
    const second: Browser = { cookie: `skeldir_session=${res.cookies[0]!.value}`, csrf: res.json().csrf_token };
    const other = await signedIn(A.tenant_id, 'stay@alpha.example', 'viewer');
    const out = await as(second, 'POST', '/api/v1/auth/logout-everywhere');
    assert.equal(out.statusCode, 200);
    assert.equal(out.json().revoked, 2);
    assert.equal((await as(first, 'GET', '/api/v1/tenant')).statusCode, 401);
    assert.equal((await as(second, 'GET', '/api/v1/tenant')).statusCode, 401);
    assert.equal((await as(other, 'GET', '/api/v1/tenant')).statusCode, 200);
  });
});

describe('CSRF, roles and tenants', () => {
  test('a state-changing request with the cookie but without the session\'s CSRF token is refused and changes nothing', async () => {
    const admin = await signedIn(A.tenant_id, 'csrf@alpha.example', 'admin');
    const settings = () => su.query(`SELECT count(*)::int AS n FROM attribution_settings`).then((r) => r.rows[0].n);
    const before = await settings();
    const other = await signedIn(A.tenant_id, 'csrf2@alpha.example', 'admin');
    for (const csrf of [null, 'wrong', other.csrf]) {
      const res = await as(admin, 'PUT', '/api/v1/attribution/settings', { lookback_days: 14 }, csrf);
      assert.equal(res.statusCode, 403, String(csrf));
      assert.equal(res.json().code, 'csrf_failed');
    }
    assert.equal(await settings(), before);
    const ok = await as(admin, 'PUT', '/api/v1/attribution/settings', { lookback_days: 14 });
    assert.equal(ok.statusCode, 200, ok.body);
    // Reads need no token.
    assert.equal((await as(admin, 'GET', '/api/v1/attribution/settings', undefined, null)).statusCode, 200);
  });

  test('viewers and analysts read but cannot change settings, dead events or users (403); admins can; only owners manage users', async () => {
    const viewer = await signedIn(A.tenant_id, 'viewer@alpha.example', 'viewer');
    const analyst = await signedIn(A.tenant_id, 'analyst@alpha.example', 'analyst');
    const admin = await signedIn(A.tenant_id, 'admin@alpha.example', 'admin');
    const owner = await signedIn(A.tenant_id, 'owner2@alpha.example', 'owner');
    for (const b of [viewer, analyst]) {
      assert.equal((await as(b, 'GET', '/api/v1/attribution/settings')).statusCode, 200);
      assert.equal((await as(b, 'GET', '/api/v1/dead-events')).statusCode, 200);
      for (const [method, url, body] of [
        ['PUT', '/api/v1/attribution/settings', { lookback_days: 7 }],
        ['POST', '/api/v1/dead-events/00000000-0000-4000-8000-000000000000/retry', {}],
        ['GET', '/api/v1/users', undefined],
        ['POST', '/api/v1/users/invitations', { email: 'x@alpha.example', role: 'viewer' }],
      ] as const) {
        const res = await as(b, method, url, body);
        assert.equal(res.statusCode, 403, `${method} ${url}: ${res.body}`);
        assert.equal(res.json().code, 'forbidden');
      }
    }
    assert.equal((await as(admin, 'PUT', '/api/v1/attribution/settings', { lookback_days: 7 })).statusCode, 200);
    assert.equal((await as(admin, 'GET', '/api/v1/users')).statusCode, 200);
    const adminInvite = await as(admin, 'POST', '/api/v1/users/invitations', { email: 'x@alpha.example', role: 'viewer' });
    assert.equal(adminInvite.statusCode, 403);
    const invite = await as(owner, 'POST', '/api/v1/users/invitations', { email: 'new@alpha.example', role: 'analyst' });
    assert.equal(invite.statusCode, 201, invite.body);
    assert.match(invite.json().invitation_url, /\/invite#/);
    const invitedBy = await su.query(`SELECT invited_by FROM tenant_users WHERE email = 'new@alpha.example'`);
    assert.equal(invitedBy.rows[0].invited_by, owner.userId);
    const promote = await as(owner, 'PATCH', `/api/v1/users/${viewer.userId}`, { role: 'admin' });
    assert.equal(promote.statusCode, 200);
    assert.equal(promote.json().role, 'admin');
    // The role change applies to the open session at once.
    assert.equal((await as(viewer, 'PUT', '/api/v1/attribution/settings', { lookback_days: 9 })).statusCode, 200);
    const removed = await as(owner, 'DELETE', `/api/v1/users/${analyst.userId}`);
    assert.equal(removed.statusCode, 204);
    assert.equal((await as(analyst, 'GET', '/api/v1/tenant')).statusCode, 401, "a removed user's sessions end");
    const relogin = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: 'analyst@alpha.example', password: PASSWORD } });
    assert.equal(relogin.statusCode, 401);
  });

  test('the last owner cannot be demoted or removed', async () => {
    const owner = await signedIn(B.tenant_id, 'solo@beta.example', 'owner');
    const demote = await as(owner, 'PATCH', `/api/v1/users/${owner.userId}`, { role: 'viewer' });
    assert.equal(demote.statusCode, 409);
    assert.equal(demote.json().code, 'last_owner');
    assert.equal((await as(owner, 'DELETE', `/api/v1/users/${owner.userId}`)).json().code, 'last_owner');
  });

  test("a session of A never reaches B: B's user ids answer as missing ones, a cookie re-labelled with B's id is refused", async () => {
    const a = await signedIn(A.tenant_id, 'iso-a@alpha.example', 'owner');
    const b = await signedIn(B.tenant_id, 'iso-b@beta.example', 'owner');
    const theirs = await as(a, 'PATCH', `/api/v1/users/${b.userId}`, { role: 'viewer' });
    const none = await as(a, 'PATCH', `/api/v1/users/00000000-0000-4000-8000-000000000001`, { role: 'viewer' });
    assert.equal(theirs.statusCode, 404);
    assert.equal(theirs.json().code, none.json().code);
    const list = await as(a, 'GET', '/api/v1/users');
    assert.ok(!list.body.includes('beta.example'));
    const secret = a.cookie.split('.')[1];
    const relabelled = await app.inject({ method: 'GET', url: '/api/v1/tenant', headers: { cookie: `skeldir_session=${B.tenant_id}.${secret}` } });
    assert.equal(relabelled.statusCode, 401);
    // B's session replayed with A's CSRF token is refused too.
    const crossed = await as({ cookie: b.cookie, csrf: a.csrf }, 'PUT', '/api/v1/attribution/settings', { lookback_days: 3 });
    assert.equal(crossed.statusCode, 403);
  });

  test('API keys work exactly as before, and take precedence over a cookie', async () => {
    const viewer = await signedIn(A.tenant_id, 'both-creds@alpha.example', 'viewer');
    const res = await app.inject({
      method: 'PUT',
      url: '/api/v1/attribution/settings',
      headers: { authorization: `Bearer ${B.api_key}`, cookie: viewer.cookie },
      payload: { lookback_days: 21 },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().lookback_days, 21);
    const settings = await app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: { authorization: `Bearer ${B.api_key}` } });
    assert.deepEqual(settings.json(), { kind: 'api_key', tenant: { id: B.tenant_id, name: 'Beta' }, user: null, role: 'owner', csrf_token: null });
    const none = await app.inject({ method: 'GET', url: '/api/v1/tenant' });
    assert.equal(none.statusCode, 401);
    assert.match(none.json().detail, /API key/);
  });
});
