import type { Revision } from '../revision.js';

/**
 * Phase 4 of the design document: tenant authentication columns.
 *
 * Tenants that exist before this revision have no API key and no notification address.
 * They get values that satisfy the constraints but can never be used: an `api_key_hash` of
 * the form `unset:<tenant id>` (a colon never occurs in a real key hash, so no key can match
 * it) and `notification_email` `tenant-<tenant id>@skeldir.invalid` (`.invalid` is reserved
 * by RFC 6761 and never resolves). `skeldir tenant rotate-key` gives such a tenant a key.
 */
export const revision: Revision = {
  id: '202511151400',
  previous: '202511141311',
  title: 'add tenants auth columns (phase 4)',
  dropsOnDowngrade: [{ table: 'tenants', columns: ['api_key_hash', 'notification_email'] }],

  async up(m) {
    await m.ddl(`ALTER TABLE tenants
      ADD COLUMN IF NOT EXISTS api_key_hash varchar(255),
      ADD COLUMN IF NOT EXISTS notification_email varchar(255)`);
    await m.backfillGlobal({
      table: 'tenants',
      label: 'tenants: unusable placeholder key hash and address',
      set: `api_key_hash = COALESCE(api_key_hash, 'unset:' || id::text),
            notification_email = COALESCE(notification_email, 'tenant-' || id::text || '@skeldir.invalid')`,
      where: 'api_key_hash IS NULL OR notification_email IS NULL',
    });
    await m.setNotNull('tenants', ['api_key_hash', 'notification_email']);
    await m.createIndex('idx_tenants_api_key_hash', 'tenants (api_key_hash)', { unique: true });
    await m.comment('tenants', null, {
      api_key_hash: 'Hash of the tenant\'s API key; the key itself is never stored. UNIQUE: lookup by hash identifies the tenant. INVARIANT: auth_critical',
      notification_email: 'Address for operational notifications to the tenant. INVARIANT: auth_critical',
    });
  },

  async down(m) {
    await m.dropIndex('idx_tenants_api_key_hash');
    await m.ddl(`ALTER TABLE tenants DROP COLUMN IF EXISTS api_key_hash, DROP COLUMN IF EXISTS notification_email`);
  },
};
