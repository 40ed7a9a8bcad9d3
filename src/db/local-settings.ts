import pg from 'pg';
import { ident, type Queryable } from './pool.js';

/**
 * Runs `fn` with planner / executor settings changed for the current transaction only, and puts the
 * caller's values back when it returns, so a statement tuned for itself (a report's work_mem, a join
 * method ruled out) does not tune the statements after it in the same transaction. When `fn` throws
 * the transaction is aborted (or rolled back to a savepoint, which reverts the settings too), so
 * nothing is restored then. `settings` are names known at compile time, never user input.
 *
 * `SET LOCAL` statements, not `set_config(…, true)`: on Citus only a SET LOCAL reaches the shards
 * (citus.propagate_set_commands = 'local'), where the statement is planned; a set_config stayed on
 * the coordinator and the shards planned the reconciliation with the caller's settings (nested loops
 * in a session that had turned hash joins off). The same on one server.
 */
export async function withLocalSettings<T>(client: Queryable, settings: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const names = Object.keys(settings);
  const { rows } = await client.query<{ previous: string[] }>(
    `SELECT array_agg(current_setting(n) ORDER BY i) AS previous FROM unnest($1::text[]) WITH ORDINALITY s(n, i)`,
    [names],
  );
  const previous = rows[0]!.previous;
  await client.query(setLocalSql(names, Object.values(settings)));
  const result = await fn();
  await client.query(setLocalSql(names, previous));
  return result;
}

/** `SET LOCAL n = 'v'; …` for each setting, in one simple query (SET takes no parameters). */
function setLocalSql(names: readonly string[], values: readonly string[]): string {
  return names.map((n, i) => `SET LOCAL ${ident(n)} = ${pg.escapeLiteral(values[i]!)}`).join('; ');
}
