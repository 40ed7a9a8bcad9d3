import pg from 'pg';
import { timestamptzParser } from './timestamps.js';

// timestamptz columns hold microseconds; pg's Date has milliseconds. Every timestamptz read is an
// Instant that keeps them (src/db/timestamps.ts), for every pool and client of the process.
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, timestamptzParser(pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ)) as (text: string) => Date);

export interface PoolOptions {
  /** Role to act as for the whole session, given at connection start-up (`-c role=…`). */
  role?: string | undefined;
  max?: number;
  applicationName?: string;
  /**
   * Client-side limit on each query (pg's query_timeout), for callers that must not wait for
   * ever on a connection whose network silently died (server-side statement_timeout cannot
   * fire then). It fails with "Query read timeout", a connection error (src/db/errors.ts).
   */
  queryTimeoutMs?: number;
}

/**
 * A pg pool whose every connection acts as `role`. The role is a start-up parameter, not a
 * `SET ROLE` sent after connecting, so no query can ever run before it takes effect.
 */
export function createPool(url: string, options: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({ ...clientConfig(url, options), max: options.max ?? 10 });
  // An idle client's connection dropping (e.g. a server restart) must not crash the process;
  // the pool discards the client and the next checkout reconnects.
  pool.on('error', () => {});
  // A checked-out client has no listener of the pool's: its connection ending (pg_terminate_backend,
  // a failover, a restart) emitted an unhandled 'error' that ended the process (ECONNRESET / 57P01).
  // Every client gets one for its whole life. The error itself reaches the query in flight, or the
  // next query on that client ("not queryable"), and the pool discards the client when released.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  return pool;
}

/**
 * Connection settings of one client of `url` acting as `options.role`. Every session runs in
 * UTC, whatever the server's default: date arithmetic in SQL (intervals of days, dates of
 * timestamps) must not depend on where the database happens to be.
 */
export function clientConfig(url: string, options: Omit<PoolOptions, 'max'> = {}): pg.ClientConfig {
  return {
    connectionString: url,
    application_name: options.applicationName ?? 'skeldir',
    options: `-c TimeZone=UTC${options.role ? ` -c role=${options.role}` : ''}`,
    // A peer that vanished (network dropped, host gone) is noticed by TCP keepalive instead of
    // never, and connecting to an unreachable host gives up instead of hanging shutdown.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    connectionTimeoutMillis: 15_000,
    ...(options.queryTimeoutMs !== undefined ? { query_timeout: options.queryTimeoutMs } : {}),
  };
}

export type Queryable = Pick<pg.PoolClient, 'query'>;

/** Quote an SQL identifier. */
export function ident(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}
