import type { Queryable } from '../db/pool.js';
import type { Role } from './roles.js';

/**
 * The SQL of users, invitations and sessions, one function per statement. Every statement runs
 * in the tenant's context (withTenant) and names tenant_id explicitly as well, so it routes to
 * one shard on Citus. Times are passed in (`now`), never read from the database clock, so the
 * expiry rules can be tested with a moved clock.
 */

export interface UserRow {
  id: string;
  email: string;
  role: Role;
  password_set_at: Date | null;
  disabled_at: Date | null;
  created_at: Date;
}

const USER_COLUMNS = 'id, email, role, password_set_at, disabled_at, created_at';

export async function insertUser(c: Queryable, tenantId: string, email: string, role: Role, invitedBy: string | null): Promise<UserRow> {
  const { rows } = await c.query<UserRow>(
    `INSERT INTO tenant_users (tenant_id, email, role, invited_by) VALUES ($1, $2, $3, $4) RETURNING ${USER_COLUMNS}`,
    [tenantId, email, role, invitedBy],
  );
  return rows[0]!;
}

export async function findUserByEmail(c: Queryable, tenantId: string, email: string): Promise<UserRow | undefined> {
  const { rows } = await c.query<UserRow>(`SELECT ${USER_COLUMNS} FROM tenant_users WHERE tenant_id = $1 AND email = $2 FOR UPDATE`, [tenantId, email]);
  return rows[0];
}

export async function findUser(c: Queryable, tenantId: string, id: string): Promise<UserRow | undefined> {
  const { rows } = await c.query<UserRow>(`SELECT ${USER_COLUMNS} FROM tenant_users WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, [tenantId, id]);
  return rows[0];
}

export async function listUsers(c: Queryable, tenantId: string): Promise<UserRow[]> {
  const { rows } = await c.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM tenant_users WHERE tenant_id = $1 AND disabled_at IS NULL ORDER BY created_at, id`,
    [tenantId],
  );
  return rows;
}

