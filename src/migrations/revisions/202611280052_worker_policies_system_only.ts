import type { MigrationContext } from '../context.js';
import type { Revision } from '../revision.js';

/**
 * Fix to 202611280021: a policy TO a role also applies to the role's MEMBERS, and the schema
 * owner is a member of the system role (it hands the cross-tenant functions to it). So the
 * system policies of 202611280021 widened the owner's own view: in any tenant context it also
 * saw every tenant's pending events and every dead event (found by `skeldir dlq list`, which
 * walks tenants as the owner, listing each dead event once per tenant).
 *
 * Each system policy now also requires `current_user = <system role>`, true only while code
 * runs AS the system role, i.e. inside its SECURITY DEFINER functions; everyone else,
 * the owner included, stays confined to the tenant in context.
 */
export const revision: Revision = {
  id: '202611280052',
  previous: '202611280023',
  title: 'worker: system policies apply to the system role itself, not to its members',
  dropsOnDowngrade: [],

  async up(m) {
    await m.transaction(() => policies(m, `current_user = ${literal(m.roles.system)} AND `));
  },

  async down(m) {
    await m.transaction(() => policies(m, ''));
  },
};

async function policies(m: MigrationContext, guard: string): Promise<void> {
  const system = m.roles.system;
  await m.exec(`DROP POLICY IF EXISTS attribution_events_system_claim ON attribution_events`);
  await m.exec(`CREATE POLICY attribution_events_system_claim ON attribution_events FOR SELECT TO ${system}
    USING (${guard}processing_status = 'pending')`);
  await m.exec(`DROP POLICY IF EXISTS attribution_events_system_lock ON attribution_events`);
  await m.exec(`CREATE POLICY attribution_events_system_lock ON attribution_events FOR UPDATE TO ${system}
    USING (${guard}processing_status = 'pending') WITH CHECK (false)`);
  await m.exec(`DROP POLICY IF EXISTS dead_events_system_stats ON dead_events`);
  await m.exec(`CREATE POLICY dead_events_system_stats ON dead_events FOR SELECT TO ${system} USING (${guard ? guard.replace(/ AND $/, '') : 'true'})`);
}

function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
