/**
 * Classifies errors from `pg`: lost or refused connections (retry later, on a new
 * connection) versus everything else. Shared by the CLI's exit codes and the worker's
 * retry policy, so "the database is away" means one thing everywhere.
 */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (/^E[A-Z_]+$/.test(code)) return true; // node socket errors: ECONNREFUSED, ECONNRESET, ENOTFOUND…
    if (code.startsWith('08')) return true; // SQLSTATE class 08: connection exception
    if (code === '57P01' || code === '57P02' || code === '57P03') return true; // shutdown / crash / cannot connect now
  }
  // "Query read timeout": pg's client-side query_timeout (PoolOptions.queryTimeoutMs), i.e. no answer on this connection.
  return /Connection terminated|connection timeout|Client has encountered a connection error|Client was closed and is not queryable|Query read timeout/i.test(error.message);
}

/** SQLSTATEs worth retrying in place: serialization failures, deadlocks, lock timeouts. */
export function isTransientSqlError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '40001' || code === '40P01' || code === '55P03';
}
