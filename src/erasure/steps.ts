import type pg from 'pg';
import { POPULATION_MODELS } from '../attribution/models.js';

/**
 * Erasure of one person (right to be forgotten) as a list of per-table steps. Each step handles
 * one batch in a transaction the runner opens in the tenant's context, and says whether it is
 * done; the runner repeats it until it is, then moves to the next. Every statement names the
 * tenant explicitly (Citus routing) besides row-level security.
 *
 * To cover a new table that holds a person's data, add a step here (in the order its foreign
 * keys need) and give its count a name; the catalogue scan in erasure.test.ts fails until every
 * text and jsonb column of every table is free of the erased id.
 */

export interface ErasureContext {
  tenantId: string;
  /** The sender's id of the person (attribution_events.user_id). */
  userId: string;
  batchSize: number;
  /** When the erasure runs (stale marks, the audit). */
  now: Date;
  /** The person's sessions, found before anything is deleted (a session is the person's when one of its events is). */
  sessions: string[];
  /** Anonymous ids of the identity graph linked to the person and to no one else, found before the links go. */
  anonymousIds: string[];
  /** Earliest and latest time of the events removed: which model runs lose data. */
  earliest: Date | null;
  latest: Date | null;
  /** Keyset position of scanning steps between batches. */
  cursor: Record<string, string>;
  counts: Record<string, number>;
}

export interface ErasureStep {
  /** Stable name; the counts it adds to are listed in `counts`. */
  name: string;
  counts: string[];
  /** What it does, for docs/erasure.md. */
  description: string;
  /** One batch; true when nothing is left to do. */
  batch(client: pg.ClientBase, ctx: ErasureContext): Promise<boolean>;
}

export const ERASED = '[erased]';
const NIL_UUID = '00000000-0000-0000-0000-000000000000';

const add = (ctx: ErasureContext, key: string, n: number | null) => (ctx.counts[key] = (ctx.counts[key] ?? 0) + (n ?? 0));

/**
 * Deletes events by id with what hangs on them: their dead events (which copy the payload), their allocations
 * (the FK would cascade; deleted first so they are counted), and notes the times they span.
 */
async function deleteEvents(client: pg.ClientBase, ctx: ErasureContext, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const dead = await client.query(`DELETE FROM dead_events WHERE tenant_id = $1 AND event_id = ANY($2::uuid[])`, [ctx.tenantId, ids]);
  add(ctx, 'dead_events', dead.rowCount);
  const allocations = await client.query(`DELETE FROM attribution_allocations WHERE tenant_id = $1 AND event_id = ANY($2::uuid[])`, [ctx.tenantId, ids]);
  add(ctx, 'allocations', allocations.rowCount);
  const events = await client.query<{ event_timestamp: Date }>(
    `DELETE FROM attribution_events WHERE tenant_id = $1 AND id = ANY($2::uuid[]) RETURNING event_timestamp`,
    [ctx.tenantId, ids],
  );
  add(ctx, 'events', events.rowCount);
  for (const e of events.rows) {
    if (ctx.earliest === null || e.event_timestamp < ctx.earliest) ctx.earliest = e.event_timestamp;
    if (ctx.latest === null || e.event_timestamp > ctx.latest) ctx.latest = e.event_timestamp;
  }
}

/** True when a JSON document holds the id as a string value or an object key, at any depth. */
const JSON_HOLDS = (col: string, param: string) =>
  `(jsonb_path_exists(${col}, 'strict $.** ? (@ == $id)', jsonb_build_object('id', ${param}::text))
    OR jsonb_path_exists(${col}, 'strict $.** ? (@.type() == "object") .keyvalue() ? (@.key == $id)', jsonb_build_object('id', ${param}::text)))`;

/**
 * Replaces every string value or key of a JSON document that contains the id with "[erased]": the structure and
 * the other values (amounts, FX quotes, provider states) stay, so money rows keep their bookkeeping.
 */
