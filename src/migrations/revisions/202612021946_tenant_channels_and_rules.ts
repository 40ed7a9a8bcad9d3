import { CURRENT_TENANT_SQL } from '../../db/tenant-context.js';
import type { MigrationContext } from '../context.js';
import type { Revision } from '../revision.js';

export const AD_PLATFORMS_SQL = `'google_ads', 'meta_ads', 'tiktok_ads', 'microsoft_ads', 'linkedin_ads', 'other'`;

/**
 * Channels and campaigns as each tenant defines them (issue 12).
 *
 * - tenant_channels: a tenant's own list of channels. Every tenant starts with the ten codes of
 *   channel_taxonomy (is_default, copied here for existing tenants and by `createTenant` for new
 *   ones) and may add its own. channel_taxonomy stays the global list of defaults.
 * - channel_rules: ordered rules (conditions on utm_*, referrer domain, click ids, ad platform +
 *   campaign) mapping a touch to one of the tenant's channels (src/channels/classify.ts).
 * - attribution_allocations.channel_code now references the tenant's channels:
 *   fk_attribution_allocations_channel_code becomes (tenant_id, channel_code) →
 *   tenant_channels (tenant_id, code), the tenant-scoped form the other foreign keys took in
 *   202611280202 (a tenant can only credit its own channels, never learn another tenant's).
 *   The forensic protocol does not look at this key, so its 24 gates are untouched.
 * - attribution_allocations.campaign_id: the campaign of the touch an allocation credits (NULL:
 *   the touch carried none), so every model reports per campaign too.
 * No trigger seeds the defaults (Citus refuses triggers that write distributed tables from a
 * reference table): the application does, in the transaction that creates the tenant.
 */
