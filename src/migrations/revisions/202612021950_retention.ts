import type { Revision } from '../revision.js';

/**
 * Retention (src/retention): per-tenant rules, and the daily aggregates that keep reports over
 * pruned periods answering.
 *
 * - retention_settings: a tenant's rules in days; NULL keeps forever (the default: nothing is
 *   removed until a tenant asks).
 * - allocation_daily_aggregates: when retention deletes old events, their allocations are first
 *   folded here, one row per (UTC day of the conversion, model, channel, currency), in the same
 *   transaction as the delete, so a report over that day still adds up to the same money. The
 *   sums are of integer minor units (bigint: many days of int4 amounts).
 */
export const revision: Revision = {
  id: '202612021950',
  previous: '202612021946',
  title: 'retention: retention_settings and allocation_daily_aggregates',
  dropsOnDowngrade: [{ table: 'allocation_daily_aggregates' }, { table: 'retention_settings' }],

  async up(m) {
    await m.transaction(async () => {
      await m.exec(`
        CREATE TABLE IF NOT EXISTS retention_settings (
          tenant_id uuid NOT NULL,
          payload_days integer,
          event_days integer,
          dead_event_payload_days integer,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_retention_settings PRIMARY KEY (tenant_id),
          CONSTRAINT fk_retention_settings_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT ck_retention_settings_days CHECK (
            (payload_days IS NULL OR payload_days BETWEEN 1 AND 36500) AND
            (event_days IS NULL OR event_days BETWEEN 1 AND 36500) AND
            (dead_event_payload_days IS NULL OR dead_event_payload_days BETWEEN 1 AND 36500))
        )`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_retention_settings_updated_at ON retention_settings`);
      await m.exec(`CREATE TRIGGER trg_retention_settings_updated_at BEFORE UPDATE ON retention_settings FOR EACH ROW EXECUTE FUNCTION skeldir_touch_updated_at()`);
      await m.tenantPolicy('retention_settings');
      await m.grantApp('retention_settings', 'SELECT, INSERT, UPDATE');
      await m.comment('retention_settings', "A tenant's retention rules; a tenant without a row keeps everything.", {
        tenant_id: "The tenant configured; row-level security shows the row only in its context.",
        payload_days: "Events' raw payloads older than this many days (by event time) are replaced by {\"redacted\": \"retention\"}; NULL keeps them.",
        event_days: 'Events older than this many days (by event time) are deleted, their allocations folded into allocation_daily_aggregates first; NULL keeps them.',
        dead_event_payload_days: 'Dead events older than this many days (by when they died) have their payload redacted; NULL keeps it.',
        created_at: 'When the row was created.',
        updated_at: 'When the row last changed (maintained by trigger).',
      });

      await m.exec(`
        CREATE TABLE IF NOT EXISTS allocation_daily_aggregates (
          tenant_id uuid NOT NULL,
          day date NOT NULL,
          model_type varchar(50) NOT NULL,
          channel_code text NOT NULL,
          currency varchar(3) NOT NULL,
          allocated_revenue_cents bigint NOT NULL,
          attributed_conversions numeric NOT NULL,
          conversions integer NOT NULL,
          allocations integer NOT NULL,
          confidence_sum numeric NOT NULL,
          credible_interval_lower_cents bigint,
          credible_interval_upper_cents bigint,
          allocations_with_interval integer NOT NULL DEFAULT 0,
          updated_at timestamptz NOT NULL,
          CONSTRAINT pk_allocation_daily_aggregates PRIMARY KEY (tenant_id, day, model_type, channel_code, currency),
          CONSTRAINT fk_allocation_daily_aggregates_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT ck_allocation_daily_aggregates_counts CHECK (allocated_revenue_cents >= 0 AND conversions >= 0 AND allocations >= 0 AND allocations_with_interval >= 0)
        )`);
      await m.tenantPolicy('allocation_daily_aggregates');
      await m.grantApp('allocation_daily_aggregates', 'SELECT, INSERT, UPDATE');
      await m.comment('allocation_daily_aggregates', 'Allocations of events removed by retention, summed per UTC day of the conversion, model, channel and currency: reports over pruned days read these.', {
        tenant_id: "Owning tenant; row-level security shows the row only in this tenant's context.",
        day: 'UTC day of the conversions.',
        model_type: 'Attribution model of the allocations. INVARIANT: statistical_integrity',
        channel_code: 'Channel credited (channel code).',
        currency: 'ISO 4217 code of the amounts. INVARIANT: financial_critical',
        allocated_revenue_cents: 'Sum of the allocations, minor units of currency. INVARIANT: financial_critical',
        attributed_conversions: 'Sum of the allocation ratios (conversions credited to the channel, fractionally).',
        conversions: 'Conversions crediting the channel that day (each conversion is in one day, so days add up exactly).',
        allocations: 'Allocation rows folded.',
        confidence_sum: 'Sum of the confidence scores of the rows (mean = confidence_sum / allocations). INVARIANT: statistical_integrity',
        credible_interval_lower_cents: 'Sum of the Bayesian credible interval lower bounds; NULL when no row had one. INVARIANT: statistical_integrity',
        credible_interval_upper_cents: 'Sum of the Bayesian credible interval upper bounds; NULL when no row had one. INVARIANT: statistical_integrity',
        allocations_with_interval: 'Rows that had a credible interval.',
        updated_at: 'When rows were last folded in.',
      });
    });
  },

  async down(m) {
    await m.transaction(async () => {
      await m.exec(`DROP TABLE IF EXISTS allocation_daily_aggregates`);
      await m.exec(`DROP TABLE IF EXISTS retention_settings`);
    });
  },
};
