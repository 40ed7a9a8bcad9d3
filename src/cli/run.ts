import { loadConfig, type Config } from '../config.js';
import { openDatabase, type Database } from '../db/database.js';

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
const UNAVAILABLE_CODES = new Set(['database_unavailable', 'roles_unavailable', '42P01', '42883']);

export interface CommandContext {
  config: Config;
  /** Opens the database (embedded unless DATABASE_URL) on first use; closed when the command ends. */
  database(): Promise<Database>;
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
export async function runCommand(body: (ctx: CommandContext) => Promise<number | void>): Promise<void> {
  let db: Database | undefined;
  let code = 0;
  let signalled: ((signal: NodeJS.Signals) => void) | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return signalled(signal);
    process.stderr.write(`skeldir: interrupted by ${signal}\n`);
    void (db?.close() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const config = loadConfig();
    const ctx: CommandContext = {
      config,
      database: async () => (db ??= await openDatabase(config)),
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
