import { ident } from '../../db/pool.js';
import { literal } from '../context.js';
import type { Revision } from '../revision.js';

/**
 * Login throttling shared by every API process (src/users/throttle.ts): the failed sign-ins of
 * the last window live in `login_failures`, so N processes behind a balancer give an attacker
 * the budget of one, not N. Not tenant-scoped (sign-in happens before a tenant is known): the
 * application role has no privilege on the table, only EXECUTE on three SECURITY DEFINER
 * functions owned by the system role. Keys are SHA-256 digests of "e:<lower(email)>" and
 * "a:<client address>", so the table holds no e-mail or address in clear. Rows older than the
 * window are deleted as failures are recorded (a bounded batch each time), and a success
 * deletes its e-mail's rows. Times are parameters (the caller's clock, testable).
 */
const WAIT_SIG = 'skeldir_login_wait(bytea, bytea, integer, integer, integer, timestamptz)';
const FAILED_SIG = 'skeldir_login_failed(bytea[], integer, timestamptz)';
const SUCCEEDED_SIG = 'skeldir_login_succeeded(bytea)';

export const revision: Revision = {
  id: '202612022246',
  previous: '202612022221',
  title: 'login failures in the database: sign-in throttling shared by every API process',
  dropsOnDowngrade: [{ table: 'login_failures' }],

  async up(m) {
    const app = ident(m.roles.app);
    const system = ident(m.roles.system);
    await m.transaction(async () => {
      await m.exec(`
        CREATE TABLE IF NOT EXISTS login_failures (
          id bigint GENERATED ALWAYS AS IDENTITY,
          key_hash bytea NOT NULL,
          failed_at timestamptz NOT NULL,
          CONSTRAINT pk_login_failures PRIMARY KEY (id),
          CONSTRAINT ck_login_failures_key_hash_length CHECK (octet_length(key_hash) = 32)
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_login_failures_key ON login_failures (key_hash, failed_at)`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_login_failures_failed_at ON login_failures (failed_at)`);
      await m.comment('login_failures', 'Failed sign-ins of the last throttle window, per e-mail and per client address (digests only), shared by every API process.', {
        id: 'Row identifier (generated).',
        key_hash: 'SHA-256 of "e:" || lower(e-mail) or "a:" || client address: what the failure counts against.',
        failed_at: 'When the sign-in failed (the API process clock).',
      });
      await m.exec(`COMMENT ON INDEX idx_login_failures_key IS 'The failures of one e-mail or address in time order (the throttle check).'`);
      await m.exec(`COMMENT ON INDEX idx_login_failures_failed_at IS 'Failures by time: deleting those older than the window.'`);
      await m.exec(`GRANT SELECT, INSERT, DELETE ON login_failures TO ${system}`);

      // Milliseconds until a sign-in for (email key, address key) is allowed again: 0 while each has fewer than
      // its limit of failures in (now - window, now]; else until the limit-th most recent one leaves the window.
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_login_wait(p_email_key bytea, p_address_key bytea, p_per_email integer, p_per_address integer, p_window_ms integer, p_now timestamptz)
        RETURNS bigint
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
          SELECT coalesce(max(ceil(extract(epoch FROM (k.oldest + make_interval(secs => p_window_ms / 1000.0) - p_now)) * 1000)), 0)::bigint
            FROM (SELECT (SELECT f.failed_at FROM login_failures f
                           WHERE f.key_hash = w.key AND f.failed_at > p_now - make_interval(secs => p_window_ms / 1000.0) AND f.failed_at <= p_now
                           ORDER BY f.failed_at DESC OFFSET w.lim - 1 LIMIT 1) AS oldest
                    FROM (VALUES (p_email_key, p_per_email), (p_address_key, p_per_address)) w(key, lim)) k
           WHERE k.oldest IS NOT NULL
        $$`);
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_login_failed(p_keys bytea[], p_window_ms integer, p_now timestamptz)
        RETURNS void
        LANGUAGE sql VOLATILE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
          DELETE FROM login_failures WHERE id IN (
            SELECT id FROM login_failures WHERE failed_at <= p_now - make_interval(secs => p_window_ms / 1000.0) ORDER BY failed_at LIMIT 1000);
          INSERT INTO login_failures (key_hash, failed_at) SELECT k, p_now FROM unnest(p_keys) k;
        $$`);
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_login_succeeded(p_email_key bytea)
        RETURNS void
        LANGUAGE sql VOLATILE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$ DELETE FROM login_failures WHERE key_hash = p_email_key $$`);
      for (const [sig, what] of [
        [WAIT_SIG, 'Sign-in throttle: milliseconds until a sign-in of this e-mail and address key is allowed (0: now)'],
        [FAILED_SIG, 'Sign-in throttle: records a failure against each key, and deletes up to 1,000 failures older than the window'],
        [SUCCEEDED_SIG, "Sign-in throttle: a success clears the e-mail key's failures"],
      ] as const) {
        await m.transferFunctionOwnership(sig, m.roles.system);
        await m.exec(`REVOKE ALL ON FUNCTION ${sig} FROM PUBLIC`);
        await m.exec(`GRANT EXECUTE ON FUNCTION ${sig} TO ${app}`);
        await m.exec(`COMMENT ON FUNCTION ${sig} IS ${literal(`${what} (SECURITY DEFINER, owned by the system role).`)}`);
      }
    });
  },

  async down(m) {
    await m.transaction(async () => {
      for (const sig of [WAIT_SIG, FAILED_SIG, SUCCEEDED_SIG]) await m.exec(`DROP FUNCTION IF EXISTS ${sig}`);
      await m.exec('DROP TABLE IF EXISTS login_failures');
    });
  },
};
