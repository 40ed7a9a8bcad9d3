import type { Revision } from '../revision.js';

/**
 * Exports (src/exports) read a tenant's rows in time order, one keyset page at a time:
 * `WHERE tenant_id = $1 AND (t, id) > ($k, $id) ORDER BY t, id LIMIT n`. Each page must be a range
 * scan that starts where the last one stopped, or a 1,000,000-row export would read the table
 * once per page. attribution_events already has (tenant_id, event_timestamp DESC) (walked
 * backwards, ties on id sorted incrementally); allocations and the ledger had no tenant-and-time
 * index, so these add them, with the id so the order is total and a page never sorts.
 */
export const revision: Revision = {
  id: '202612021845',
  previous: '202612021840',
  title: 'exports: keyset indexes (tenant_id, created_at, id) on attribution_allocations and revenue_ledger',
  dropsOnDowngrade: [],

  async up(m) {
    await m.createIndex('idx_allocations_tenant_created', 'attribution_allocations (tenant_id, created_at, id)');
    await m.createIndex('idx_revenue_ledger_tenant_created', 'revenue_ledger (tenant_id, created_at, id)');
    await m.transaction(async () => {
      await m.exec(`COMMENT ON INDEX idx_allocations_tenant_created IS 'A tenant''s allocations in conversion-time order (engine rows carry the conversion time in created_at): keyset pages of exports.'`);
      await m.exec(`COMMENT ON INDEX idx_revenue_ledger_tenant_created IS 'A tenant''s ledger rows in the order they were recorded: keyset pages of exports.'`);
    });
  },

  async down(m) {
    await m.dropIndex('idx_revenue_ledger_tenant_created');
    await m.dropIndex('idx_allocations_tenant_created');
  },
};
