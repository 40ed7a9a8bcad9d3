import pg from 'pg';
import type { Config } from '../config.js';
import { isConnectionError } from './errors.js';
import { acquireAdvisoryLock } from './locks.js';
import { startEmbedded, type EmbeddedServer } from './embedded.js';
import { clientConfig, createPool, ident } from './pool.js';
import { ensureRoles, grantSchemaToOwner, type Roles } from './roles.js';

/** The database Skeldir runs on: where it is, which roles to act as, and how to let it go. */
export interface Database {
  /** Connection URL of the login user. */
  readonly url: string;
  readonly roles: Roles;
  readonly embedded: EmbeddedServer | undefined;
  /** A pool acting as the schema owner: for migrations and administrative commands. */
  ownerPool(options?: { max?: number; applicationName?: string }): pg.Pool;
  /** A pool acting as the application role: row-level security always applies. */
  appPool(options?: { max?: number; applicationName?: string; queryTimeoutMs?: number }): pg.Pool;
  /** Settings for one client acting as the application role (e.g. a LISTEN connection). */
  appClientConfig(options?: { applicationName?: string }): pg.ClientConfig;
  /** Leaves the embedded cluster: stops it when no other process uses it (whoever started it). */
  close(): Promise<void>;
}

export const EMBEDDED_DATABASE = 'skeldir';
/** Advisory lock key serialising role and schema set-up (released when the session ends). */
const SETUP_LOCK = '495891501419';

export class DatabaseUnavailableError extends Error {
  readonly code = 'database_unavailable';
}

export interface OpenOptions {
  ephemeral?: boolean;
  /** May initialise a new embedded cluster when the data directory has none (only `skeldir start`). */
  createCluster?: boolean;
  /** One-line messages about the embedded cluster (a new one initialised, files kept elsewhere). */
  notice?: (message: string) => void;
}

export async function openDatabase(config: Config, options: OpenOptions = {}): Promise<Database> {
  let embedded: EmbeddedServer | undefined;
  try {
    let url: string;
    let roles: Roles;
    if (config.databaseUrl) {
      url = config.databaseUrl;
      roles = await withClient(url, async (client) => {
        // Serialise set-up between processes starting at once on the same database.
        await acquireAdvisoryLock(client, SETUP_LOCK);
        const r = await ensureRoles(client, config);
        await grantSchemaToOwner(client, r);
        return r;
      });
    } else {
      embedded = await startEmbedded({ dataDir: config.dataDir, ephemeral: options.ephemeral, create: options.createCluster ?? true, notice: options.notice, sharedDir: config.sharedDir });
      const server = embedded;
      // The same superuser logs in to both databases, so the roles found here hold for both.
      // Two commands starting at once both get here: without the lock their GRANT / ALTER ROLE
      // statements race on the same catalogue rows ("tuple concurrently updated").
      roles = await withClient(server.url('postgres'), async (client) => {
        await acquireAdvisoryLock(client, SETUP_LOCK);
        const r = await ensureRoles(client, config);
        await createDatabaseIfMissing(client, EMBEDDED_DATABASE, r.owner);
        // The application logs in as its own role: a session whose login user is the superuser
        // could leave the role it was given (RESET ROLE); a session of skeldir_app cannot.
        await client.query(`ALTER ROLE ${ident(r.app)} WITH LOGIN PASSWORD '${server.appPassword}'`);
        return r;
      });
      url = server.url(EMBEDDED_DATABASE);
      return databaseAt(url, roles, embedded, server.url(EMBEDDED_DATABASE, roles.app));
    }
    return databaseAt(url, roles, embedded);
  } catch (error) {
    await embedded?.stop().catch(() => {});
    if (isConnectionError(error)) throw new DatabaseUnavailableError(`cannot reach PostgreSQL: ${(error as Error).message}`);
    throw error;
  }
}

/**
 * A Database for a URL whose roles are already known (tests clone databases this way). With
 * `appUrl` (a login of the application role itself) the application connects with it;
 * otherwise it connects as the login of `url` acting as the application role.
 */
export function databaseAt(url: string, roles: Roles, embedded?: EmbeddedServer, appUrl?: string): Database {
  const app = appUrl ? { url: appUrl, role: undefined } : { url, role: roles.app };
  return {
    url,
    roles,
    embedded,
    ownerPool: (o = {}) => createPool(url, { role: roles.ownerSetRole, ...o }),
    appPool: (o = {}) => createPool(app.url, { role: app.role, ...o }),
    appClientConfig: (o = {}) => clientConfig(app.url, { role: app.role, ...o }),
    close: async () => {
      // Leaving, not only when this process started it: the last one out stops the cluster and
      // waits for it, rather than leaving that to an exit hook that cannot wait.
      await embedded?.stop();
    },
  };
}

export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'skeldir' });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export async function createDatabaseIfMissing(client: pg.ClientBase, name: string, owner: string, template?: string): Promise<boolean> {
  const exists = (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  if (exists) return false;
  try {
    await client.query(
      `CREATE DATABASE ${ident(name)} OWNER ${ident(owner)}${template ? ` TEMPLATE ${ident(template)}` : ''} ENCODING 'UTF8'`,
    );
    return true;
  } catch (error) {
    // Created meanwhile by another process: 42P04 duplicate_database, or 23505 when both
    // inserted into pg_database at the same moment.
    const code = (error as { code?: string }).code;
    if (code === '42P04' || code === '23505') return false;
    throw error;
  }
}
