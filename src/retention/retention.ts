import type pg from 'pg';
import type { Queryable } from '../db/pool.js';
import { withTenant } from '../db/tenant-context.js';
import { DomainError } from '../errors.js';
import { formatInstantOrNull } from '../db/timestamps.js';

/**
 * Retention: a tenant's rules (retention_settings), and the run that applies them. Every part works in batches of
 * RETENTION_BATCH rows, each batch one short transaction in the tenant's context (row locks on those rows only),
 * so a run over millions of old rows never blocks ingestion or the worker for long.
 */
export const RETENTION_BATCH = 1_000;
export const REDACTED = { redacted: 'retention' };
const DAY_MS = 86_400_000;

export class RetentionError extends DomainError {
  constructor(message: string, field?: string) {
    super('retention_settings_invalid', message, field === undefined ? {} : { field });
    this.name = 'RetentionError';
  }
}

export interface RetentionSettings {
  payload_days: number | null;
  event_days: number | null;
  dead_event_payload_days: number | null;
}
export const SETTING_NAMES = ['payload_days', 'event_days', 'dead_event_payload_days'] as const;
const NONE: RetentionSettings = { payload_days: null, event_days: null, dead_event_payload_days: null };

export async function readRetentionSettings(client: Queryable, tenantId: string): Promise<RetentionSettings> {
  const { rows } = await client.query<RetentionSettings>(
    `SELECT payload_days, event_days, dead_event_payload_days FROM retention_settings WHERE tenant_id = $1`,
    [tenantId],
  );
  return rows[0] ?? NONE;
}

/** Sets the given rules (null: keep forever), leaving the others as they are. */
export async function writeRetentionSettings(client: Queryable, tenantId: string, change: Partial<RetentionSettings>): Promise<RetentionSettings> {
  for (const name of SETTING_NAMES) {
    const v = change[name];
    if (v !== undefined && v !== null && (!Number.isInteger(v) || v < 1 || v > 36_500)) {
      throw new RetentionError(`${name} must be a whole number of days from 1 to 36500, or null to keep forever`, name);
    }
  }
  const next = { ...(await readRetentionSettings(client, tenantId)), ...change };
  await client.query(
    `INSERT INTO retention_settings (tenant_id, payload_days, event_days, dead_event_payload_days) VALUES ($1, $2, $3, $4)
     ON CONFLICT (tenant_id) DO UPDATE SET payload_days = EXCLUDED.payload_days, event_days = EXCLUDED.event_days,
       dead_event_payload_days = EXCLUDED.dead_event_payload_days`,
    [tenantId, next.payload_days, next.event_days, next.dead_event_payload_days],
  );
  return next;
}

export interface RetentionReport {
  tenant_id: string;
  dry_run: boolean;
  settings: RetentionSettings;
  /** Cut-offs applied (rows strictly older go), null for a rule not set. */
  cutoffs: { payloads: string | null; events: string | null; dead_event_payloads: string | null };
  /** Rows changed, or that would be under --dry-run. */
  events_deleted: number;
  allocations_folded: number;
  payloads_redacted: number;
  dead_event_payloads_redacted: number;
  batches: number;
}

const cutoff = (now: Date, days: number | null) => (days === null ? null : new Date(now.getTime() - days * DAY_MS));

// Old events the worker is done with (a pending one is still to be processed: never removed under it).
const OLD_EVENTS = `tenant_id = $1 AND event_timestamp < $2 AND processing_status <> 'pending'`;
const OLD_PAYLOADS = `tenant_id = $1 AND event_timestamp < $2 AND raw_payload <> '{"redacted": "retention"}'::jsonb`;
const OLD_DEAD = `tenant_id = $1 AND created_at < $2 AND raw_payload <> '{"redacted": "retention"}'::jsonb`;

