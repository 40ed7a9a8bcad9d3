import { literal } from '../context.js';
import type { Revision } from '../revision.js';

/**
 * Every tenant table gets keys that include tenant_id, so it can be distributed by tenant_id on
 * Citus (docs/scaling.md), which enforces a unique key or a foreign key between distributed
 * tables only when it contains the distribution column (each shard checks it alone).
 *
 * Both deployments get this revision. The design document's own keys stay as they are (the
 * forensic run checks them): the tenant-scoped keys are added next to them, and only
 * `skeldir citus distribute` drops the single-column ones, on Citus, where they cannot exist.
 *
 * - revenue_state_transitions gets tenant_id (the document gives it six columns): written by the
 *   transition trigger from the ledger row, backfilled from it here, kept equal to it by the
 *   foreign key (tenant_id, ledger_id) → revenue_ledger (tenant_id, id). Its row-level security
 *   policy compares tenant_id directly instead of looking the ledger row up (a policy with a
 *   subquery cannot be distributed, and the foreign key makes the two the same rows).
 * - UNIQUE (tenant_id, …) next to the unique keys without tenant_id of the tables Citus distributes,
 *   except on the two hot write paths: attribution_events (idempotency_key) and
 *   attribution_allocations (id). A second unique index on (tenant_id, idempotency_key) cost
 *   ingestion 15 % of its rows/s on plain PostgreSQL (bench/tenant-keys.bench.ts, 100-row
 *   statements into 200,000 events: 4,067 vs 4,788 rows/s, median of 6 rounds; 4-22 % over three
 *   runs on this shared machine), for nothing one server needs; `skeldir citus distribute` swaps those keys for
 *   the tenant-scoped ones on Citus only. The ON CONFLICT of ingestion names no target, so it works
 *   with either index.
 * - The ones a verified webhook writes cost it nothing measurable: with the three that are pure
 *   duplicates for one server (revenue_ledger (tenant_id, transaction_id), revenue_state_transitions
 *   and webhook_deliveries (tenant_id, id)) dropped in one of two clones, deliverWebhook ran with/without
 *   them 113/115, 112/113 and 118/112 Stripe deliveries/s (ratios 0.985, 0.996, 1.054: medians of
 *   6, 8 and 8 interleaved rounds; per-round ratios 0.83-1.36 at load 4-11 on 2 cores:
 *   bench/results/2026-12-08-tenant-keys-webhooks.txt), i.e. within the noise.
 *   The write path is a dozen statements per delivery, not one 100-row INSERT, so three more index
 *   entries are lost in it; kept. (tenant_id, reference) and dead_events (tenant_id, event_id) are
 *   ON CONFLICT targets and cannot go.
 */
const UNIQUE: ReadonlyArray<[name: string, definition: string, comment: string]> = [
  ['idx_attribution_model_runs_tenant_id_id', 'attribution_model_runs (tenant_id, id)', 'Tenant-scoped row identity (the primary key on Citus).'],
  ['idx_dead_events_tenant_id_id', 'dead_events (tenant_id, id)', 'Tenant-scoped row identity (the primary key on Citus).'],
  ['idx_dead_events_tenant_event', 'dead_events (tenant_id, event_id) WHERE event_id IS NOT NULL',
    "One dead event per attribution event, per tenant: the dead-lettering's ON CONFLICT target (idx_dead_events_event_id restated with tenant_id)."],
  ['idx_revenue_ledger_tenant_transaction', 'revenue_ledger (tenant_id, transaction_id)',
    'transaction_id unique per tenant: the key distributed tables can enforce (new ids are <tenant_id>:<provider>:<id>).'],
  ['idx_revenue_ledger_references_tenant_reference', 'revenue_ledger_references (tenant_id, reference)',
    'References unique per tenant (they are <tenant_id>:<provider>:<id>): the ON CONFLICT target, and the primary key on Citus.'],
  ['idx_revenue_state_transitions_tenant_id_id', 'revenue_state_transitions (tenant_id, id)', 'Tenant-scoped row identity (the primary key on Citus).'],
  ['idx_webhook_deliveries_tenant_id_id', 'webhook_deliveries (tenant_id, id)', 'Tenant-scoped row identity (the primary key on Citus).'],
];

