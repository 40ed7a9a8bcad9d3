import type { Revision } from '../revision.js';

/**
 * Indexes for the web app's reports on a busy tenant (bench/web.bench.ts: 1,000,000 events,
 * 66,000 conversions in the last 30 days), each covering what its query reads, so the reports are
 * index-only scans of the rows they need once the tables are vacuumed:
 *
 * - idx_attribution_events_conversions: conversions by time (reconciliation, conversion paths).
 *   idx_events_tenant_timestamp also holds the touchpoints (4 of 5 events), so the planner read
 *   the whole table instead (a parallel Seq Scan, ~180 ms; this index: ~10 ms);
 * - idx_attribution_events_touch_session: a session's touchpoints in time order (conversion
 *   paths: 66,000 lookups of ~4 touchpoints each, 4.2 s with heap fetches, ~0.5 s without);
 * - idx_allocations_model_created: one model's allocations of the conversions of a period (engine
 *   rows carry the conversion's time in created_at), covering what the channel report sums and
 *   the reconciliation splits by. The channel report read the whole events table once per channel
 *   (4.0 s); the reconciliation looked each conversion's allocations up through
 *   idx_attribution_allocations_event_id, one heap fetch each (0.5 s).
 *
 * Partial where they can be: the conversions index costs only conversions' inserts, the touchpoint
 * index only touchpoints'.
 */
export const revision: Revision = {
  id: '202612022221',
  previous: '202612022129',
  title: 'report indexes: conversions by time, touchpoints by session, allocations by model and conversion time',
  dropsOnDowngrade: [],

  async up(m) {
    await m.createIndex('idx_attribution_events_conversions', `attribution_events (tenant_id, event_timestamp)
      INCLUDE (id, order_id, conversion_value_cents, currency, session_id) WHERE event_type = 'conversion'`);
    await m.createIndex('idx_attribution_events_touch_session', `attribution_events (tenant_id, session_id, event_timestamp, id)
      INCLUDE (channel) WHERE event_type = 'touchpoint'`);
    await m.createIndex('idx_allocations_model_created', `attribution_allocations (tenant_id, model_type, created_at)
      INCLUDE (event_id, channel_code, allocated_revenue_cents, allocation_ratio, confidence_score, credible_interval_lower_cents, credible_interval_upper_cents)`);
    await m.transaction(async () => {
      await m.exec(`COMMENT ON INDEX idx_attribution_events_conversions IS 'A tenant''s conversions by event time, covering what the reconciliation and the conversion paths read (index-only scans).'`);
      await m.exec(`COMMENT ON INDEX idx_attribution_events_touch_session IS 'A session''s touchpoints in time order with their channel: the conversion paths report, index-only.'`);
      await m.exec(`COMMENT ON INDEX idx_allocations_model_created IS 'One attribution model''s allocations by conversion time (created_at), covering the channel report''s sums and the reconciliation''s split (index-only).'`);
    });
  },

  async down(m) {
    await m.dropIndex('idx_allocations_model_created');
    await m.dropIndex('idx_attribution_events_touch_session');
    await m.dropIndex('idx_attribution_events_conversions');
  },
};