/**
 * Folds the allocations of these events into allocation_daily_aggregates (per UTC day of the conversion, model,
 * channel, currency), then deletes the allocations and the events, in the caller's transaction: the money moves
 * from rows to sums atomically. Dead events of these events keep their record (event_id becomes NULL by the
 * foreign key); their payloads follow the dead-event rule.
 */
async function foldAndDelete(c: pg.ClientBase, tenantId: string, ids: string[], now: Date): Promise<{ events: number; allocations: number }> {
  await c.query(
    `INSERT INTO allocation_daily_aggregates AS g
       (tenant_id, day, model_type, channel_code, currency, allocated_revenue_cents, attributed_conversions, conversions, allocations,
        confidence_sum, credible_interval_lower_cents, credible_interval_upper_cents, allocations_with_interval, updated_at)
     SELECT a.tenant_id, (a.created_at AT TIME ZONE 'UTC')::date, a.model_type, a.channel_code, e.currency,
            sum(a.allocated_revenue_cents), sum(a.allocation_ratio), count(DISTINCT a.event_id), count(*),
            sum(a.confidence_score), sum(a.credible_interval_lower_cents), sum(a.credible_interval_upper_cents), count(a.credible_interval_lower_cents), $3
       FROM attribution_allocations a JOIN attribution_events e ON e.tenant_id = a.tenant_id AND e.id = a.event_id
      WHERE a.tenant_id = $1 AND a.event_id = ANY($2::uuid[])
      GROUP BY 1, 2, 3, 4, 5
     ON CONFLICT (tenant_id, day, model_type, channel_code, currency) DO UPDATE SET
       allocated_revenue_cents = g.allocated_revenue_cents + EXCLUDED.allocated_revenue_cents,
       attributed_conversions = g.attributed_conversions + EXCLUDED.attributed_conversions,
       conversions = g.conversions + EXCLUDED.conversions,
       allocations = g.allocations + EXCLUDED.allocations,
       confidence_sum = g.confidence_sum + EXCLUDED.confidence_sum,
       credible_interval_lower_cents = CASE WHEN EXCLUDED.credible_interval_lower_cents IS NULL THEN g.credible_interval_lower_cents
         ELSE coalesce(g.credible_interval_lower_cents, 0) + EXCLUDED.credible_interval_lower_cents END,
       credible_interval_upper_cents = CASE WHEN EXCLUDED.credible_interval_upper_cents IS NULL THEN g.credible_interval_upper_cents
         ELSE coalesce(g.credible_interval_upper_cents, 0) + EXCLUDED.credible_interval_upper_cents END,
       allocations_with_interval = g.allocations_with_interval + EXCLUDED.allocations_with_interval,
       updated_at = EXCLUDED.updated_at`,
    [tenantId, ids, now],
  );
  const allocations = await c.query(`DELETE FROM attribution_allocations WHERE tenant_id = $1 AND event_id = ANY($2::uuid[])`, [tenantId, ids]);
  const events = await c.query(`DELETE FROM attribution_events WHERE tenant_id = $1 AND id = ANY($2::uuid[])`, [tenantId, ids]);
  return { events: events.rowCount ?? 0, allocations: allocations.rowCount ?? 0 };
}

async function count(pool: pg.Pool, tenantId: string, sql: string, params: unknown[]): Promise<number> {
  return withTenant(pool, tenantId, async (c) => Number((await c.query<{ n: string }>(sql, params)).rows[0]!.n));
}

