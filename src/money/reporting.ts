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

/**
 * Sets (or, without `zone`, reads) the IANA time zone a tenant's days are counted in (spend days,
 * performance report periods). Administrative (schema owner). A zone PostgreSQL does not know is
 * refused: reports compute days with it (`AT TIME ZONE`).
 */
export async function reportingTimeZone(owner: pg.Pool, tenantId: string, zone?: string): Promise<{ tenant_id: string; reporting_time_zone: string }> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(tenantId)) {
    throw new ReportingCurrencyError('tenant_invalid', `tenant must be a UUID, got ${JSON.stringify(tenantId)}`, { field: 'tenant' });
  }
  return withTenant(owner, tenantId, async (client) => {
    if (zone !== undefined) {
      const known = /^[A-Za-z][A-Za-z0-9_+/-]{0,63}$/.test(zone) && (await client.query(`SELECT 1 FROM pg_timezone_names WHERE name = $1`, [zone])).rowCount === 1;
      if (!known) throw new ReportingCurrencyError('time_zone_invalid', `${JSON.stringify(zone.slice(0, 80))} is not an IANA time zone PostgreSQL knows (e.g. Europe/Berlin, America/New_York, UTC)`, { field: 'zone' });
    }
    const { rows } = zone
      ? await client.query<{ z: string }>(`UPDATE tenants SET reporting_time_zone = $2 WHERE id = $1 RETURNING reporting_time_zone AS z`, [tenantId, zone])
      : await client.query<{ z: string }>(`SELECT reporting_time_zone AS z FROM tenants WHERE id = $1`, [tenantId]);
    if (!rows[0]) throw new ReportingCurrencyError('tenant_not_found', `no tenant ${tenantId}`, { field: 'tenant' });
    return { tenant_id: tenantId, reporting_time_zone: rows[0].z };
  });
}