export const revision: Revision = {
  id: '202612021946',
  previous: '202612021925',
  title: 'tenant channels, channel rules, campaigns on allocations',
  dropsOnDowngrade: [{ table: 'channel_rules' }, { table: 'tenant_channels' }, { table: 'attribution_allocations', columns: ['campaign_id'] }],

  async up(m) {
    await m.transaction(async () => {
      await m.exec(`
        CREATE TABLE IF NOT EXISTS tenant_channels (
          tenant_id uuid NOT NULL,
          code text NOT NULL,
          display_name varchar(255) NOT NULL,
          family varchar(50) NOT NULL,
          is_paid boolean NOT NULL DEFAULT false,
          ad_platform varchar(20),
          is_active boolean NOT NULL DEFAULT true,
          is_default boolean NOT NULL DEFAULT false,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_tenant_channels PRIMARY KEY (tenant_id, code),
          CONSTRAINT fk_tenant_channels_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT ck_tenant_channels_code_format CHECK (code ~ '^[a-z][a-z0-9_]{0,99}$'),
          CONSTRAINT ck_tenant_channels_display_name CHECK (btrim(display_name) <> ''),
          CONSTRAINT ck_tenant_channels_family_format CHECK (family ~ '^[a-z][a-z0-9_]{0,49}$'),
          CONSTRAINT ck_tenant_channels_ad_platform CHECK (ad_platform IN (${AD_PLATFORMS_SQL}))
        )`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_tenant_channels_updated_at ON tenant_channels`);
      await m.exec(`CREATE TRIGGER trg_tenant_channels_updated_at BEFORE UPDATE ON tenant_channels
        FOR EACH ROW EXECUTE FUNCTION skeldir_touch_updated_at()`);
      await m.tenantPolicy('tenant_channels');
      await m.grantApp('tenant_channels', 'SELECT, INSERT, UPDATE, DELETE');
      await m.comment('tenant_channels', "A tenant's marketing channels: the ten taxonomy defaults plus its own. Events, allocations, rules and spend name a channel by its code.", {
        tenant_id: 'Owning tenant; row-level security shows the row only in its context.',
        code: 'Channel code, lower snake case, at most 100 characters (the length of attribution_events.channel); never changes once created. INVARIANT: analytics_critical',
        display_name: 'Human-readable channel name.',
        family: 'Channel family for grouping (paid_search, paid_social, display, email, organic_search, referral, direct, …).',
        is_paid: 'True when the channel is bought media (spend is expected against it).',
        ad_platform: 'The ad platform its spend comes from (google_ads, meta_ads, tiktok_ads, microsoft_ads, linkedin_ads, other); NULL for unpaid channels. Groups revenue by platform in the performance report.',
        is_active: 'False: classification no longer picks the channel (a rule or default naming it gives unknown); history keeps it.',
        is_default: 'True for the ten channel_taxonomy codes every tenant starts with; they cannot be deleted.',
        created_at: 'When the row was created.',
        updated_at: 'When the row last changed (maintained by trigger).',
      });

      await m.exec(`
        CREATE TABLE IF NOT EXISTS channel_rules (
          tenant_id uuid NOT NULL,
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          position integer NOT NULL,
          name varchar(255) NOT NULL,
          channel_code text NOT NULL,
          conditions jsonb NOT NULL,
          is_active boolean NOT NULL DEFAULT true,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_channel_rules PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_channel_rules_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT fk_channel_rules_channel_code FOREIGN KEY (tenant_id, channel_code) REFERENCES tenant_channels (tenant_id, code),
          CONSTRAINT uq_channel_rules_position UNIQUE (tenant_id, position),
          CONSTRAINT ck_channel_rules_position CHECK (position BETWEEN -100000 AND 100000),
          CONSTRAINT ck_channel_rules_name CHECK (btrim(name) <> ''),
          CONSTRAINT ck_channel_rules_conditions CHECK (jsonb_typeof(conditions) = 'array' AND jsonb_array_length(conditions) BETWEEN 1 AND 20)
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_channel_rules_channel ON channel_rules (tenant_id, channel_code)`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_channel_rules_updated_at ON channel_rules`);
      await m.exec(`CREATE TRIGGER trg_channel_rules_updated_at BEFORE UPDATE ON channel_rules
        FOR EACH ROW EXECUTE FUNCTION skeldir_touch_updated_at()`);
      await m.tenantPolicy('channel_rules');
      await m.grantApp('channel_rules', 'SELECT, INSERT, UPDATE, DELETE');
      await m.comment('channel_rules', "A tenant's ordered channel rules: the first active rule whose conditions all match a touch decides its channel (before the built-in defaults).", {
        tenant_id: 'Owning tenant; row-level security shows the row only in its context.',
        id: 'Rule identifier (UUID v4, generated).',
        position: 'Order of evaluation, ascending; unique per tenant (positive for rules in use; a reorder passes through negatives).',
        name: 'Human-readable name, shown by POST /channels/test.',
        channel_code: "The channel a matching touch gets (one of the tenant's channels).",
        conditions: 'JSON array of {field, op, value}: all must match (fields and operators: docs/channels.md). Validated by the application.',
        is_active: 'False: the rule is kept but skipped.',
        created_at: 'When the row was created.',
        updated_at: 'When the row last changed (maintained by trigger).',
      });
      await m.exec(`COMMENT ON INDEX idx_channel_rules_channel IS 'The rules naming a channel (a channel with rules cannot be deleted).'`);
    });

    // Every existing tenant gets the defaults (in its own context: the table forces row-level security).
    for (const tenant of await m.tenantIds()) await seedDefaults(m, tenant);

    await m.ddl(`ALTER TABLE attribution_allocations ADD COLUMN IF NOT EXISTS campaign_id varchar(255)`);
    await m.comment('attribution_allocations', null, {
      campaign_id: "Campaign of the touch the allocation credits (the event's campaign_id, else utm_campaign); NULL when the touch carried none. INVARIANT: analytics_critical",
      channel_code: "Channel credited: one of the tenant's channels (tenant_channels.code).",
    });
    await swapChannelKey(m, 'FOREIGN KEY (tenant_id, channel_code) REFERENCES tenant_channels (tenant_id, code)');
  },

  async down(m) {
    // Allocations crediting a tenant's own channels cannot exist in the previous schema: they go
    // (every allocation is recomputable from its events).
    for (const tenant of await m.tenantIds()) {
      await m.transaction(async () => {
        await m.exec(`SELECT set_config('app.current_tenant_id', $1, true)`, [tenant]);
        await m.exec(`DELETE FROM attribution_allocations a WHERE a.tenant_id = ${CURRENT_TENANT_SQL}
          AND NOT EXISTS (SELECT 1 FROM channel_taxonomy ct WHERE ct.code = a.channel_code)`);
      });
    }
    await swapChannelKey(m, 'FOREIGN KEY (channel_code) REFERENCES channel_taxonomy (code)');
    await m.ddl(`ALTER TABLE attribution_allocations DROP COLUMN IF EXISTS campaign_id`);
    await m.comment('attribution_allocations', null, { channel_code: 'Channel credited (channel_taxonomy.code).' });
    await m.exec('DROP TABLE IF EXISTS channel_rules');
    await m.exec('DROP TABLE IF EXISTS tenant_channels');
  },
};

/** The default ad platform of a taxonomy code: where its spend comes from. */
export const DEFAULT_PLATFORM_SQL = `CASE ct.code WHEN 'facebook_paid' THEN 'meta_ads' WHEN 'google_search_paid' THEN 'google_ads'
  WHEN 'google_display_paid' THEN 'google_ads' WHEN 'tiktok_paid' THEN 'tiktok_ads' END`;

async function seedDefaults(m: MigrationContext, tenant: string): Promise<void> {
  await m.transaction(async () => {
    await m.exec(`SELECT set_config('app.current_tenant_id', $1, true)`, [tenant]);
    await m.exec(
      `INSERT INTO tenant_channels (tenant_id, code, display_name, family, is_paid, ad_platform, is_active, is_default)
       SELECT ${CURRENT_TENANT_SQL}, ct.code, ct.display_name, ct.family, ct.is_paid, ${DEFAULT_PLATFORM_SQL}, ct.is_active, true
         FROM channel_taxonomy ct
       ON CONFLICT (tenant_id, code) DO NOTHING`,
    );
  });
}

/** Replaces fk_attribution_allocations_channel_code in one short transaction (NOT VALID), then validates it without blocking writes. */
async function swapChannelKey(m: MigrationContext, definition: string): Promise<void> {
  await m.transaction(async () => {
    await m.exec(`ALTER TABLE attribution_allocations DROP CONSTRAINT IF EXISTS fk_attribution_allocations_channel_code`);
    await m.exec(`ALTER TABLE attribution_allocations ADD CONSTRAINT fk_attribution_allocations_channel_code ${definition} NOT VALID`);
  });
  await m.withoutLockTimeout(() => m.exec(`ALTER TABLE attribution_allocations VALIDATE CONSTRAINT fk_attribution_allocations_channel_code`));
}
