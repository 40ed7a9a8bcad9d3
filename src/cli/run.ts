import { loadConfig, type Config } from '../config.js';
import { DatabaseUnavailableError, openDatabase, type Database } from '../db/database.js';
import { isConnectionError } from '../db/errors.js';
import type { Logger } from './log.js';

/** Errors a command reports as a usage problem (exit 2) rather than a failure (exit 1). */
export class UsageError extends Error {
  readonly code = 'usage';
}

export class CommandFailed extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

const USAGE_CODES = new Set(['usage', 'revision_unknown', 'revision_wrong_direction', 'config_invalid']);
// (schema_changed and migration_failed are failures: exit 1.)
/** Domain input errors end in `_invalid` (e.g. tenant_email_invalid): the user's input is wrong. */
const isInputCode = (code: string) => code.endsWith('_invalid');
/** Could not run at all: no database, roles missing. */
// 42P01 undefined_table / 42883 undefined_function: the schema is not (fully) migrated.
const UNAVAILABLE_CODES = new Set(['database_unavailable', 'roles_unavailable', 'embedded_unavailable', 'embedded_cluster_missing', '42P01', '42883']);

export interface CommandContext {
  config: Config;
  /**
   * Opens the database (embedded unless DATABASE_URL) on first use; closed when the command ends.
   * A long-running command (`service` option of runCommand) waits for an unreachable database,
   * retrying with backoff and logging each attempt; any other command fails at once (exit 2).
   */
  database(): Promise<Database>;
  /**
   * Runs `fn` (a service's start-up) again, with the same backoff, while it fails because the
   * database cannot be reached: a long-running command waits for the database instead of exiting.
   */
  whenReachable<T>(what: string, fn: () => Promise<T>): Promise<T>;
  /**
   * For long-running commands: resolves on the first SIGINT or SIGTERM, which the command then
   * handles (stopping its services). Commands that never call it are interrupted instead: the
   * embedded database is stopped and the process exits 130.
   */
  untilSignal(): Promise<NodeJS.Signals>;
}

/**
 * Runs a command body and turns its outcome into an exit code: operations return results
 * or throw typed errors; only this edge prints them and picks the code.
 * 0 success; 1 the operation failed; 2 usage error or could not run.
 */
export interface RunOptions {
  /**
   * Set for the long-running commands (start, serve, worker, attribution schedule): their
   * messages go to this logger, and they wait for the database rather than exit. `createsCluster`:
   * this command may initialise a new embedded cluster (only `skeldir start`); every other one
   * refuses when the data directory has none.
   */
  service?: { log: Logger; createsCluster?: boolean };
}

/** Backoff between attempts to reach the database at start-up: 0.5 s doubling to 30 s. */
export function startupBackoffMs(attempt: number): number {
  return Math.min(30_000, 500 * 2 ** Math.min(attempt - 1, 6));
}

export async function runCommand(body: (ctx: CommandContext) => Promise<number | void>, options: RunOptions = {}): Promise<void> {
  let db: Database | undefined;
  let code = 0;
  let signalled: ((signal: NodeJS.Signals) => void) | undefined;
  let received: NodeJS.Signals | undefined;
  const wakers = new Set<() => void>();
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      received ??= signal;
      for (const wake of wakers) wake();
      return signalled(signal);
    }
    process.stderr.write(`skeldir: interrupted by ${signal}\n`);
    void (db?.close() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const config = loadConfig();
    const service = options.service;
    const notice = service ? (m: string) => service.log.info({ data_dir: config.dataDir }, m) : (m: string) => process.stderr.write(`skeldir: ${m}\n`);
    const whenReachable = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await fn();
        } catch (error) {
          if (received || !service || !(error instanceof DatabaseUnavailableError || isConnectionError(error))) throw error;
          const delay = startupBackoffMs(attempt);
          service.log.warn(
            { attempt, retry_in_ms: delay, err: (error as Error).message },
            `${what}: cannot reach PostgreSQL (attempt ${attempt}); trying again in ${delay / 1000} s`,
          );
          await new Promise<void>((resolve) => {
            const wake = () => {
              clearTimeout(timer);
              wakers.delete(wake);
              resolve();
            };
            const timer = setTimeout(wake, delay);
            wakers.add(wake);
            if (received) wake();
          });
          if (received) throw new CommandFailed(`${what}: stopped by ${received} while waiting for PostgreSQL`, 0);
        }
      }
    };
    const open = async () => {
      const opened = await whenReachable('start-up', () => openDatabase(config, { createCluster: service?.createsCluster === true, notice }));
      // Say which data directory is used: a wrong SKELDIR_DATA_DIR is then seen at once.
      if (opened.embedded && !service) notice(`using the embedded PostgreSQL in ${opened.embedded.dataDir}`);
      return opened;
    };
    const ctx: CommandContext = {
      config,
      database: async () => (db ??= await open()),
      whenReachable,
      untilSignal: () => new Promise((resolve) => (signalled = resolve)),
    };
    code = (await body(ctx)) ?? 0;
  } catch (error) {
    code = exitCodeFor(error);
    process.stderr.write(`skeldir: ${describe(error)}\n`);
  } finally {
    await db?.close().catch(() => {});
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  process.exitCode = code;
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof CommandFailed) return error.exitCode;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (USAGE_CODES.has(code) || UNAVAILABLE_CODES.has(code) || isInputCode(code))) return 2;
  return 1;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  if (code === '42P01' || code === '42883') {
    return `${error.message}: the database schema is not at head; run \`skeldir migrate upgrade\` (or \`skeldir start\`) first`;
  }
  return error.message;
}

/**
 * `skeldir … | head -1`: the reader went away and the next write fails with EPIPE. That is a
 * normal end of the command, not a crash: exit quietly with its exit code so far (0 unless it
 * had already failed), as a Unix filter does, instead of an unhandled 'error' and a stack trace.
 */
export function exitQuietlyOnClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    });
  }
}
