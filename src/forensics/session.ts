import type pg from 'pg';
import type { Deployment } from './deployment.js';

/**
 * The one connection a forensic run probes through. Every statement is recorded (with its
 * parameters inlined as SQL literals) so each test's evidence carries the exact SQL it ran,
 * ready to paste into psql.
 */
export class Session {
  private log: string[] = [];
  /** Columns of each table, read once per phase (the schema changes only between phases). */
  readonly columnCache = new Map<string, TableColumn[]>();
  /** True inside a behavioural test's transaction (nested work then uses savepoints). */
  inTransaction = false;
  /** One server, or a distributed Citus database (set by the runner before the first test). */
  deployment: Deployment = { kind: 'postgresql' };

  constructor(readonly client: pg.ClientBase, readonly serverVersionNum: number) {}

  async query<R extends pg.QueryResultRow = Record<string, any>>(text: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    this.log.push(inline(text, params));
    return this.client.query<R>(text, params);
  }

  /** Starts recording a new test's statements and returns those of the previous one. */
  take(): string {
    const sql = this.log.map((s) => (s.trimEnd().endsWith(';') ? s.trim() : s.trim() + ';')).join('\n');
    this.log = [];
    return sql;
  }

  forgetSchema(): void {
    this.columnCache.clear();
  }
}

export interface TableColumn {
  name: string;
  type: string;
  notNull: boolean;
  hasDefault: boolean;
  /** identity ('a'/'d') or generated ('s'/'v') columns fill themselves. */
  selfFilling: boolean;
}

/** SQL literal of a value, as psql would need it. */
export function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) return `ARRAY[${value.map(literal).join(', ')}]`;
  if (value instanceof Date) return `'${value.toISOString()}'`;
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return `'${text.replace(/'/g, "''")}'`;
}

/** Replaces $1…$n with literals (longest numbers first is implied by the regex's greediness). */
export function inline(text: string, params: unknown[]): string {
  const squeezed = text.replace(/\n\s+/g, '\n  ').trim();
  return squeezed.replace(/\$(\d+)/g, (m, n: string) => (Number(n) <= params.length ? literal(params[Number(n) - 1]) : m));
}
