import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { ident } from '../db/pool.js';
import { tenantContextSql } from '../db/tenant-context.js';
import type { Session, TableColumn } from './session.js';
import type { Check } from './types.js';

/** A raw SQL expression as a value (e.g. now()). */
export class Raw {
  constructor(readonly sql: string) {}
}
export const raw = (sql: string): Raw => new Raw(sql);
type Value = unknown;

/** What a provoked statement did: succeeded, or failed with a SQLSTATE and the object it names. */
export type Attempt =
  | { ok: true; rows: Record<string, unknown>[] }
  | { ok: false; code: string; constraint?: string; column?: string; message: string; fromShard?: string };

/**
 * Behavioural probes: one transaction per test, always rolled back. Fixtures are inserted
 * the way the application does it, with the tenant context set (row-level security is forced
 * even for the schema owner the probes act as), so a rejected statement is rejected by the
 * constraint under test and not by the policy. Each violation runs inside a SAVEPOINT that
 * is rolled back whether it succeeded or not, so probes never see each other's rows.
 */
export async function inTransaction<T>(session: Session, fn: (tx: Probe) => Promise<T>): Promise<T> {
  await session.query('BEGIN');
  session.inTransaction = true;
  try {
    // Never queue for long behind DDL or a long transaction on a live database.
    await session.query(`SET LOCAL lock_timeout = '5s'`);
    await session.query(`SET LOCAL statement_timeout = '30s'`);
    return await fn(new Probe(session));
  } finally {
    session.inTransaction = false;
    await session.query('ROLLBACK');
  }
}

export class Probe {
  private savepoints = 0;
  constructor(readonly session: Session) {}

  async useTenant(id: string): Promise<void> {
    await this.session.query(tenantContextSql(id));
  }

  /** A fixture tenant (its context set first, in case a later revision forces RLS on tenants too). */
  async tenant(overrides: Record<string, Value> = {}): Promise<string> {
    const id = randomUUID();
    await this.useTenant(id);
    await this.insert('tenants', {
      id,
      name: 'skeldir forensics fixture',
      api_key_hash: createHash('sha256').update(randomBytes(32)).digest('hex'),
      notification_email: `forensics+${id}@skeldir.invalid`,
      ...overrides,
    });
    // From revision 202612021946 allocations name the tenant's own channels: the fixture tenant
    // gets its default channels as createTenant gives them (nothing to do on older schemas).
    const seeded = await this.session.query<{ t: string | null }>(`SELECT to_regclass('public.tenant_channels')::text AS t`);
    if (seeded.rows[0]?.t) {
      await this.session.query(
        `INSERT INTO tenant_channels (tenant_id, code, display_name, family, is_paid, is_default)
         SELECT $1, code, display_name, family, is_paid, true FROM channel_taxonomy ON CONFLICT DO NOTHING`,
        [id],
      );
    }
    return id;
  }

  async event(tenantId: string, overrides: Record<string, Value> = {}): Promise<Record<string, unknown>> {
    return this.insert('attribution_events', eventValues(tenantId, overrides));
  }

  async allocation(tenantId: string, eventId: string, overrides: Record<string, Value> = {}): Promise<Record<string, unknown>> {
    return this.insert('attribution_allocations', allocationValues(tenantId, eventId, overrides));
  }

  async ledger(tenantId: string, overrides: Record<string, Value> = {}): Promise<Record<string, unknown>> {
    const values = ledgerValues(tenantId, overrides);
    // From revision 202611280300 a row cannot be born refunded or charged back (the state machine
    // starts at authorized or captured): such a fixture is inserted captured and moved to its
    // state by the legal transition, so the state CHECK is still exercised on the state it names
    // (on schemas without the machine the UPDATE is plain).
    if (values.state === 'refunded' || values.state === 'chargeback') {
      const row = await this.insert('revenue_ledger', { ...values, state: 'captured' });
      const { rows } = await this.session.query(`UPDATE revenue_ledger SET state = $2 WHERE id = $1 RETURNING *`, [row.id, values.state]);
      return rows[0]!;
    }
    return this.insert('revenue_ledger', values);
  }

  async dead(tenantId: string, overrides: Record<string, Value> = {}): Promise<Record<string, unknown>> {
    return this.insert('dead_events', deadValues(tenantId, overrides));
  }

