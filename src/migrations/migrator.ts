import { CompiledQuery, Kysely, Migrator, NO_MIGRATIONS, PostgresDialect, type Migration } from 'kysely';
import type pg from 'pg';
import { acquireAdvisoryLock, releaseAdvisoryLock } from '../db/locks.js';
import { ident, type Queryable } from '../db/pool.js';
import { withTenant } from '../db/tenant-context.js';
import { MigrationContext, silentProgress, type Progress } from './context.js';
import { checkChain, REVISIONS } from './registry.js';
import type { Revision } from './revision.js';

export const BASE = 'base';
export const HEAD = 'head';
/** Bookkeeping table (Kysely's): one row per applied revision. */
export const MIGRATION_TABLE = 'skeldir_migration';
export const MIGRATION_LOCK_TABLE = 'skeldir_migration_lock';
/**
 * One row while a revision is being applied or reverted, removed when the run ends well. A run
 * killed or failed part-way leaves it, and the next run finishes that revision first.
 */
export const INFLIGHT_TABLE = 'skeldir_migration_inflight';
// The three are listed as BOOKKEEPING_TABLES in src/db/catalogue.ts (snapshots and lint skip them).
/** Advisory lock key serialising migration runs on one database ("skeldir" in ASCII). */
const MIGRATION_RUN_LOCK = '495891501420';

/** Typed failures with stable codes; the CLI turns them into messages and exit codes. */
export class UnknownRevisionError extends Error {
  readonly code = 'revision_unknown';
  constructor(readonly revision: string, known: readonly string[]) {
    super(`unknown revision ${JSON.stringify(revision)}; known: base, ${known.join(', ')}, head`);
  }
}

export class RevisionDirectionError extends Error {
  readonly code = 'revision_wrong_direction';
}

/** The schema moved (another run) between a downgrade's data-loss warning and the downgrade itself. */
export class SchemaChangedError extends Error {
  readonly code = 'schema_changed';
}

