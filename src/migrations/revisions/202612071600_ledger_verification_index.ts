import type { Revision } from '../revision.js';

/**
 * The reconciliation reads the ledger rows of a period (verified in [from, to), for the revenue no
 * conversion claims) and the rows of the period's orders. The orders have
 * idx_revenue_ledger_tenant_order; the period had no index, so the statement read the tenant's
 * whole ledger (a Seq Scan of every row, growing with the tenant's history) to keep a month of it.
 * This index makes that a range scan of the period's rows.
 */
export const revision: Revision = {
  id: '202612071600',
  previous: '202612030620',
  title: 'ledger: index (tenant_id, verification_timestamp) for the reconciliation period',
  dropsOnDowngrade: [],

  async up(m) {
    await m.createIndex('idx_revenue_ledger_tenant_verified', 'revenue_ledger (tenant_id, verification_timestamp)');
    await m.transaction(async () => {
      await m.exec(`COMMENT ON INDEX idx_revenue_ledger_tenant_verified IS 'A tenant''s ledger rows by verification time: the reconciliation''s period of verified revenue (unmatched ledger revenue).'`);
    });
  },

  async down(m) {
    await m.dropIndex('idx_revenue_ledger_tenant_verified');
  },
};
