import { CURRENT_TENANT_SQL } from '../../db/tenant-context.js';
import type { Revision } from '../revision.js';

/**
 * Legacy schema, part 1 (SPEC §1.1): tenants and the channel taxonomy, plus the trigger
 * function that keeps `updated_at` honest on every legacy table.
 */
export const revision: Revision = {
  id: '202511141300',
  previous: null,
  title: 'legacy schema: tenants and channel taxonomy',
  dropsOnDowngrade: [{ table: 'tenants' }, { table: 'channel_taxonomy' }],

  async up(m) {
    await m.transaction(async () => {
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_touch_updated_at() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          NEW.updated_at := now();
          RETURN NEW;
        END $$`);
      await m.exec(`COMMENT ON FUNCTION skeldir_touch_updated_at() IS 'Trigger function: sets updated_at to now() on every UPDATE of a legacy table.'`);

      await m.exec(`
        CREATE TABLE IF NOT EXISTS tenants (
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          name varchar(255) NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_tenants PRIMARY KEY (id),
          CONSTRAINT ck_tenants_name_not_blank CHECK (btrim(name) <> '')
        )`);
      await m.exec(`
        CREATE OR REPLACE TRIGGER trg_tenants_updated_at BEFORE UPDATE ON tenants
        FOR EACH ROW EXECUTE FUNCTION skeldir_touch_updated_at()`);
      // The tenants row is its own tenant scope. RLS is enabled but not forced: the owner (the
      // administrative CLI, and SECURITY DEFINER lookups such as API-key authentication) lists
      // tenants; the application role sees only the row of the tenant in context.
      await m.exec(`ALTER TABLE tenants ENABLE ROW LEVEL SECURITY`);
      await m.exec(`DROP POLICY IF EXISTS tenants_tenant_isolation ON tenants`);
      await m.exec(
        `CREATE POLICY tenants_tenant_isolation ON tenants USING (id = ${CURRENT_TENANT_SQL}) WITH CHECK (id = ${CURRENT_TENANT_SQL})`,
      );
      await m.grantApp('tenants', 'SELECT');
      await m.comment('tenants', 'A merchant using Skeldir. Every tenant-scoped row references one tenant and is visible only in its context.', {
        id: 'Tenant identifier (UUID v4, generated).',
        name: 'Display name of the tenant; never blank.',
        created_at: 'When the tenant was created.',
        updated_at: 'When the tenant row last changed (maintained by trigger).',
      });

      await m.exec(`
        CREATE TABLE IF NOT EXISTS channel_taxonomy (
          code text NOT NULL,
          family text NOT NULL,
          is_paid boolean NOT NULL,
          display_name text NOT NULL,
          is_active boolean NOT NULL DEFAULT true,
          CONSTRAINT pk_channel_taxonomy PRIMARY KEY (code),
          CONSTRAINT ck_channel_taxonomy_code_format CHECK (code ~ '^[a-z][a-z0-9_]*$')
        )`);
      await m.exec(`
        INSERT INTO channel_taxonomy (code, family, is_paid, display_name) VALUES
          ('facebook_paid', 'paid_social', true, 'Facebook (paid)'),
          ('facebook_brand', 'organic_social', false, 'Facebook (brand page)'),
          ('google_search_paid', 'paid_search', true, 'Google Search (paid)'),
          ('google_display_paid', 'display', true, 'Google Display (paid)'),
          ('tiktok_paid', 'paid_social', true, 'TikTok (paid)'),
          ('direct', 'direct', false, 'Direct'),
          ('organic', 'organic_search', false, 'Organic search'),
          ('referral', 'referral', false, 'Referral'),
          ('email', 'email', false, 'Email'),
          ('unknown', 'unknown', false, 'Unknown')
        ON CONFLICT (code) DO NOTHING`);
      await m.grantApp('channel_taxonomy', 'SELECT');
      await m.comment('channel_taxonomy', 'The canonical marketing channels; events and allocations name a channel by its code.', {
        code: 'Stable channel code, lower snake case (e.g. google_search_paid).',
        family: 'Channel family used for grouping (paid_social, paid_search, display, email, …).',
        is_paid: 'True when the channel is bought media.',
        display_name: 'Human-readable channel name.',
        is_active: 'False hides the channel from new classification without breaking history.',
      });
    });
  },

  async down(m) {
    await m.transaction(async () => {
      await m.exec('DROP TABLE IF EXISTS channel_taxonomy');
      await m.exec('DROP TABLE IF EXISTS tenants');
      await m.exec('DROP FUNCTION IF EXISTS skeldir_touch_updated_at()');
    });
  },
};
