import type { Revision } from '../revision.js';

/**
 * Phase 6 of the design document: statistical fields on attribution_allocations.
 *
 * Backfill of existing allocations: `model_type` ← 'unknown' (fast default, then dropped:
 * the document gives the column no default); `confidence_score` ← `allocation_ratio`
 * rounded to 3 places (legacy allocations always have a ratio); `verified` ← false.
 */
export const revision: Revision = {
  id: '202511151420',
  previous: '202511151410',
  title: 'add allocations statistical fields (phase 6)',
  dropsOnDowngrade: [
    {
      table: 'attribution_allocations',
      columns: ['model_type', 'confidence_score', 'credible_interval_lower_cents', 'credible_interval_upper_cents',
        'convergence_r_hat', 'effective_sample_size', 'verified', 'verification_source', 'verification_timestamp'],
    },
  ],

  async up(m) {
    await m.ddl(`ALTER TABLE attribution_allocations
      ADD COLUMN IF NOT EXISTS model_type varchar(50) NOT NULL DEFAULT 'unknown',
      ADD COLUMN IF NOT EXISTS confidence_score numeric(4,3),
      ADD COLUMN IF NOT EXISTS credible_interval_lower_cents integer,
      ADD COLUMN IF NOT EXISTS credible_interval_upper_cents integer,
      ADD COLUMN IF NOT EXISTS convergence_r_hat numeric(5,4),
      ADD COLUMN IF NOT EXISTS effective_sample_size integer,
      ADD COLUMN IF NOT EXISTS verified boolean NOT NULL DEFAULT false,
      ADD COLUMN IF NOT EXISTS verification_source varchar(50),
      ADD COLUMN IF NOT EXISTS verification_timestamp timestamptz`);
    await m.ddl(`ALTER TABLE attribution_allocations ALTER COLUMN model_type DROP DEFAULT`);

    await m.backfill({
      table: 'attribution_allocations',
      label: 'attribution_allocations: confidence_score from allocation_ratio',
      set: `confidence_score = round(allocation_ratio, 3)`,
      where: 'confidence_score IS NULL',
    });
    await m.setNotNull('attribution_allocations', ['confidence_score']);
    await m.addCheck('attribution_allocations', 'ck_allocations_confidence_score',
      'confidence_score >= 0 AND confidence_score <= 1');
    await m.createIndex('idx_allocations_channel_performance',
      'attribution_allocations (tenant_id, channel_code, created_at DESC) INCLUDE (allocated_revenue_cents, confidence_score)');

    await m.comment('attribution_allocations', null, {
      model_type: 'Attribution model that produced the allocation (first_touch, last_touch, linear, time_decay, position_based, markov, shapley, bayesian). INVARIANT: statistical_integrity',
      confidence_score: 'How sure the model is of this allocation, between 0 and 1 (meaning documented per model). INVARIANT: statistical_integrity',
      credible_interval_lower_cents: 'Lower bound of the Bayesian central credible interval, minor units. INVARIANT: statistical_integrity',
      credible_interval_upper_cents: 'Upper bound of the Bayesian central credible interval, minor units. INVARIANT: statistical_integrity',
      convergence_r_hat: 'Rank-normalised split R-hat of the MCMC run (converged when at most 1.01). INVARIANT: statistical_integrity',
      effective_sample_size: 'Bulk effective sample size of the MCMC run. INVARIANT: statistical_integrity',
      verified: 'True once the conversion\'s revenue was verified by the payment ledger. INVARIANT: financial_critical',
      verification_source: 'What verified the allocation (e.g. the payment provider). INVARIANT: financial_critical',
      verification_timestamp: 'When the allocation was verified. INVARIANT: financial_critical',
    });
  },

  async down(m) {
    await m.dropIndex('idx_allocations_channel_performance');
    await m.ddl(`ALTER TABLE attribution_allocations
      DROP CONSTRAINT IF EXISTS ck_allocations_confidence_score,
      DROP COLUMN IF EXISTS model_type,
      DROP COLUMN IF EXISTS confidence_score,
      DROP COLUMN IF EXISTS credible_interval_lower_cents,
      DROP COLUMN IF EXISTS credible_interval_upper_cents,
      DROP COLUMN IF EXISTS convergence_r_hat,
      DROP COLUMN IF EXISTS effective_sample_size,
      DROP COLUMN IF EXISTS verified,
      DROP COLUMN IF EXISTS verification_source,
      DROP COLUMN IF EXISTS verification_timestamp`);
  },
};
