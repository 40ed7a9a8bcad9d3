import type pg from 'pg';
import type { WebConfig } from '../config.js';
import { withTenant } from '../db/tenant-context.js';
import { validateEmail, validateTenantId } from '../tenants/tenants.js';
import { UserError } from './errors.js';
import { hashPassword, validatePassword, verifyNothing, verifyPassword } from './passwords.js';
import { isRole, ROLES, type Role } from './roles.js';
import * as sql from './store.js';
import { csrfTokenFor, issueToken, parseToken } from './tokens.js';
import { formatInstant } from '../db/timestamps.js';

/** How often a session's last_seen_at is written: at most once a minute per session, not per request. */
export const TOUCH_EVERY_MS = 60_000;

export interface User {
  id: string;
  email: string;
  role: Role;
  /** `invited`: has not set a password yet; `active`: can sign in. */
  status: 'invited' | 'active';
  created_at: string;
}

function toUser(row: sql.UserRow): User {
  return { id: row.id, email: row.email, role: row.role, status: row.password_set_at ? 'active' : 'invited', created_at: formatInstant(row.created_at) };
}

export function normaliseEmail(email: string): string {
  try {
    return validateEmail(email).toLowerCase();
  } catch {
    throw new UserError('user_email_invalid', `${JSON.stringify(email)} is not a valid e-mail address`, { field: 'email' });
  }
}

export function parseRole(role: string): Role {
  if (!isRole(role)) throw new UserError('user_role_invalid', `${JSON.stringify(role)} is not a role: give ${ROLES.join(', ')}`, { field: 'role' });
  return role;
}

export interface Invitation {
  user: User;
  /** The one-time link (shown only here): `<public url>/invite#<token>`; the fragment never reaches a server log. */
  invitation_url: string;
  expires_at: string;
}

/**
 * Invites `email` to the tenant with `role`, or issues a fresh link to a user who has not set a
 * password yet (earlier links stop working). A user who is already active is a conflict; a removed
 * user is invited afresh (their old password no longer works).
 */
export async function inviteUser(
  pool: pg.Pool,
  tenantId: string,
  input: { email: string; role: string; invitedBy?: string | null },
  web: WebConfig,
  now = new Date(),
): Promise<Invitation> {
  const tenant = validateTenantId(tenantId);
  const email = normaliseEmail(input.email);
  const role = parseRole(input.role);
  return withTenant(pool, tenant, async (c) => {
    if ((await sql.tenantName(c, tenant)) === '') throw new UserError('tenant_not_found', `no tenant ${tenant}`, { field: 'tenant' });
    let user = await sql.findUserByEmail(c, tenant, email);
    if (user && !user.disabled_at && user.password_set_at) {
      throw new UserError('user_exists', `${email} is already a user of this tenant (role ${user.role}); change the role instead`, { field: 'email' });
    }
    if (!user) user = await sql.insertUser(c, tenant, email, role, input.invitedBy ?? null);
    else {
      user = await sql.reinstateUser(c, tenant, user.id, role, input.invitedBy ?? null);
      await sql.revokeInvitations(c, tenant, user.id, now);
    }
    const { token, hash } = issueToken(tenant);
    const expires = new Date(now.getTime() + web.invitationMs);
    await sql.insertInvitation(c, tenant, user.id, hash, now, expires);
    return { user: toUser(user), invitation_url: `${web.publicUrl}/invite#${token}`, expires_at: formatInstant(expires) };
  });
}

export interface NewSession {
  /** The cookie value (shown to the browser only, in Set-Cookie). */
  token: string;
  csrf_token: string;
  expires_at: Date;
  principal: SessionPrincipal;
}

export interface SessionPrincipal {
  kind: 'session';
  tenantId: string;
  sessionId: string;
  userId: string;
  email: string;
  role: Role;
}

