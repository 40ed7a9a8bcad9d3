import type { Queryable } from './pool.js';

/**
 * Whether the database runs Citus (the extension is installed in it). Spend: there a multi-row INSERT … SELECT into a distributed table is
 * executed as COPY (refused under row-level security) and a temporary table cannot be joined in a
 * modification, so a file import writes in batches (upsertSpend) instead of through the staging table.
 * Ingestion: a SQL-level PREPARE is not propagated to the workers, so the coalescer's one-round-trip
 * write (EXECUTE of a prepared statement) is refused there ("prepared statement … does not exist").
 */
export async function runsCitus(client: Queryable): Promise<boolean> {
  const r = await client.query<{ citus: boolean }>(`SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS citus`);
  return r.rows[0]!.citus;
}
