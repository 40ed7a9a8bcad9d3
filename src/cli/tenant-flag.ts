import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { UsageError } from './run.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `--tenant ID` of a command: a UUID (else a usage error, exit 2), lower-cased. */
export function tenantFlag(value: string): string {
  if (!UUID.test(value)) throw new UsageError(`--tenant must be a tenant id (UUID), got ${JSON.stringify(value)}`);
  return value.toLowerCase();
}

/** `--tenant ID` naming a tenant that exists: in its own context the application role sees exactly its row. */
export async function existingTenant(appPool: pg.Pool, value: string): Promise<string> {
  const id = tenantFlag(value);
  const known = await withTenant(appPool, id, async (c) => (await c.query('SELECT 1 FROM tenants WHERE id = $1', [id])).rowCount === 1);
  if (!known) throw new UsageError(`no tenant ${id}`);
  return id;
}