async function openSession(c: pg.PoolClient, tenantId: string, user: { id: string; email: string; role: Role }, web: WebConfig, now: Date, userAgent: string | null): Promise<NewSession> {
  const { token, hash } = issueToken(tenantId);
  const expires = new Date(now.getTime() + web.sessionMaxMs);
  const sessionId = await sql.insertSession(c, { tenantId, userId: user.id, tokenHash: hash, now, expiresAt: expires, userAgent: userAgent?.slice(0, 255) ?? null });
  return { token, csrf_token: csrfTokenFor(token), expires_at: expires, principal: { kind: 'session', tenantId, sessionId, userId: user.id, email: user.email, role: user.role } };
}

/** Sets the password of an invited user (the link works once, until it expires) and signs them in. */
export async function acceptInvitation(pool: pg.Pool, token: string, password: string, web: WebConfig, now = new Date(), userAgent: string | null = null): Promise<NewSession> {
  const parsed = parseToken(token);
  const invalid = () => new UserError('invitation_invalid', 'this invitation link is not valid: it was used, replaced or has expired; ask an owner for a new one', { field: 'body/token' });
  if (!parsed) throw invalid();
  // Hash before the transaction: the row stays locked only for the writes.
  const found = await withTenant(pool, parsed.tenantId, (c) => sql.findInvitation(c, parsed.tenantId, parsed.hash));
  if (!found || found.used_at || found.revoked_at || found.disabled_at || found.expires_at <= now) throw invalid();
  validatePassword(password, found.email);
  const passwordHash = await hashPassword(password);
  return withTenant(pool, parsed.tenantId, async (c) => {
    const invitation = await sql.findInvitation(c, parsed.tenantId, parsed.hash);
    if (!invitation || invitation.used_at || invitation.revoked_at || invitation.disabled_at || invitation.expires_at <= now) throw invalid();
    await sql.markInvitationUsed(c, parsed.tenantId, invitation.id, now);
    await sql.setPassword(c, parsed.tenantId, invitation.user_id, passwordHash, now);
    // Setting a password ends every other session of the user (a reset locks out whoever knew the old one).
    await sql.revokeUserSessions(c, parsed.tenantId, invitation.user_id, now);
    const user = (await sql.findUser(c, parsed.tenantId, invitation.user_id))!;
    return openSession(c, parsed.tenantId, user, web, now, userAgent);
  });
}

export interface LoginInput {
  email: string;
  password: string;
  tenantId?: string;
}

/**
 * Signs in by e-mail and password. The e-mail may belong to users of several tenants: the
 * password is checked against each (at most 20); when it opens more than one and no tenant was
 * chosen, the answer lists those tenants (the caller proved the password for each) and asks.
 * No match of any kind costs the same one verification, and says the same thing.
 */
export async function login(pool: pg.Pool, input: LoginInput, web: WebConfig, now = new Date(), userAgent: string | null = null): Promise<NewSession> {
  const failed = () => new UserError('login_failed', 'the e-mail address or the password is wrong');
  let email: string;
  try {
    email = normaliseEmail(input.email);
  } catch {
    await verifyNothing(input.password);
    throw failed();
  }
  const tenant = input.tenantId === undefined ? undefined : input.tenantId.toLowerCase();
  // A sign-in naming its tenant reads that tenant's users only (one shard on Citus); without one, every tenant's.
  // (A tenant id that is no UUID names no tenant: no candidate, as the filter of every tenant's gave before.)
  const candidates =
    tenant === undefined ? await sql.loginCandidates(pool, email)
    : /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(tenant) ? await withTenant(pool, tenant, (c) => sql.tenantLoginCandidates(c, tenant, email))
    : [];
  if (candidates.length === 0) {
    await verifyNothing(input.password);
    throw failed();
  }
  const matches: sql.LoginCandidate[] = [];
  for (const candidate of candidates) if (await verifyPassword(candidate.password_hash, input.password)) matches.push(candidate);
  if (matches.length === 0) throw failed();
  if (matches.length > 1) {
    const tenants = [];
    for (const m of matches) tenants.push({ tenant_id: m.tenant_id, name: await withTenant(pool, m.tenant_id, (c) => sql.tenantName(c, m.tenant_id)) });
    throw new UserError('login_tenant_ambiguous', 'this e-mail and password open several tenants: choose one (tenant_id)', { field: 'body/tenant_id', details: { tenants } });
  }
  const match = matches[0]!;
  return withTenant(pool, match.tenant_id, async (c) => {
    const user = await sql.findUser(c, match.tenant_id, match.user_id);
    if (!user || user.disabled_at) throw failed();
    return openSession(c, match.tenant_id, user, web, now, userAgent);
  });
}