/** Active owners other than `exceptId` (a tenant keeps at least one owner who has signed in or can). */
export async function countOtherOwners(c: Queryable, tenantId: string, exceptId: string): Promise<number> {
  const { rows } = await c.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM tenant_users WHERE tenant_id = $1 AND role = 'owner' AND disabled_at IS NULL AND id <> $2`,
    [tenantId, exceptId],
  );
  return rows[0]!.n;
}

export async function updateRole(c: Queryable, tenantId: string, id: string, role: Role): Promise<UserRow> {
  const { rows } = await c.query<UserRow>(`UPDATE tenant_users SET role = $3 WHERE tenant_id = $1 AND id = $2 RETURNING ${USER_COLUMNS}`, [tenantId, id, role]);
  return rows[0]!;
}

export async function reinstateUser(c: Queryable, tenantId: string, id: string, role: Role, invitedBy: string | null): Promise<UserRow> {
  const { rows } = await c.query<UserRow>(
    `UPDATE tenant_users SET role = $3, invited_by = $4, disabled_at = NULL, password_hash = NULL, password_set_at = NULL
      WHERE tenant_id = $1 AND id = $2 RETURNING ${USER_COLUMNS}`,
    [tenantId, id, role, invitedBy],
  );
  return rows[0]!;
}

export async function disableUser(c: Queryable, tenantId: string, id: string, now: Date): Promise<void> {
  await c.query(`UPDATE tenant_users SET disabled_at = $3 WHERE tenant_id = $1 AND id = $2`, [tenantId, id, now]);
}

export async function setPassword(c: Queryable, tenantId: string, id: string, passwordHash: string, now: Date): Promise<void> {
  await c.query(`UPDATE tenant_users SET password_hash = $3, password_set_at = $4 WHERE tenant_id = $1 AND id = $2`, [tenantId, id, passwordHash, now]);
}

export async function revokeInvitations(c: Queryable, tenantId: string, userId: string, now: Date): Promise<void> {
  await c.query(
    `UPDATE user_invitations SET revoked_at = $3 WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL AND revoked_at IS NULL`,
    [tenantId, userId, now],
  );
}

export async function insertInvitation(c: Queryable, tenantId: string, userId: string, tokenHash: string, now: Date, expiresAt: Date): Promise<void> {
  await c.query(`INSERT INTO user_invitations (tenant_id, user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`, [
    tenantId,
    userId,
    tokenHash,
    now,
    expiresAt,
  ]);
}

export interface InvitationRow {
  id: string;
  user_id: string;
  email: string;
  expires_at: Date;
  used_at: Date | null;
  revoked_at: Date | null;
  disabled_at: Date | null;
}

/** The invitation with this token, locked (two uses at once: the second waits, then sees used_at). */
export async function findInvitation(c: Queryable, tenantId: string, tokenHash: string): Promise<InvitationRow | undefined> {
  const { rows } = await c.query<InvitationRow>(
    `SELECT i.id, i.user_id, u.email, i.expires_at, i.used_at, i.revoked_at, u.disabled_at
       FROM user_invitations i JOIN tenant_users u ON u.tenant_id = i.tenant_id AND u.id = i.user_id
      WHERE i.tenant_id = $1 AND i.token_hash = $2
        FOR UPDATE OF i`,
    [tenantId, tokenHash],
  );
  return rows[0];
}

export async function markInvitationUsed(c: Queryable, tenantId: string, id: string, now: Date): Promise<void> {
  await c.query(`UPDATE user_invitations SET used_at = $3 WHERE tenant_id = $1 AND id = $2`, [tenantId, id, now]);
}

export async function insertSession(
  c: Queryable,
  s: { tenantId: string; userId: string; tokenHash: string; now: Date; expiresAt: Date; userAgent: string | null },
): Promise<string> {
  const { rows } = await c.query<{ id: string }>(
    `INSERT INTO user_sessions (tenant_id, user_id, token_hash, created_at, last_seen_at, expires_at, user_agent)
     VALUES ($1, $2, $3, $4, $4, $5, $6) RETURNING id`,
    [s.tenantId, s.userId, s.tokenHash, s.now, s.expiresAt, s.userAgent],
  );
  return rows[0]!.id;
}

export interface SessionRow {
  id: string;
  user_id: string;
  email: string;
  role: Role;
  last_seen_at: Date;
  expires_at: Date;
}

/** An open session of an active user, by token hash. */
export async function findSession(c: Queryable, tenantId: string, tokenHash: string): Promise<SessionRow | undefined> {
  const { rows } = await c.query<SessionRow>(
    `SELECT s.id, s.user_id, u.email, u.role, s.last_seen_at, s.expires_at
       FROM user_sessions s JOIN tenant_users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
      WHERE s.tenant_id = $1 AND s.token_hash = $2 AND s.revoked_at IS NULL AND u.disabled_at IS NULL`,
    [tenantId, tokenHash],
  );
  return rows[0];
}

export async function touchSession(c: Queryable, tenantId: string, id: string, now: Date): Promise<void> {
  await c.query(`UPDATE user_sessions SET last_seen_at = $3 WHERE tenant_id = $1 AND id = $2 AND last_seen_at < $3`, [tenantId, id, now]);
}

export async function revokeSession(c: Queryable, tenantId: string, id: string, now: Date): Promise<void> {
  await c.query(`UPDATE user_sessions SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL`, [tenantId, id, now]);
}

export async function revokeUserSessions(c: Queryable, tenantId: string, userId: string, now: Date): Promise<number> {
  const result = await c.query(`UPDATE user_sessions SET revoked_at = $3 WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL`, [
    tenantId,
    userId,
    now,
  ]);
  return result.rowCount ?? 0;
}

export interface LoginCandidate {
  tenant_id: string;
  user_id: string;
  password_hash: string;
}

/** Across tenants, through the system role's function (see revision 202612021840). */
export async function loginCandidates(c: Queryable, email: string): Promise<LoginCandidate[]> {
  const { rows } = await c.query<LoginCandidate>(`SELECT tenant_id, user_id, password_hash FROM skeldir_login_candidates($1)`, [email]);
  return rows;
}

/**
 * The one tenant's candidate, when the sign-in names its tenant (in that tenant's context): the
 * same rows skeldir_login_candidates gives for it, read on the tenant's shard only on Citus (the
 * function's e-mail lookup across tenants runs on every shard).
 */
export async function tenantLoginCandidates(c: Queryable, tenantId: string, email: string): Promise<LoginCandidate[]> {
  const { rows } = await c.query<LoginCandidate>(
    `SELECT tenant_id, id AS user_id, password_hash FROM tenant_users
      WHERE tenant_id = $1 AND email = $2 AND password_hash IS NOT NULL AND disabled_at IS NULL`,
    [tenantId, email],
  );
  return rows;
}

export async function tenantName(c: Queryable, tenantId: string): Promise<string> {
  const { rows } = await c.query<{ name: string }>(`SELECT name FROM tenants WHERE id = $1`, [tenantId]);
  return rows[0]?.name ?? '';
}
