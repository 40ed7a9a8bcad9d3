import type { Queryable } from './pool.js';

/**
 * Runs `fn` with planner / executor settings changed for the current transaction only, and puts the
 * caller's values back when it returns, so a statement tuned for itself (a report's work_mem, a join
 * method ruled out) does not tune the statements after it in the same transaction. When `fn` throws
 * the transaction is aborted (or rolled back to a savepoint, which reverts the settings too), so
 * nothing is restored then. `settings` are names known at compile time, never user input.
 */
export async function withLocalSettings<T>(client: Queryable, settings: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const names = Object.keys(settings);
  const { rows } = await client.query<{ previous: string[] }>(
    `SELECT array_agg(current_setting(n) ORDER BY i) AS previous FROM unnest($1::text[]) WITH ORDINALITY s(n, i)`,
    [names],
  );
  const previous = rows[0]!.previous;
  await client.query(`SELECT set_config(n, v, true) FROM unnest($1::text[], $2::text[]) s(n, v)`, [names, Object.values(settings)]);
  const result = await fn();
  await client.query(`SELECT set_config(n, v, true) FROM unnest($1::text[], $2::text[]) s(n, v)`, [names, previous]);
  return result;
}
