import { CompiledQuery, type Kysely } from 'kysely';
import { ident } from '../db/pool.js';
import { CURRENT_TENANT_SQL, tenantContextSql } from '../db/tenant-context.js';

/** Reports progress of long steps (backfills). The CLI draws bars; tests stay silent. */
export interface Progress {
  start(label: string, total: number): { tick(n: number): void; stop(): void };
}

/** How long a migration statement waits for a lock before it gives up (and is retried). */
const LOCK_TIMEOUT = '3s';

async function retryOnLockTimeout<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      // 55P03 lock_not_available: lock_timeout expired; give the blocker a moment and retry.
      if ((error as { code?: string }).code !== '55P03' || attempt >= 10) throw error;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

/** SKELDIR_MIGRATION_TRACE=1 prints every migration statement slower than 50 ms (for diagnosing slow upgrades). */
const TRACE = process.env.SKELDIR_MIGRATION_TRACE === '1';
const TRACE_MIN_MS = 50;

export const silentProgress: Progress = { start: () => ({ tick() {}, stop() {} }) };

/**
 * What a revision's `up` / `down` works with. Migrations run outside one big transaction on
 * purpose: each step commits on its own, so a table is ACCESS EXCLUSIVE-locked only for a
 * catalogue change (milliseconds), never for a backfill. Every step is idempotent
 * (IF [NOT] EXISTS, catalogue checks, `WHERE col IS NULL` backfills), so a migration that was
 * interrupted part-way is finished by running it again.
 */
export class MigrationContext {
  private inTransaction = false;
  private lockTimeoutSet = false;

  constructor(
    private readonly db: Kysely<unknown>,
    readonly progress: Progress,
    /** Roles the schema grants to. */
    readonly roles: { owner: string; app: string; system: string },
    readonly batchSize = 5000,
  ) {}

  /**
   * One statement, committed on its own (or part of the enclosing `transaction`). Every
   * statement waits at most LOCK_TIMEOUT for a lock, so DDL never queues behind a long
   * transaction while every other query queues behind it; outside a transaction a statement
   * that timed out is retried a few times, inside one the whole transaction is.
   */
  async exec<R = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<R[]> {
    if (!this.lockTimeoutSet) {
      this.lockTimeoutSet = true;
      await this.raw(`SET lock_timeout = '${LOCK_TIMEOUT}'`);
    }
    return this.inTransaction ? this.raw<R>(text, params) : retryOnLockTimeout(() => this.raw<R>(text, params));
  }

  private async raw<R>(text: string, params: unknown[] = []): Promise<R[]> {
    const started = TRACE ? performance.now() : 0;
    const result = await this.db.executeQuery<R>(CompiledQuery.raw(text, params));
    if (TRACE) {
      const ms = performance.now() - started;
      if (ms >= TRACE_MIN_MS) process.stderr.write(`[migration trace] ${ms.toFixed(0)} ms  ${text.replace(/\s+/g, ' ').slice(0, 120)}\n`);
    }
    return result.rows as R[];
  }

