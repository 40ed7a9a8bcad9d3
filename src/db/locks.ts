import type { Queryable } from './pool.js';

/**
 * Takes a session-level advisory lock by polling `pg_try_advisory_lock` rather than blocking
 * in `pg_advisory_lock`. A session blocked inside a statement holds a snapshot, and
 * CREATE INDEX CONCURRENTLY (run by the lock holder's migration) waits for every older
 * snapshot to go away: the two would deadlock. Polling holds no snapshot between tries.
 */
export async function acquireAdvisoryLock(client: Queryable, key: string, options: { pollMs?: number; timeoutMs?: number } = {}): Promise<void> {
  const pollMs = options.pollMs ?? 200;
  const deadline = Date.now() + (options.timeoutMs ?? 60 * 60 * 1000);
  for (;;) {
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [key]);
    if (rows[0]!.ok) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for advisory lock ${key}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export async function releaseAdvisoryLock(client: Queryable, key: string): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1::bigint)', [key]);
}
