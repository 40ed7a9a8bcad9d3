import type { Revision } from '../revision.js';

/**
 * Phase 5 of the design document: attribution_events gets its canonical columns, a
 * single-column idempotency key, a processing queue, and NOT NULL sessions.
 *
 * Backfill of rows that exist before this revision (SPEC §1.2):
 * - `idempotency_key`, tenant-scoped so no tenant can collide with another:
 *   `<tenant_id>:ext:<external_event_id>` (or `<tenant_id>:ext-sha256:<hex sha256>` when the
 *   external id is over 200 characters), else `<tenant_id>:corr:<correlation_id>`, else
 *   `<tenant_id>:id:<id>`;
 * - `event_timestamp` ← `occurred_at`; `conversion_value_cents` ← `revenue_cents`;
 * - `session_id` when NULL ← the synthetic session `md5('skeldir:legacy-session:' || id)::uuid`
 *   (one deterministic session per legacy event: nothing links them to any other event);
 * - `event_type`, `channel` ← 'unknown'; `processing_status` ← 'processed' (they were handled by
 *   the legacy system); `processed_at` ← the time of the migration (the column's DEFAULT now()).
 *
 * Constant backfills use PostgreSQL's fast defaults: the value is stored once in the
 * catalogue rather than in each row, then the DEFAULT is changed to the document's (or
 * dropped), which leaves existing rows with the backfilled value.
 */
