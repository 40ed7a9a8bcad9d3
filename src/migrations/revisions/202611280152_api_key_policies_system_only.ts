import { ident } from '../../db/pool.js';
import { literal, type MigrationContext } from '../context.js';
import type { Revision } from '../revision.js';

/**
 * Fix to 202611280023 (same cause as 202611280052 and 202611280059): a policy TO a role also
 * applies to the role's MEMBERS, and the schema owner is a member of the system role. So
 * tenant_api_keys_retired_system_authenticate let the owner, working in one tenant's context
 * (`skeldir tenant list`, `rotate-key`, `revoke-key`), see every tenant's retired keys that still
 * authenticate (hashes only). Both authentication policies now also require
 * `current_user = <system role>`, true only inside skeldir_authenticate(text), which that role owns.
 */
export const revision: Revision = {
  id: '202611280152',
  previous: '202611280059',
  title: 'api key authentication policies apply to the system role itself, not to its members',
  dropsOnDowngrade: [],

  async up(m) {
    await m.transaction(() => policies(m, `current_user = ${literal(m.roles.system)}`));
  },

  async down(m) {
    await m.transaction(() => policies(m, null));
  },
};

async function policies(m: MigrationContext, guard: string | null): Promise<void> {
  const system = ident(m.roles.system);
  const and = (condition: string) => (guard ? `${guard} AND ${condition}` : condition);
  await m.exec(`DROP POLICY IF EXISTS tenants_system_authenticate ON tenants`);
  await m.exec(`CREATE POLICY tenants_system_authenticate ON tenants FOR SELECT TO ${system} USING (${guard ?? 'true'})`);
  await m.exec(`DROP POLICY IF EXISTS tenant_api_keys_retired_system_authenticate ON tenant_api_keys_retired`);
  await m.exec(`CREATE POLICY tenant_api_keys_retired_system_authenticate ON tenant_api_keys_retired FOR SELECT TO ${system}
    USING (${and('revoked_at IS NULL AND expires_at > now()')})`);
}
