import type { Revision } from '../revision.js';

/**
 * What the ingestion API (issue 4) stores beyond the design document's columns:
 * - `user_id`: the sender's id of a person, stitching several sessions into one journey; the
 *   attribution engine looks journeys up by (tenant_id, user_id, event_timestamp);
 * - `order_id`: the merchant order a conversion belongs to, linking it to the payment ledger
 *   (`revenue_ledger.order_id`), looked up by (tenant_id, order_id);
 * - `request_hash`: SHA-256 of the canonical event an idempotency key was first used with, so a
 *   replay of the same key with a different body is told apart from a true replay.
 * All three are NULL for rows that predate this revision; the columns are nullable and added
 * without a default, so adding them is a catalogue change only. The indexes are partial (most
 * touchpoints carry no order, anonymous visitors no user) and built CONCURRENTLY.
 */
export const revision: Revision = {
  id: '202611280017',
  previous: '202611280016',
  title: 'attribution_events: user_id, order_id and request_hash for ingestion',
  dropsOnDowngrade: [{ table: 'attribution_events', columns: ['user_id', 'order_id', 'request_hash'] }],

  async up(m) {
    await m.ddl(`ALTER TABLE attribution_events
      ADD COLUMN IF NOT EXISTS user_id varchar(255),
      ADD COLUMN IF NOT EXISTS order_id varchar(255),
      ADD COLUMN IF NOT EXISTS request_hash bytea`);
    await m.addCheck('attribution_events', 'ck_attribution_events_request_hash_length', 'request_hash IS NULL OR octet_length(request_hash) = 32');
    await m.comment('attribution_events', null, {
      user_id: "The sender's identifier of the person behind the event; stitches that person's sessions into one journey. NULL when anonymous.",
      order_id: 'Merchant order the event (a conversion) belongs to; links it to revenue_ledger.order_id. NULL when none.',
      request_hash:
        'SHA-256 (32 bytes) of the canonical event first received with this idempotency key; a replay with a different hash is refused. NULL for rows that predate it.',
    });
    await m.createIndex('idx_attribution_events_user_journey', 'attribution_events (tenant_id, user_id, event_timestamp) WHERE user_id IS NOT NULL');
    await m.exec(`COMMENT ON INDEX idx_attribution_events_user_journey IS 'Journey lookup across sessions: the events of one person in time order.'`);
    await m.createIndex('idx_attribution_events_order', 'attribution_events (tenant_id, order_id) WHERE order_id IS NOT NULL');
    await m.exec(`COMMENT ON INDEX idx_attribution_events_order IS 'Conversions of a merchant order, to match them with the ledger.'`);
  },

  async down(m) {
    await m.dropIndex('idx_attribution_events_order');
    await m.dropIndex('idx_attribution_events_user_journey');
    await m.dropConstraint('attribution_events', 'ck_attribution_events_request_hash_length');
    await m.ddl(`ALTER TABLE attribution_events
      DROP COLUMN IF EXISTS request_hash,
      DROP COLUMN IF EXISTS order_id,
      DROP COLUMN IF EXISTS user_id`);
  },
};
