import type { Queryable } from '../db/pool.js';
import { IngestionError, type PreparedEvent } from './prepare.js';
import type { EventOutput } from './schema.js';
import { findByKeys, insertEvents, insertedOutput, toOutput, type InsertedEvent, type StoredEvent } from './store.js';

/** What became of one event: created (201), a replay of the same body (200), or its key reused with another body (409). */
export type Outcome = { status: 201 | 200; event: EventOutput } | { status: 409; eventId: string; clientKey: string; keyField: string };

/**
 * Stores prepared events of one tenant in the caller's transaction, idempotently, and says what
 * became of each (same order as given). A key seen before (in an earlier request, a concurrent
 * one, or earlier in this list) is a replay when the body's hash matches, else a conflict; a
 * concurrent request with the same key waits on the unique index (ON CONFLICT) and then reads
 * the winner's row, so there is never a second row.
 */
export async function ingestEvents(client: Queryable, tenantId: string, events: readonly PreparedEvent[]): Promise<Outcome[]> {
  const first = new Map<string, PreparedEvent>();
  for (const e of events) if (!first.has(e.scopedKey)) first.set(e.scopedKey, e);

  const created = new Map<string, InsertedEvent>();
  const existing = new Map<string, StoredEvent>();
  let pending = [...first.values()];
  // A key that is neither inserted nor found belonged to a concurrent transaction that rolled
  // back after our INSERT gave way to it: insert again.
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt === 3) throw new Error(`idempotent insert did not settle for ${pending.length} key(s)`);
    for (const row of await insertEvents(client, tenantId, pending)) created.set(row.idempotency_key, row);
    const missing = pending.filter((e) => !created.has(e.scopedKey)).map((e) => e.scopedKey);
    for (const row of await findByKeys(client, tenantId, missing)) existing.set(row.idempotency_key, row);
    pending = pending.filter((e) => !created.has(e.scopedKey) && !existing.has(e.scopedKey));
  }

  const reported = new Set<string>();
  return events.map((e): Outcome => {
    const isFirst = first.get(e.scopedKey) === e;
    const createdRow = created.get(e.scopedKey);
    if (createdRow) {
      // Inserted now, by the first event with this key: later ones in the list replay or conflict with it.
      const firstEvent = first.get(e.scopedKey)!;
      if (isFirst && !reported.has(e.scopedKey)) {
        reported.add(e.scopedKey);
        return { status: 201, event: insertedOutput(e, createdRow, tenantId) };
      }
      if (firstEvent.requestHash === e.requestHash) return { status: 200, event: insertedOutput(firstEvent, createdRow, tenantId) };
      return { status: 409, eventId: createdRow.id, clientKey: e.clientKey, keyField: e.keyField };
    }
    const row = existing.get(e.scopedKey)!;
    // Rows stored before request hashes existed (legacy imports) cannot be compared: a replay.
    if (row.request_hash === null || row.request_hash === e.requestHash) return { status: 200, event: toOutput(row, tenantId) };
    return { status: 409, eventId: row.id, clientKey: e.clientKey, keyField: e.keyField };
  });
}

/** The 409 problem of a key reused with a different body; `field` is where the key was in the request. */
export function keyReusedError(clientKey: string, eventId: string, field: string): IngestionError {
  return new IngestionError(
    'idempotency_key_reused',
    `idempotency key ${JSON.stringify(clientKey)} was already used for event ${eventId} with a different body; use a new key for a new event`,
    { field, details: { event_id: eventId } },
  );
}
