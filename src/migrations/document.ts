/**
 * What the design document (docs/design/000_eb3e904667a5ea19.txt, a copy of shared/seed/…) says the six migrations
 * create, as data, each item with the document line it comes from. Types, defaults and
 * definitions are written the way PostgreSQL's catalogue prints them (format_type,
 * pg_get_expr, pg_get_indexdef, pg_get_constraintdef), so a live schema can be compared
 * with them exactly. The migration tests and the forensic protocol both read this.
 */

export type Phase = '4' | '5' | '6' | '7' | '8a' | '8b';

export interface DocumentColumn {
  phase: Phase;
  table: string;
  column: string;
  /** format_type() of the column. */
  type: string;
  nullable: boolean;
  /** pg_get_expr() of the default, or null for none. */
  default: string | null;
  /** The column's comment must carry this INVARIANT tag. */
  invariant: string;
  line: number;
}

export interface DocumentIndex {
  phase: Phase;
  table: string;
  name: string;
  /** pg_get_indexdef(). */
  definition: string;
  line: number;
}

export interface DocumentCheck {
  phase: Phase;
  table: string;
  name: string;
  /** pg_get_constraintdef(). */
  definition: string;
  column: string;
  /** Values the CHECK admits (each must be accepted) … */
  accepted: readonly (string | number)[];
  /** … and values it must reject. */
  rejected: readonly (string | number)[];
  line: number;
}

export interface DocumentRevision {
  phase: Phase;
  revision: string;
  previous: string;
  line: number;
}

export const REVISION_LINES: readonly DocumentRevision[] = [
  { phase: '4', revision: '202511151400', previous: '202511141311', line: 34 },
  { phase: '5', revision: '202511151410', previous: '202511151400', line: 75 },
  { phase: '6', revision: '202511151420', previous: '202511151410', line: 129 },
  { phase: '7', revision: '202511151430', previous: '202511151420', line: 168 },
  { phase: '8a', revision: '202511151440', previous: '202511151430', line: 216 },
  { phase: '8b', revision: '202511151450', previous: '202511151440', line: 240 },
];

const vc = (n: number) => `character varying(${n})`;
const TS = 'timestamp with time zone';

