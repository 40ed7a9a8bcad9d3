import type pg from 'pg';

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Runs `fn` in a transaction whose tenant context is `tenantId`. The setting is
 * transaction-local (`set_config(…, true)`), so it vanishes at COMMIT or ROLLBACK and a
 * connection returned to the pool carries no tenant. Row-level security does the
 * isolation; callers never filter by tenant by hand.
 *
 * BEGIN and the setting go to the server as one simple-protocol query, one round trip fewer
 * (measured on the single-event ingestion path: 4 → 3 round trips per request). The id is
 * inlined, so only a canonical UUID takes that path; anything else is sent as a parameter.
 */
export async function withTenant<T>(pool: pg.Pool, tenantId: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    if (CANONICAL_UUID.test(tenantId)) {
      await client.query(`BEGIN; SELECT set_config('app.current_tenant_id', '${tenantId}', true)`);
    } else {
      await client.query('BEGIN');
      await client.query("SELECT set_config('app.current_tenant_id', $1, true)", [tenantId]);
    }
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
