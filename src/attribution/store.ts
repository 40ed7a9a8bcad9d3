import type { Queryable } from '../db/pool.js';
import type { ModelType } from './models.js';

/** One attribution_allocations row as the engine writes it. */
export interface AllocationRow {
  readonly eventId: string;
  readonly channel: string;
  readonly cents: bigint;
  /** allocation_ratio, exactly as stored (numeric(6,5) text, e.g. "0.25000"). */
  readonly ratio: string;
  /** confidence_score, exactly as stored (numeric(4,3) text). */
  readonly confidence: string;
  readonly metadata: unknown;
  readonly ciLowerCents: bigint | null;
  readonly ciUpperCents: bigint | null;
  /** convergence_r_hat text (numeric(5,4)) or null. */
  readonly rHat: string | null;
  readonly ess: number | null;
  /** The conversion's event time as PostgreSQL text (exact to the microsecond): stored in created_at so period reports use idx_allocations_channel_performance. */
  readonly conversionAt: string;
}

/** Units of 10^-digits as the exact decimal text PostgreSQL stores. */
export function fixed(units: number, digits: number): string {
  const scale = 10 ** digits;
  const whole = Math.floor(units / scale);
  return `${whole}.${String(units - whole * scale).padStart(digits, '0')}`;
}

/**
 * Replaces the allocations of `model` for the conversions in `rows` (grouped by event), in one
 * statement, inside the caller's transaction. A conversion whose stored rows already equal the
 * new ones (same channels, cents, ratios, confidence, intervals, diagnostics, metadata, version
 * and time) is left untouched, so recomputing the same inputs leaves byte-identical rows (same
 * ids, same updated_at); any difference replaces that conversion's rows as a whole. Conversions
 * listed in `eventIds` with no new rows lose their rows of this model. `model_metadata.run_id`
 * is left out of the comparison: it names the run that computed the values, and a later run
 * that computes the same values leaves them (and that run_id) as they are.
 *
 * Callers lock the conversions first (`lockConversions`) so two writers of the same conversion
 * serialise instead of both inserting.
 */
export async function replaceAllocations(
  client: Queryable,
  tenantId: string,
  model: ModelType,
  modelVersion: string,
  eventIds: readonly string[],
  rows: readonly AllocationRow[],
): Promise<{ replacedConversions: number; inserted: number }> {
  if (eventIds.length === 0) return { replacedConversions: 0, inserted: 0 };
  const r = await client.query<{ changed: string; inserted: string }>(
    `WITH input AS (
       SELECT * FROM unnest($4::uuid[], $5::text[], $6::int[], $7::numeric(6,5)[], $8::numeric(4,3)[], $9::jsonb[],
                            $10::int[], $11::int[], $12::numeric(5,4)[], $13::int[], $14::timestamptz[])
         AS i(event_id, channel_code, cents, ratio, confidence, metadata, ci_lower, ci_upper, r_hat, ess, at)
     ),
     new_sets AS (
       SELECT event_id, array_agg(ROW(channel_code, cents, ratio, confidence, metadata - 'run_id', ci_lower, ci_upper, r_hat, ess, at)::text
                                  ORDER BY channel_code) AS rows
       FROM input GROUP BY event_id
     ),
     old_sets AS (
       SELECT event_id, array_agg(ROW(channel_code, allocated_revenue_cents, allocation_ratio, confidence_score, model_metadata - 'run_id',
                                      credible_interval_lower_cents, credible_interval_upper_cents, convergence_r_hat,
                                      effective_sample_size, created_at)::text ORDER BY channel_code) AS rows,
              bool_and(model_version = $3) AS same_version
       FROM attribution_allocations
       WHERE tenant_id = $1 AND event_id = ANY($15::uuid[]) AND model_type = $2
       GROUP BY event_id
     ),
     changed AS (
       SELECT e.id AS event_id
       FROM unnest($15::uuid[]) AS e(id)
       LEFT JOIN new_sets n ON n.event_id = e.id
       LEFT JOIN old_sets o ON o.event_id = e.id
       WHERE n.rows IS DISTINCT FROM o.rows OR NOT coalesce(o.same_version, true)
     ),
     deleted AS (
       DELETE FROM attribution_allocations a USING changed c
       WHERE a.tenant_id = $1 AND a.event_id = c.event_id AND a.model_type = $2
       RETURNING 1
     ),
     inserted AS (
       INSERT INTO attribution_allocations
         (tenant_id, event_id, channel_code, allocated_revenue_cents, allocation_ratio, model_version, model_metadata, model_type,
          confidence_score, credible_interval_lower_cents, credible_interval_upper_cents, convergence_r_hat, effective_sample_size,
          created_at, updated_at)
       SELECT $1, i.event_id, i.channel_code, i.cents, i.ratio, $3, i.metadata, $2,
              i.confidence, i.ci_lower, i.ci_upper, i.r_hat, i.ess, i.at, now()
       FROM input i JOIN changed c ON c.event_id = i.event_id
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM changed) AS changed, (SELECT count(*) FROM inserted) AS inserted`,
    [
      tenantId,
      model,
      modelVersion,
      rows.map((x) => x.eventId),
      rows.map((x) => x.channel),
      rows.map((x) => x.cents.toString()),
      rows.map((x) => x.ratio),
      rows.map((x) => x.confidence),
      rows.map((x) => JSON.stringify(x.metadata)),
      rows.map((x) => x.ciLowerCents?.toString() ?? null),
      rows.map((x) => x.ciUpperCents?.toString() ?? null),
      rows.map((x) => x.rHat),
      rows.map((x) => x.ess),
      rows.map((x) => x.conversionAt),
      eventIds,
    ],
  );
  return { replacedConversions: Number(r.rows[0]!.changed), inserted: Number(r.rows[0]!.inserted) };
}
