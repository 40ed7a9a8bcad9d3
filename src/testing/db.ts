import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createDatabaseIfMissing, databaseAt, withClient, type Database } from '../db/database.js';
import { startEmbedded, type EmbeddedServer } from '../db/embedded.js';
import { acquireAdvisoryLock, releaseAdvisoryLock } from '../db/locks.js';
import { ident } from '../db/pool.js';
import { ensureRoles, type Roles } from '../db/roles.js';
import { SchemaMigrator } from '../migrations/migrator.js';
import { databaseSettingsSql, distribute } from '../citus/distribute.js';

/**
 * Test databases, graphile-worker style: one PostgreSQL server per test run (TEST_DATABASE_URL,
 * or an embedded cluster `npm test` starts), a template database migrated to head once, and a
 * fresh clone of it per test file, so files run in parallel without seeing each other.
 * A file run on its own (no TEST_DATABASE_URL) starts its own embedded server.
 */

const ROLE_CONFIG = { ownerRole: 'skeldir_owner', appRole: 'skeldir_app', systemRole: 'skeldir_system' };
const TEMPLATE = 'skeldir_test_template';
const here = dirname(fileURLToPath(import.meta.url));

let serverPromise: Promise<{ adminUrl: string; embedded?: EmbeddedServer; dataDir?: string }> | undefined;

/** URL of the `postgres` database of the test server, as a superuser. */
export async function testServer(): Promise<string> {
  serverPromise ??= (async () => {
    const url = process.env.TEST_DATABASE_URL;
    if (url) return { adminUrl: url };
    const dataDir = mkdtempSync(join(tmpdir(), 'skeldir-test-'));
    const embedded = await startEmbedded({ dataDir, ephemeral: true });
    process.env.TEST_DATABASE_URL = embedded.url('postgres');
    return { adminUrl: embedded.url('postgres'), embedded, dataDir };
  })();
  return (await serverPromise).adminUrl;
}

/** Stops the embedded server this process started, if any (call from a top-level `after`). */
export async function stopTestServer(): Promise<void> {
  const s = await serverPromise;
  await s?.embedded?.stop();
  if (s?.dataDir) rmSync(s.dataDir, { recursive: true, force: true });
}

export function urlFor(adminUrl: string, database: string): string {
  const u = new URL(adminUrl);
  u.pathname = '/' + encodeURIComponent(database);
  return u.toString();
}

/** Identifies the migration code (and the db helpers it imports): the template is rebuilt whenever it changes. */
function migrationsFingerprint(): string {
  const hash = createHash('sha256');
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) hash.update(entry.name).update(readFileSync(p));
    }
  };
  walk(join(here, '..', 'migrations'));
  walk(join(here, '..', 'db'));
  walk(join(here, '..', 'citus'));
  return hash.digest('hex').slice(0, 16);
}

async function ensureTemplate(adminUrl: string, roles: Roles): Promise<void> {
  const fingerprint = `skeldir-template:${migrationsFingerprint()}`;
  await withClient(adminUrl, async (client) => {
    // Serialise template builds across the test files running in parallel.
    await acquireAdvisoryLock(client, '8642001', { pollMs: 100 });
    try {
      const { rows } = await client.query<{ comment: string | null }>(
        `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1`,
        [TEMPLATE],
      );
      if (rows[0]?.comment === fingerprint) return;
      if (rows.length) await dropTemplate(client);
      const workers = citusWorkers();
      for (const w of workers) await onWorker(adminUrl, w, (c) => dropTemplate(c));
      await createDatabaseIfMissing(client, TEMPLATE, roles.owner, 'template0');
      const db = databaseAt(urlFor(adminUrl, TEMPLATE), roles);
      if (workers.length) await prepareCitus(adminUrl, workers, roles);
      const pool = db.ownerPool({ max: 2 });
      const migrator = new SchemaMigrator(pool, { roles });
      try {
        await migrator.upgrade('head');
      } finally {
        await migrator.close();
      }
      if (workers.length) {
        await withClient(urlFor(adminUrl, TEMPLATE), (c) => distribute(c, roles));
        // CREATE DATABASE … TEMPLATE needs the template unused on every node: no new connections,
        // and Citus's maintenance daemon and cached connections ended.
        for (const target of [adminUrl, ...workers.map((w) => workerUrl(adminUrl, w))]) {
          await withClient(target, async (c) => {
            await c.query(`ALTER DATABASE ${ident(TEMPLATE)} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true`);
            await c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [TEMPLATE]);
          });
        }
      }
      await client.query(`COMMENT ON DATABASE ${ident(TEMPLATE)} IS '${fingerprint}'`);
      await client.query(`ALTER DATABASE ${ident(TEMPLATE)} WITH IS_TEMPLATE true`);
    } finally {
      await releaseAdvisoryLock(client, '8642001');
    }
  });
}

