import { ident } from '../../db/pool.js';
import type { Revision } from '../revision.js';

/**
 * The web app's Settings page manages webhook endpoints, API keys and the reporting currency
 * over HTTP, so the application role needs what the CLI's owner connection had, within the tenant
 * policies that already exist (each table's `<table>_tenant_isolation`: a request can only touch
 * its own tenant's rows): webhook endpoints in full; the retired API keys (rotation, revocation);
 * two columns of its tenant's row (its key hash and its reporting currency), nothing else of it.
 * Who may use these routes is decided per route (owners for keys, admins for the rest).
 */
export const revision: Revision = {
  id: '202612022104',
  previous: '202612021955',
  title: 'application role: webhook endpoints, key rotation and reporting currency for the web app',
  dropsOnDowngrade: [],

  async up(m) {
    const app = ident(m.roles.app);
    await m.transaction(async () => {
      await m.exec(`GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints TO ${app}`);
      await m.exec(`GRANT SELECT, INSERT, UPDATE ON tenant_api_keys_retired TO ${app}`);
      await m.exec(`GRANT UPDATE (api_key_hash, reporting_currency) ON tenants TO ${app}`);
    });
  },

  async down(m) {
    const app = ident(m.roles.app);
    await m.transaction(async () => {
      await m.exec(`REVOKE UPDATE (api_key_hash, reporting_currency) ON tenants FROM ${app}`);
      await m.exec(`REVOKE SELECT, INSERT, UPDATE ON tenant_api_keys_retired FROM ${app}`);
      await m.exec(`REVOKE SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints FROM ${app}`);
    });
  },
};
