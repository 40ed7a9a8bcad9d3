import type { Revision } from '../revision.js';

/**
 * Erasure (right to be forgotten, src/erasure): the audit of erasures, and a mark on attribution
 * model runs whose population lost data.
 *
 * - erasure_audit: one row per erasure request, written when it finishes: when, by whom, and how
 *   many rows each step removed or scrubbed. It never holds the erased id (nor a hash of it, which
 *   would still single the person out): an audit must not keep what it proves was removed.
 * - attribution_model_runs.stale_at / stale_reason: Markov, Shapley and Bayesian runs are fitted on
 *   a whole window's journeys. When an erasure removes journeys from a window, the run's fitted
 *   results no longer describe the data; the run is marked stale (not silently kept as current)
 *   and the next scheduled or manual run of that window replaces it.
 */
export const revision: Revision = {
  id: '202612021925',
  previous: '202612021845',
  title: 'erasure: erasure_audit table; attribution_model_runs.stale_at and stale_reason',
  dropsOnDowngrade: [{ table: 'erasure_audit' }, { table: 'attribution_model_runs', columns: ['stale_at', 'stale_reason'] }],

  async up(m) {
    await m.transaction(async () => {
      await m.exec(`
        CREATE TABLE IF NOT EXISTS erasure_audit (
          tenant_id uuid NOT NULL,
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          requested_by varchar(255) NOT NULL,
          started_at timestamptz NOT NULL,
          finished_at timestamptz NOT NULL,
          counts jsonb NOT NULL,
          CONSTRAINT pk_erasure_audit PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_erasure_audit_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT ck_erasure_audit_counts CHECK (jsonb_typeof(counts) = 'object'),
          CONSTRAINT ck_erasure_audit_times CHECK (finished_at >= started_at)
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_erasure_audit_tenant_started ON erasure_audit (tenant_id, started_at DESC)`);
      await m.tenantPolicy('erasure_audit');
      // Insert and read only: an audit row is never changed or deleted by the application.
      await m.grantApp('erasure_audit', 'SELECT, INSERT');
      await m.comment('erasure_audit', 'One row per erasure of a person (right to be forgotten): when, by whom, what was removed. Never the erased id.', {
        tenant_id: "Owning tenant; row-level security shows the row only in this tenant's context.",
        id: 'Audit row identifier (UUID v4, generated); the receipt of the erasure names it.',
        requested_by: "Who asked: 'api' (a secret API key), a web user's e-mail, or 'cli'. INVARIANT: audit_critical",
        started_at: 'When the erasure started. INVARIANT: audit_critical',
        finished_at: 'When its last step finished. INVARIANT: audit_critical',
        counts: 'Rows removed or scrubbed per step, e.g. {"events": 12, "allocations": 40, …}; never the erased id. INVARIANT: audit_critical',
      });
      await m.exec(`COMMENT ON INDEX idx_erasure_audit_tenant_started IS 'A tenant''s erasures, newest first.'`);

      await m.exec(`ALTER TABLE attribution_model_runs ADD COLUMN IF NOT EXISTS stale_at timestamptz`);
      await m.exec(`ALTER TABLE attribution_model_runs ADD COLUMN IF NOT EXISTS stale_reason varchar(20)`);
      if (!(await m.constraintExists('attribution_model_runs', 'ck_attribution_model_runs_stale'))) {
        await m.exec(`ALTER TABLE attribution_model_runs ADD CONSTRAINT ck_attribution_model_runs_stale
          CHECK ((stale_at IS NULL) = (stale_reason IS NULL) AND (stale_reason IS NULL OR stale_reason IN ('erasure', 'retention')))`);
      }
      await m.comment('attribution_model_runs', null, {
        stale_at: 'When data the run was fitted on was removed (an erasure or retention): its results no longer describe the window; the next run of the window replaces it. NULL while current.',
        stale_reason: "What removed the data: 'erasure' or 'retention'; NULL while current.",
      });
    });
  },

  async down(m) {
    await m.transaction(async () => {
      await m.exec(`ALTER TABLE attribution_model_runs DROP CONSTRAINT IF EXISTS ck_attribution_model_runs_stale`);
      await m.exec(`ALTER TABLE attribution_model_runs DROP COLUMN IF EXISTS stale_reason`);
      await m.exec(`ALTER TABLE attribution_model_runs DROP COLUMN IF EXISTS stale_at`);
      await m.exec(`DROP TABLE IF EXISTS erasure_audit`);
    });
  },
};
