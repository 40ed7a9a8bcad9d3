import type { MigrationContext } from '../context.js';
import type { Revision } from '../revision.js';

const TENANT_TABLES = ['attribution_events', 'attribution_allocations', 'revenue_ledger', 'dead_events'] as const;

const COMMON = {
  id: 'Row identifier (UUID v4, generated).',
  tenant_id: 'Owning tenant; row-level security shows the row only in this tenant\'s context.',
  created_at: 'When the row was created.',
  updated_at: 'When the row last changed (maintained by trigger).',
};

/**
 * Legacy schema, part 2 (SPEC §1.1): the tenant-scoped tables as they stood before the six
 * corrective migrations, with their legacy composite idempotency indexes. Each has a
 * (tenant_id, id) index: it serves the tenant foreign key's cascade and lets per-tenant
 * batched work walk one tenant's rows without scanning the others'.
 */
export const revision: Revision = {
  id: '202511141311',
  previous: '202511141300',
  title: 'legacy schema: events, allocations, revenue ledger, dead events (row-level security forced)',
  dropsOnDowngrade: TENANT_TABLES.map((table) => ({ table })),

  async up(m) {
    await m.transaction(async () => {
      await m.exec(`
        CREATE TABLE IF NOT EXISTS attribution_events (
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          tenant_id uuid NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          occurred_at timestamptz NOT NULL,
          external_event_id text,
          correlation_id uuid,
          session_id uuid,
          revenue_cents integer NOT NULL DEFAULT 0,
          raw_payload jsonb NOT NULL,
          CONSTRAINT pk_attribution_events PRIMARY KEY (id),
          CONSTRAINT fk_attribution_events_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT ck_attribution_events_revenue_cents_non_negative CHECK (revenue_cents >= 0)
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_attribution_events_tenant_id ON attribution_events (tenant_id, id)`);
      await m.exec(`
        CREATE UNIQUE INDEX IF NOT EXISTS idx_attribution_events_tenant_external_event_id
          ON attribution_events (tenant_id, external_event_id) WHERE external_event_id IS NOT NULL`);
      await m.exec(`
        CREATE UNIQUE INDEX IF NOT EXISTS idx_attribution_events_tenant_correlation_id
          ON attribution_events (tenant_id, correlation_id) WHERE correlation_id IS NOT NULL AND external_event_id IS NULL`);
      await m.comment('attribution_events', 'Marketing events (touchpoints and conversions) received from a tenant.', {
        ...COMMON,
        occurred_at: 'When the event happened at the source (legacy name of event_timestamp).',
        external_event_id: 'The sender\'s own event id; legacy idempotency key together with tenant_id.',
        correlation_id: 'Legacy correlation id; idempotency key when external_event_id is absent.',
        session_id: 'Visitor session the event belongs to (legacy: may be NULL).',
        revenue_cents: 'Legacy revenue of the event in minor units of USD; never negative.',
        raw_payload: 'The event exactly as received.',
      });

      await m.exec(`
        CREATE TABLE IF NOT EXISTS attribution_allocations (
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          tenant_id uuid NOT NULL,
          event_id uuid NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          channel_code text NOT NULL,
          allocated_revenue_cents integer NOT NULL,
          allocation_ratio numeric(6,5) NOT NULL,
          model_version text NOT NULL DEFAULT 'unknown',
          model_metadata jsonb,
          CONSTRAINT pk_attribution_allocations PRIMARY KEY (id),
          CONSTRAINT fk_attribution_allocations_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT fk_attribution_allocations_event_id FOREIGN KEY (event_id) REFERENCES attribution_events (id) ON DELETE CASCADE,
          CONSTRAINT fk_attribution_allocations_channel_code FOREIGN KEY (channel_code) REFERENCES channel_taxonomy (code),
          CONSTRAINT ck_attribution_allocations_allocated_revenue_cents_non_negative CHECK (allocated_revenue_cents >= 0),
          CONSTRAINT ck_attribution_allocations_allocation_ratio_range CHECK (allocation_ratio >= 0 AND allocation_ratio <= 1)
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_attribution_allocations_tenant_id ON attribution_allocations (tenant_id, id)`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_attribution_allocations_event_id ON attribution_allocations (event_id)`);
      await m.comment('attribution_allocations', 'Revenue of one conversion credited to one channel by one attribution model.', {
        ...COMMON,
        event_id: 'The conversion event whose revenue is allocated.',
        channel_code: 'Channel credited (channel_taxonomy.code).',
        allocated_revenue_cents: 'Revenue credited to the channel, in minor units of the event\'s currency; never negative.',
        allocation_ratio: 'Share of the conversion credited to the channel, between 0 and 1.',
        model_version: 'Version of the model that produced the allocation.',
        model_metadata: 'Model parameters and diagnostics of the run that produced the allocation.',
      });

      await m.exec(`
        CREATE TABLE IF NOT EXISTS revenue_ledger (
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          tenant_id uuid NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          revenue_cents integer NOT NULL,
          is_verified boolean NOT NULL DEFAULT false,
          verified_at timestamptz,
          posted_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_revenue_ledger PRIMARY KEY (id),
          CONSTRAINT fk_revenue_ledger_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT ck_revenue_ledger_revenue_cents_non_negative CHECK (revenue_cents >= 0)
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_revenue_ledger_tenant_id ON revenue_ledger (tenant_id, id)`);
      await m.comment('revenue_ledger', 'Revenue recorded for a tenant, one row per payment transaction.', {
        ...COMMON,
        revenue_cents: 'Legacy revenue amount in minor units; never negative.',
        is_verified: 'True once the revenue was confirmed by the payment processor.',
        verified_at: 'When the revenue was verified, if it was.',
        posted_at: 'When the revenue was posted to the ledger.',
      });

      await m.exec(`
        CREATE TABLE IF NOT EXISTS dead_events (
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          tenant_id uuid NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          source text NOT NULL,
          error_code text NOT NULL,
          error_detail jsonb NOT NULL,
          raw_payload jsonb NOT NULL,
          CONSTRAINT pk_dead_events PRIMARY KEY (id),
          CONSTRAINT fk_dead_events_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_dead_events_tenant_id ON dead_events (tenant_id, id)`);
      await m.comment('dead_events', 'Events that could not be processed, kept for inspection and remediation.', {
        id: COMMON.id,
        tenant_id: COMMON.tenant_id,
        created_at: 'When the event was given up on.',
        source: 'Where the event came from (ingestion, worker, webhook).',
        error_code: 'Legacy error classification.',
        error_detail: 'Legacy error details (message, stack) as JSON.',
        raw_payload: 'The event exactly as received.',
      });

      for (const table of TENANT_TABLES) {
        await tenantScoped(m, table);
      }
    });
  },

  async down(m) {
    await m.transaction(async () => {
      for (const table of [...TENANT_TABLES].reverse()) await m.exec(`DROP TABLE IF EXISTS ${table}`);
    });
  },
};

async function tenantScoped(m: MigrationContext, table: string): Promise<void> {
  await m.tenantPolicy(table);
  await m.grantApp(table, 'SELECT, INSERT, UPDATE, DELETE');
  if (table !== 'dead_events') {
    await m.exec(`
      CREATE OR REPLACE TRIGGER trg_${table}_updated_at BEFORE UPDATE ON ${table}
      FOR EACH ROW EXECUTE FUNCTION skeldir_touch_updated_at()`);
  }
}
