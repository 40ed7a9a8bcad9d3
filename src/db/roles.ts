import type pg from 'pg';
import { ident } from './pool.js';

/**
 * How migrations act as the schema owner:
 * - `set-role`: the login user is a superuser, so migrations run as the dedicated owner role
 *   (never as the superuser, which would bypass row-level security and own everything);
 * - `self`: the login user is an ordinary role and owns the schema itself.
 */
export interface Roles {
  /** Role to put in the migrations' connections, or undefined to act as the login user. */
  ownerSetRole: string | undefined;
  /** The role owning the schema objects. */
  owner: string;
  /** The application's role. */
  app: string;
  /** Owner of the cross-tenant SECURITY DEFINER functions (see Config.systemRole). */
  system: string;
}

export class RoleSetupError extends Error {
  readonly code = 'roles_unavailable';
}

/**
 * Makes sure the owner and application roles exist and the login user may act as them.
 * Idempotent and safe to run concurrently (a role created meanwhile by another process counts).
 */
export async function ensureRoles(
  client: pg.ClientBase,
  wanted: { ownerRole: string; appRole: string; systemRole: string },
): Promise<Roles> {
  const me = (await client.query<{ user: string; superuser: boolean }>(
    'SELECT current_user AS "user", rolsuper AS superuser FROM pg_roles WHERE rolname = current_user',
  )).rows[0]!;
  if (me.superuser) {
    await createRoleIfMissing(client, wanted.ownerRole);
    await createRoleIfMissing(client, wanted.appRole);
    await createRoleIfMissing(client, wanted.systemRole);
    // The owner creates the cross-tenant functions and hands them to the system role.
    await grantMembership(client, wanted.systemRole, wanted.ownerRole);
    return { ownerSetRole: wanted.ownerRole, owner: wanted.ownerRole, app: wanted.appRole, system: wanted.systemRole };
  }
  for (const role of [wanted.appRole, wanted.systemRole]) {
    const exists = (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;
    if (!exists) {
      try {
        await createRoleIfMissing(client, role);
      } catch (error) {
        throw new RoleSetupError(
          `role ${role} does not exist and ${me.user} cannot create it (${(error as Error).message}); ` +
            `as a superuser run: CREATE ROLE ${role} NOLOGIN; GRANT ${role} TO ${me.user};`,
        );
      }
    }
    await grantMembership(client, role, me.user);
  }
  return { ownerSetRole: undefined, owner: me.user, app: wanted.appRole, system: wanted.systemRole };
}

/**
 * Makes `member` able to SET ROLE to `role` (idempotent). PostgreSQL 16 split membership into
 * INHERIT / SET / ADMIN options: a CREATEROLE user who creates a role is only its ADMIN, so
 * there the SET option is what is checked and granted.
 */
async function grantMembership(client: pg.ClientBase, role: string, member: string): Promise<void> {
  const version = Number((await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]!.v);
  const privilege = version >= 160000 ? 'SET' : 'MEMBER';
  const has = (await client.query<{ ok: boolean }>(`SELECT pg_has_role($2, $1, '${privilege}') AS ok`, [role, member])).rows[0]!.ok;
  if (has) return;
  try {
    await client.query(`GRANT ${ident(role)} TO ${ident(member)}${version >= 160000 ? ' WITH SET TRUE' : ''}`);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === '23505' || code === 'XX000') return; // granted meanwhile by another process
    throw new RoleSetupError(`${member} may not act as ${role} (${(error as Error).message}); as a superuser run: GRANT ${role} TO ${member};`);
  }
}

async function createRoleIfMissing(client: pg.ClientBase, role: string): Promise<void> {
  const exists = (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;
  if (exists) return;
  try {
    await client.query(`CREATE ROLE ${ident(role)} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS`);
  } catch (error) {
    // 42710 duplicate_object / 23505: another process created it between our check and CREATE.
    const code = (error as { code?: string }).code;
    if (code !== '42710' && code !== '23505') throw error;
  }
}

/**
 * Grants the owner role what it needs in the current database when migrations SET ROLE to it
 * (PostgreSQL 15 no longer lets PUBLIC create in schema public). With the grant option: handing
 * a SECURITY DEFINER function to the system role needs that role to hold CREATE on the schema
 * for a moment, which the owner grants and revokes itself (see the system-role revisions). A
 * database owned by the owner role has all of this already.
 */
export async function grantSchemaToOwner(client: pg.ClientBase, roles: Roles): Promise<void> {
  if (!roles.ownerSetRole) return;
  for (let attempt = 0; ; attempt++) {
    const has = (await client.query<{ ok: boolean }>(
      `SELECT has_schema_privilege($1, 'public', 'CREATE WITH GRANT OPTION')
          AND has_schema_privilege($1, 'public', 'USAGE WITH GRANT OPTION') AS ok`,
      [roles.owner],
    )).rows[0]!.ok;
    if (has) return;
    try {
      await client.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${ident(roles.owner)} WITH GRANT OPTION`);
      return;
    } catch (error) {
      // "tuple concurrently updated": another process granted at the same moment; look again.
      if (attempt >= 3) throw error;
    }
  }
}