async function dropTemplate(client: pg.ClientBase): Promise<void> {
  const { rows } = await client.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [TEMPLATE]);
  if (!rows.length) return;
  await client.query(`ALTER DATABASE ${ident(TEMPLATE)} WITH IS_TEMPLATE false`);
  await client.query(`DROP DATABASE ${ident(TEMPLATE)} WITH (FORCE)`);
}

/**
 * Citus (npm run test:citus): SKELDIR_TEST_CITUS_WORKERS lists the workers (host:port) of the
 * cluster whose coordinator TEST_DATABASE_URL names. A test database is then one database of the
 * same name on every node: the template is created on each, the workers registered in the
 * coordinator's copy, migrated and distributed there, and each test file's database is a clone
 * of the template on every node (the coordinator's metadata names the workers by host and port,
 * and Citus connects to the database of the same name on them, so the clones form a cluster of
 * their own: CREATE DATABASE … TEMPLATE copies the distribution too, node by node).
 */
function citusWorkers(): string[] {
  return (process.env.SKELDIR_TEST_CITUS_WORKERS ?? '').split(',').map((w) => w.trim()).filter(Boolean);
}

/** Whether the tests run on a Citus cluster (npm run test:citus). */
export function testsRunOnCitus(): boolean {
  return citusWorkers().length > 0;
}

/**
 * How many backends of the database wait for a lock. On Citus the statements that wait are the
 * shards' (on the workers), so it counts them cluster-wide (citus_stat_activity); the
 * coordinator's backend meanwhile only waits for its worker's answer. `queryLike`: only waiters whose
 * statement matches this LIKE pattern.
 */