export const revision: Revision = {
  id: '202511151410',
  previous: '202511151400',
  title: 'realign attribution_events (phase 5)',
  dropsOnDowngrade: [
    {
      table: 'attribution_events',
      columns: ['idempotency_key', 'event_type', 'channel', 'campaign_id', 'conversion_value_cents', 'currency',
        'event_timestamp', 'processed_at', 'processing_status', 'retry_count'],
    },
  ],

  async up(m) {
    await m.ddl(`ALTER TABLE attribution_events
      ADD COLUMN IF NOT EXISTS idempotency_key varchar(255),
      ADD COLUMN IF NOT EXISTS event_type varchar(50) NOT NULL DEFAULT 'unknown',
      ADD COLUMN IF NOT EXISTS channel varchar(100) NOT NULL DEFAULT 'unknown',
      ADD COLUMN IF NOT EXISTS campaign_id varchar(255),
      ADD COLUMN IF NOT EXISTS conversion_value_cents integer,
      ADD COLUMN IF NOT EXISTS currency varchar(3) NOT NULL DEFAULT 'USD',
      ADD COLUMN IF NOT EXISTS event_timestamp timestamptz,
      ADD COLUMN IF NOT EXISTS processed_at timestamptz DEFAULT now(),
      ADD COLUMN IF NOT EXISTS processing_status varchar(20) NOT NULL DEFAULT 'processed',
      ADD COLUMN IF NOT EXISTS retry_count integer NOT NULL DEFAULT 0`);
    await m.ddl(`ALTER TABLE attribution_events
      ALTER COLUMN event_type DROP DEFAULT,
      ALTER COLUMN channel DROP DEFAULT,
      ALTER COLUMN processing_status SET DEFAULT 'pending'`);

    await m.backfill({
      table: 'attribution_events',
      label: 'attribution_events: idempotency keys, timestamps, sessions',
      set: `idempotency_key = COALESCE(idempotency_key, CASE
              WHEN external_event_id IS NOT NULL AND length(external_event_id) <= 200
                THEN tenant_id::text || ':ext:' || external_event_id
              WHEN external_event_id IS NOT NULL
                THEN tenant_id::text || ':ext-sha256:' || encode(sha256(convert_to(external_event_id, 'UTF8')), 'hex')
              WHEN correlation_id IS NOT NULL
                THEN tenant_id::text || ':corr:' || correlation_id::text
              ELSE tenant_id::text || ':id:' || attribution_events.id::text
            END),
            event_timestamp = COALESCE(event_timestamp, occurred_at),
            conversion_value_cents = CASE WHEN idempotency_key IS NULL THEN revenue_cents ELSE conversion_value_cents END,
            session_id = COALESCE(session_id, md5('skeldir:legacy-session:' || attribution_events.id::text)::uuid)`,
      where: 'idempotency_key IS NULL OR event_timestamp IS NULL OR session_id IS NULL',
    });
    await m.setNotNull('attribution_events', ['idempotency_key', 'event_timestamp', 'session_id']);

    await m.addCheck('attribution_events', 'ck_attribution_events_processing_status_valid',
      `processing_status IN ('pending', 'processed', 'failed')`);
    await m.addCheck('attribution_events', 'ck_attribution_events_retry_count_positive', 'retry_count >= 0');

    await m.createIndex('idx_events_idempotency', 'attribution_events (idempotency_key)', { unique: true });
    await m.createIndex('idx_events_tenant_timestamp', 'attribution_events (tenant_id, event_timestamp DESC)');
    await m.createIndex('idx_events_processing_status',
      `attribution_events (processing_status, processed_at) WHERE processing_status = 'pending'`);
    await m.dropIndex('idx_attribution_events_tenant_external_event_id');
    await m.dropIndex('idx_attribution_events_tenant_correlation_id');

    await m.comment('attribution_events', null, {
      idempotency_key: 'Tenant-scoped idempotency key (<tenant_id>:…): one event per key. UNIQUE on its own. INVARIANT: idempotency_critical',
      event_type: 'Kind of event: touchpoint or conversion. INVARIANT: analytics_critical',
      channel: 'Marketing channel, normalised onto channel_taxonomy codes (unknown when unrecognised). INVARIANT: analytics_critical',
      campaign_id: 'Campaign identifier given by the sender, if any. INVARIANT: analytics_critical',
      conversion_value_cents: 'Value of a conversion in minor units of currency; NULL for none. INVARIANT: financial_critical',
      currency: 'ISO 4217 code of conversion_value_cents. INVARIANT: financial_critical',
      event_timestamp: 'Canonical time of the event (with offset). INVARIANT: analytics_critical',
      processed_at: 'When the worker finished processing the event. INVARIANT: processing_critical',
      processing_status: 'Queue state: pending, processed or failed. INVARIANT: processing_critical',
      retry_count: 'Processing attempts that failed so far; never negative. INVARIANT: processing_critical',
      session_id: 'Visitor session the event belongs to; never NULL (legacy NULLs got a synthetic session). INVARIANT: analytics_critical',
    });
  },

  async down(m) {
    await m.createIndex('idx_attribution_events_tenant_external_event_id',
      'attribution_events (tenant_id, external_event_id) WHERE external_event_id IS NOT NULL', { unique: true });
    await m.createIndex('idx_attribution_events_tenant_correlation_id',
      'attribution_events (tenant_id, correlation_id) WHERE correlation_id IS NOT NULL AND external_event_id IS NULL', { unique: true });
    await m.dropIndex('idx_events_idempotency');
    await m.dropIndex('idx_events_tenant_timestamp');
    await m.dropIndex('idx_events_processing_status');
    await m.ddl(`ALTER TABLE attribution_events
      DROP CONSTRAINT IF EXISTS ck_attribution_events_processing_status_valid,
      DROP CONSTRAINT IF EXISTS ck_attribution_events_retry_count_positive,
      ALTER COLUMN session_id DROP NOT NULL,
      DROP COLUMN IF EXISTS idempotency_key,
      DROP COLUMN IF EXISTS event_type,
      DROP COLUMN IF EXISTS channel,
      DROP COLUMN IF EXISTS campaign_id,
      DROP COLUMN IF EXISTS conversion_value_cents,
      DROP COLUMN IF EXISTS currency,
      DROP COLUMN IF EXISTS event_timestamp,
      DROP COLUMN IF EXISTS processed_at,
      DROP COLUMN IF EXISTS processing_status,
      DROP COLUMN IF EXISTS retry_count`);
    await m.comment('attribution_events', null, {
      session_id: 'Visitor session the event belongs to (legacy: may be NULL).',
    });
  },
};
