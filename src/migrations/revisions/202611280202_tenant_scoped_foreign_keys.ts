import type { MigrationContext } from '../context.js';
import type { Revision } from '../revision.js';

/**
 * Foreign keys between tenant-scoped tables include `tenant_id`.
 *
 * PostgreSQL checks foreign keys without row-level security. With `event_id → events(id)`, a
 * tenant could point one of its own rows at another tenant's row, and learn from the answer
 * whether that id exists. With `(tenant_id, event_id) → events(tenant_id, id)` the reference
 * must be to a row of the same tenant: another tenant's id is refused exactly like an id that
 * does not exist. Each parent gets a unique (tenant_id, id) index, built concurrently; it
 * replaces the legacy non-unique (tenant_id, id) index where there was one. Each foreign key is
 * swapped in one short transaction (NOT VALID) and validated afterwards without blocking writes.
 */
const PARENTS = [
  { table: 'attribution_events', index: 'idx_attribution_events_tenant_id_id', legacy: 'idx_attribution_events_tenant_id' },
  { table: 'revenue_ledger', index: 'idx_revenue_ledger_tenant_id_id', legacy: 'idx_revenue_ledger_tenant_id' },
  { table: 'webhook_endpoints', index: 'idx_webhook_endpoints_tenant_id_id', legacy: undefined },
] as const;

const KEYS = [
  {
    table: 'attribution_allocations', name: 'fk_attribution_allocations_event_id',
    tenantScoped: 'FOREIGN KEY (tenant_id, event_id) REFERENCES attribution_events (tenant_id, id) ON DELETE CASCADE',
    previous: 'FOREIGN KEY (event_id) REFERENCES attribution_events (id) ON DELETE CASCADE',
  },
  {
    table: 'dead_events', name: 'fk_dead_events_event_id',
    tenantScoped: 'FOREIGN KEY (tenant_id, event_id) REFERENCES attribution_events (tenant_id, id) ON DELETE SET NULL (event_id)',
    previous: 'FOREIGN KEY (event_id) REFERENCES attribution_events (id) ON DELETE SET NULL',
  },
  {
    table: 'revenue_ledger_references', name: 'fk_revenue_ledger_references_ledger_id',
    tenantScoped: 'FOREIGN KEY (tenant_id, ledger_id) REFERENCES revenue_ledger (tenant_id, id) ON DELETE CASCADE',
    previous: 'FOREIGN KEY (ledger_id) REFERENCES revenue_ledger (id) ON DELETE CASCADE',
  },
  {
    table: 'webhook_deliveries', name: 'fk_webhook_deliveries_endpoint_id',
    tenantScoped: 'FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id) ON DELETE SET NULL (endpoint_id)',
    previous: 'FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints (id) ON DELETE SET NULL',
  },
] as const;

async function swapForeignKey(m: MigrationContext, table: string, name: string, definition: string): Promise<void> {
  await m.transaction(async () => {
    await m.exec(`ALTER TABLE ${table} DROP CONSTRAINT IF EXISTS ${name}`);
    await m.exec(`ALTER TABLE ${table} ADD CONSTRAINT ${name} ${definition} NOT VALID`);
  });
  await m.withoutLockTimeout(() => m.exec(`ALTER TABLE ${table} VALIDATE CONSTRAINT ${name}`));
}

export const revision: Revision = {
  id: '202611280202',
  previous: '202611280152',
  title: 'foreign keys between tenant-scoped tables include tenant_id',
  dropsOnDowngrade: [],

  async up(m) {
    for (const p of PARENTS) {
      await m.createIndex(p.index, `${p.table} (tenant_id, id)`, { unique: true });
    }
    for (const k of KEYS) await swapForeignKey(m, k.table, k.name, k.tenantScoped);
    for (const p of PARENTS) {
      if (p.legacy) await m.dropIndex(p.legacy);
      await m.exec(
        `COMMENT ON INDEX ${p.index} IS 'Unique (tenant_id, id): the target of the tenant-scoped foreign keys, and the per-tenant walk of batched maintenance.'`,
      );
    }
  },

  async down(m) {
    for (const p of PARENTS) if (p.legacy) await m.createIndex(p.legacy, `${p.table} (tenant_id, id)`);
    for (const k of KEYS) await swapForeignKey(m, k.table, k.name, k.previous);
    for (const p of PARENTS) await m.dropIndex(p.index);
  },
};
