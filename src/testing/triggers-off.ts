import type pg from 'pg';

/**
 * Runs `fn` in one transaction of `client` (a superuser) with triggers off on every node, for bulk
 * fixtures consistent by construction: `SET LOCAL session_replication_role = replica`. A session's
 * `SET session_replication_role` stays on the coordinator under Citus, so the shards' triggers fired
 * (the ledger's transition trigger, outside any tenant context: "new row violates row-level security
 * policy for table revenue_state_transitions_…"); a SET LOCAL reaches them
 * (citus.propagate_set_commands = 'local', docs/scaling.md). The same on one server.
 */
export async function withTriggersOff<T>(client: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    await client.query('SET LOCAL session_replication_role = replica');
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
