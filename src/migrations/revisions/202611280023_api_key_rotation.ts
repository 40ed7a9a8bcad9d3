import type { MigrationContext } from '../context.js';
import type { Revision } from '../revision.js';

/**
 * API-key rotation and revocation (issue 4).
 *
 * `tenants.api_key_hash` stays the tenant's current key. A rotated-out key moves to
 * `tenant_api_keys_retired` with an expiry (the grace period during which it still
 * authenticates, so clients can be redeployed with the new key); revoking sets `revoked_at`
 * and ends it at once. Rows are kept after they expire, as an audit trail of the tenant's keys.
 *
 * `skeldir_authenticate(hash)` must now also read the retired keys of every tenant, and that
 * table's row-level security is forced even for the owner. So the function is replaced (same
 * signature) and handed to the system role, with narrow policies TO that role: it may read the
 * id and key hash of tenants, and the retired keys that still authenticate (not revoked, not
 * expired), nothing else. The application role still only EXECUTEs the function.
 */

const AUTH_SIG = 'skeldir_authenticate(text)';
const RETIRED_COLUMNS = 'tenant_id, key_hash, expires_at, revoked_at';

export const revision: Revision = {
  id: '202611280023',
  previous: '202611280021',
  title: 'api key rotation: retired keys with a grace period, authentication by the system role',
  dropsOnDowngrade: [{ table: 'tenant_api_keys_retired' }],

  async up(m) {
    await m.transaction(async () => {
      await m.exec(`
        CREATE TABLE IF NOT EXISTS tenant_api_keys_retired (
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          tenant_id uuid NOT NULL,
          key_hash varchar(64) NOT NULL,
          retired_at timestamptz NOT NULL DEFAULT now(),
          expires_at timestamptz NOT NULL,
          revoked_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_tenant_api_keys_retired PRIMARY KEY (id),
          CONSTRAINT fk_tenant_api_keys_retired_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT ck_tenant_api_keys_retired_key_hash CHECK (key_hash ~ '^[0-9a-f]{64}$'),
          CONSTRAINT ck_tenant_api_keys_retired_expiry CHECK (expires_at >= retired_at)
        )`);
      await m.exec(`CREATE UNIQUE INDEX IF NOT EXISTS idx_tenant_api_keys_retired_key_hash ON tenant_api_keys_retired (key_hash)`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_tenant_api_keys_retired_tenant ON tenant_api_keys_retired (tenant_id, expires_at DESC)`);
      await m.tenantPolicy('tenant_api_keys_retired');
      await m.comment('tenant_api_keys_retired', "A tenant's rotated-out API keys: each authenticates until its grace period ends or it is revoked.", {
        id: 'Row identifier (UUID v4, generated).',
        tenant_id: 'Tenant the key belonged to; row-level security shows the row only in its context.',
        key_hash: 'Lower-case hex SHA-256 of the retired key (the key itself is never stored). INVARIANT: auth_critical',
        retired_at: 'When the key was rotated out.',
        expires_at: 'End of the grace period: the key authenticates until then (exclusive). INVARIANT: auth_critical',
        revoked_at: 'When the key was revoked before its grace period ended; NULL if it was not. INVARIANT: auth_critical',
        created_at: 'When the row was created.',
      });
      await m.exec(`COMMENT ON INDEX idx_tenant_api_keys_retired_key_hash IS 'Lookup of a presented key by hash; a key hash is retired once.'`);
      await m.exec(`COMMENT ON INDEX idx_tenant_api_keys_retired_tenant IS 'The retired keys of a tenant, newest expiry first (tenant list, revoke).'`);

      // What the system role may see: tenants' ids and current key hashes, and the retired keys
      // that still authenticate.
      await m.exec(`GRANT SELECT (id, api_key_hash) ON tenants TO ${m.roles.system}`);
      await m.exec(`DROP POLICY IF EXISTS tenants_system_authenticate ON tenants`);
      await m.exec(`CREATE POLICY tenants_system_authenticate ON tenants FOR SELECT TO ${m.roles.system} USING (true)`);
      await m.exec(`GRANT SELECT (${RETIRED_COLUMNS}) ON tenant_api_keys_retired TO ${m.roles.system}`);
      await m.exec(`DROP POLICY IF EXISTS tenant_api_keys_retired_system_authenticate ON tenant_api_keys_retired`);
      await m.exec(`CREATE POLICY tenant_api_keys_retired_system_authenticate ON tenant_api_keys_retired FOR SELECT TO ${m.roles.system}
        USING (revoked_at IS NULL AND expires_at > now())`);

      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_authenticate(p_key_hash text)
        RETURNS TABLE (tenant_id uuid, key_hash text)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
          SELECT t.id, t.api_key_hash::text FROM tenants t WHERE t.api_key_hash = p_key_hash
          UNION ALL
          SELECT k.tenant_id, k.key_hash::text FROM tenant_api_keys_retired k
           WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL AND k.expires_at > now()
          LIMIT 1
        $$`);
      await transferOwnership(m, AUTH_SIG, m.roles.system);
      await m.exec(`REVOKE ALL ON FUNCTION ${AUTH_SIG} FROM PUBLIC`);
      await m.exec(`GRANT EXECUTE ON FUNCTION ${AUTH_SIG} TO ${m.roles.app}`);
      await m.exec(
        `COMMENT ON FUNCTION ${AUTH_SIG} IS 'Resolves an API key hash to its tenant: the current key, or a rotated-out key still in its grace period and not revoked (SECURITY DEFINER, owned by the system role).'`,
      );
    });
  },

  async down(m) {
    await m.transaction(async () => {
      // The definition of revision 202611280012, owned by the schema owner again.
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_authenticate(p_key_hash text)
        RETURNS TABLE (tenant_id uuid, key_hash text)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$ SELECT t.id, t.api_key_hash::text FROM tenants t WHERE t.api_key_hash = p_key_hash $$`);
      await transferOwnership(m, AUTH_SIG, m.roles.owner);
      await m.exec(`REVOKE ALL ON FUNCTION ${AUTH_SIG} FROM PUBLIC`);
      await m.exec(`GRANT EXECUTE ON FUNCTION ${AUTH_SIG} TO ${m.roles.app}`);
      await m.exec(`COMMENT ON FUNCTION ${AUTH_SIG} IS 'Resolves an API key hash to its tenant, for the application role (SECURITY DEFINER).'`);
      await m.exec(`DROP POLICY IF EXISTS tenants_system_authenticate ON tenants`);
      await m.exec(`REVOKE SELECT (id, api_key_hash) ON tenants FROM ${m.roles.system}`);
      await m.exec('DROP TABLE IF EXISTS tenant_api_keys_retired');
    });
  },
};

/**
 * ALTER FUNCTION … OWNER TO needs the new owner to hold CREATE on the schema; the system role
 * gets it only for the moment of the transfer (unless it had it already).
 */
async function transferOwnership(m: MigrationContext, signature: string, role: string): Promise<void> {
  const [had] = await m.exec<{ ok: boolean }>(`SELECT has_schema_privilege($1, 'public', 'CREATE') AS ok`, [role]);
  if (!had!.ok) await m.exec(`GRANT CREATE ON SCHEMA public TO ${role}`);
  await m.exec(`ALTER FUNCTION ${signature} OWNER TO ${role}`);
  if (!had!.ok) await m.exec(`REVOKE CREATE ON SCHEMA public FROM ${role}`);
}