export const COLUMNS: readonly DocumentColumn[] = [
  { phase: '4', table: 'tenants', column: 'api_key_hash', type: vc(255), nullable: false, default: null, invariant: 'auth_critical', line: 40 },
  { phase: '4', table: 'tenants', column: 'notification_email', type: vc(255), nullable: false, default: null, invariant: 'auth_critical', line: 41 },

  { phase: '5', table: 'attribution_events', column: 'idempotency_key', type: vc(255), nullable: false, default: null, invariant: 'idempotency_critical', line: 81 },
  { phase: '5', table: 'attribution_events', column: 'event_type', type: vc(50), nullable: false, default: null, invariant: 'analytics_critical', line: 82 },
  { phase: '5', table: 'attribution_events', column: 'channel', type: vc(100), nullable: false, default: null, invariant: 'analytics_critical', line: 83 },
  { phase: '5', table: 'attribution_events', column: 'campaign_id', type: vc(255), nullable: true, default: null, invariant: 'analytics_critical', line: 84 },
  { phase: '5', table: 'attribution_events', column: 'conversion_value_cents', type: 'integer', nullable: true, default: null, invariant: 'financial_critical', line: 85 },
  { phase: '5', table: 'attribution_events', column: 'currency', type: vc(3), nullable: false, default: "'USD'::character varying", invariant: 'financial_critical', line: 86 },
  { phase: '5', table: 'attribution_events', column: 'event_timestamp', type: TS, nullable: false, default: null, invariant: 'analytics_critical', line: 87 },
  { phase: '5', table: 'attribution_events', column: 'processed_at', type: TS, nullable: true, default: 'now()', invariant: 'processing_critical', line: 88 },
  { phase: '5', table: 'attribution_events', column: 'processing_status', type: vc(20), nullable: false, default: "'pending'::character varying", invariant: 'processing_critical', line: 89 },
  { phase: '5', table: 'attribution_events', column: 'retry_count', type: 'integer', nullable: false, default: '0', invariant: 'processing_critical', line: 90 },
  { phase: '5', table: 'attribution_events', column: 'session_id', type: 'uuid', nullable: false, default: null, invariant: 'analytics_critical', line: 93 },

  { phase: '6', table: 'attribution_allocations', column: 'model_type', type: vc(50), nullable: false, default: null, invariant: 'statistical_integrity', line: 135 },
  { phase: '6', table: 'attribution_allocations', column: 'confidence_score', type: 'numeric(4,3)', nullable: false, default: null, invariant: 'statistical_integrity', line: 136 },
  { phase: '6', table: 'attribution_allocations', column: 'credible_interval_lower_cents', type: 'integer', nullable: true, default: null, invariant: 'statistical_integrity', line: 137 },
  { phase: '6', table: 'attribution_allocations', column: 'credible_interval_upper_cents', type: 'integer', nullable: true, default: null, invariant: 'statistical_integrity', line: 138 },
  { phase: '6', table: 'attribution_allocations', column: 'convergence_r_hat', type: 'numeric(5,4)', nullable: true, default: null, invariant: 'statistical_integrity', line: 139 },
  { phase: '6', table: 'attribution_allocations', column: 'effective_sample_size', type: 'integer', nullable: true, default: null, invariant: 'statistical_integrity', line: 140 },
  { phase: '6', table: 'attribution_allocations', column: 'verified', type: 'boolean', nullable: false, default: 'false', invariant: 'financial_critical', line: 141 },
  { phase: '6', table: 'attribution_allocations', column: 'verification_source', type: vc(50), nullable: true, default: null, invariant: 'financial_critical', line: 142 },
  { phase: '6', table: 'attribution_allocations', column: 'verification_timestamp', type: TS, nullable: true, default: null, invariant: 'financial_critical', line: 143 },

  { phase: '7', table: 'revenue_ledger', column: 'transaction_id', type: vc(255), nullable: false, default: null, invariant: 'financial_critical', line: 174 },
  { phase: '7', table: 'revenue_ledger', column: 'order_id', type: vc(255), nullable: true, default: null, invariant: 'financial_critical', line: 175 },
  { phase: '7', table: 'revenue_ledger', column: 'state', type: vc(50), nullable: false, default: null, invariant: 'financial_critical', line: 176 },
  { phase: '7', table: 'revenue_ledger', column: 'previous_state', type: vc(50), nullable: true, default: null, invariant: 'financial_critical', line: 177 },
  { phase: '7', table: 'revenue_ledger', column: 'amount_cents', type: 'integer', nullable: false, default: null, invariant: 'financial_critical', line: 178 },
  { phase: '7', table: 'revenue_ledger', column: 'currency', type: vc(3), nullable: false, default: "'USD'::character varying", invariant: 'financial_critical', line: 179 },
  { phase: '7', table: 'revenue_ledger', column: 'verification_source', type: vc(50), nullable: false, default: null, invariant: 'financial_critical', line: 180 },
  { phase: '7', table: 'revenue_ledger', column: 'verification_timestamp', type: TS, nullable: false, default: null, invariant: 'financial_critical', line: 181 },
  { phase: '7', table: 'revenue_ledger', column: 'metadata', type: 'jsonb', nullable: true, default: null, invariant: 'financial_critical', line: 182 },

  { phase: '8a', table: 'dead_events', column: 'event_type', type: vc(50), nullable: false, default: null, invariant: 'processing_critical', line: 220 },
  { phase: '8a', table: 'dead_events', column: 'error_type', type: vc(100), nullable: false, default: null, invariant: 'processing_critical', line: 221 },
  { phase: '8a', table: 'dead_events', column: 'error_message', type: 'text', nullable: false, default: null, invariant: 'processing_critical', line: 222 },
  { phase: '8a', table: 'dead_events', column: 'error_traceback', type: 'text', nullable: true, default: null, invariant: 'processing_critical', line: 223 },
  { phase: '8a', table: 'dead_events', column: 'retry_count', type: 'integer', nullable: false, default: '0', invariant: 'processing_critical', line: 224 },
  { phase: '8a', table: 'dead_events', column: 'last_retry_at', type: TS, nullable: true, default: null, invariant: 'processing_critical', line: 225 },
  { phase: '8a', table: 'dead_events', column: 'remediation_status', type: vc(20), nullable: false, default: "'pending'::character varying", invariant: 'processing_critical', line: 226 },
  { phase: '8a', table: 'dead_events', column: 'remediation_notes', type: 'text', nullable: true, default: null, invariant: 'processing_critical', line: 227 },
  { phase: '8a', table: 'dead_events', column: 'resolved_at', type: TS, nullable: true, default: null, invariant: 'processing_critical', line: 228 },

  { phase: '8b', table: 'revenue_state_transitions', column: 'id', type: 'uuid', nullable: false, default: 'gen_random_uuid()', invariant: 'audit_critical', line: 246 },
  { phase: '8b', table: 'revenue_state_transitions', column: 'ledger_id', type: 'uuid', nullable: false, default: null, invariant: 'audit_critical', line: 247 },
  { phase: '8b', table: 'revenue_state_transitions', column: 'from_state', type: vc(50), nullable: true, default: null, invariant: 'audit_critical', line: 248 },
  { phase: '8b', table: 'revenue_state_transitions', column: 'to_state', type: vc(50), nullable: false, default: null, invariant: 'audit_critical', line: 249 },
  { phase: '8b', table: 'revenue_state_transitions', column: 'reason', type: 'text', nullable: true, default: null, invariant: 'audit_critical', line: 250 },
  { phase: '8b', table: 'revenue_state_transitions', column: 'transitioned_at', type: TS, nullable: false, default: 'now()', invariant: 'audit_critical', line: 251 },
];