export async function lockWaiters(su: pg.ClientBase, queryLike?: string): Promise<number> {
  const view = testsRunOnCitus() ? 'citus_stat_activity' : 'pg_stat_activity';
  const { rows } = await su.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${view} WHERE datname = current_database() AND wait_event_type = 'Lock' AND ($1::text IS NULL OR query LIKE $1)`,
    [queryLike ?? null],
  );
  return rows[0]!.n;
}

function workerUrl(adminUrl: string, worker: string): string {
  const u = new URL(adminUrl);
  const [host, port] = worker.split(':');
  u.hostname = host!;
  u.port = port!;
  return u.toString();
}

async function onWorker<T>(adminUrl: string, worker: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  return withClient(workerUrl(adminUrl, worker), fn);
}

async function prepareCitus(adminUrl: string, workers: string[], roles: Roles, name: string = TEMPLATE): Promise<void> {
  for (const w of workers) {
    await onWorker(adminUrl, w, async (c) => {
      await createDatabaseIfMissing(c, name, roles.owner, 'template0');
    });
    await withClient(urlFor(workerUrl(adminUrl, w), name), (c) => c.query('CREATE EXTENSION IF NOT EXISTS citus'));
  }
  const coordinator = new URL(adminUrl);
  await withClient(urlFor(adminUrl, name), async (c) => {
    await c.query('CREATE EXTENSION IF NOT EXISTS citus');
    await c.query(`SELECT citus_set_coordinator_host($1, $2)`, [coordinator.hostname, Number(coordinator.port || 5432)]);
    for (const w of workers) {
      const [host, port] = w.split(':');
      await c.query(`SELECT citus_add_node($1, $2)`, [host, Number(port)]);
    }
  });
}

export interface TestDatabase extends Database {
  readonly name: string;
  /** Superuser URL of the `postgres` database of the same server. */
  readonly adminUrl: string;
  /** Drops the database. */
  drop(): Promise<void>;
}

/**
 * A fresh database for one test file: a clone of the migrated template (`head`), or an empty
 * database (`empty`) for tests that walk the migration chain themselves.
 */
export async function createTestDatabase(from: 'head' | 'empty' = 'head'): Promise<TestDatabase> {
  const adminUrl = await testServer();
  const roles = await withClient(adminUrl, (c) => ensureRoles(c, ROLE_CONFIG));
  if (from === 'head') await ensureTemplate(adminUrl, roles);
  return cloneDatabase(adminUrl, roles, from === 'head' ? TEMPLATE : 'template0');
}

/**
 * On Citus (npm run test:citus): an empty database of one name on every node, the extension
 * created and the workers registered in the coordinator's copy, not migrated and not distributed
 * (for tests that migrate and distribute themselves, e.g. an upgrade of a distributed database).
 */
export async function createCitusDatabase(): Promise<TestDatabase> {
  const workers = citusWorkers();
  if (!workers.length) throw new Error('createCitusDatabase: not on a Citus cluster (npm run test:citus)');
  const adminUrl = await testServer();
  const roles = await withClient(adminUrl, (c) => ensureRoles(c, ROLE_CONFIG));
  const name = newDatabaseName();
  await withClient(adminUrl, (c) => createDatabaseIfMissing(c, name, roles.owner, 'template0'));
  await prepareCitus(adminUrl, workers, roles, name);
  const nodes = [adminUrl, ...workers.map((w) => workerUrl(adminUrl, w))];
  return testDatabaseOn(adminUrl, roles, name, nodes);
}

/**
 * A new database copied from `template` (any database nobody is connected to, e.g. one a test
 * migrated to some revision and seeded): CREATE DATABASE … TEMPLATE copies files, ~0.5 s.
 */
export async function cloneDatabase(adminUrl: string, roles: Roles, template: string): Promise<TestDatabase> {
  const name = newDatabaseName();
  // On Citus the head template is cloned on every node (see citusWorkers).
  const nodes = template === TEMPLATE ? [adminUrl, ...citusWorkers().map((w) => workerUrl(adminUrl, w))] : [adminUrl];
  for (const node of nodes) await withClient(node, async (client) => {
    for (let attempt = 0; ; attempt++) {
      try {
        await createDatabaseIfMissing(client, name, roles.owner, template);
        return;
      } catch (error) {
        // 55006: the template is briefly in use by a concurrent clone; try again.
        if ((error as { code?: string }).code !== '55006' || attempt > 50) throw error;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 150));
      }
    }
  });
  if (nodes.length > 1) await withClient(adminUrl, (c) => c.query(databaseSettingsSql(name)));
  return testDatabaseOn(adminUrl, roles, name, nodes);
}

function newDatabaseName(): string {
  return `skeldir_t_${randomBytes(6).toString('hex')}`;
}

/** The test database `name` of the server `adminUrl`, dropped from every one of `nodes` (its Citus nodes, or the one server). */
function testDatabaseOn(adminUrl: string, roles: Roles, name: string, nodes: readonly string[]): TestDatabase {
  return {
    ...databaseAt(urlFor(adminUrl, name), roles),
    name,
    adminUrl,
    drop: async () => {
      for (const node of nodes) await withClient(node, (c) => c.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`));
    },
  };
}

/** A one-off client as the login superuser of a test database (for fixtures and catalogue checks). */
export async function superClient(db: TestDatabase): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.url });
  client.on('error', () => {});
  await client.connect();
  return client;
}
