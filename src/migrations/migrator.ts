import { Kysely, Migrator, NO_MIGRATIONS, PostgresDialect, type Migration } from 'kysely';
import type pg from 'pg';
import { acquireAdvisoryLock, releaseAdvisoryLock } from '../db/locks.js';
import { ident } from '../db/pool.js';
import { MigrationContext, silentProgress, type Progress } from './context.js';
import { checkChain, REVISIONS } from './registry.js';
import type { Revision } from './revision.js';

export const BASE = 'base';
export const HEAD = 'head';
/** Bookkeeping table (Kysely's): one row per applied revision. */
export const MIGRATION_TABLE = 'skeldir_migration';
export const MIGRATION_LOCK_TABLE = 'skeldir_migration_lock';
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
 * in-code, ordered provider; a session advisory lock serialises concurrent runs; transactions
 * are disabled because each revision commits its own short steps (see MigrationContext).
 */
export class SchemaMigrator {
  private readonly revisions: readonly Revision[];
  private readonly db: Kysely<unknown>;
  private readonly migrator: Migrator;

  constructor(private readonly pool: pg.Pool, private readonly options: MigratorOptions) {
    this.revisions = options.revisions ?? REVISIONS;
    checkChain(this.revisions);
    this.db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
    const progress = options.progress ?? silentProgress;
    const context = (db: Kysely<unknown>) => new MigrationContext(db, progress, options.roles, options.batchSize);
    const migrations: Record<string, Migration> = {};
    for (const r of this.revisions) {
      migrations[r.id] = { up: (db) => r.up(context(db)), down: (db) => r.down(context(db)) };
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

  async current(): Promise<string> {
    const exists = await this.pool.query(`SELECT to_regclass($1) IS NOT NULL AS ok`, [`public.${MIGRATION_TABLE}`]);
    if (!exists.rows[0].ok) return BASE;
    const { rows } = await this.pool.query<{ name: string }>(`SELECT name FROM ${ident(MIGRATION_TABLE)} ORDER BY name DESC LIMIT 1`);
    return rows[0]?.name ?? BASE;
  }

  async history(): Promise<HistoryEntry[]> {
    const current = await this.current();
    const index = this.indexOf(current);
    return this.revisions.map((r, i) => ({ id: r.id, previous: r.previous, title: r.title, applied: i <= index, current: r.id === current }));
  }

  async upgrade(target: string = HEAD): Promise<MigrateResult> {
    const to = this.resolve(target);
    const from = await this.current();
    if (this.indexOf(to) < this.indexOf(from)) {
      throw new RevisionDirectionError(`the database is at ${from}, past ${to}; use \`skeldir migrate downgrade ${to}\``);
    }
    return this.moveTo(from, to);
  }

  async downgrade(target: string): Promise<MigrateResult> {
    const to = this.resolve(target);
    const from = await this.current();
    if (this.indexOf(to) > this.indexOf(from)) {
      throw new RevisionDirectionError(`the database is at ${from}, before ${to}; use \`skeldir migrate upgrade ${to}\``);
    }
    return this.moveTo(from, to);
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

  private async moveTo(from: string, to: string): Promise<MigrateResult> {
    // Serialise runs with our own lock, taken by polling (see acquireAdvisoryLock): Kysely's
    // blocks inside a statement, which deadlocks against a CREATE INDEX CONCURRENTLY of the
    // run holding it. Kysely's lock is then always free when it asks for it.
    const lock = await this.pool.connect();
    let outcome: Awaited<ReturnType<Migrator['migrateTo']>>;
    try {
      await acquireAdvisoryLock(lock, MIGRATION_RUN_LOCK);
      outcome = await this.migrator.migrateTo(to === BASE ? NO_MIGRATIONS : to);
    } finally {
      await releaseAdvisoryLock(lock, MIGRATION_RUN_LOCK).catch(() => {});
      lock.release();
    }
    const { error, results } = outcome;
    const applied = (results ?? [])
      .filter((r) => r.status === 'Success')
      .map((r) => ({ revision: r.migrationName, direction: r.direction === 'Up' ? ('up' as const) : ('down' as const) }));
    if (error) {
      const failed = results?.find((r) => r.status === 'Error');
      if (!failed) throw error;
      throw new MigrationFailedError(failed.migrationName, failed.direction === 'Up' ? 'up' : 'down', error);
    }
    return { from, to: await this.current(), applied };
  }

  private indexOf(revision: string): number {
    return revision === BASE ? -1 : this.revisions.findIndex((r) => r.id === revision);
  }

  /** Rows of `table` holding data in `columns` (or any row), across every tenant. */
  private async countRows(table: string, columns: readonly string[] | undefined): Promise<number> {
    const client = await this.pool.connect();
    try {
      const info = await client.query<{ exists: boolean; forced: boolean }>(
        `SELECT c.oid IS NOT NULL AS exists, COALESCE(c.relforcerowsecurity, false) AS forced
           FROM (SELECT to_regclass($1) AS oid) r LEFT JOIN pg_class c ON c.oid = r.oid`,
        [`public.${table}`],
      );
      if (!info.rows[0]!.exists) return 0;
      const where = columns ? columns.map((c) => `${ident(c)} IS NOT NULL`).join(' OR ') : 'true';
      const count = `SELECT count(*)::bigint AS n FROM ${ident(table)} WHERE ${where}`;
      if (!info.rows[0]!.forced) return Number((await client.query(count)).rows[0].n);
      // Row-level security is forced even for the owner: count tenant by tenant.
      let total = 0;
      const tenants = await client.query<{ id: string }>('SELECT id FROM tenants');
      for (const { id } of tenants.rows) {
        await client.query('BEGIN');
        await client.query(`SELECT set_config('app.current_tenant_id', $1, true)`, [id]);
        total += Number((await client.query(count)).rows[0].n);
        await client.query('COMMIT');
      }
      return total;
    } finally {
      client.release();
    }
  }
}
