import { resolve } from 'node:path';

/** Everything Skeldir reads from the environment, read in one place. */
export interface Config {
  /** PostgreSQL URL; when absent an embedded PostgreSQL 15 is started in `dataDir`. */
  databaseUrl: string | undefined;
  /** HTTP port of the API. */
  port: number;
  /** Where the embedded PostgreSQL keeps its cluster (and its generated password). */
  dataDir: string;
  /**
   * As root only: where the embedded PostgreSQL's binaries and cluster files go when the
   * `postgres` OS user cannot reach the checkout or the data directory (SKELDIR_SHARED_DIR,
   * default /var/lib/skeldir).
   */
  sharedDir: string | undefined;
  /** Role that owns the schema; migrations `SET ROLE` to it when the login user is a superuser. */
  ownerRole: string;
  /** Role the API and worker act as: owns nothing, is not a superuser, so row-level security always applies. */
  appRole: string;
  /**
   * Role that owns the few SECURITY DEFINER functions which must look across tenants (claiming
   * queued work, resolving a webhook endpoint to its tenant). It has no login and only the
   * narrow policies those functions need; the application reaches it only through them.
   */
  systemRole: string;
  /** Rows per backfill batch in migrations (each batch is one short transaction). */
  migrationBatchSize: number;
  /** API requests each tenant may make per minute (per API process); 0 = unlimited. */
  rateLimitPerMinute: number;
  /**
   * GET /metrics shows platform-wide totals (all tenants together, from which a tenant could
   * subtract its own), so it is closed by default: it needs `Authorization: Bearer <metricsToken>`,
   * or `metricsPublic` (SKELDIR_METRICS_PUBLIC=1) to open it on purpose, e.g. on a private network.
   */
  metricsToken: string | undefined;
  metricsPublic: boolean;
}

export class ConfigError extends Error {
  readonly code = 'config_invalid';
}

const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = env.PORT === undefined || env.PORT === '' ? 8080 : Number(env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`PORT must be an integer between 0 and 65535, got ${JSON.stringify(env.PORT)}`);
  }
  const ownerRole = env.SKELDIR_OWNER_ROLE || 'skeldir_owner';
  const appRole = env.SKELDIR_APP_ROLE || 'skeldir_app';
  const systemRole = env.SKELDIR_SYSTEM_ROLE || 'skeldir_system';
  for (const [name, value] of [['SKELDIR_OWNER_ROLE', ownerRole], ['SKELDIR_APP_ROLE', appRole], ['SKELDIR_SYSTEM_ROLE', systemRole]] as const) {
    if (!ROLE_NAME.test(value)) throw new ConfigError(`${name} must be a lower-case SQL identifier, got ${JSON.stringify(value)}`);
  }
  if (new Set([ownerRole, appRole, systemRole]).size !== 3) {
    throw new ConfigError('SKELDIR_OWNER_ROLE, SKELDIR_APP_ROLE and SKELDIR_SYSTEM_ROLE must all differ');
  }
  const batch = env.SKELDIR_MIGRATION_BATCH_SIZE ? Number(env.SKELDIR_MIGRATION_BATCH_SIZE) : 5000;
  if (!Number.isInteger(batch) || batch < 1 || batch > 1_000_000) {
    throw new ConfigError(`SKELDIR_MIGRATION_BATCH_SIZE must be an integer between 1 and 1000000, got ${JSON.stringify(env.SKELDIR_MIGRATION_BATCH_SIZE)}`);
  }
  const rate = env.SKELDIR_RATE_LIMIT_PER_MINUTE ? Number(env.SKELDIR_RATE_LIMIT_PER_MINUTE) : 6000;
  if (!Number.isInteger(rate) || rate < 0) {
    throw new ConfigError(`SKELDIR_RATE_LIMIT_PER_MINUTE must be a non-negative integer (0 = unlimited), got ${JSON.stringify(env.SKELDIR_RATE_LIMIT_PER_MINUTE)}`);
  }
  const metricsToken = env.SKELDIR_METRICS_TOKEN || undefined;
  const publicFlag = env.SKELDIR_METRICS_PUBLIC ?? '';
  if (!['', '0', '1'].includes(publicFlag)) {
    throw new ConfigError(`SKELDIR_METRICS_PUBLIC must be 1 (public /metrics) or 0/unset (closed), got ${JSON.stringify(publicFlag)}`);
  }
  if (metricsToken !== undefined && (metricsToken.length < 16 || !/^[\x21-\x7e]+$/.test(metricsToken))) {
    throw new ConfigError('SKELDIR_METRICS_TOKEN must be at least 16 printable ASCII characters without spaces (e.g. `openssl rand -hex 32`)');
  }
  if (metricsToken !== undefined && publicFlag === '1') {
    throw new ConfigError('SKELDIR_METRICS_TOKEN and SKELDIR_METRICS_PUBLIC=1 contradict each other: set only one');
  }
  return {
    metricsToken,
    metricsPublic: publicFlag === '1',
    rateLimitPerMinute: rate,
    migrationBatchSize: batch,
    databaseUrl: env.DATABASE_URL || undefined,
    port,
    dataDir: resolve(env.SKELDIR_DATA_DIR || '.skeldir'),
    sharedDir: env.SKELDIR_SHARED_DIR ? resolve(env.SKELDIR_SHARED_DIR) : undefined,
    ownerRole,
    appRole,
    systemRole,
  };
}