export function scrubJson(value: unknown, id: string, exact = !substringMatch(id)): unknown {
  const hit = (s: string) => (exact ? s === id : s.includes(id));
  if (typeof value === 'string') return hit(value) ? ERASED : value;
  if (Array.isArray(value)) return value.map((v) => scrubJson(v, id, exact));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    let n = 0;
    for (const [k, v] of Object.entries(value)) out[hit(k) ? `${ERASED}${n++ ? `_${n}` : ''}` : k] = scrubJson(v, id, exact);
    return out;
  }
  return value;
}

/**
 * Ids of at least 8 characters are also looked for inside longer strings (a payload field "user 8f3a…c1 paid");
 * shorter ones only as whole values and keys, so erasing user "42" does not touch a transaction id "ch_4242".
 */
export const SUBSTRING_MIN = 8;
export function substringMatch(id: string): boolean {
  return id.length >= SUBSTRING_MIN;
}

/** The id as it appears inside jsonb's text (quotes, backslashes, control characters escaped), or null when too short. */
function inJsonText(id: string): string | null {
  return substringMatch(id) ? JSON.stringify(id).slice(1, -1) : null;
}

/** A step scanning a table's rows of the tenant in id order, a batch at a time, handing the page to `handle`. */
function scanStep(o: {
  name: string;
  counts: string[];
  description: string;
  table: string;
  select: string;
  /** $exact: the id; $inJson: it as it appears inside jsonb text, $inText: inside plain text (both NULL for short ids). */
  where: (exact: string, inJson: string, inText: string) => string;
  handle: (client: pg.ClientBase, ctx: ErasureContext, rows: Record<string, unknown>[]) => Promise<void>;
}): ErasureStep {
  return {
    name: o.name,
    counts: o.counts,
    description: o.description,
    async batch(client, ctx) {
      // The whole tenant's rows are read in id pages (the match is a JSON path, which no index serves); only the
      // matches come back. A page of `batchSize * 10` rows keeps each transaction short.
      const after = ctx.cursor[o.name] ?? NIL_UUID;
      const page = ctx.batchSize * 10;
      const { rows } = await client.query<{ last: string | null; n: string }>(
        `SELECT max(id::text) AS last, count(*) AS n FROM (SELECT id FROM ${o.table} WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3) p`,
        [ctx.tenantId, after, page],
      );
      const last = rows[0]!.last;
      if (last === null) return true;
      const where = o.where('$4', '$5', '$6');
      const params = [ctx.tenantId, after, last, ctx.userId, inJsonText(ctx.userId), substringMatch(ctx.userId) ? ctx.userId : null];
      const matches = await client.query(
        `SELECT ${o.select} FROM ${o.table} WHERE tenant_id = $1 AND id > $2 AND id <= $3 AND (${where}) ORDER BY id`,
        params.slice(0, where.includes('$6') ? 6 : 5),
      );
      await o.handle(client, ctx, matches.rows);
      ctx.cursor[o.name] = last;
      return Number(rows[0]!.n) < page;
    },
  };
}

