import type { Queryable } from '../db/pool.js';
import { MODEL_VERSIONS, type ModelType } from './models.js';

/** One attribution_allocations row as the engine writes it. */
export interface AllocationRow {
  readonly eventId: string;
  /** Set by callers replacing several models at once (replaceAllocations' `models`). */
  readonly model?: ModelType;
  readonly channel: string;
  /** The campaign of the touches credited (attribution_allocations.campaign_id; null: none). */
  readonly campaign: string | null;
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
 * Replaces the allocations of the given models for the conversions `eventIds`, in one statement,
 * inside the caller's transaction (one statement for all models: the worker writes five per
 * conversion). For each (conversion, model) whose stored rows already equal the new ones (same
 * channels and campaigns, cents, ratios, confidence, intervals, diagnostics, metadata, version and time) nothing
 * is written, so recomputing the same inputs leaves byte-identical rows (same ids, same
 * updated_at); any difference replaces that conversion's rows of that model as a whole; a
 * (conversion, model) with no new rows loses its rows. `model_metadata.run_id` is left out of the
 * comparison: it names the run that computed the values, and a later run that computes the same
 * values leaves them (and that run_id) as they are.
 *
 * Callers lock the conversions first so two writers of the same conversion serialise instead of
 * both inserting.
 */
export async function replaceAllocations(
  client: Queryable,
  tenantId: string,
  models: ModelType | readonly ModelType[],
  eventIds: readonly string[],
  rows: readonly AllocationRow[],
): Promise<{ replaced: number; inserted: number }> {
  const modelList = typeof models === 'string' ? [models] : [...models];
  if (eventIds.length === 0 || modelList.length === 0) return { replaced: 0, inserted: 0 };
  const single = typeof models === 'string' ? models : undefined;
  const r = await client.query<{ changed: string; inserted: string }>(
    `WITH input AS (
       SELECT * FROM unnest($3::text[], $4::uuid[], $5::text[], $6::int[], $7::numeric(6,5)[], $8::numeric(4,3)[], $9::jsonb[],
                            $10::int[], $11::int[], $12::numeric(5,4)[], $13::int[], $14::timestamptz[], $17::text[])
         AS i(model_type, event_id, channel_code, cents, ratio, confidence, metadata, ci_lower, ci_upper, r_hat, ess, at, campaign_id)
     ),
     targets AS (
       SELECT e.id AS event_id, m.model_type
       FROM unnest($15::uuid[]) AS e(id) CROSS JOIN unnest($2::text[]) AS m(model_type)
     ),
     new_sets AS (
       SELECT event_id, model_type,
              array_agg(ROW(channel_code, campaign_id, cents, ratio, confidence, metadata - 'run_id', ci_lower, ci_upper, r_hat, ess, at)::text
                        ORDER BY channel_code, campaign_id NULLS FIRST) AS rows
       FROM input GROUP BY event_id, model_type
     ),
     old_sets AS (
       SELECT event_id, model_type,
              array_agg(ROW(channel_code, campaign_id, allocated_revenue_cents, allocation_ratio, confidence_score, model_metadata - 'run_id',
                            credible_interval_lower_cents, credible_interval_upper_cents, convergence_r_hat,
                            effective_sample_size, created_at)::text ORDER BY channel_code, campaign_id NULLS FIRST) AS rows,
              array_agg(DISTINCT model_version) AS versions
       FROM attribution_allocations
       WHERE tenant_id = $1 AND event_id = ANY($15::uuid[]) AND model_type = ANY($2::text[])
       GROUP BY event_id, model_type
     ),
     changed AS (
       SELECT t.event_id, t.model_type
       FROM targets t
       LEFT JOIN new_sets n ON n.event_id = t.event_id AND n.model_type = t.model_type
       LEFT JOIN old_sets o ON o.event_id = t.event_id AND o.model_type = t.model_type
       WHERE n.rows IS DISTINCT FROM o.rows
          OR (o.versions IS NOT NULL AND o.versions <> ARRAY[$16::jsonb ->> t.model_type])
     ),
     deleted AS (
       DELETE FROM attribution_allocations a USING changed c
       WHERE a.tenant_id = $1 AND a.event_id = c.event_id AND a.model_type = c.model_type
       RETURNING 1
     ),
     inserted AS (
       INSERT INTO attribution_allocations
         (tenant_id, event_id, channel_code, campaign_id, allocated_revenue_cents, allocation_ratio, model_version, model_metadata, model_type,
          confidence_score, credible_interval_lower_cents, credible_interval_upper_cents, convergence_r_hat, effective_sample_size,
          created_at, updated_at)
       SELECT $1, i.event_id, i.channel_code, i.campaign_id, i.cents, i.ratio, $16::jsonb ->> i.model_type, i.metadata, i.model_type,
              i.confidence, i.ci_lower, i.ci_upper, i.r_hat, i.ess, i.at, now()
       FROM input i JOIN changed c ON c.event_id = i.event_id AND c.model_type = i.model_type
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM changed) AS changed, (SELECT count(*) FROM inserted) AS inserted`,
    [
      tenantId,
      modelList,
      rows.map((x) => x.model ?? single ?? fail()),
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
      JSON.stringify(MODEL_VERSIONS),
      rows.map((x) => x.campaign),
    ],
  );
  return { replaced: Number(r.rows[0]!.changed), inserted: Number(r.rows[0]!.inserted) };
}

function fail(): never {
  throw new Error('replaceAllocations: a row without a model while replacing several models');
}
