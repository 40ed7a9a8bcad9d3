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
}

export class RoleSetupError extends Error {
  readonly code = 'roles_unavailable';
}

/**
 * Makes sure the owner and application roles exist and the login user may act as them.
 * Idempotent and safe to run concurrently (a role created meanwhile by another process counts).
 */
export async function ensureRoles(client: pg.ClientBase, wanted: { ownerRole: string; appRole: string }): Promise<Roles> {
  const me = (await client.query<{ user: string; superuser: boolean }>(
    'SELECT current_user AS "user", rolsuper AS superuser FROM pg_roles WHERE rolname = current_user',
  )).rows[0]!;
  if (me.superuser) {
    await createRoleIfMissing(client, wanted.ownerRole);
    await createRoleIfMissing(client, wanted.appRole);
    return { ownerSetRole: wanted.ownerRole, owner: wanted.ownerRole, app: wanted.appRole };
  }
  const app = wanted.appRole;
  const exists = (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [app])).rowCount === 1;
  if (!exists) {
    try {
      await createRoleIfMissing(client, app);
    } catch (error) {
      throw new RoleSetupError(
        `role ${app} does not exist and ${me.user} cannot create it (${(error as Error).message}); ` +
          `as a superuser run: CREATE ROLE ${app} NOLOGIN; GRANT ${app} TO ${me.user};`,
      );
    }
  }
  const member = (await client.query<{ ok: boolean }>("SELECT pg_has_role(current_user, $1, 'SET') AS ok", [app]).catch(
    // PostgreSQL 15 has no 'SET' privilege kind; membership is what SET ROLE needs there.
    () => client.query<{ ok: boolean }>("SELECT pg_has_role(current_user, $1, 'MEMBER') AS ok", [app]),
  )).rows[0]!.ok;
  if (!member) {
    try {
      await client.query(`GRANT ${ident(app)} TO ${ident(me.user)}`);
    } catch (error) {
      throw new RoleSetupError(
        `${me.user} may not act as ${app} (${(error as Error).message}); as a superuser run: GRANT ${app} TO ${me.user};`,
      );
    }
  }
  return { ownerSetRole: undefined, owner: me.user, app };
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
 * (PostgreSQL 15 no longer lets PUBLIC create in schema public).
 */
export async function grantSchemaToOwner(client: pg.ClientBase, roles: Roles): Promise<void> {
  if (!roles.ownerSetRole) return;
  for (let attempt = 0; ; attempt++) {
    const has = (await client.query<{ ok: boolean }>(
      "SELECT has_schema_privilege($1, 'public', 'CREATE') AND has_schema_privilege($1, 'public', 'USAGE') AS ok",
      [roles.owner],
    )).rows[0]!.ok;
    if (has) return;
    try {
      await client.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${ident(roles.owner)}`);
      return;
    } catch (error) {
      // "tuple concurrently updated": another process granted at the same moment; look again.
      if (attempt >= 3) throw error;
    }
  }
}
