import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import type { Queryable } from '../db/pool.js';
import { seedDefaultChannels } from '../channels/store.js';
import { spawnCli } from '../testing/cli.js';
import { rng } from '../testing/rng.js';

/** Test and benchmark fixtures of the worker: tenants, pending events, and an audit of what committed. */

/** Tenants with their default channels, as createTenant makes them (`q` is a superuser: row-level security does not apply). */

export async function insertTenants(q: Queryable, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = randomUUID();
    await q.query(
      `INSERT INTO tenants (id, name, api_key_hash, notification_email) VALUES ($1::uuid, $2, 'unset:' || $1::text, 'tenant-' || $1::text || '@skeldir.invalid')`,
      [id, `worker test ${i}`],
    );
    await seedDefaultChannels(q, id);
    ids.push(id);
  }
  return ids;
}

export interface PendingEvent {
  id?: string;
  type: string;
  channel: string;
  session: string;
  at: Date;
  value?: number | null;
}

const CHANNELS = ['facebook_paid', 'google_search_paid', 'google_display_paid', 'tiktok_paid', 'email', 'organic', 'referral', 'direct'];

/**
 * Exactly `events` events in sessions of `touches` touchpoints, a share `conversionRate` of
 * which end in a conversion (value 1..99999 cents), spread over the 20 days before `end`.
 * Reproducible from `seed` (except the random UUIDs).
 */
export function journeys(o: { events: number; touches: number; conversionRate: number; seed?: number; end?: Date }): PendingEvent[] {
  const rnd = rng(o.seed ?? 1);
  const end = (o.end ?? new Date('2026-11-01T00:00:00Z')).getTime();
  const out: PendingEvent[] = [];
  while (out.length < o.events) {
    const session = randomUUID();
    const convAt = end - Math.floor(rnd() * 10 * 86_400_000);
    for (let t = o.touches; t >= 1 && out.length < o.events; t--) {
      out.push({ type: 'touchpoint', channel: CHANNELS[Math.floor(rnd() * CHANNELS.length)]!, session, at: new Date(convAt - t * Math.floor(1 + rnd() * 86_400_000)) });
    }
    if (out.length < o.events && rnd() < o.conversionRate) {
      out.push({ type: 'conversion', channel: CHANNELS[Math.floor(rnd() * CHANNELS.length)]!, session, at: new Date(convAt), value: 1 + Math.floor(rnd() * 99_999) });
    }
  }
  return out;
}

/**
 * Inserts pending events as the application role in the tenant's context, the way ingestion
 * stores them (processing_status 'pending', processed_at NULL). Returns their ids. RETURNING:
 * Citus runs an INSERT … SELECT from no distributed table without it as a COPY, which row-level
 * security refuses.
 */
export async function insertPendingEvents(appPool: pg.Pool, tenantId: string, events: readonly PendingEvent[]): Promise<string[]> {
  const ids = events.map((e) => e.id ?? randomUUID());
  await withTenant(appPool, tenantId, async (c) => {
    for (let from = 0; from < events.length; from += 5000) {
      const chunk = events.slice(from, from + 5000);
      await c.query(
        `INSERT INTO attribution_events
           (id, tenant_id, event_type, channel, session_id, event_timestamp, occurred_at, conversion_value_cents, revenue_cents,
            currency, idempotency_key, raw_payload, processing_status, processed_at)
         SELECT i.id, $1::uuid, i.type, i.channel, i.session, i.at, i.at, i.value, coalesce(i.value, 0), 'USD',
                $1::text || ':ext:' || i.id::text, jsonb_build_object('event_type', i.type, 'channel', i.channel, 'value', i.value),
                'pending', NULL
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::timestamptz[], $7::int[]) AS i(id, type, channel, session, at, value)
         RETURNING id`,
        [
          tenantId,
          ids.slice(from, from + 5000),
          chunk.map((e) => e.type),
          chunk.map((e) => e.channel),
          chunk.map((e) => e.session),
          chunk.map((e) => e.at.toISOString()),
          chunk.map((e) => e.value ?? null),
        ],
      );
    }
  });
  return ids;
}

/**
 * Audit triggers (test-only, installed by a superuser): every committed transition of an event
 * to 'processed' and every committed allocation insert leaves a row. Rolled-back work leaves
 * none, so these tables show exactly what the workers' committed transactions did.
 * On Citus the triggers fire on the shards, so the audit tables carry tenant_id and are
 * distributed with the tables they audit (a coordinator-local table is not there to write).
 */
export async function installAudit(superuser: Queryable, appRole = 'skeldir_app'): Promise<void> {
  const citus = (await superuser.query(`SELECT 1 FROM pg_extension WHERE extname = 'citus'`)).rows.length > 0;
  // One statement per query: Citus propagates each DDL statement to the workers by itself.
  const statements = [
    `CREATE TABLE test_processed_log (tenant_id uuid NOT NULL, event_id uuid NOT NULL, logged_at timestamptz NOT NULL DEFAULT clock_timestamp())`,
    `CREATE TABLE test_allocation_log (tenant_id uuid NOT NULL, event_id uuid NOT NULL, model_type text, channel_code text NOT NULL)`,
    ...(citus
      ? [
          `SELECT create_distributed_table('test_processed_log', 'tenant_id', colocate_with => 'attribution_events')`,
          `SELECT create_distributed_table('test_allocation_log', 'tenant_id', colocate_with => 'attribution_events')`,
        ]
      : []),
    `GRANT INSERT ON test_processed_log, test_allocation_log TO ${appRole}`,
    `CREATE FUNCTION test_log_processed() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO test_processed_log (tenant_id, event_id) VALUES (NEW.tenant_id, NEW.id); RETURN NULL; END $$`,
    `CREATE FUNCTION test_log_allocation() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO test_allocation_log (tenant_id, event_id, model_type, channel_code) VALUES (NEW.tenant_id, NEW.event_id, NEW.model_type, NEW.channel_code); RETURN NULL; END $$`,
    `CREATE TRIGGER trg_test_processed_log AFTER UPDATE OF processing_status ON attribution_events
      FOR EACH ROW WHEN (NEW.processing_status = 'processed') EXECUTE FUNCTION test_log_processed()`,
    `CREATE TRIGGER trg_test_allocation_log AFTER INSERT ON attribution_allocations
      FOR EACH ROW EXECUTE FUNCTION test_log_allocation()`,
  ];
  for (const sql of statements) await superuser.query(sql);
}

