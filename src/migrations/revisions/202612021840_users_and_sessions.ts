import { ident } from '../../db/pool.js';
import { literal } from '../context.js';
import type { Revision } from '../revision.js';

/**
 * People and access for the web app (issue 13): a tenant's users (e-mail, role, argon2id
 * password hash), one-time invitations that set the password, and sessions behind an HttpOnly
 * cookie. Keys are (tenant_id, id) and every reference between these tables carries tenant_id,
 * so each row routes to its tenant's shard and a row can only point at its own tenant's rows.
 *
 * Sessions and invitations are found by (tenant_id, token_hash): the token a browser holds is
 * `<tenant_id>.<secret>`, so resolving one needs no cross-tenant lookup. Logging in does: an
 * e-mail names users in any tenant. skeldir_login_candidates(email), owned by the system role,
 * returns the matching active users' password hashes (a narrow policy TO the system role that
 * holds only while current_user is that role, as in 202611280152); the application role only
 * EXECUTEs it.
 */
const ROLES = ['owner', 'admin', 'analyst', 'viewer'];
const LOGIN_SIG = 'skeldir_login_candidates(text)';

export const revision: Revision = {
  id: '202612021840',
  previous: '202611280409',
  title: 'tenant users, invitations and sessions for the web app',
  dropsOnDowngrade: [{ table: 'user_sessions' }, { table: 'user_invitations' }, { table: 'tenant_users' }],

  async up(m) {
    const system = ident(m.roles.system);
    await m.transaction(async () => {
      await m.exec(`
        CREATE TABLE IF NOT EXISTS tenant_users (
          tenant_id uuid NOT NULL,
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          email varchar(254) NOT NULL,
          role varchar(16) NOT NULL,
          password_hash text,
          password_set_at timestamptz,
          invited_by uuid,
          disabled_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_tenant_users PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_tenant_users_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT uq_tenant_users_tenant_email UNIQUE (tenant_id, email),
          CONSTRAINT ck_tenant_users_role CHECK (role IN (${ROLES.map(literal).join(', ')})),
          CONSTRAINT ck_tenant_users_email_lower CHECK (email = lower(email) AND position('@' in email) > 1),
          CONSTRAINT ck_tenant_users_password_hash CHECK (password_hash IS NULL OR password_hash LIKE '$argon2id$%'),
          CONSTRAINT ck_tenant_users_password_set CHECK ((password_hash IS NULL) = (password_set_at IS NULL))
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_tenant_users_email ON tenant_users (email)`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_tenant_users_updated_at ON tenant_users`);
      await m.exec(`CREATE TRIGGER trg_tenant_users_updated_at BEFORE UPDATE ON tenant_users FOR EACH ROW EXECUTE FUNCTION skeldir_touch_updated_at()`);
      await m.tenantPolicy('tenant_users');
      await m.grantApp('tenant_users', 'SELECT, INSERT, UPDATE');
      await m.comment('tenant_users', "A person who signs in to a tenant's web app, with a role (owner, admin, analyst, viewer).", {
        tenant_id: "Owning tenant; row-level security shows the row only in this tenant's context.",
        id: 'User identifier (UUID v4, generated).',
        email: 'Sign-in e-mail, lower-case; unique within the tenant (the same person may belong to several tenants). INVARIANT: auth_critical',
        role: 'owner (everything, including users and API keys), admin (settings, webhooks, dead events), analyst and viewer (read only). INVARIANT: auth_critical',
        password_hash: 'argon2id hash (PHC string) of the password; NULL until an invitation is accepted. INVARIANT: auth_critical',
        password_set_at: 'When the password was last set; NULL exactly when password_hash is.',
        invited_by: 'The user who invited this one; NULL when invited from the command line.',
        disabled_at: 'When the user was removed: a disabled user cannot sign in and their sessions are revoked. INVARIANT: auth_critical',
        created_at: 'When the user was invited.',
        updated_at: 'Last change (trigger).',
      });
      await m.exec(`COMMENT ON INDEX idx_tenant_users_email IS 'Sign-in: the users with an e-mail, in any tenant (skeldir_login_candidates).'`);

      await m.exec(`
        CREATE TABLE IF NOT EXISTS user_invitations (
          tenant_id uuid NOT NULL,
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          user_id uuid NOT NULL,
          token_hash varchar(64) NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          expires_at timestamptz NOT NULL,
          used_at timestamptz,
          revoked_at timestamptz,
          CONSTRAINT pk_user_invitations PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_user_invitations_user FOREIGN KEY (tenant_id, user_id) REFERENCES tenant_users (tenant_id, id) ON DELETE CASCADE,
          CONSTRAINT uq_user_invitations_token UNIQUE (tenant_id, token_hash),
          CONSTRAINT ck_user_invitations_token_hash CHECK (token_hash ~ '^[0-9a-f]{64}$'),
          CONSTRAINT ck_user_invitations_expiry CHECK (expires_at > created_at)
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_user_invitations_user ON user_invitations (tenant_id, user_id)`);
      await m.tenantPolicy('user_invitations');
      await m.grantApp('user_invitations', 'SELECT, INSERT, UPDATE');
      await m.comment('user_invitations', 'A one-time link that lets an invited user set a password; it expires, and works once.', {
        tenant_id: "Owning tenant; row-level security shows the row only in this tenant's context.",
        id: 'Invitation identifier (UUID v4, generated).',
        user_id: 'The invited user (same tenant).',
        token_hash: 'Lower-case hex SHA-256 of the secret part of the link (the link itself is never stored). INVARIANT: auth_critical',
        created_at: 'When the invitation was issued.',
        expires_at: 'The link works until then (exclusive). INVARIANT: auth_critical',
        used_at: 'When the link was used to set a password; a used link never works again. INVARIANT: auth_critical',
        revoked_at: 'When a newer invitation of the same user replaced this one, or the user was removed. INVARIANT: auth_critical',
      });
      await m.exec(`COMMENT ON INDEX idx_user_invitations_user IS 'The invitations of a user (revoked when a new one is issued).'`);

      await m.exec(`
        CREATE TABLE IF NOT EXISTS user_sessions (
          tenant_id uuid NOT NULL,
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          user_id uuid NOT NULL,
          token_hash varchar(64) NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          last_seen_at timestamptz NOT NULL,
          expires_at timestamptz NOT NULL,
          revoked_at timestamptz,
          user_agent varchar(255),
          CONSTRAINT pk_user_sessions PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_user_sessions_user FOREIGN KEY (tenant_id, user_id) REFERENCES tenant_users (tenant_id, id) ON DELETE CASCADE,
          CONSTRAINT uq_user_sessions_token UNIQUE (tenant_id, token_hash),
          CONSTRAINT ck_user_sessions_token_hash CHECK (token_hash ~ '^[0-9a-f]{64}$'),
          CONSTRAINT ck_user_sessions_expiry CHECK (expires_at > created_at)
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_user_sessions_user ON user_sessions (tenant_id, user_id) WHERE revoked_at IS NULL`);
      await m.tenantPolicy('user_sessions');
      await m.grantApp('user_sessions', 'SELECT, INSERT, UPDATE');
      await m.comment('user_sessions', 'A signed-in browser: the cookie holds <tenant_id>.<secret>, this row the hash of the secret.', {
        tenant_id: "Owning tenant; row-level security shows the row only in this tenant's context.",
        id: 'Session identifier (UUID v4, generated).',
        user_id: 'The signed-in user (same tenant).',
        token_hash: 'Lower-case hex SHA-256 of the secret part of the cookie. INVARIANT: auth_critical',
        created_at: 'When the user signed in.',
        last_seen_at: 'Last request (recorded at most once a minute); the session ends after the idle timeout without one. INVARIANT: auth_critical',
        expires_at: 'Absolute end of the session, whatever its activity. INVARIANT: auth_critical',
        revoked_at: 'When the session was ended: sign-out, sign-out everywhere, user removed. INVARIANT: auth_critical',
        user_agent: 'The browser that signed in (first 255 characters), so a user can tell sessions apart.',
      });
      await m.exec(`COMMENT ON INDEX idx_user_sessions_user IS 'The open sessions of a user (sign-out everywhere).'`);

      // Sign-in by e-mail across tenants, through the system role only.
      await m.exec(`GRANT SELECT (tenant_id, id, email, password_hash, disabled_at) ON tenant_users TO ${system}`);
      await m.exec(`DROP POLICY IF EXISTS tenant_users_system_login ON tenant_users`);
      await m.exec(`CREATE POLICY tenant_users_system_login ON tenant_users FOR SELECT TO ${system}
        USING (current_user = ${literal(m.roles.system)} AND password_hash IS NOT NULL AND disabled_at IS NULL)`);
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_login_candidates(p_email text)
        RETURNS TABLE (tenant_id uuid, user_id uuid, password_hash text)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
          SELECT u.tenant_id, u.id, u.password_hash FROM tenant_users u
           WHERE u.email = lower(p_email) AND u.password_hash IS NOT NULL AND u.disabled_at IS NULL
           ORDER BY u.tenant_id LIMIT 20
        $$`);
      await m.transferFunctionOwnership(LOGIN_SIG, m.roles.system);
      await m.exec(`REVOKE ALL ON FUNCTION ${LOGIN_SIG} FROM PUBLIC`);
      await m.exec(`GRANT EXECUTE ON FUNCTION ${LOGIN_SIG} TO ${ident(m.roles.app)}`);
      await m.exec(
        `COMMENT ON FUNCTION ${LOGIN_SIG} IS 'Sign-in: the active users with this e-mail in any tenant (at most 20), with their password hashes (SECURITY DEFINER, owned by the system role).'`,
      );
    });
  },

  async down(m) {
    await m.transaction(async () => {
      await m.exec(`DROP FUNCTION IF EXISTS ${LOGIN_SIG}`);
      await m.exec('DROP TABLE IF EXISTS user_sessions');
      await m.exec('DROP TABLE IF EXISTS user_invitations');
      await m.exec('DROP TABLE IF EXISTS tenant_users');
    });
  },
};