const idx = (unique: boolean, name: string, table: string, body: string) =>
  `CREATE ${unique ? 'UNIQUE ' : ''}INDEX ${name} ON public.${table} USING btree ${body}`;

export const INDEXES: readonly DocumentIndex[] = [
  { phase: '4', table: 'tenants', name: 'idx_tenants_api_key_hash', definition: idx(true, 'idx_tenants_api_key_hash', 'tenants', '(api_key_hash)'), line: 44 },
  { phase: '5', table: 'attribution_events', name: 'idx_events_idempotency', definition: idx(true, 'idx_events_idempotency', 'attribution_events', '(idempotency_key)'), line: 96 },
  { phase: '5', table: 'attribution_events', name: 'idx_events_tenant_timestamp', definition: idx(false, 'idx_events_tenant_timestamp', 'attribution_events', '(tenant_id, event_timestamp DESC)'), line: 97 },
  { phase: '5', table: 'attribution_events', name: 'idx_events_processing_status', definition: idx(false, 'idx_events_processing_status', 'attribution_events', "(processing_status, processed_at) WHERE ((processing_status)::text = 'pending'::text)"), line: 98 },
  { phase: '6', table: 'attribution_allocations', name: 'idx_allocations_channel_performance', definition: idx(false, 'idx_allocations_channel_performance', 'attribution_allocations', '(tenant_id, channel_code, created_at DESC) INCLUDE (allocated_revenue_cents, confidence_score)'), line: 146 },
  { phase: '7', table: 'revenue_ledger', name: 'idx_revenue_ledger_transaction_id', definition: idx(true, 'idx_revenue_ledger_transaction_id', 'revenue_ledger', '(transaction_id)'), line: 185 },
  { phase: '7', table: 'revenue_ledger', name: 'idx_revenue_ledger_state', definition: idx(false, 'idx_revenue_ledger_state', 'revenue_ledger', '(state)'), line: 186 },
  { phase: '7', table: 'revenue_ledger', name: 'idx_revenue_ledger_tenant_state', definition: idx(false, 'idx_revenue_ledger_tenant_state', 'revenue_ledger', '(tenant_id, state, created_at DESC)'), line: 187 },
  { phase: '8a', table: 'dead_events', name: 'idx_dead_events_remediation', definition: idx(false, 'idx_dead_events_remediation', 'dead_events', '(remediation_status, created_at DESC)'), line: 231 },
  { phase: '8b', table: 'revenue_state_transitions', name: 'idx_revenue_state_transitions_ledger_id', definition: idx(false, 'idx_revenue_state_transitions_ledger_id', 'revenue_state_transitions', '(ledger_id, transitioned_at DESC)'), line: 254 },
];

