import type { Revision } from '../revision.js';

const PLATFORMS = `'google_ads', 'meta_ads', 'tiktok_ads', 'microsoft_ads', 'linkedin_ads', 'other'`;
const SOURCES = `'api', 'google_ads_csv', 'meta_ads_csv', 'generic_csv'`;

/**
 * Ad spend (issue 12): what each campaign cost, per day, so reports can put revenue against it.
 *
 * - tenants.reporting_time_zone: the IANA zone a tenant's days are counted in (spend days, the
 *   performance report's periods and its `day` grouping); default UTC. The application checks it
 *   against pg_timezone_names; the CHECK only bounds its shape.
 * - ad_spend: one row per (platform, account, campaign, ad group, ad, day), in minor units of its
 *   own currency (bigint: a year of a large account's spend in a currency without decimals
 *   overflows int4). The natural key is unique, so re-importing a day replaces it (src/spend),
 *   never duplicates. Ad group and ad are '' when a row covers the whole campaign (a NULL would
 *   make the key not unique). channel_code references the tenant's channels.
 * - idx_ad_spend_tenant_day: the performance report's range scan by day, covering the columns it
 *   groups and sums (an index-only scan once the table is vacuumed).
 */
export const revision: Revision = {
  id: '202612021955',
  previous: '202612021954',
  title: 'ad spend and the tenant reporting time zone',
  dropsOnDowngrade: [{ table: 'ad_spend' }, { table: 'tenants', columns: ['reporting_time_zone'] }],

  async up(m) {
    await m.ddl(`ALTER TABLE tenants ADD COLUMN IF NOT EXISTS reporting_time_zone varchar(64) NOT NULL DEFAULT 'UTC'`);
    await m.addCheck('tenants', 'ck_tenants_reporting_time_zone_format', `reporting_time_zone ~ '^[A-Za-z][A-Za-z0-9_+/-]{0,63}$'`);
    await m.comment('tenants', null, {
      reporting_time_zone: "IANA time zone the tenant's days are counted in: spend days, performance report periods and days (default UTC).",
    });

    await m.transaction(async () => {
      await m.exec(`
        CREATE TABLE IF NOT EXISTS ad_spend (
          tenant_id uuid NOT NULL,
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          day date NOT NULL,
          platform varchar(20) NOT NULL,
          account_id varchar(100) NOT NULL DEFAULT '',
          campaign_id varchar(255) NOT NULL,
          campaign_name varchar(500),
          ad_group_id varchar(255) NOT NULL DEFAULT '',
          ad_group_name varchar(500),
          ad_id varchar(255) NOT NULL DEFAULT '',
          ad_name varchar(500),
          channel_code text NOT NULL,
          currency varchar(3) NOT NULL,
          spend_cents bigint NOT NULL,
          impressions bigint,
          clicks bigint,
          source varchar(20) NOT NULL,
          source_file varchar(255),
          import_id uuid NOT NULL,
          imported_at timestamptz NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_ad_spend PRIMARY KEY (tenant_id, id),
          CONSTRAINT uq_ad_spend_natural_key UNIQUE (tenant_id, platform, account_id, campaign_id, ad_group_id, ad_id, day),
          CONSTRAINT fk_ad_spend_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT fk_ad_spend_channel_code FOREIGN KEY (tenant_id, channel_code) REFERENCES tenant_channels (tenant_id, code),
          CONSTRAINT ck_ad_spend_platform CHECK (platform IN (${PLATFORMS})),
          CONSTRAINT ck_ad_spend_source CHECK (source IN (${SOURCES})),
          CONSTRAINT ck_ad_spend_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
          CONSTRAINT ck_ad_spend_spend_cents_non_negative CHECK (spend_cents >= 0),
          CONSTRAINT ck_ad_spend_impressions_non_negative CHECK (impressions IS NULL OR impressions >= 0),
          CONSTRAINT ck_ad_spend_clicks_non_negative CHECK (clicks IS NULL OR clicks >= 0),
          CONSTRAINT ck_ad_spend_campaign_id CHECK (btrim(campaign_id) <> ''),
          CONSTRAINT ck_ad_spend_day_range CHECK (day BETWEEN DATE '2000-01-01' AND DATE '2999-12-31')
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_ad_spend_tenant_day ON ad_spend (tenant_id, day)
        INCLUDE (platform, channel_code, campaign_id, currency, spend_cents, impressions, clicks)`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_ad_spend_channel ON ad_spend (tenant_id, channel_code)`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_ad_spend_updated_at ON ad_spend`);
      await m.exec(`CREATE TRIGGER trg_ad_spend_updated_at BEFORE UPDATE ON ad_spend FOR EACH ROW EXECUTE FUNCTION skeldir_touch_updated_at()`);
      await m.tenantPolicy('ad_spend');
      await m.grantApp('ad_spend', 'SELECT, INSERT, UPDATE, DELETE');
      await m.comment('ad_spend', 'What an ad campaign (or ad group, or ad) cost on one day, as the ad platform reported it.', {
        tenant_id: 'Owning tenant; row-level security shows the row only in its context.',
        id: 'Row identifier (UUID v4, generated); the cursor of GET /spend.',
        day: "The day of the spend, in the tenant's reporting time zone (the day the platform's report is in). INVARIANT: financial_critical",
        platform: 'Ad platform: google_ads, meta_ads, tiktok_ads, microsoft_ads, linkedin_ads or other.',
        account_id: "The platform's account (customer) id; '' when the import did not name one.",
        campaign_id: "The platform's campaign id (what touches carry as campaign_id to be matched with it).",
        campaign_name: 'The campaign name as exported.',
        ad_group_id: "Ad group (ad set) id; '' when the row covers the whole campaign.",
        ad_group_name: 'Ad group (ad set) name.',
        ad_id: "Ad id; '' when the row covers the whole ad group or campaign.",
        ad_name: 'Ad name.',
        channel_code: "The tenant's channel the spend is bought for (given, or decided by the channel rules on platform and campaign).",
        currency: 'ISO 4217 code of spend_cents (the ad account\'s currency). INVARIANT: financial_critical',
        spend_cents: 'Spend in minor units of currency, never negative; reports convert it at the rate of its day. INVARIANT: financial_critical',
        impressions: 'Impressions, when reported.',
        clicks: 'Clicks (Meta: link clicks), when reported.',
        source: 'How the row arrived: api, google_ads_csv, meta_ads_csv or generic_csv.',
        source_file: 'File name of the import, when it came from a file.',
        import_id: 'The import (file or API request) that last wrote the row.',
        imported_at: 'When that import ran.',
        created_at: 'When the row was created.',
        updated_at: 'When the row last changed (maintained by trigger).',
      });
      await m.exec(`COMMENT ON INDEX idx_ad_spend_tenant_day IS 'Spend of a tenant by day (performance report, GET /spend), covering what the report groups and sums.'`);
      await m.exec(`COMMENT ON INDEX idx_ad_spend_channel IS 'The spend naming a channel (a channel with spend cannot be deleted).'`);
    });
  },

  async down(m) {
    await m.exec('DROP TABLE IF EXISTS ad_spend');
    await m.ddl(`ALTER TABLE tenants DROP CONSTRAINT IF EXISTS ck_tenants_reporting_time_zone_format, DROP COLUMN IF EXISTS reporting_time_zone`);
  },
};