export const ERASURE_STEPS: ErasureStep[] = [
  {
    name: 'anonymous_events',
    counts: ['events', 'allocations', 'dead_events'],
    description:
      "Anonymous events (no user_id) of the browsers the identity graph links to the person (identity_links) and to no one else, with their allocations and dead events. An anonymous id also linked to another person keeps its events (they are that person's journey too); its link to this person goes in `identity_links`.",
    async batch(client, ctx) {
      if (ctx.anonymousIds.length === 0) return true;
      const { rows } = await client.query<{ id: string }>(
        `SELECT id FROM attribution_events WHERE tenant_id = $1 AND anonymous_id = ANY($2::text[]) AND user_id IS NULL LIMIT $3`,
        [ctx.tenantId, ctx.anonymousIds, ctx.batchSize],
      );
      await deleteEvents(client, ctx, rows.map((r) => r.id));
      return rows.length < ctx.batchSize;
    },
  },
  {
    name: 'session_events',
    counts: ['events', 'allocations', 'dead_events'],
    description:
      "Anonymous events (no user_id) of the person's sessions — a session is the person's when one of its events carries their user_id — with their allocations and dead events. Events of the same session carrying another user_id are another person's and stay.",
    async batch(client, ctx) {
      if (ctx.sessions.length === 0) return true;
      const { rows } = await client.query<{ id: string }>(
        `SELECT id FROM attribution_events WHERE tenant_id = $1 AND session_id = ANY($2::uuid[]) AND user_id IS NULL LIMIT $3`,
        [ctx.tenantId, ctx.sessions, ctx.batchSize],
      );
      await deleteEvents(client, ctx, rows.map((r) => r.id));
      return rows.length < ctx.batchSize;
    },
  },
  {
    // Last of the event steps: a run interrupted before it can be repeated, since the person's sessions are found again
    // from these events.
    name: 'events',
    counts: ['events', 'allocations', 'dead_events'],
    description: "Events carrying the person's user_id (touchpoints and conversions), with their allocations (every model) and the dead events copied from them.",
    async batch(client, ctx) {
      const { rows } = await client.query<{ id: string }>(`SELECT id FROM attribution_events WHERE tenant_id = $1 AND user_id = $2 LIMIT $3`, [
        ctx.tenantId,
        ctx.userId,
        ctx.batchSize,
      ]);
      await deleteEvents(client, ctx, rows.map((r) => r.id));
      return rows.length < ctx.batchSize;
    },
  },
  {
    // After the events: the person's anonymous ids are found from these links, so an interrupted run can be repeated.
    name: 'identity_links',
    counts: ['identity_links'],
    description: "The person's edges of the identity graph (identity_links: anonymous id → user_id).",
    async batch(client, ctx) {
      const r = await client.query(
        `DELETE FROM identity_links WHERE tenant_id = $1 AND (tenant_id, anonymous_id, user_id) IN
           (SELECT tenant_id, anonymous_id, user_id FROM identity_links WHERE tenant_id = $1 AND user_id = $2 LIMIT $3)`,
        [ctx.tenantId, ctx.userId, ctx.batchSize],
      );
      add(ctx, 'identity_links', r.rowCount);
      return (r.rowCount ?? 0) < ctx.batchSize;
    },
  },
  {
    name: 'identity_changes',
    counts: ['identity_changes_scrubbed'],
    description:
      "The identity graph's audit trail (identity_changes, kept: the application cannot delete it): the person's rows keep their action, source and times, with user_id and anonymous_id replaced by \"[erased]\".",
    async batch(client, ctx) {
      const r = await client.query(
        `UPDATE identity_changes SET user_id = $3, anonymous_id = $3 WHERE tenant_id = $1 AND id IN
           (SELECT id FROM identity_changes WHERE tenant_id = $1 AND user_id = $2 LIMIT $4)`,
        [ctx.tenantId, ctx.userId, ERASED, ctx.batchSize],
      );
      add(ctx, 'identity_changes_scrubbed', r.rowCount);
      return (r.rowCount ?? 0) < ctx.batchSize;
    },
  },
  scanStep({
    name: 'dead_event_payloads',
    counts: ['dead_events'],
    description:
      'Dead events not tied to a remaining event (ingestion rejects, webhook payloads) whose payload or error detail holds the user id as a JSON value or key, or whose message, trace or notes contain it: deleted.',
    table: 'dead_events',
    select: 'id',
    where: (exact, inJson, inText) => `${JSON_HOLDS('raw_payload', exact)} OR ${JSON_HOLDS('error_detail', exact)}
      OR strpos(raw_payload::text, ${inJson}) > 0 OR strpos(error_detail::text, ${inJson}) > 0
      OR strpos(error_message, ${inText}) > 0 OR strpos(error_traceback, ${inText}) > 0 OR strpos(remediation_notes, ${inText}) > 0`,
    async handle(client, ctx, rows) {
      if (rows.length === 0) return;
      const r = await client.query(`DELETE FROM dead_events WHERE tenant_id = $1 AND id = ANY($2::uuid[])`, [ctx.tenantId, rows.map((x) => x.id)]);
      add(ctx, 'dead_events', r.rowCount);
    },
  }),
  scanStep({
    name: 'ledger_metadata',
    counts: ['ledger_rows_scrubbed'],
    description:
      "Ledger rows (kept: bookkeeping law) whose metadata holds the user id: every string value or key containing it becomes \"[erased]\"; amounts, states, FX quotes and transitions are untouched.",
    table: 'revenue_ledger',
    select: 'id, metadata',
    where: (exact, inJson) => `metadata IS NOT NULL AND (${JSON_HOLDS('metadata', exact)} OR strpos(metadata::text, ${inJson}) > 0)`,
    async handle(client, ctx, rows) {
      for (const row of rows) {
        await client.query(`UPDATE revenue_ledger SET metadata = $3 WHERE tenant_id = $1 AND id = $2`, [ctx.tenantId, row.id, scrubJson(row.metadata, ctx.userId)]);
      }
      add(ctx, 'ledger_rows_scrubbed', rows.length);
    },
  }),
  scanStep({
    name: 'webhook_deliveries',
    counts: ['webhook_deliveries_scrubbed'],
    description: 'Webhook delivery records (kept: they deduplicate redeliveries) whose pending fact or detail holds the user id: scrubbed the same way.',
    table: 'webhook_deliveries',
    select: 'id, pending_fact, detail',
    where: (exact, inJson, inText) => `(pending_fact IS NOT NULL AND (${JSON_HOLDS('pending_fact', exact)} OR strpos(pending_fact::text, ${inJson}) > 0))
      OR detail = ${exact} OR strpos(detail, ${inText}) > 0`,
    async handle(client, ctx, rows) {
      for (const row of rows) {
        const detail = typeof row.detail !== 'string' ? null : row.detail === ctx.userId ? ERASED : substringMatch(ctx.userId) ? row.detail.replaceAll(ctx.userId, ERASED) : row.detail;
        await client.query(`UPDATE webhook_deliveries SET pending_fact = $3, detail = $4 WHERE tenant_id = $1 AND id = $2`, [
          ctx.tenantId,
          row.id,
          row.pending_fact === null ? null : scrubJson(row.pending_fact, ctx.userId),
          detail,
        ]);
      }
      add(ctx, 'webhook_deliveries_scrubbed', rows.length);
    },
  }),
  {
    name: 'model_runs',
    counts: ['model_runs_marked_stale'],
    description:
      'Markov, Shapley and Bayesian runs fitted on a window the removed events could belong to (conversion window overlapping their times, or starting within 365 days after, the longest lookback): marked stale (stale_at, stale_reason = erasure), not recomputed here; the next scheduled or manual run of the window replaces them. The five rules need nothing: they were computed per conversion, and the person\'s conversions and allocations are gone.',
    async batch(client, ctx) {
      if (ctx.earliest === null || ctx.latest === null) return true;
      const r = await client.query(
        `UPDATE attribution_model_runs SET stale_at = $4, stale_reason = 'erasure'
          WHERE tenant_id = $1 AND stale_at IS NULL AND model_type = ANY($5::text[])
            AND window_to > $2 AND window_from <= $3::timestamptz + interval '365 days'`,
        [ctx.tenantId, ctx.earliest, ctx.latest, ctx.now, POPULATION_MODELS],
      );
      add(ctx, 'model_runs_marked_stale', r.rowCount);
      return true;
    },
  },
];

/** Every count a receipt carries, zero when nothing was found. */
export const COUNT_NAMES = [...new Set(ERASURE_STEPS.flatMap((s) => s.counts))];
