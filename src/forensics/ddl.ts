/**
 * The design document's DDL in source form, item by item: what one would write in a
 * migration. The forensic run has the server it validates render these (on scratch
 * temporary tables, rolled back) and compares the rendering with the live objects, so the
 * comparison never depends on how a particular PostgreSQL version prints a definition.
 * On PostgreSQL 15 the renderings equal the texts in src/migrations/document.ts (a test
 * holds the two together).
 */

export interface IndexSource {
  table: string;
  unique: boolean;
  /** Everything after `ON table`: columns, INCLUDE, WHERE. */
  body: string;
}

export const INDEX_SOURCES: Record<string, IndexSource> = {
  idx_tenants_api_key_hash: { table: 'tenants', unique: true, body: '(api_key_hash)' }, // line 44
  idx_events_idempotency: { table: 'attribution_events', unique: true, body: '(idempotency_key)' }, // line 96
  idx_events_tenant_timestamp: { table: 'attribution_events', unique: false, body: '(tenant_id, event_timestamp DESC)' }, // line 97
  idx_events_processing_status: {
    table: 'attribution_events',
    unique: false,
    body: "(processing_status, processed_at) WHERE processing_status = 'pending'",
  }, // line 98
  idx_allocations_channel_performance: {
    table: 'attribution_allocations',
    unique: false,
    body: '(tenant_id, channel_code, created_at DESC) INCLUDE (allocated_revenue_cents, confidence_score)',
  }, // line 146
  idx_revenue_ledger_transaction_id: { table: 'revenue_ledger', unique: true, body: '(transaction_id)' }, // line 185
  idx_revenue_ledger_state: { table: 'revenue_ledger', unique: false, body: '(state)' }, // line 186
  idx_revenue_ledger_tenant_state: { table: 'revenue_ledger', unique: false, body: '(tenant_id, state, created_at DESC)' }, // line 187
  idx_dead_events_remediation: { table: 'dead_events', unique: false, body: '(remediation_status, created_at DESC)' }, // line 231
  idx_revenue_state_transitions_ledger_id: {
    table: 'revenue_state_transitions',
    unique: false,
    body: '(ledger_id, transitioned_at DESC)',
  }, // line 254
};

/**
 * The legacy composite idempotency indexes phase 5 drops (lines 101-102), as the legacy
 * revision 202511141311 created them: the run checks that neither exists under its own
 * name nor under any other.
 */
export const LEGACY_INDEX_SOURCES: Record<string, IndexSource> = {
  idx_attribution_events_tenant_external_event_id: {
    table: 'attribution_events',
    unique: true,
    body: '(tenant_id, external_event_id) WHERE external_event_id IS NOT NULL',
  },
  idx_attribution_events_tenant_correlation_id: {
    table: 'attribution_events',
    unique: true,
    body: '(tenant_id, correlation_id) WHERE correlation_id IS NOT NULL AND external_event_id IS NULL',
  },
};

export const CHECK_SOURCES: Record<string, { table: string; expression: string }> = {
  ck_attribution_events_processing_status_valid: {
    table: 'attribution_events',
    expression: "processing_status IN ('pending', 'processed', 'failed')",
  }, // line 105
  ck_attribution_events_retry_count_positive: { table: 'attribution_events', expression: 'retry_count >= 0' }, // line 106
  ck_allocations_confidence_score: {
    table: 'attribution_allocations',
    expression: 'confidence_score >= 0 AND confidence_score <= 1',
  }, // line 149
  ck_revenue_ledger_state_valid: {
    table: 'revenue_ledger',
    expression: "state IN ('authorized', 'captured', 'refunded', 'chargeback')",
  }, // line 190
  ck_dead_events_remediation_status_valid: {
    table: 'dead_events',
    expression: "remediation_status IN ('pending', 'in_progress', 'resolved', 'ignored')",
  }, // line 234
  ck_dead_events_retry_count_positive: { table: 'dead_events', expression: 'retry_count >= 0' }, // line 235
};

/** Lines 247 and 256-257. */
export const FOREIGN_KEY_SOURCE = {
  table: 'revenue_state_transitions',
  name: 'fk_revenue_state_transitions_ledger_id',
  definition: 'FOREIGN KEY (ledger_id) REFERENCES revenue_ledger (id) ON DELETE CASCADE',
  referenced: 'revenue_ledger',
};