/**
 * The principal of a session cookie, or null when the cookie is malformed, unknown, revoked,
 * idle for longer than the idle timeout, past its absolute expiry, or its user was removed.
 */
export async function resolveSession(pool: pg.Pool, token: string | undefined, web: WebConfig, now = new Date()): Promise<SessionPrincipal | null> {
  const parsed = parseToken(token);
  if (!parsed) return null;
  return withTenant(pool, parsed.tenantId, async (c) => {
    const s = await sql.findSession(c, parsed.tenantId, parsed.hash);
    if (!s || s.expires_at <= now || s.last_seen_at.getTime() + web.sessionIdleMs <= now.getTime()) return null;
    if (now.getTime() - s.last_seen_at.getTime() >= TOUCH_EVERY_MS) await sql.touchSession(c, parsed.tenantId, s.id, now);
    return { kind: 'session', tenantId: parsed.tenantId, sessionId: s.id, userId: s.user_id, email: s.email, role: s.role };
  });
}

export async function logout(pool: pg.Pool, p: SessionPrincipal, now = new Date()): Promise<void> {
  await withTenant(pool, p.tenantId, (c) => sql.revokeSession(c, p.tenantId, p.sessionId, now));
}

/** Ends every session of the user, on every device (this one included). */
export async function logoutEverywhere(pool: pg.Pool, p: SessionPrincipal, now = new Date()): Promise<number> {
  return withTenant(pool, p.tenantId, (c) => sql.revokeUserSessions(c, p.tenantId, p.userId, now));
}

export async function listUsers(pool: pg.Pool, tenantId: string): Promise<User[]> {
  return withTenant(pool, tenantId, async (c) => (await sql.listUsers(c, tenantId)).map(toUser));
}

const notFound = (id: string) => new UserError('user_not_found', `no user ${id} in this tenant`, { field: 'params/id' });

/** Changes a user's role; the tenant's last owner stays an owner. */
export async function changeRole(pool: pg.Pool, tenantId: string, userId: string, role: string): Promise<User> {
  const next = parseRole(role);
  return withTenant(pool, tenantId, async (c) => {
    const user = await sql.findUser(c, tenantId, userId);
    if (!user || user.disabled_at) throw notFound(userId);
    if (user.role === 'owner' && next !== 'owner' && (await sql.countOtherOwners(c, tenantId, userId)) === 0) {
      throw new UserError('last_owner', 'this is the last owner of the tenant: make another user owner first', { field: 'body/role' });
    }
    return toUser(await sql.updateRole(c, tenantId, userId, next));
  });
}

/** Removes a user: they cannot sign in, their sessions and open invitations end now. */
export async function removeUser(pool: pg.Pool, tenantId: string, userId: string, now = new Date()): Promise<void> {
  await withTenant(pool, tenantId, async (c) => {
    const user = await sql.findUser(c, tenantId, userId);
    if (!user || user.disabled_at) throw notFound(userId);
    if (user.role === 'owner' && (await sql.countOtherOwners(c, tenantId, userId)) === 0) {
      throw new UserError('last_owner', 'this is the last owner of the tenant: make another user owner first');
    }
    await sql.disableUser(c, tenantId, userId, now);
    await sql.revokeUserSessions(c, tenantId, userId, now);
    await sql.revokeInvitations(c, tenantId, userId, now);
  });
}