/** Applies (or, with dryRun, counts) one tenant's retention rules as of `now`. */
export async function runRetention(pool: pg.Pool, tenantId: string, o: { dryRun?: boolean; now?: Date; batchSize?: number; stopped?: () => boolean } = {}): Promise<RetentionReport> {
  const now = o.now ?? new Date();
  const batch = o.batchSize ?? RETENTION_BATCH;
  const settings = await withTenant(pool, tenantId, (c) => readRetentionSettings(c, tenantId));
  const events = cutoff(now, settings.event_days);
  const payloads = cutoff(now, settings.payload_days);
  const dead = cutoff(now, settings.dead_event_payload_days);
  const report: RetentionReport = {
    tenant_id: tenantId,
    dry_run: Boolean(o.dryRun),
    settings,
    cutoffs: { payloads: formatInstantOrNull(payloads), events: formatInstantOrNull(events), dead_event_payloads: formatInstantOrNull(dead) },
    events_deleted: 0,
    allocations_folded: 0,
    payloads_redacted: 0,
    dead_event_payloads_redacted: 0,
    batches: 0,
  };
  if (o.dryRun) {
    if (events) {
      report.events_deleted = await count(pool, tenantId, `SELECT count(*) AS n FROM attribution_events WHERE ${OLD_EVENTS}`, [tenantId, events]);
      report.allocations_folded = await count(
        pool,
        tenantId,
        `SELECT count(*) AS n FROM attribution_allocations a JOIN attribution_events e ON e.tenant_id = a.tenant_id AND e.id = a.event_id
          WHERE a.tenant_id = $1 AND e.event_timestamp < $2 AND e.processing_status <> 'pending'`,
        [tenantId, events],
      );
    }
    // Payloads of events that the event rule deletes anyway are not counted twice.
    if (payloads && !(events && events >= payloads)) {
      report.payloads_redacted = await count(pool, tenantId, `SELECT count(*) AS n FROM attribution_events WHERE ${OLD_PAYLOADS}${events ? ` AND NOT (${OLD_EVENTS.replaceAll('$2', '$3')})` : ''}`, events ? [tenantId, payloads, events] : [tenantId, payloads]);
    }
    if (dead) report.dead_event_payloads_redacted = await count(pool, tenantId, `SELECT count(*) AS n FROM dead_events WHERE ${OLD_DEAD}`, [tenantId, dead]);
    return report;
  }
  const stopped = o.stopped ?? (() => false);
  if (events) {
    for (;;) {
      if (stopped()) return report;
      const done = await withTenant(pool, tenantId, async (c) => {
        const { rows } = await c.query<{ id: string }>(`SELECT id FROM attribution_events WHERE ${OLD_EVENTS} ORDER BY event_timestamp LIMIT $3 FOR UPDATE SKIP LOCKED`, [tenantId, events, batch]);
        if (rows.length === 0) return true;
        const r = await foldAndDelete(c, tenantId, rows.map((x) => x.id), now);
        report.events_deleted += r.events;
        report.allocations_folded += r.allocations;
        report.batches++;
        return rows.length < batch;
      });
      if (done) break;
    }
  }
  for (const [cut, table, where, key] of [
    [payloads, 'attribution_events', OLD_PAYLOADS, 'payloads_redacted'],
    [dead, 'dead_events', OLD_DEAD, 'dead_event_payloads_redacted'],
  ] as const) {
    if (!cut) continue;
    for (;;) {
      if (stopped()) return report;
      const n = await withTenant(pool, tenantId, async (c) => {
        const r = await c.query(
          `UPDATE ${table} SET raw_payload = $3 WHERE tenant_id = $1 AND id IN (SELECT id FROM ${table} WHERE ${where} LIMIT $4 FOR UPDATE SKIP LOCKED)`,
          [tenantId, cut, REDACTED, batch],
        );
        return r.rowCount ?? 0;
      });
      report[key] += n;
      if (n > 0) report.batches++;
      if (n < batch) break;
    }
  }
  return report;
}

/** Tenants with at least one rule, read as the owner (the application role sees one tenant at a time). */
export async function tenantsWithRetention(owner: pg.Pool): Promise<string[]> {
  const tenants = (await owner.query<{ id: string }>(`SELECT id FROM tenants ORDER BY id`)).rows.map((r) => r.id);
  const out: string[] = [];
  for (const t of tenants) {
    const s = await withTenant(owner, t, (c) => readRetentionSettings(c, t));
    if (s.payload_days !== null || s.event_days !== null || s.dead_event_payload_days !== null) out.push(t);
  }
  return out;
}
