import type pg from 'pg';
import { runsCitus } from '../db/citus.js';
import { tenantContextSql, withTenant } from '../db/tenant-context.js';
import { ingestEvents, type Outcome } from './ingest.js';
import type { PreparedEvent } from './prepare.js';
import { columnLiterals, insertedOutput, insertEventsSql, SHARED_INSTANTS, type InsertedEvent } from './store.js';

/**
 * The write of one coalescer group (POST /events, src/ingestion/coalescer.ts) and of a batch's
 * valid items (POST /events/batch, src/ingestion/routes.ts) in ONE round trip:
 * `BEGIN; SET LOCAL <tenant>; EXECUTE <insert>(…); COMMIT` as a single simple-protocol query,
 * where the usual path (withTenant + ingestEvents) takes three (BEGIN + SET LOCAL, the insert,
 * COMMIT). The tenant context is still a SET LOCAL in an explicit transaction, so Citus carries
 * it to the workers as before (src/db/tenant-context.ts). The insert is the batch path's own
 * statement (insertEventsSql), PREPAREd once per connection, its arrays given as quoted literals.
 *
 * Only events that the insert did not create (their key exists already, or a concurrent request
 * holds it) go on to the usual path, which tells a replay from a conflict, so the outcomes are
 * exactly ingestEvents'. A group with a key twice, or text PostgreSQL cannot take in a simple
 * query (a NUL; the JSON parser refuses it before, this is a second guard), takes the usual path
 * whole.
 */
export async function writeGroup(pool: pg.Pool, tenantId: string, events: readonly PreparedEvent[]): Promise<Outcome[]> {
  const usual = () => withTenant(pool, tenantId, (client) => ingestEvents(client, tenantId, events));
  // On Citus the prepared statement would be EXECUTEd on a worker that never saw the PREPARE (measured: every
  // write refused, "prepared statement … does not exist"): the usual path, asked once per pool.
  if (citusKnown.get(pool) ?? (await onCitus(pool))) return usual();
  if (events.length > 1 && new Set(events.map((e) => e.scopedKey)).size !== events.length) return usual();
  const text = committedInsertSql(tenantId, events);
  if (text.includes('\u0000')) return usual();

  const created = new Map<string, InsertedEvent>();
  for (const row of await insertCommitted(pool, text)) created.set(row.idempotency_key, row);
  const rest = events.filter((e) => !created.has(e.scopedKey));
  const others = rest.length > 0 ? await withTenant(pool, tenantId, (client) => ingestEvents(client, tenantId, rest)) : [];
  let next = 0;
  return events.map((e) => {
    const row = created.get(e.scopedKey);
    return row ? { status: 201, event: insertedOutput(e, row, tenantId) } : others[next++]!;
  });
}

const citus = new WeakMap<pg.Pool, Promise<boolean>>();
/** The answer once known: read without an await (a microtask hop per group write). */
const citusKnown = new WeakMap<pg.Pool, boolean>();
function onCitus(pool: pg.Pool): Promise<boolean> {
  let v = citus.get(pool);
  if (!v) {
    v = runsCitus(pool);
    v.then((known) => citusKnown.set(pool, known), () => undefined);
    // A failed check (the database away) is asked again next time, not remembered.
    v.catch(() => citus.delete(pool));
    citus.set(pool, v);
  }
  return v;
}

const STATEMENT = 'skeldir_ingest_group_v2';
/** Connections (pool clients live as long as their connection) on which STATEMENT is prepared. */
const prepared = new WeakSet<pg.PoolClient>();

/** PREPARE of the insert, once per connection: parsed and planned once, like a named protocol statement. */
async function prepareInsert(client: pg.PoolClient): Promise<void> {
  if (prepared.has(client)) return;
  await client.query(`PREPARE ${STATEMENT} (uuid, text[], text[], text[], text[], text[], text[], text[], int[], text[], text[], jsonb, text[], text[]) AS ${insertEventsSql}`).catch((error: { code?: string }) => {
    if (error.code !== '42P05') throw error; // duplicate_prepared_statement: it is there already
  });
  prepared.add(client);
}

/** The one query string: the transaction, the tenant context, the insert with its arrays as literals, the commit. */
function committedInsertSql(tenantId: string, events: readonly PreparedEvent[]): string {
  const sorted = [...events].sort((a, b) => (a.scopedKey < b.scopedKey ? -1 : a.scopedKey > b.scopedKey ? 1 : 0));
  // The same literals as insertEvents' parameters (columnLiterals: arrays, the raw payloads' JSON array), here as SQL string literals.
  const c = columnLiterals(sorted);
  const args = [tenantId, c.k, c.t, c.ts, c.s, c.usr, c.ch, c.cmp, c.v, c.cur, c.o, c.raw, c.h, c.anon].map(quoteLiteral);
  return `BEGIN; ${tenantContextSql(tenantId)}; EXECUTE ${STATEMENT}(${args.join(', ')}); COMMIT`;
}

/**
 * A SQL string literal: what pg's escapeLiteral writes (quotes and backslashes doubled; with a
 * backslash, an E'' literal preceded by a space), by two native replaces instead of its loop over
 * every character, which was 7 µs per event on the single-event benchmark (the raw JSON is most of
 * the text). A property test holds the two equal (coalescer-store.test.ts).
 */
export function quoteLiteral(text: string): string {
  const backslash = text.includes('\\');
  const body = text.replace(QUOTES, "''");
  return backslash ? ` E'${body.replace(BACKSLASHES, '\\\\')}'` : `'${body}'`;
}
const QUOTES = /'/g;
const BACKSLASHES = /\\/g;

/** Runs the one query string; on failure rolls back (the string stops at the failing statement, inside BEGIN). */
async function insertCommitted(pool: pg.Pool, text: string): Promise<InsertedEvent[]> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await prepareInsert(client);
    const results = (await client.query({ text, types: SHARED_INSTANTS })) as unknown as pg.QueryResult<InsertedEvent>[];
    return results[2]!.rows;
  } catch (error) {
    // Prepared again next time (a duplicate is harmless), in case the error was its absence.
    prepared.delete(client);
    await client.query('ROLLBACK').catch((e: Error) => (broken = e));
    throw error;
  } finally {
    client.release(broken);
  }
}