  async transition(ledgerId: string, overrides: Record<string, Value> = {}): Promise<Record<string, unknown>> {
    const values: Record<string, Value> = { ledger_id: ledgerId, from_state: null, to_state: 'authorized', reason: 'skeldir forensics fixture' };
    // From revision 202612030600 a transition carries its ledger row's tenant (the document's six columns before it).
    const { rows } = await this.session.query<{ tenant_id: string }>(
      `SELECT l.tenant_id FROM revenue_ledger l
        WHERE l.id = $1 AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'public.revenue_state_transitions'::regclass AND attname = 'tenant_id' AND NOT attisdropped)`,
      [ledgerId],
    );
    if (rows[0]) values.tenant_id = rows[0].tenant_id;
    return this.insert('revenue_state_transitions', { ...values, ...overrides });
  }

  /**
   * INSERT … RETURNING *. A NOT NULL column without a default that the fixture does not name
   * (added by a revision after the document's) gets a neutral value of its type, so the probes
   * keep working on later schemas.
   */
  async insert(table: string, values: Record<string, Value>): Promise<Record<string, unknown>> {
    const filled = { ...values };
    for (const column of await this.columns(table)) {
      if (column.notNull && !column.hasDefault && !column.selfFilling && !(column.name in filled)) {
        filled[column.name] = neutralValue(table, column);
      }
    }
    const names = Object.keys(filled);
    const params: unknown[] = [];
    const exprs = names.map((n) => {
      const v = filled[n];
      if (v instanceof Raw) return v.sql;
      params.push(v !== null && typeof v === 'object' ? JSON.stringify(v) : v);
      return `$${params.length}`;
    });
    const { rows } = await this.session.query(
      `INSERT INTO ${ident(table)} (${names.map(ident).join(', ')}) VALUES (${exprs.join(', ')}) RETURNING *`,
      params,
    );
    return rows[0]!;
  }

  /** Runs `fn` inside a savepoint that is always rolled back; reports what happened. */
  async attempt(fn: () => Promise<Record<string, unknown>[] | Record<string, unknown> | void>): Promise<Attempt> {
    const name = `forensic_probe_${++this.savepoints}`;
    await this.session.query(`SAVEPOINT ${name}`);
    let failed: { code: string; constraint?: string; column?: string; message: string };
    try {
      const result = await fn();
      return { ok: true, rows: Array.isArray(result) ? result : result ? [result] : [] };
    } catch (error) {
      const e = error as { code?: string; constraint?: string; column?: string; message: string };
      if (!e.code || /^(08|57P)/.test(e.code)) throw error; // lost connection: the run cannot go on
      failed = { code: e.code, constraint: e.constraint, column: e.column, message: e.message };
    } finally {
      await this.session.query(`ROLLBACK TO SAVEPOINT ${name}`);
    }
    if (this.session.deployment.kind === 'citus' && !failed.constraint && !failed.column) return this.fromShard(failed.code, failed.message);
    return { ok: false, ...failed };
  }

  async expectRejected(
    label: string,
    fn: () => Promise<unknown>,
    want: { code: string; constraint?: string; column?: string },
  ): Promise<Check> {
    const a = await this.attempt(fn as () => Promise<void>);
    const expected = `rejected ${describeWant(want)}`;
    if (a.ok) return { label, expected, actual: 'accepted', pass: false };
    const pass = a.code === want.code && (!want.constraint || a.constraint === want.constraint) && (!want.column || a.column === want.column);
    return { label, expected, actual: `rejected ${describeAttempt(a)}${pass ? '' : `: ${a.message}`}`, pass };
  }

  async expectAccepted(label: string, fn: () => Promise<unknown>): Promise<Check> {
    const a = await this.attempt(fn as () => Promise<void>);
    return { label, expected: 'accepted', actual: a.ok ? 'accepted' : `rejected ${describeAttempt(a)}: ${a.message}`, pass: a.ok };
  }

