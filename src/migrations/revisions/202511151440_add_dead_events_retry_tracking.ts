import type { Revision } from '../revision.js';

/**
 * Phase 8a of the design document: retry tracking and remediation on dead_events.
 *
 * Backfill of existing dead events from their legacy columns: `event_type` ←
 * `raw_payload->>'event_type'` (else 'unknown'); `error_type` ← `error_code`;
 * `error_message` ← `error_detail->>'message'` (else the whole `error_detail` as text);
 * `error_traceback` ← `error_detail->>'traceback'` or `->>'stack'`; `remediation_status` ←
 * 'pending'; `retry_count` ← 0.
 */
export const revision: Revision = {
  id: '202511151440',
  previous: '202511151430',
  title: 'add dead_events retry tracking (phase 8a)',
  dropsOnDowngrade: [
    {
      table: 'dead_events',
      columns: ['event_type', 'error_type', 'error_message', 'error_traceback', 'retry_count', 'last_retry_at',
        'remediation_status', 'remediation_notes', 'resolved_at'],
    },
  ],

  async up(m) {
    await m.ddl(`ALTER TABLE dead_events
      ADD COLUMN IF NOT EXISTS event_type varchar(50),
      ADD COLUMN IF NOT EXISTS error_type varchar(100),
      ADD COLUMN IF NOT EXISTS error_message text,
      ADD COLUMN IF NOT EXISTS error_traceback text,
      ADD COLUMN IF NOT EXISTS retry_count integer NOT NULL DEFAULT 0,
      ADD COLUMN IF NOT EXISTS last_retry_at timestamptz,
      ADD COLUMN IF NOT EXISTS remediation_status varchar(20) NOT NULL DEFAULT 'pending',
      ADD COLUMN IF NOT EXISTS remediation_notes text,
      ADD COLUMN IF NOT EXISTS resolved_at timestamptz`);
    await m.backfill({
      table: 'dead_events',
      label: 'dead_events: error classification from legacy columns',
      set: `event_type = COALESCE(event_type, left(COALESCE(NULLIF(raw_payload->>'event_type', ''), 'unknown'), 50)),
            error_type = COALESCE(error_type, left(error_code, 100)),
            error_message = COALESCE(error_message, error_detail->>'message', error_detail::text),
            error_traceback = COALESCE(error_traceback, error_detail->>'traceback', error_detail->>'stack')`,
      where: 'event_type IS NULL OR error_type IS NULL OR error_message IS NULL',
    });
    await m.setNotNull('dead_events', ['event_type', 'error_type', 'error_message']);
    await m.addCheck('dead_events', 'ck_dead_events_remediation_status_valid',
      `remediation_status IN ('pending', 'in_progress', 'resolved', 'ignored')`);
    await m.addCheck('dead_events', 'ck_dead_events_retry_count_positive', 'retry_count >= 0');
    await m.createIndex('idx_dead_events_remediation', 'dead_events (remediation_status, created_at DESC)');

    await m.comment('dead_events', null, {
      event_type: 'Type of the event that failed. INVARIANT: processing_critical',
      error_type: 'Stable error classification (validation, data, transient, internal, …). INVARIANT: processing_critical',
      error_message: 'What went wrong, for a human. INVARIANT: processing_critical',
      error_traceback: 'Stack trace of the failure, for debugging. INVARIANT: processing_critical',
      retry_count: 'Attempts made before and after the event died; never negative. INVARIANT: processing_critical',
      last_retry_at: 'When the event was last retried from the dead-letter queue. INVARIANT: processing_critical',
      remediation_status: 'Remediation state: pending, in_progress, resolved or ignored. INVARIANT: processing_critical',
      remediation_notes: 'Notes of the engineers remediating the event. INVARIANT: processing_critical',
      resolved_at: 'When the dead event was resolved or ignored. INVARIANT: processing_critical',
    });
  },

  async down(m) {
    await m.dropIndex('idx_dead_events_remediation');
    await m.ddl(`ALTER TABLE dead_events
      DROP CONSTRAINT IF EXISTS ck_dead_events_remediation_status_valid,
      DROP CONSTRAINT IF EXISTS ck_dead_events_retry_count_positive,
      DROP COLUMN IF EXISTS event_type,
      DROP COLUMN IF EXISTS error_type,
      DROP COLUMN IF EXISTS error_message,
      DROP COLUMN IF EXISTS error_traceback,
      DROP COLUMN IF EXISTS retry_count,
      DROP COLUMN IF EXISTS last_retry_at,
      DROP COLUMN IF EXISTS remediation_status,
      DROP COLUMN IF EXISTS remediation_notes,
      DROP COLUMN IF EXISTS resolved_at`);
  },
};
