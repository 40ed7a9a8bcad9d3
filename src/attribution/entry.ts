import type { ClientBase } from 'pg';
import { AttributionError } from './errors.js';
import { heuristicAllocations, withoutExcluded } from './heuristics.js';
import { loadConversionForUpdate, loadPath } from './journeys.js';
import { DAY_MS, isHeuristic, POSITION_BASED_SHARES, type HeuristicModel } from './models.js';
import { readSettings } from './settings.js';
import { fixed, replaceAllocations, type AllocationRow } from './store.js';

/**
 * The worker's entry point: attributes one processed conversion with the tenant's configured
 * models, inside the CALLER's transaction (tenant context already set), so the allocations and
 * the event's status change commit or roll back together.
 *
 * - Writes the conversion's allocations for every configured per-conversion model (the
 *   deterministic heuristics), replacing that conversion's existing rows of each model; a
 *   recompute with the same inputs changes nothing (rows stay byte-identical).
 * - Population models (markov, shapley, bayesian) need the whole window's journeys and are
 *   written by `skeldir attribution run` and the scheduler, not here.
 * - Throws AttributionError with a stable `code` for data problems (not found, not a
 *   conversion, no value): these are permanent; retrying cannot fix them.
 *
 * Returns the models written and the number of allocation rows they hold for this conversion.
 */
export async function attributeConversion(
  client: ClientBase,
  tenantId: string,
  conversionEventId: string,
): Promise<{ models: string[]; allocations: number }> {
  const ctx = await client.query<{ t: string | null }>(`SELECT NULLIF(current_setting('app.current_tenant_id', true), '') AS t`);
  if (ctx.rows[0]?.t !== tenantId) {
    throw new AttributionError('attribution_tenant_context_mismatch', `the transaction's tenant context is ${ctx.rows[0]?.t ?? 'unset'}, not ${tenantId}`);
  }
  const settings = await readSettings(client, tenantId);
  const conversion = await loadConversionForUpdate(client, tenantId, conversionEventId);
  const models = settings.models.filter(isHeuristic) as HeuristicModel[];
  if (models.length === 0) return { models: [], allocations: 0 };
  const touches = await loadPath(client, tenantId, conversion, settings.lookbackDays);
  const allocations = heuristicAllocations(models, withoutExcluded(touches, new Set(settings.excludedChannels)), conversion.at, conversion.channel, conversion.valueCents, settings.halfLifeDays * DAY_MS, conversion.campaign);
  const rows: AllocationRow[] = allocations.map((a) => ({
    model: a.model,
    eventId: conversion.id,
    channel: a.channel,
    campaign: a.campaign,
    cents: a.cents,
    ratio: fixed(a.ratioUnits, 5),
    confidence: fixed(a.confidenceMilli, 3),
    metadata: heuristicMetadata(a.model, settings, touches.length),
    ciLowerCents: null,
    ciUpperCents: null,
    rHat: null,
    ess: null,
    conversionAt: conversion.atText,
  }));
  // One statement for every configured model rather than one per model: fewer round trips in the
  // worker's transaction.
  await replaceAllocations(client, tenantId, models, [conversion.id], rows);
  const written = rows.length;
  return { models: [...models], allocations: written };
}

function heuristicMetadata(model: HeuristicModel, s: { lookbackDays: number; halfLifeDays: number; excludedChannels: readonly string[] }, touches: number): Record<string, unknown> {
  return {
    parameters: {
      lookback_days: s.lookbackDays,
      ...(s.excludedChannels.length ? { excluded_channels: [...s.excludedChannels] } : {}),
      ...(model === 'time_decay' ? { half_life_days: s.halfLifeDays } : {}),
      ...(model === 'position_based' ? POSITION_BASED_SHARES : {}),
    },
    path_touches: touches,
    confidence: 'rule_agreement',
  };
}
