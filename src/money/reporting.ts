import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { DomainError } from '../errors.js';
import { currency } from './currencies.js';

export class ReportingCurrencyError extends DomainError {}

/** Sets (or, without `code`, reads) a tenant's reporting currency. Administrative (schema owner). */
export async function reportingCurrency(owner: pg.Pool, tenantId: string, code?: string): Promise<{ tenant_id: string; reporting_currency: string }> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(tenantId)) {
    throw new ReportingCurrencyError('tenant_invalid', `tenant must be a UUID, got ${JSON.stringify(tenantId)}`, { field: 'tenant' });
  }
  const next = code === undefined ? undefined : currency(code).code;
  return withTenant(owner, tenantId, async (client) => {
    const { rows } = next
      ? await client.query<{ c: string }>(`UPDATE tenants SET reporting_currency = $2 WHERE id = $1 RETURNING reporting_currency AS c`, [tenantId, next])
      : await client.query<{ c: string }>(`SELECT reporting_currency AS c FROM tenants WHERE id = $1`, [tenantId]);
    if (!rows[0]) throw new ReportingCurrencyError('tenant_not_found', `no tenant ${tenantId}`, { field: 'tenant' });
    return { tenant_id: tenantId, reporting_currency: rows[0].c };
  });
}