/** Legacy indexes phase 5 drops (document lines 101–102). */
export const DROPPED_INDEXES = [
  { phase: '5' as Phase, table: 'attribution_events', name: 'idx_attribution_events_tenant_external_event_id', line: 101 },
  { phase: '5' as Phase, table: 'attribution_events', name: 'idx_attribution_events_tenant_correlation_id', line: 102 },
];

const inList = (column: string, values: string[]) =>
  `CHECK (((${column})::text = ANY ((ARRAY[${values.map((v) => `'${v}'::character varying`).join(', ')}])::text[])))`;

export const CHECKS: readonly DocumentCheck[] = [
  {
    phase: '5', table: 'attribution_events', name: 'ck_attribution_events_processing_status_valid', column: 'processing_status',
    definition: inList('processing_status', ['pending', 'processed', 'failed']),
    accepted: ['pending', 'processed', 'failed'], rejected: ['done', 'PENDING', ''], line: 105,
  },
  {
    phase: '5', table: 'attribution_events', name: 'ck_attribution_events_retry_count_positive', column: 'retry_count',
    definition: 'CHECK ((retry_count >= 0))', accepted: [0, 1, 2147483647], rejected: [-1], line: 106,
  },
  {
    phase: '6', table: 'attribution_allocations', name: 'ck_allocations_confidence_score', column: 'confidence_score',
    definition: 'CHECK (((confidence_score >= (0)::numeric) AND (confidence_score <= (1)::numeric)))',
    accepted: [0, 0.5, 1], rejected: [1.5, -0.001, 1.001], line: 149,
  },
  {
    phase: '7', table: 'revenue_ledger', name: 'ck_revenue_ledger_state_valid', column: 'state',
    definition: inList('state', ['authorized', 'captured', 'refunded', 'chargeback']),
    accepted: ['authorized', 'captured', 'refunded', 'chargeback'], rejected: ['invalid_state', 'settled'], line: 190,
  },
  {
    phase: '8a', table: 'dead_events', name: 'ck_dead_events_remediation_status_valid', column: 'remediation_status',
    definition: inList('remediation_status', ['pending', 'in_progress', 'resolved', 'ignored']),
    accepted: ['pending', 'in_progress', 'resolved', 'ignored'], rejected: ['done', 'failed'], line: 234,
  },
  {
    phase: '8a', table: 'dead_events', name: 'ck_dead_events_retry_count_positive', column: 'retry_count',
    definition: 'CHECK ((retry_count >= 0))', accepted: [0, 5], rejected: [-1], line: 235,
  },
];

/** The foreign key of phase 8b (document lines 247 and 256–257): ON DELETE CASCADE. */
export const FOREIGN_KEY = {
  phase: '8b' as Phase,
  table: 'revenue_state_transitions',
  name: 'fk_revenue_state_transitions_ledger_id',
  definition: 'FOREIGN KEY (ledger_id) REFERENCES revenue_ledger(id) ON DELETE CASCADE',
  line: 247,
};