export const revision: Revision = {
  id: '202612030600',
  previous: '202612022246',
  title: 'tenant-scoped keys: revenue_state_transitions.tenant_id, UNIQUE (tenant_id, …) next to every single-column key',
  dropsOnDowngrade: [{ table: 'revenue_state_transitions', columns: ['tenant_id'] }],

  async up(m) {
    await m.transaction(async () => {
      await m.exec(`ALTER TABLE revenue_state_transitions ADD COLUMN IF NOT EXISTS tenant_id uuid`);
      await m.comment('revenue_state_transitions', null, {
        tenant_id: "Owning tenant: the ledger row's (the foreign key (tenant_id, ledger_id) keeps them equal); row-level security shows the row only in its context.",
      });
      // New transitions carry their ledger row's tenant from this commit on; the backfill below does the old ones.
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_revenue_ledger_record_transition() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
        BEGIN
          INSERT INTO revenue_state_transitions (tenant_id, ledger_id, from_state, to_state, reason, transitioned_at)
          VALUES (NEW.tenant_id, NEW.id, CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.state END, NEW.state,
                  NULLIF(current_setting('skeldir.transition_reason', true), ''), clock_timestamp());
          RETURN NULL;
        END $$`);
    });

    // Backfill tenant by tenant in batches, in the tenant's context: the old policy (the ledger row
    // is visible) shows exactly that tenant's transitions.
    for (const tenant of await m.tenantIds()) {
      for (;;) {
        let n = 0;
        await m.transaction(async () => {
          await m.exec(`SELECT set_config('app.current_tenant_id', $1, true)`, [tenant]);
          const [r] = await m.exec<{ n: string }>(
            `WITH batch AS (SELECT t.id FROM revenue_state_transitions t WHERE t.tenant_id IS NULL LIMIT ${m.batchSize}),
                  done AS (UPDATE revenue_state_transitions t SET tenant_id = l.tenant_id
                             FROM batch, revenue_ledger l WHERE t.id = batch.id AND l.id = t.ledger_id RETURNING 1)
             SELECT count(*) AS n FROM done`,
          );
          n = Number(r!.n);
        });
        if (n < m.batchSize) break;
      }
    }
    await m.setNotNull('revenue_state_transitions', ['tenant_id']);
    if (!(await m.constraintExists('revenue_state_transitions', 'fk_revenue_state_transitions_tenant_ledger'))) {
      await m.ddl(`ALTER TABLE revenue_state_transitions ADD CONSTRAINT fk_revenue_state_transitions_tenant_ledger
        FOREIGN KEY (tenant_id, ledger_id) REFERENCES revenue_ledger (tenant_id, id) ON DELETE CASCADE NOT VALID`);
    }
    await m.withoutLockTimeout(() =>
      m.exec(`ALTER TABLE revenue_state_transitions VALIDATE CONSTRAINT fk_revenue_state_transitions_tenant_ledger`));
    await m.transaction(async () => {
      await m.exec(`COMMENT ON CONSTRAINT fk_revenue_state_transitions_tenant_ledger ON revenue_state_transitions IS 'A transition belongs to its ledger row''s tenant; on Citus it replaces fk_revenue_state_transitions_ledger_id (a foreign key between distributed tables must contain tenant_id).'`);
      await m.tenantPolicy('revenue_state_transitions');
    });

    for (const [name, definition, comment] of UNIQUE) {
      await m.createIndex(name, definition, { unique: true });
      await m.exec(`COMMENT ON INDEX ${name} IS ${literal(comment)}`);
    }
  },

  async down(m) {
    for (const [name] of [...UNIQUE].reverse()) await m.dropIndex(name);
    await m.transaction(async () => {
      await m.exec(`DROP POLICY IF EXISTS revenue_state_transitions_tenant_isolation ON revenue_state_transitions`);
      await m.exec(`CREATE POLICY revenue_state_transitions_tenant_isolation ON revenue_state_transitions
        USING (EXISTS (SELECT 1 FROM revenue_ledger l WHERE l.id = revenue_state_transitions.ledger_id))
        WITH CHECK (EXISTS (SELECT 1 FROM revenue_ledger l WHERE l.id = revenue_state_transitions.ledger_id))`);
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_revenue_ledger_record_transition() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
        BEGIN
          INSERT INTO revenue_state_transitions (ledger_id, from_state, to_state, reason, transitioned_at)
          VALUES (NEW.id, CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.state END, NEW.state,
                  NULLIF(current_setting('skeldir.transition_reason', true), ''), clock_timestamp());
          RETURN NULL;
        END $$`);
      await m.exec(`ALTER TABLE revenue_state_transitions DROP CONSTRAINT IF EXISTS fk_revenue_state_transitions_tenant_ledger`);
      await m.exec(`ALTER TABLE revenue_state_transitions DROP COLUMN IF EXISTS tenant_id`);
    });
  },
};