export class MigrationFailedError extends Error {
  readonly code = 'migration_failed';
  constructor(readonly revision: string, readonly direction: 'up' | 'down', override readonly cause: unknown) {
    super(`${direction === 'up' ? 'upgrade' : 'downgrade'} of revision ${revision} failed: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

export interface MigrateResult {
  from: string;
  to: string;
  applied: { revision: string; direction: 'up' | 'down' }[];
  /** A revision an earlier run left half-done, finished first (in the direction the target needs). */
  resumed?: { revision: string; interrupted: 'up' | 'down'; finished: 'up' | 'down' };
}

export interface Inflight {
  revision: string;
  direction: 'up' | 'down';
  started_at: Date;
}

export interface HistoryEntry {
  id: string;
  previous: string | null;
  title: string;
  applied: boolean;
  current: boolean;
}

export interface DataLoss {
  table: string;
  /** Columns dropped, or undefined when the whole table is dropped. */
  columns: readonly string[] | undefined;
  /** Rows holding data that the downgrade destroys. */
  rows: number;
  revision: string;
}

export interface MigratorOptions {
  progress?: Progress;
  roles: { owner: string; app: string; system: string };
  revisions?: readonly Revision[];
  batchSize?: number;
}

/**
 * Moves a database along the revision chain, using Kysely's Migrator: revisions are an
 * in-code, ordered provider; transactions are disabled because each revision commits its own
 * short steps (see MigrationContext).
 *
 * Every run holds one advisory lock from before it reads the current revision until it has
 * finished, so what it decided (direction, data loss) is what it does. The lock is ours and
 * taken by polling (see acquireAdvisoryLock): Kysely's own lock blocks inside a statement,
 * which deadlocks against a CREATE INDEX CONCURRENTLY of the run holding it; taken after
 * ours, Kysely's lock is always free.
 */
export class SchemaMigrator {
  private readonly revisions: readonly Revision[];
  private readonly db: Kysely<unknown>;
  private readonly migrator: Migrator;
  private readonly context: (db: Kysely<unknown>) => MigrationContext;

  constructor(private readonly pool: pg.Pool, private readonly options: MigratorOptions) {
    this.revisions = options.revisions ?? REVISIONS;
    checkChain(this.revisions);
    this.db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
    const progress = options.progress ?? silentProgress;
    this.context = (db: Kysely<unknown>) => new MigrationContext(db, progress, options.roles, options.batchSize);
    const migrations: Record<string, Migration> = {};
    for (const r of this.revisions) {
      migrations[r.id] = {
        up: async (db) => {
          await this.markInflight(db, r.id, 'up');
          await r.up(this.context(db));
        },
        down: async (db) => {
          await this.markInflight(db, r.id, 'down');
          await r.down(this.context(db));
        },
      };
    }
    this.migrator = new Migrator({
      db: this.db,
      provider: { getMigrations: async () => migrations },
      migrationTableName: MIGRATION_TABLE,
      migrationLockTableName: MIGRATION_LOCK_TABLE,
      disableTransactions: true,
    });
  }

  get head(): string {
    return this.revisions[this.revisions.length - 1]!.id;
  }

  /** Resolves `head`, `base` or a revision id; anything else is an UnknownRevisionError. */
  resolve(target: string): string {
    if (target === HEAD) return this.head;
    if (target === BASE) return BASE;
    if (this.revisions.some((r) => r.id === target)) return target;
    throw new UnknownRevisionError(target, this.revisions.map((r) => r.id));
  }

  /** The last applied revision, or `base`. */
  async current(client: Queryable = this.pool): Promise<string> {
    const applied = await this.applied(client);
    return applied[applied.length - 1] ?? BASE;
  }

  /** The applied revision ids, oldest first. */
  async applied(client: Queryable = this.pool): Promise<string[]> {
    const exists = await client.query(`SELECT to_regclass($1) IS NOT NULL AS ok`, [`public.${MIGRATION_TABLE}`]);
    if (!exists.rows[0].ok) return [];
    const { rows } = await client.query<{ name: string }>(`SELECT name FROM ${ident(MIGRATION_TABLE)} ORDER BY name`);
    return rows.map((r) => r.name);
  }

  /** A revision an earlier run started and did not finish, if any. */
  async inflight(client: Queryable = this.pool): Promise<Inflight | undefined> {
    const exists = await client.query(`SELECT to_regclass($1) IS NOT NULL AS ok`, [`public.${INFLIGHT_TABLE}`]);
    if (!exists.rows[0].ok) return undefined;
    const { rows } = await client.query<Inflight>(`SELECT revision, direction, started_at FROM ${ident(INFLIGHT_TABLE)}`);
    return rows[0];
  }

  async history(): Promise<HistoryEntry[]> {
    const current = await this.current();
    const index = this.indexOf(current);
    return this.revisions.map((r, i) => ({ id: r.id, previous: r.previous, title: r.title, applied: i <= index, current: r.id === current }));
  }

  async upgrade(target: string = HEAD): Promise<MigrateResult> {
    const to = this.resolve(target);
    return this.locked(async (lock) => {
      const from = await this.current(lock);
      if (this.indexOf(to) < this.indexOf(from)) {
        throw new RevisionDirectionError(`the database is at ${from}, past ${to}; use \`skeldir migrate downgrade ${to}\``);
      }
      return this.moveTo(from, to);
    });
  }

  /**
   * Downgrades to `target`. `expectedFrom` is the revision the caller saw when it warned about
   * data loss: if another run moved the schema since, nothing is done.
   */
  async downgrade(target: string, options: { expectedFrom?: string } = {}): Promise<MigrateResult> {
    const to = this.resolve(target);
    return this.locked(async (lock) => {
      const from = await this.current(lock);
      if (options.expectedFrom !== undefined && options.expectedFrom !== from) {
        throw new SchemaChangedError(`the schema moved from ${options.expectedFrom} to ${from} meanwhile; nothing was done, run the command again`);
      }
      if (this.indexOf(to) > this.indexOf(from)) {
        throw new RevisionDirectionError(`the database is at ${from}, before ${to}; use \`skeldir migrate upgrade ${to}\``);
      }
      return this.moveTo(from, to);
    });
  }

  /** The data a downgrade from the current revision to `target` would destroy. */
  async dataLoss(target: string): Promise<DataLoss[]> {
    const to = this.resolve(target);
    const from = await this.current();
    const undone = this.revisions.slice(this.indexOf(to) + 1, this.indexOf(from) + 1).reverse();
    const droppedTables = new Set(undone.flatMap((r) => r.dropsOnDowngrade.filter((d) => !d.columns).map((d) => d.table)));
    const losses: DataLoss[] = [];
    for (const r of undone) {
      for (const drop of r.dropsOnDowngrade) {
        // Columns of a table that is itself dropped further down are counted with the table.
        if (drop.columns && droppedTables.has(drop.table)) continue;
        const rows = await this.countRows(drop.table, drop.columns);
        if (rows > 0) losses.push({ table: drop.table, columns: drop.columns, rows, revision: r.id });
      }
    }
    return losses;
  }

  /** Ends the pool (Kysely ends it only if it was used, so end it here either way). */
  async close(): Promise<void> {
    await this.db.destroy();
    if (!this.pool.ended) await this.pool.end();
  }

  private async locked<T>(fn: (lock: pg.PoolClient) => Promise<T>): Promise<T> {
    const lock = await this.pool.connect();
    try {
      await acquireAdvisoryLock(lock, MIGRATION_RUN_LOCK);
      try {
        return await fn(lock);
      } finally {
        await releaseAdvisoryLock(lock, MIGRATION_RUN_LOCK).catch(() => {});
      }
    } finally {
      lock.release();
    }
  }

  /** Called with the run lock held. */
  private async moveTo(from: string, to: string): Promise<MigrateResult> {
    const resumed = await this.finishInflight(to);
    if (resumed) from = await this.current();
    const { error, results } = await this.migrator.migrateTo(to === BASE ? NO_MIGRATIONS : to);
    const applied = (results ?? [])
      .filter((r) => r.status === 'Success')
      .map((r) => ({ revision: r.migrationName, direction: r.direction === 'Up' ? ('up' as const) : ('down' as const) }));
    if (error) {
      const failed = results?.find((r) => r.status === 'Error');
      if (!failed) throw error;
      throw new MigrationFailedError(failed.migrationName, failed.direction === 'Up' ? 'up' : 'down', error);
    }
    await this.pool.query(`DELETE FROM ${ident(INFLIGHT_TABLE)}`).catch(() => {});
    return { from, to: await this.current(), applied, ...(resumed ? { resumed } : {}) };
  }

  private async markInflight(db: Kysely<unknown>, revision: string, direction: 'up' | 'down'): Promise<void> {
    await db.executeQuery(CompiledQuery.raw(
      `CREATE TABLE IF NOT EXISTS ${ident(INFLIGHT_TABLE)} (
         id boolean PRIMARY KEY DEFAULT true CHECK (id), revision text NOT NULL, direction text NOT NULL, started_at timestamptz NOT NULL)`,
    ));
    await db.executeQuery(CompiledQuery.raw(
      `INSERT INTO ${ident(INFLIGHT_TABLE)} (revision, direction, started_at) VALUES ($1, $2, now())
       ON CONFLICT (id) DO UPDATE SET revision = EXCLUDED.revision, direction = EXCLUDED.direction, started_at = EXCLUDED.started_at`,
      [revision, direction],
    ));
  }

  /**
   * A revision left half-done by a killed or failed run is brought to the state the target
   * needs before anything else. Kysely itself redoes a half-applied revision that the target
   * still needs (it is not recorded) and re-reverts a half-reverted one the target is below
   * (it is still recorded); the two other cases are ours: a half-applied revision the target
   * is below is reverted (its idempotent `down`), a half-reverted one the target still needs is
   * re-applied (its idempotent `up`).
   */
  private async finishInflight(to: string): Promise<MigrateResult['resumed']> {
    const inflight = await this.inflight();
    if (!inflight) return undefined;
    const revision = this.revisions.find((r) => r.id === inflight.revision);
    if (!revision) throw new Error(`an interrupted run left revision ${inflight.revision}, which this code does not know`);
    const recorded = (await this.applied()).includes(revision.id);
    const wanted = this.indexOf(revision.id) <= this.indexOf(to) ? 'up' : 'down';
    const ours = (inflight.direction === 'up' && !recorded && wanted === 'down') || (inflight.direction === 'down' && recorded && wanted === 'up');
    if (ours) {
      try {
        await this.db.connection().execute(async (db) => {
          const m = this.context(db);
          if (wanted === 'up') await revision.up(m);
          else await revision.down(m);
        });
      } catch (error) {
        throw new MigrationFailedError(revision.id, wanted, error);
      }
      await this.pool.query(`DELETE FROM ${ident(INFLIGHT_TABLE)}`);
    }
    return { revision: revision.id, interrupted: inflight.direction, finished: wanted };
  }

  private indexOf(revision: string): number {
    return revision === BASE ? -1 : this.revisions.findIndex((r) => r.id === revision);
  }

  /** Rows of `table` holding data in `columns` (or any row), across every tenant. */
  private async countRows(table: string, columns: readonly string[] | undefined): Promise<number> {
    const info = await this.pool.query<{ exists: boolean; forced: boolean }>(
      `SELECT c.oid IS NOT NULL AS exists, COALESCE(c.relforcerowsecurity, false) AS forced
         FROM (SELECT to_regclass($1) AS oid) r LEFT JOIN pg_class c ON c.oid = r.oid`,
      [`public.${table}`],
    );
    if (!info.rows[0]!.exists) return 0;
    const where = columns ? columns.map((c) => `${ident(c)} IS NOT NULL`).join(' OR ') : 'true';
    const count = `SELECT count(*)::bigint AS n FROM ${ident(table)} WHERE ${where}`;
    if (!info.rows[0]!.forced) return Number((await this.pool.query(count)).rows[0].n);
    // Row-level security is forced even for the owner: count tenant by tenant.
    let total = 0;
    const tenants = await this.pool.query<{ id: string }>('SELECT id FROM tenants');
    for (const { id } of tenants.rows) {
      total += await withTenant(this.pool, id, async (c) => Number((await c.query(count)).rows[0].n));
    }
    return total;
  }
}
