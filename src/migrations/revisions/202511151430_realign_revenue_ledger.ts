import type { Revision } from '../revision.js';

/**
 * Phase 7 of the design document: revenue_ledger becomes a per-transaction ledger with a
 * state machine.
 *
 * Backfill of existing rows, as the document says: `transaction_id` ← 'legacy_' || id
 * (globally unique by construction, so no tenant can collide with it); `amount_cents` ←
 * `revenue_cents`; `state` ← 'captured' when verified else 'authorized'; `verification_source`
 * ← 'legacy_migration' (fast default, then dropped); `verification_timestamp` ←
 * `verified_at`, else `created_at`; `currency` ← 'USD'.
 */
export const revision: Revision = {
  id: '202511151430',
  previous: '202511151420',
  title: 'realign revenue_ledger (phase 7)',
  dropsOnDowngrade: [
    {
      table: 'revenue_ledger',
      columns: ['transaction_id', 'order_id', 'state', 'previous_state', 'amount_cents', 'currency',
        'verification_source', 'verification_timestamp', 'metadata'],
    },
  ],

  async up(m) {
    await m.ddl(`ALTER TABLE revenue_ledger
      ADD COLUMN IF NOT EXISTS transaction_id varchar(255),
      ADD COLUMN IF NOT EXISTS order_id varchar(255),
      ADD COLUMN IF NOT EXISTS state varchar(50),
      ADD COLUMN IF NOT EXISTS previous_state varchar(50),
      ADD COLUMN IF NOT EXISTS amount_cents integer,
      ADD COLUMN IF NOT EXISTS currency varchar(3) NOT NULL DEFAULT 'USD',
      ADD COLUMN IF NOT EXISTS verification_source varchar(50) NOT NULL DEFAULT 'legacy_migration',
      ADD COLUMN IF NOT EXISTS verification_timestamp timestamptz,
      ADD COLUMN IF NOT EXISTS metadata jsonb`);
    await m.ddl(`ALTER TABLE revenue_ledger ALTER COLUMN verification_source DROP DEFAULT`);

    await m.backfill({
      table: 'revenue_ledger',
      label: 'revenue_ledger: transaction ids, states, amounts',
      set: `transaction_id = COALESCE(transaction_id, 'legacy_' || revenue_ledger.id::text),
            state = COALESCE(state, CASE WHEN is_verified THEN 'captured' ELSE 'authorized' END),
            amount_cents = COALESCE(amount_cents, revenue_cents),
            verification_timestamp = COALESCE(verification_timestamp, verified_at, revenue_ledger.created_at)`,
      where: 'transaction_id IS NULL OR state IS NULL OR amount_cents IS NULL OR verification_timestamp IS NULL',
    });
    await m.setNotNull('revenue_ledger', ['transaction_id', 'state', 'amount_cents', 'verification_timestamp']);
    await m.addCheck('revenue_ledger', 'ck_revenue_ledger_state_valid',
      `state IN ('authorized', 'captured', 'refunded', 'chargeback')`);
    await m.createIndex('idx_revenue_ledger_transaction_id', 'revenue_ledger (transaction_id)', { unique: true });
    await m.createIndex('idx_revenue_ledger_state', 'revenue_ledger (state)');
    await m.createIndex('idx_revenue_ledger_tenant_state', 'revenue_ledger (tenant_id, state, created_at DESC)');

    await m.comment('revenue_ledger', null, {
      transaction_id: 'Payment processor transaction id (tenant-scoped for new rows; legacy_<id> for migrated ones). UNIQUE on its own. INVARIANT: financial_critical',
      order_id: 'Merchant order the transaction pays for; links conversions to verified revenue. INVARIANT: financial_critical',
      state: 'Revenue state: authorized, captured, refunded or chargeback. INVARIANT: financial_critical',
      previous_state: 'State before the last transition, for audit. INVARIANT: financial_critical',
      amount_cents: 'Transaction amount in minor units of currency (its own exponent). INVARIANT: financial_critical',
      currency: 'ISO 4217 code of amount_cents. INVARIANT: financial_critical',
      verification_source: 'What verified the transaction (the payment provider, or legacy_migration). INVARIANT: financial_critical',
      verification_timestamp: 'When the transaction was verified. INVARIANT: financial_critical',
      metadata: 'Processor details and the FX rate (rate, date, source) used for reporting. INVARIANT: financial_critical',
    });
  },

  async down(m) {
    await m.dropIndex('idx_revenue_ledger_transaction_id');
    await m.dropIndex('idx_revenue_ledger_state');
    await m.dropIndex('idx_revenue_ledger_tenant_state');
    await m.ddl(`ALTER TABLE revenue_ledger
      DROP CONSTRAINT IF EXISTS ck_revenue_ledger_state_valid,
      DROP COLUMN IF EXISTS transaction_id,
      DROP COLUMN IF EXISTS order_id,
      DROP COLUMN IF EXISTS state,
      DROP COLUMN IF EXISTS previous_state,
      DROP COLUMN IF EXISTS amount_cents,
      DROP COLUMN IF EXISTS currency,
      DROP COLUMN IF EXISTS verification_source,
      DROP COLUMN IF EXISTS verification_timestamp,
      DROP COLUMN IF EXISTS metadata`);
  },
};
