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
  /** POST /api/v1/collect: requests per publishable key and per client address per minute (per API process); 0 = unlimited. */
  collectKeyRatePerMinute: number;
  collectAddressRatePerMinute: number;
  /**
   * Fastify's trustProxy: which proxies' X-Forwarded-For to believe for the client address (the
   * per-address limit of the collect endpoint). false unless SKELDIR_TRUST_PROXY says otherwise.
   */
  trustProxy: boolean | number | string;
  /** Limits of the HTTP server's connections (see src/http/edge.ts). */
  http: HttpLimits;
  /** Web app sign-in (src/users): the URL users reach Skeldir at (invitation links), session lifetimes. */
  web: WebConfig;
}

export interface WebConfig {
  /** Base of the links `skeldir user invite` prints (SKELDIR_PUBLIC_URL; default http://localhost:<PORT>). */
  publicUrl: string;
  /** A session ends after this long without a request (SKELDIR_SESSION_IDLE_MINUTES, default 480 = 8 h). */
  sessionIdleMs: number;
  /** …and this long after sign-in, whatever its activity (SKELDIR_SESSION_MAX_HOURS, default 168 = 7 days). */
  sessionMaxMs: number;
  /** How long an invitation link works (SKELDIR_INVITATION_HOURS, default 72). */
  invitationMs: number;
}

/** Timeouts and the per-address connection cap of the HTTP server (slowloris and friends). */
export interface HttpLimits {
  /** Time a client has to send its request headers (Node `headersTimeout`). */
  headersTimeoutMs: number;
  /** Time a client has to send its whole request, body included (Node `requestTimeout`). */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection is kept open (Node `keepAliveTimeout`). */
  keepAliveTimeoutMs: number;
  /** Open connections one client address may hold at once; 0: no cap. */
  maxConnectionsPerAddress: number;
}

/**
 * 10 s for headers and 30 s for a whole request end a slowloris connection (one that sends its
 * headers a byte at a time, or never finishes them) quickly, and leave any real client, even a
 * 4 MiB batch on a slow link, plenty; 72 s keep-alive (Fastify's default) outlasts the 60 s idle
 * timeout of common load balancers, so they close first; 128 connections per address are far
 * more than a client's pool needs (a proxy in front should raise the cap, or set 0).
 */
export const HTTP_DEFAULTS: HttpLimits = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 72_000, maxConnectionsPerAddress: 128 };

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
  const int = (name: string, fallback: number, min: number) => {
    const raw = env[name];
    const n = raw === undefined || raw === '' ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < min || n > 2 ** 31 - 1) throw new ConfigError(`${name} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
  const http: HttpLimits = {
    headersTimeoutMs: int('SKELDIR_HTTP_HEADERS_TIMEOUT_MS', HTTP_DEFAULTS.headersTimeoutMs, 1),
    requestTimeoutMs: int('SKELDIR_HTTP_REQUEST_TIMEOUT_MS', HTTP_DEFAULTS.requestTimeoutMs, 1),
    keepAliveTimeoutMs: int('SKELDIR_HTTP_KEEP_ALIVE_TIMEOUT_MS', HTTP_DEFAULTS.keepAliveTimeoutMs, 1),
    maxConnectionsPerAddress: int('SKELDIR_HTTP_MAX_CONNECTIONS_PER_ADDRESS', HTTP_DEFAULTS.maxConnectionsPerAddress, 0),
  };
  if (http.headersTimeoutMs > http.requestTimeoutMs) {
    throw new ConfigError('SKELDIR_HTTP_HEADERS_TIMEOUT_MS must not exceed SKELDIR_HTTP_REQUEST_TIMEOUT_MS (the headers are part of the request)');
  }
  const positive = (name: string, fallback: number, max: number): number => {
    const text = env[name];
    const value = text ? Number(text) : fallback;
    if (!Number.isInteger(value) || value < 1 || value > max) throw new ConfigError(`${name} must be an integer between 1 and ${max}, got ${JSON.stringify(text)}`);
    return value;
  };
  const publicUrl = env.SKELDIR_PUBLIC_URL || `http://localhost:${port || 8080}`;
  if (!/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(publicUrl)) {
    throw new ConfigError(`SKELDIR_PUBLIC_URL must be an http(s) URL without query or fragment, got ${JSON.stringify(publicUrl)}`);
  }
  const web: WebConfig = {
    publicUrl: publicUrl.replace(/\/+$/, ''),
    sessionIdleMs: positive('SKELDIR_SESSION_IDLE_MINUTES', 480, 43_200) * 60_000,
    sessionMaxMs: positive('SKELDIR_SESSION_MAX_HOURS', 168, 8_760) * 3_600_000,
    invitationMs: positive('SKELDIR_INVITATION_HOURS', 72, 720) * 3_600_000,
  };
  const collectKey = nonNegative(env, 'SKELDIR_COLLECT_KEY_RATE_PER_MINUTE', 30_000);
  const collectAddress = nonNegative(env, 'SKELDIR_COLLECT_ADDRESS_RATE_PER_MINUTE', 600);
  return {
    http,
    web,
    collectKeyRatePerMinute: collectKey,
    collectAddressRatePerMinute: collectAddress,
    trustProxy: parseTrustProxy(env.SKELDIR_TRUST_PROXY),
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

function nonNegative(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  const value = text ? Number(text) : fallback;
  if (!Number.isInteger(value) || value < 0) throw new ConfigError(`${name} must be a non-negative integer (0 = unlimited), got ${JSON.stringify(text)}`);
  return value;
}

/** SKELDIR_TRUST_PROXY: unset/false, true (every hop), a number of hops, or comma-separated addresses / CIDR ranges. */
function parseTrustProxy(text: string | undefined): boolean | number | string {
  if (text === undefined || text === '' || text === 'false' || text === '0') return false;
  if (text === 'true') return true;
  if (/^\d{1,2}$/.test(text)) return Number(text);
  if (/^[0-9a-fA-F.:/]+(?:\s*,\s*[0-9a-fA-F.:/]+)*$/.test(text)) return text;
  throw new ConfigError(`SKELDIR_TRUST_PROXY must be true, a number of proxy hops, or comma-separated proxy addresses / CIDR ranges, got ${JSON.stringify(text)}`);
}
