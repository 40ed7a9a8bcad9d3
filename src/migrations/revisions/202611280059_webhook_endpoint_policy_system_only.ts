import { ident } from '../../db/pool.js';
import { literal } from '../context.js';
import type { MigrationContext } from '../context.js';
import type { Revision } from '../revision.js';

/**
 * Fix to 202611280020: a policy TO a role also applies to the role's MEMBERS, and the schema
 * owner is a member of the system role. So webhook_endpoints_system_lookup (SELECT, any tenant)
 * widened the owner's view: `skeldir webhook list --tenant A`, run as the owner with A's context,
 * also listed every other tenant's endpoints (without secrets, which are encrypted, but with ids).
 * The policy now also requires `current_user = <system role>`, true only inside the SECURITY
 * DEFINER lookup skeldir_webhook_endpoint(uuid) owned by that role.
 */
export const revision: Revision = {
  id: '202611280059',
  previous: '202611280052',
  title: 'webhook endpoint lookup policy applies to the system role itself, not to its members',
  dropsOnDowngrade: [],

  async up(m) {
    await m.transaction(() => policy(m, `current_user = ${literal(m.roles.system)}`));
  },

  async down(m) {
    await m.transaction(() => policy(m, 'true'));
  },
};

async function policy(m: MigrationContext, using: string): Promise<void> {
  await m.exec(`DROP POLICY IF EXISTS webhook_endpoints_system_lookup ON webhook_endpoints`);
  await m.exec(`CREATE POLICY webhook_endpoints_system_lookup ON webhook_endpoints FOR SELECT TO ${ident(m.roles.system)} USING (${using})`);
}