  /**
   * On Citus a violation is raised on a worker's shard and forwarded with its SQLSTATE and message
   * only (no constraint or column field), naming the shard's objects: `idx_x_102008`, relation
   * `t_102008`. The constraint (less a `_<shardid>` suffix of a real shard) and the column are read
   * from PostgreSQL's message, and the evidence says so; a message in another language (lc_messages)
   * names nothing, and the test fails rather than pass on the code alone.
   */
  private async fromShard(code: string, message: string): Promise<Attempt> {
    const constraint = /violates (?:unique|check|foreign key|exclusion) constraint "([^"]+)"/.exec(message)?.[1];
    const column = /null value in column "([^"]+)"/.exec(message)?.[1];
    let name = constraint;
    const suffix = constraint ? /^(.+)_(\d+)$/.exec(constraint) : null;
    if (suffix) {
      const { rows } = await this.session.query(`SELECT 1 FROM pg_dist_shard WHERE shardid = $1`, [suffix[2]]);
      if (rows.length) name = suffix[1];
    }
    return { ok: false, code, constraint: name, column, message, fromShard: constraint ?? column ? message : undefined };
  }

  private async columns(table: string): Promise<TableColumn[]> {
    const cached = this.session.columnCache.get(table);
    if (cached) return cached;
    const { rows } = await this.session.query<{ name: string; type: string; not_null: boolean; has_default: boolean; self_filling: boolean }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
              a.atthasdef AS has_default, (a.attidentity <> '' OR a.attgenerated <> '') AS self_filling
         FROM pg_attribute a
        WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
      [`public.${table}`],
    );
    const columns = rows.map((r) => ({ name: r.name, type: r.type, notNull: r.not_null, hasDefault: r.has_default, selfFilling: r.self_filling }));
    this.session.columnCache.set(table, columns);
    return columns;
  }
}

function describeWant(w: { code: string; constraint?: string; column?: string }): string {
  return `${w.code}${w.constraint ? ` ${w.constraint}` : ''}${w.column ? ` (column ${w.column})` : ''}`;
}

function describeAttempt(a: Extract<Attempt, { ok: false }>): string {
  return `${a.code}${a.constraint ? ` ${a.constraint}` : ''}${a.code === '23502' && a.column ? ` (column ${a.column})` : ''}` +
    (a.fromShard ? ` [Citus: read from the shard's message "${a.fromShard}"]` : '');
}

export function eventValues(tenantId: string, overrides: Record<string, Value> = {}): Record<string, Value> {
  return {
    tenant_id: tenantId,
    // Legacy columns are still NOT NULL (SPEC §1.1): fill them as the application does.
    occurred_at: raw('now()'),
    raw_payload: { source: 'skeldir forensics fixture' },
    revenue_cents: 0,
    idempotency_key: `${tenantId}:ext:skeldir-forensics-${randomUUID()}`,
    event_type: 'conversion',
    channel: 'unknown',
    event_timestamp: raw('now()'),
    session_id: randomUUID(),
    conversion_value_cents: 1000,
    currency: 'USD',
    ...overrides,
  };
}

export function allocationValues(tenantId: string, eventId: string, overrides: Record<string, Value> = {}): Record<string, Value> {
  return {
    tenant_id: tenantId,
    event_id: eventId,
    channel_code: 'unknown',
    allocated_revenue_cents: 0,
    allocation_ratio: 0,
    model_type: 'linear',
    confidence_score: 0.5,
    ...overrides,
  };
}

export function ledgerValues(tenantId: string, overrides: Record<string, Value> = {}): Record<string, Value> {
  return {
    tenant_id: tenantId,
    revenue_cents: 1000,
    transaction_id: `${tenantId}:forensics:${randomUUID()}`,
    state: 'authorized',
    amount_cents: 1000,
    currency: 'USD',
    verification_source: 'skeldir_forensics',
    verification_timestamp: raw('now()'),
    ...overrides,
  };
}

export function deadValues(tenantId: string, overrides: Record<string, Value> = {}): Record<string, Value> {
  return {
    tenant_id: tenantId,
    source: 'skeldir_forensics',
    error_code: 'forensic_probe',
    error_detail: { message: 'skeldir forensics fixture' },
    raw_payload: { source: 'skeldir forensics fixture' },
    event_type: 'conversion',
    error_type: 'forensic_probe',
    error_message: 'skeldir forensics fixture',
    ...overrides,
  };
}

/** A value of `column`'s type that satisfies NOT NULL; for columns added after the document. */
function neutralValue(table: string, column: TableColumn): Value {
  const t = column.type;
  const length = /\((\d+)\)/.exec(t)?.[1];
  if (t === 'uuid') return raw('gen_random_uuid()');
  if (/^(text|character varying|character)\b/.test(t)) return 'forensics'.slice(0, length ? Number(length) : 9);
  if (/^(smallint|integer|bigint|numeric|real|double precision)\b/.test(t)) return 0;
  if (t === 'boolean') return false;
  if (/^(timestamp|date)/.test(t)) return raw('now()');
  if (t === 'jsonb' || t === 'json') return {};
  if (t === 'bytea') return raw(`'\\x00'::bytea`);
  if (t.endsWith('[]')) return raw(`'{}'`);
  throw new Error(`cannot make a fixture value for ${table}.${column.name} (${t}, NOT NULL, no default)`);
}
