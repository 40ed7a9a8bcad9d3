import type pg from 'pg';

/**
 * Runs `fn` in a transaction whose tenant context is `tenantId`. The setting is
 * transaction-local (`set_config(…, true)`), so it vanishes at COMMIT or ROLLBACK and a
 * connection returned to the pool carries no tenant. Row-level security does the
 * isolation; callers never filter by tenant by hand.
 */
export async function withTenant<T>(pool: pg.Pool, tenantId: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    await client.query("SELECT set_config('app.current_tenant_id', $1, true)", [tenantId]);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    // If even ROLLBACK fails the connection is unusable: destroy it rather than pool it.
    await client.query('ROLLBACK').catch((e: Error) => (broken = e));
    throw error;
  } finally {
    client.release(broken);
  }
}

/** The SQL expression every tenant policy compares `tenant_id` with: unset or empty ⇒ NULL ⇒ no rows. */
export const CURRENT_TENANT_SQL = "NULLIF(current_setting('app.current_tenant_id', true), '')::uuid";