  /** Several statements in one transaction, retried as a whole when a lock wait times out. */
  async transaction(fn: () => Promise<void>): Promise<void> {
    if (this.inTransaction) return fn();
    await retryOnLockTimeout(async () => {
      await this.exec('BEGIN');
      this.inTransaction = true;
      try {
        await fn();
        await this.raw('COMMIT');
      } catch (error) {
        await this.raw('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        this.inTransaction = false;
      }
    });
  }

  /** A DDL statement that needs a strong lock (an alias of `exec`, for readers). */
  async ddl(text: string): Promise<void> {
    await this.exec(text);
  }

  /**
   * Runs `fn` with no lock timeout: for CREATE/DROP INDEX CONCURRENTLY and VALIDATE CONSTRAINT,
   * whose locks block neither reads nor writes, and which legitimately wait for older
   * transactions to finish.
   */
  async withoutLockTimeout<T>(fn: () => Promise<T>): Promise<T> {
    await this.exec('SET lock_timeout = 0');
    try {
      return await fn();
    } finally {
      await this.raw(`SET lock_timeout = '${LOCK_TIMEOUT}'`);
    }
  }

  async columnExists(table: string, column: string): Promise<boolean> {
    const rows = await this.exec(
      `SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped`,
      [`public.${table}`, column],
    );
    return rows.length > 0;
  }

  async constraintExists(table: string, name: string): Promise<boolean> {
    const rows = await this.exec(`SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2`, [
      `public.${table}`,
      name,
    ]);
    return rows.length > 0;
  }

  /**
   * A CHECK constraint added without a long lock: NOT VALID (catalogue only), then VALIDATE,
   * which scans under SHARE UPDATE EXCLUSIVE and so blocks neither reads nor writes.
   */
  async addCheck(table: string, name: string, expression: string): Promise<void> {
    if (!(await this.constraintExists(table, name))) {
      await this.ddl(`ALTER TABLE ${ident(table)} ADD CONSTRAINT ${ident(name)} CHECK (${expression}) NOT VALID`);
    }
    await this.withoutLockTimeout(() => this.exec(`ALTER TABLE ${ident(table)} VALIDATE CONSTRAINT ${ident(name)}`));
  }

  async dropConstraint(table: string, name: string): Promise<void> {
    await this.ddl(`ALTER TABLE ${ident(table)} DROP CONSTRAINT IF EXISTS ${ident(name)}`);
  }

  /**
   * SET NOT NULL without a full-table scan under ACCESS EXCLUSIVE: a validated
   * `CHECK (col IS NOT NULL)` lets PostgreSQL (12+) prove the columns hold no NULL, so
   * SET NOT NULL is a catalogue change; the helper CHECK is dropped afterwards.
   * Call it only after the columns' backfill.
   */
  async setNotNull(table: string, columns: string[]): Promise<void> {
    const nullable = [];
    for (const column of columns) {
      const rows = await this.exec<{ attnotnull: boolean }>(
        `SELECT attnotnull FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2`,
        [`public.${table}`, column],
      );
      if (rows.length === 0) throw new Error(`column ${table}.${column} does not exist`);
      if (!rows[0]!.attnotnull) nullable.push(column);
    }
    const helper = `ck_${table}_not_null_backfill`.slice(0, 63);
    // A run that died after SET NOT NULL may have left the helper CHECK behind.
    if (nullable.length === 0) return this.dropConstraint(table, helper);
    await this.addCheck(table, helper, nullable.map((c) => `${ident(c)} IS NOT NULL`).join(' AND '));
    await this.ddl(`ALTER TABLE ${ident(table)} ${nullable.map((c) => `ALTER COLUMN ${ident(c)} SET NOT NULL`).join(', ')}`);
    await this.dropConstraint(table, helper);
  }

  /**
   * CREATE INDEX CONCURRENTLY: no write lock while it builds. A build interrupted earlier
   * leaves an INVALID index behind, which is dropped and rebuilt.
   */
  async createIndex(name: string, definition: string, options: { unique?: boolean } = {}): Promise<void> {
    const rows = await this.exec<{ indisvalid: boolean }>(
      `SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)`,
      [`public.${name}`],
    );
    if (rows.length > 0 && rows[0]!.indisvalid) return;
    await this.withoutLockTimeout(async () => {
      if (rows.length > 0) await this.exec(`DROP INDEX CONCURRENTLY IF EXISTS ${ident(name)}`);
      await this.exec(`CREATE ${options.unique ? 'UNIQUE ' : ''}INDEX CONCURRENTLY ${ident(name)} ON ${definition}`);
    });
  }

  async dropIndex(name: string): Promise<void> {
    await this.withoutLockTimeout(() => this.exec(`DROP INDEX CONCURRENTLY IF EXISTS ${ident(name)}`));
  }

  async comment(table: string, tableComment: string | null, columns: Record<string, string> = {}): Promise<void> {
    if (tableComment !== null) await this.exec(`COMMENT ON TABLE ${ident(table)} IS ${literal(tableComment)}`);
    for (const [column, text] of Object.entries(columns)) {
      await this.exec(`COMMENT ON COLUMN ${ident(table)}.${ident(column)} IS ${literal(text)}`);
    }
  }

  /** Enables and forces row-level security with the one tenant policy SPEC §1.1 describes. */
  async tenantPolicy(table: string, column = 'tenant_id'): Promise<void> {
    await this.exec(`ALTER TABLE ${ident(table)} ENABLE ROW LEVEL SECURITY`);
    await this.exec(`ALTER TABLE ${ident(table)} FORCE ROW LEVEL SECURITY`);
    await this.exec(`DROP POLICY IF EXISTS ${ident(`${table}_tenant_isolation`)} ON ${ident(table)}`);
    await this.exec(
      `CREATE POLICY ${ident(`${table}_tenant_isolation`)} ON ${ident(table)} ` +
        `USING (${ident(column)} = ${CURRENT_TENANT_SQL}) WITH CHECK (${ident(column)} = ${CURRENT_TENANT_SQL})`,
    );
  }

  /**
   * Hands a function to `role` (the system role, for SECURITY DEFINER functions that look across
   * tenants). ALTER FUNCTION … OWNER TO needs the new owner to hold CREATE on the schema: the
   * role gets it only for the moment of the transfer, unless it had it already.
   */
  async transferFunctionOwnership(signature: string, role: string): Promise<void> {
    const [had] = await this.exec<{ ok: boolean }>(`SELECT has_schema_privilege($1, 'public', 'CREATE') AS ok`, [role]);
    if (!had!.ok) await this.exec(`GRANT CREATE ON SCHEMA public TO ${ident(role)}`);
    await this.exec(`ALTER FUNCTION ${signature} OWNER TO ${ident(role)}`);
    if (!had!.ok) await this.exec(`REVOKE CREATE ON SCHEMA public FROM ${ident(role)}`);
  }

  async grantApp(table: string, privileges: string): Promise<void> {
    await this.exec(`GRANT ${privileges} ON ${ident(table)} TO ${ident(this.roles.app)}`);
  }

  async tenantIds(): Promise<string[]> {
    return (await this.exec<{ id: string }>('SELECT id FROM tenants ORDER BY id')).map((r) => r.id);
  }

  /**
   * Updates a tenant-scoped table in batches, tenant by tenant, each batch its own short
   * transaction with the tenant context set, so forced row-level security stays on and row
   * locks are held for one batch only. Rows are walked in primary-key order through the
   * (tenant_id, id) index; `where` skips rows already done, so a re-run resumes.
   */
  async backfill(spec: { table: string; label: string; set: string; where: string }): Promise<number> {
    const { table } = spec;
    const t = ident(table);
    const tenants = await this.tenantIds();
    // The walk visits every row of each tenant once; counting them is an index-only scan of
    // (tenant_id, id), far cheaper than counting the rows still to do (a filtered table scan
    // per tenant: 20 tenants × 1M rows cost seconds in the benchmark).
    const sizes: number[] = [];
    for (const tenant of tenants) {
      await this.transaction(async () => {
        await this.exec(tenantContextSql(tenant));
        const [row] = await this.exec<{ n: string }>(`SELECT count(*) AS n FROM ${t}`);
        sizes.push(Number(row!.n));
      });
    }
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total === 0) return 0;
    const bar = this.progress.start(spec.label, total);
    let updated = 0;
    try {
      for (const [i, tenant] of tenants.entries()) {
        if (sizes[i] === 0) continue;
        let last = '00000000-0000-0000-0000-000000000000';
        for (;;) {
          let seen = 0;
          await this.transaction(async () => {
            await this.exec(tenantContextSql(tenant));
            const [r] = await this.exec<{ last: string | null; seen: string; updated: string }>(
              `WITH batch AS (
                 SELECT id AS batch_id FROM ${t} WHERE tenant_id = ${CURRENT_TENANT_SQL} AND id > $1 ORDER BY id LIMIT ${this.batchSize}
               ), updated AS (
                 UPDATE ${t} SET ${spec.set} FROM batch WHERE ${t}.id = batch.batch_id AND (${spec.where}) RETURNING 1
               )
               SELECT (SELECT batch_id FROM batch ORDER BY batch_id DESC LIMIT 1) AS last,
                      (SELECT count(*) FROM batch) AS seen,
                      (SELECT count(*) FROM updated) AS updated`,
              [last],
            );
            seen = Number(r!.seen);
            if (r!.last) last = r!.last;
            updated += Number(r!.updated);
            bar.tick(seen);
          });
          if (seen < this.batchSize) break;
        }
      }
    } finally {
      bar.stop();
    }
    return updated;
  }

  /** Updates a table that is not tenant-scoped (tenants itself) in primary-key batches. */
  async backfillGlobal(spec: { table: string; label: string; set: string; where: string }): Promise<number> {
    const t = ident(spec.table);
    const [row] = await this.exec<{ n: string }>(`SELECT count(*) AS n FROM ${t} WHERE ${spec.where}`);
    const total = Number(row!.n);
    if (total === 0) return 0;
    const bar = this.progress.start(spec.label, total);
    let done = 0;
    try {
      for (;;) {
        const [r] = await this.exec<{ updated: string }>(
          `WITH batch AS (SELECT id AS batch_id FROM ${t} WHERE ${spec.where} ORDER BY id LIMIT ${this.batchSize} FOR UPDATE),
                updated AS (UPDATE ${t} SET ${spec.set} FROM batch WHERE ${t}.id = batch.batch_id RETURNING 1)
           SELECT count(*) AS updated FROM updated`,
        );
        const n = Number(r!.updated);
        done += n;
        bar.tick(n);
        if (n < this.batchSize) break;
      }
    } finally {
      bar.stop();
    }
    return done;
  }
}

export function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
