import type { Revision } from '../revision.js';

/**
 * API-key authentication for the application role. The app role cannot list tenants (row-level
 * security shows it only the tenant in context, and a request has no context until it is
 * authenticated), so it resolves a key through this SECURITY DEFINER function, owned by the
 * schema owner, which answers one question: which tenant has this key hash?
 */
export const revision: Revision = {
  id: '202611280012',
  previous: '202511151450',
  title: 'api key authentication and schema revision functions for the application role',
  dropsOnDowngrade: [],

  async up(m) {
    await m.transaction(async () => {
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_authenticate(p_key_hash text)
        RETURNS TABLE (tenant_id uuid, key_hash text)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$ SELECT t.id, t.api_key_hash::text FROM tenants t WHERE t.api_key_hash = p_key_hash $$`);
      await m.exec(`REVOKE ALL ON FUNCTION skeldir_authenticate(text) FROM PUBLIC`);
      await m.exec(`GRANT EXECUTE ON FUNCTION skeldir_authenticate(text) TO ${m.roles.app}`);
      await m.exec(`COMMENT ON FUNCTION skeldir_authenticate(text) IS 'Resolves an API key hash to its tenant, for the application role (SECURITY DEFINER).'`);
      // Readiness (GET /ready) compares the schema revision with the code's head; the app role
      // gets the answer without access to the migration bookkeeping table.
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_schema_revision() RETURNS text
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$ SELECT max(name) FROM skeldir_migration $$`);
      await m.exec(`REVOKE ALL ON FUNCTION skeldir_schema_revision() FROM PUBLIC`);
      await m.exec(`GRANT EXECUTE ON FUNCTION skeldir_schema_revision() TO ${m.roles.app}`);
      await m.exec(`COMMENT ON FUNCTION skeldir_schema_revision() IS 'The latest applied schema revision, for readiness checks by the application role (SECURITY DEFINER).'`);
    });
  },

  async down(m) {
    await m.exec('DROP FUNCTION IF EXISTS skeldir_schema_revision()');
    await m.exec('DROP FUNCTION IF EXISTS skeldir_authenticate(text)');
  },
};
