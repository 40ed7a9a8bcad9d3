import type { Revision } from '../revision.js';

/**
 * Phase 8b of the design document: the audit trail of revenue state changes.
 *
 * The table has no tenant_id (the document gives it six columns); its row-level security
 * policy admits a transition exactly when its ledger row is visible, and the ledger row is
 * visible only in its tenant's context.
 */
export const revision: Revision = {
  id: '202511151450',
  previous: '202511151440',
  title: 'create revenue_state_transitions (phase 8b)',
  dropsOnDowngrade: [{ table: 'revenue_state_transitions' }],

  async up(m) {
    await m.transaction(async () => {
      await m.exec(`
        CREATE TABLE IF NOT EXISTS revenue_state_transitions (
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          ledger_id uuid NOT NULL,
          from_state varchar(50),
          to_state varchar(50) NOT NULL,
          reason text,
          transitioned_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_revenue_state_transitions PRIMARY KEY (id),
          CONSTRAINT fk_revenue_state_transitions_ledger_id FOREIGN KEY (ledger_id)
            REFERENCES revenue_ledger (id) ON DELETE CASCADE
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_revenue_state_transitions_ledger_id
        ON revenue_state_transitions (ledger_id, transitioned_at DESC)`);
      await m.exec(`ALTER TABLE revenue_state_transitions ENABLE ROW LEVEL SECURITY`);
      await m.exec(`ALTER TABLE revenue_state_transitions FORCE ROW LEVEL SECURITY`);
      await m.exec(`DROP POLICY IF EXISTS revenue_state_transitions_tenant_isolation ON revenue_state_transitions`);
      await m.exec(`CREATE POLICY revenue_state_transitions_tenant_isolation ON revenue_state_transitions
        USING (EXISTS (SELECT 1 FROM revenue_ledger l WHERE l.id = ledger_id))
        WITH CHECK (EXISTS (SELECT 1 FROM revenue_ledger l WHERE l.id = ledger_id))`);
      await m.grantApp('revenue_state_transitions', 'SELECT, INSERT');
      await m.comment('revenue_state_transitions', 'Audit trail: one row per state change of a revenue_ledger row.', {
        id: 'Transition identifier (UUID v4, generated). INVARIANT: audit_critical',
        ledger_id: 'The revenue_ledger row that changed state; deleting it deletes its transitions. INVARIANT: audit_critical',
        from_state: 'State before the transition; NULL for the initial state. INVARIANT: audit_critical',
        to_state: 'State after the transition. INVARIANT: audit_critical',
        reason: 'Why the state changed (e.g. the provider event). INVARIANT: audit_critical',
        transitioned_at: 'When the transition happened. INVARIANT: audit_critical',
      });
    });
  },

  async down(m) {
    await m.exec('DROP TABLE IF EXISTS revenue_state_transitions');
  },
};