/**
 * Asserts the end state after workers ran over `expected` events: every one processed, each
 * exactly once (one committed transition), and every conversion's allocations present once per
 * model and channel, inserted once, summing to its value. Returns the model set seen.
 */
export async function assertProcessedExactlyOnce(superuser: Queryable, expected: number): Promise<{ models: string[]; conversions: number }> {
  const statuses = (await superuser.query<{ processing_status: string; n: string }>(
    `SELECT processing_status, count(*) AS n FROM attribution_events GROUP BY 1 ORDER BY 1`,
  )).rows;
  assert.deepEqual(statuses.map((r) => [r.processing_status, Number(r.n)]), [['processed', expected]], 'every event processed');
  // Separate aggregates, no subquery in a target list (Citus cannot push one down).
  const log = (await superuser.query<{ events: string; transitions: string }>(
    `SELECT count(DISTINCT event_id) AS events, count(*) AS transitions FROM test_processed_log`,
  )).rows[0]!;
  const twice = (await superuser.query<{ n: string }>(
    `SELECT count(*) AS n FROM (SELECT tenant_id, event_id FROM test_processed_log GROUP BY 1, 2 HAVING count(*) > 1) x`,
  )).rows[0]!;
  const lg = { ...log, twice: twice.n };
  assert.equal(Number(lg.twice), 0, 'no event processed twice');
  assert.equal(Number(lg.events), expected, 'every event has a committed transition to processed');
  assert.equal(Number(lg.transitions), expected, 'exactly one transition per event');

  const dup = (await superuser.query<{ n: string }>(
    `SELECT count(*) AS n FROM (SELECT 1 FROM attribution_allocations GROUP BY tenant_id, event_id, model_type, channel_code HAVING count(*) > 1) x`,
  )).rows[0]!;
  assert.equal(Number(dup.n), 0, 'no allocation duplicated');
  const inserts = (await superuser.query<{ n: string }>(
    `SELECT count(*) AS n FROM (SELECT 1 FROM test_allocation_log GROUP BY tenant_id, event_id, model_type, channel_code HAVING count(*) > 1) x`,
  )).rows[0]!;
  assert.equal(Number(inserts.n), 0, 'no allocation inserted twice');
  // Per conversion and model, joined on tenant_id too (Citus joins distributed tables only on it);
  // the summary is computed here rather than by subqueries in a target list.
  const per = (await superuser.query<{ id: string; value: string | null; model_type: string | null; cents: string | null }>(
    `SELECT c.id, c.conversion_value_cents AS value, a.model_type, sum(a.allocated_revenue_cents) AS cents
       FROM attribution_events c LEFT JOIN attribution_allocations a ON a.tenant_id = c.tenant_id AND a.event_id = c.id
      WHERE c.event_type = 'conversion' GROUP BY c.id, c.conversion_value_cents, a.model_type`,
  )).rows;
  const sets = new Map<string, string[]>();
  for (const r of per) if (r.model_type !== null) sets.set(r.id, [...(sets.get(r.id) ?? []), r.model_type].sort());
  for (const r of per) if (!sets.has(r.id)) sets.set(r.id, []);
  const conv = {
    conversions: sets.size,
    missing: per.filter((r) => r.model_type === null).length,
    wrong_sum: per.filter((r) => r.model_type !== null && String(r.cents) !== String(r.value)).length,
    model_sets: new Set([...sets.values()].filter((m) => m.length > 0).map((m) => m.join(','))).size,
    models: [...sets.values()][0] ?? null,
  };
  assert.equal(Number(conv.missing), 0, 'every conversion has allocations');
  assert.equal(Number(conv.wrong_sum), 0, 'each model\'s allocations sum to the conversion value');
  assert.ok(Number(conv.model_sets) <= 1, 'every conversion has the same models');
  return { models: conv.models ?? [], conversions: Number(conv.conversions) };
}

export interface WorkerProcess {
  readonly child: ChildProcess;
  /** Everything it wrote so far: its log lines (stdout) and any error (stderr). */
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A real `skeldir worker` process against `databaseUrl` (warnings and errors logged only). */
export function spawnWorker(databaseUrl: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): WorkerProcess {
  const child = spawnCli(['worker', ...args], { env: { DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', ...env } });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  child.stdout!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => err, exited };
}

/** Polls `check` until it holds; a bounded wait that fails the test instead of hanging it. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 120_000, everyMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function countByStatus(q: Queryable): Promise<{ pending: number; processed: number; failed: number }> {
  const { rows } = await q.query<{ pending: number; processed: number; failed: number }>(
    `SELECT count(*) FILTER (WHERE processing_status = 'pending')::int AS pending,
            count(*) FILTER (WHERE processing_status = 'processed')::int AS processed,
            count(*) FILTER (WHERE processing_status = 'failed')::int AS failed
       FROM attribution_events`,
  );
  return rows[0]!;
}
