import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { silentProgress, type Progress } from '../migrations/context.js';
import { allocate, allocateNumber } from '../money/allocate.js';
import { BAYESIAN_DEFAULTS, fitBayesianModel, type BayesianParameters } from './bayesian-model.js';
import { campaignWeights, heuristicAllocations, RATIO_UNITS, splitByCampaign, withoutExcluded } from './heuristics.js';
import { channelMask, type JourneySet } from './journey-set.js';
import { fitMarkovModel, MARKOV_DEFAULTS, type MarkovParameters } from './markov-model.js';
import { DAY_MS, isHeuristic, isPopulation, MODEL_VERSIONS, POSITION_BASED_SHARES, TOTAL_MASS, type HeuristicModel, type ModelType } from './models.js';
import type { PopulationFit } from './population.js';
import { finishRun, insertRun, insertRunTotals, jsonSafe, type RunTrigger } from './runs.js';
import { addRowsToTotals, buildTotalTerms, channelTotalIndex, runTotals } from './totals.js';
import { checkPeriod } from './reports.js';
import { readSettings } from './settings.js';
import { fitShapleyModel, SHAPLEY_DEFAULTS, type ShapleyParameters } from './shapley-model.js';
import { fixed, replaceAllocations, type AllocationRow } from './store.js';
import { loadWindow, type WindowConversion } from './window.js';
import { formatInstant } from '../db/timestamps.js';

export interface RunOptions {
  readonly model: ModelType;
  readonly from: Date;
  readonly to: Date;
  readonly trigger: RunTrigger;
  /** Overrides the tenant's setting for this run. */
  readonly lookbackDays?: number;
  readonly halfLifeDays?: number;
  readonly markov?: Partial<MarkovParameters>;
  readonly shapley?: Partial<ShapleyParameters>;
  readonly bayesian?: Partial<BayesianParameters>;
  readonly progress?: Progress;
  /** Conversions per write transaction. */
  readonly chunkSize?: number;
  /** Told the run's id as soon as its row exists (so a caller can name a run that then throws). */
  readonly onRunRecorded?: (runId: string) => void;
}

export interface RunSummary {
  readonly runId: string;
  readonly model: ModelType;
  readonly status: 'succeeded' | 'not_converged';
  readonly conversions: number;
  readonly journeys: number;
  /** Allocation rows the run wrote (inserted); a recompute that changes nothing writes 0. */
  readonly allocations: number;
  readonly skippedWithoutValue: number;
  readonly results: Record<string, unknown>;
  readonly diagnostics: Record<string, unknown>;
}

/**
 * Runs one model over the conversions of [from, to) for a tenant (as the application role, with
 * row-level security): records the run, loads the window's journeys, fits the model, and writes
 * every conversion's allocations — each chunk of conversions in its own short transaction, each
 * conversion's rows replaced as a whole (so readers never see half a conversion). A bayesian run
 * that does not converge writes nothing and is recorded as not_converged.
 */
export async function runModel(pool: pg.Pool, tenantId: string, options: RunOptions): Promise<RunSummary> {
  const { model, from, to } = options;
  checkPeriod(from, to);
  const settings = await withTenant(pool, tenantId, (c) => readSettings(c, tenantId));
  const lookbackDays = options.lookbackDays ?? settings.lookbackDays;
  const halfLifeDays = options.halfLifeDays ?? settings.halfLifeDays;
  const excluded = new Set(isHeuristic(model) ? settings.excludedChannels : []);
  const parameters = runParameters(model, lookbackDays, halfLifeDays, options, [...excluded]);
  const runId = await withTenant(pool, tenantId, (c) =>
    insertRun(c, { tenantId, model, modelVersion: MODEL_VERSIONS[model], from, to, trigger: options.trigger, parameters }),
  );
  options.onRunRecorded?.(runId);
  try {
    const window = await withTenant(pool, tenantId, (c) => loadWindow(c, tenantId, from, to, lookbackDays));
    const journeys = window.journeys.converted.length;
    // The run's channel and campaign totals, whose intervals come from the fit's draws (totals.ts).
    const built = isPopulation(model) && window.conversions.length > 0 ? buildTotalTerms(window.journeys, window.conversions) : undefined;
    let fit: PopulationFit | undefined;
    // Fitting is most of a population run's time: its own bar, one step per bootstrap replicate.
    // Bayesian: one step per NUTS iteration of every chain (warmup and draws).
    const bayes = parameters.bayesian as BayesianParameters | undefined;
    const steps =
      model === 'markov' || model === 'shapley' ? (parameters[model] as { bootstrap: number }).bootstrap
      : model === 'bayesian' && window.conversions.length > 0 ? bayes!.chains * (bayes!.warmup + bayes!.draws)
      : 0;
    const what = model === 'bayesian' ? 'NUTS iterations' : 'bootstrap replicates';
    const fitting = steps > 0 ? (options.progress ?? silentProgress).start(`${model} fitting (${what})`, steps) : undefined;
    try {
      if (model === 'markov') fit = fitMarkovModel(window.journeys, parameters.markov as MarkovParameters, () => fitting!.tick(1), built?.terms);
      if (model === 'shapley') fit = fitShapleyModel(window.journeys, parameters.shapley as ShapleyParameters, () => fitting!.tick(1), built?.terms);
      if (model === 'bayesian') fit = window.conversions.length > 0 ? fitBayesianModel(window.journeys, bayes!, () => fitting!.tick(1), built?.terms) : undefined;
    } finally {
      fitting?.stop();
    }
    // NaN / Infinity kept as strings (JSON would make them null): the summary says what is stored.
    const results = jsonSafe(fit?.results ?? {}) as Record<string, unknown>;
    const diagnostics = jsonSafe({ ...(fit?.diagnostics ?? {}), skipped_without_value: window.skippedWithoutValue }) as Record<string, unknown>;
    if (fit && !fit.converged) {
      await withTenant(pool, tenantId, (c) =>
        finishRun(c, tenantId, runId, { status: 'not_converged', results, diagnostics, conversions: window.conversions.length, journeys, allocations: 0 }),
      );
      return { runId, model, status: 'not_converged', conversions: window.conversions.length, journeys, allocations: 0, skippedWithoutValue: window.skippedWithoutValue, results, diagnostics };
    }
    const rowMeta = { run_id: runId, window: { from: formatInstant(from), to: formatInstant(to) }, parameters: compactParameters(parameters), confidence: confidenceKind(model) };
    // Bayesian rows carry the R-hat and ESS of their channel's total in the run (channel, currency).
    const channelIndex = built ? channelTotalIndex(built.keys) : undefined;
    const rowDiagnostics = (channel: string, currency: string) => {
      const i = channelIndex?.get(`${channel}\u0000${currency}`);
      const t = i === undefined ? undefined : fit?.totalSummaries?.[i];
      return t && t.rhat !== null && t.ess !== null && !t.constant ? { rHat: t.rhat, ess: t.ess } : undefined;
    };
    // Conversion i of the window is journey i of its population.
    const rowsOf = (conv: WindowConversion, index: number): AllocationRow[] =>
      isHeuristic(model) ? heuristicRows(model, conv, halfLifeDays, rowMeta, excluded) : populationRows(window.journeys, index, conv, fit!, rowMeta, rowDiagnostics);
    const currencyOf = new Map(window.conversions.map((c) => [c.id, c.currency]));
    const sums = new Map<string, bigint>();
    const progress = (options.progress ?? silentProgress).start(`${model} allocations`, window.conversions.length);
    const chunk = options.chunkSize ?? 2000;
    let allocations = 0;
    try {
      for (let at = 0; at < window.conversions.length; at += chunk) {
        const part = window.conversions.slice(at, at + chunk);
        const rows = part.flatMap((conv, i) => rowsOf(conv, at + i));
        await withTenant(pool, tenantId, async (c) => {
          // Lock the chunk's conversions (in id order: no deadlock between two runs) so a
          // concurrent writer of the same conversion waits; conversions deleted since the load
          // are skipped. tenant_id routes the lock to the tenant's shard on Citus (refused across shards).
          const locked = await c.query<{ id: string }>(
            `SELECT id FROM attribution_events WHERE tenant_id = $2 AND id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE`,
            [part.map((p) => p.id), tenantId],
          );
          const present = new Set(locked.rows.map((x) => x.id));
          const mine = rows.filter((row) => present.has(row.eventId));
          // Rows written: a conversion whose rows are unchanged is skipped and does not count.
          allocations += (await replaceAllocations(c, tenantId, model, [...present], mine)).inserted;
          if (built) addRowsToTotals(sums, mine, (id) => currencyOf.get(id)!);
        });
        progress.tick(part.length);
      }
    } finally {
      progress.stop();
    }
    const totals = built && fit?.totalSummaries ? runTotals(built.keys, fit.totalSummaries, sums, TOTAL_MASS, model === 'bayesian' ? 'posterior_draws' : 'bootstrap') : [];
    await withTenant(pool, tenantId, async (c) => {
      await insertRunTotals(c, tenantId, runId, totals);
      await finishRun(c, tenantId, runId, { status: 'succeeded', results, diagnostics, conversions: window.conversions.length, journeys, allocations });
    });
    return { runId, model, status: 'succeeded', conversions: window.conversions.length, journeys, allocations, skippedWithoutValue: window.skippedWithoutValue, results, diagnostics };
  } catch (error) {
    await withTenant(pool, tenantId, (c) => finishRun(c, tenantId, runId, { status: 'failed', error: (error as Error).message })).catch(() => {});
    throw error;
  }
}

/** What confidence_score means, per model (stored in every row's metadata). */
export const CONFIDENCE_MEANING: Record<ModelType, string> = {
  first_touch: 'rule_agreement: 1 - (max - min) of the share the five rules give this channel on this path',
  last_touch: 'rule_agreement: 1 - (max - min) of the share the five rules give this channel on this path',
  last_non_direct: 'rule_agreement: 1 - (max - min) of the share the five rules give this channel on this path',
  linear: 'rule_agreement: 1 - (max - min) of the share the five rules give this channel on this path',
  time_decay: 'rule_agreement: 1 - (max - min) of the share the five rules give this channel on this path',
  position_based: 'rule_agreement: 1 - (max - min) of the share the five rules give this channel on this path',
  markov: 'bootstrap_stability: 1 - width of the 90% Poisson-bootstrap interval of the share (1000 replicates)',
  shapley: 'bootstrap_stability: 1 - width of the 90% Poisson-bootstrap interval of the share (1000 replicates)',
  bayesian: 'credible_width: 1 - width of the 94% central credible interval of the share',
};

/** The short name of CONFIDENCE_MEANING stored on every row (the full sentence is in the docs and GET /attribution/models). */
export const confidenceKind = (model: ModelType) => CONFIDENCE_MEANING[model].split(':')[0]!;

function runParameters(model: ModelType, lookbackDays: number, halfLifeDays: number, o: RunOptions, excluded: string[]): Record<string, unknown> {
  const base: Record<string, unknown> = { model, model_version: MODEL_VERSIONS[model], lookback_days: lookbackDays };
  if (excluded.length) base.excluded_channels = excluded;
  if (model === 'time_decay') base.half_life_days = halfLifeDays;
  if (model === 'position_based') Object.assign(base, POSITION_BASED_SHARES);
  if (model === 'markov') base.markov = { ...MARKOV_DEFAULTS, ...o.markov };
  if (model === 'shapley') base.shapley = { ...SHAPLEY_DEFAULTS, ...o.shapley };
  if (model === 'bayesian') base.bayesian = { ...BAYESIAN_DEFAULTS, ...o.bayesian };
  return base;
}

function compactParameters(p: Record<string, unknown>): Record<string, unknown> {
  const { model: _m, model_version: _v, ...rest } = p;
  return rest;
}

function heuristicRows(model: HeuristicModel, conv: WindowConversion, halfLifeDays: number, meta: Record<string, unknown>, excluded: ReadonlySet<string>): AllocationRow[] {
  return heuristicAllocations([model], withoutExcluded(conv.touches, excluded), conv.at, conv.channel, conv.valueCents, halfLifeDays * DAY_MS, conv.campaign).map((a) => ({
    eventId: conv.id,
    channel: a.channel,
    campaign: a.campaign,
    cents: a.cents,
    ratio: fixed(a.ratioUnits, 5),
    confidence: fixed(a.confidenceMilli, 3),
    metadata: { ...meta, path_touches: conv.touches.length },
    ciLowerCents: null,
    ciUpperCents: null,
    rHat: null,
    ess: null,
    conversionAt: conv.atText,
  }));
}

function populationRows(
  js: JourneySet,
  journey: number,
  conv: WindowConversion,
  fit: PopulationFit,
  meta: Record<string, unknown>,
  totalDiagnostics: (channel: string, currency: string) => { rHat: number; ess: number } | undefined,
): AllocationRow[] {
  const mask = channelMask(js, journey);
  const attr = fit.byMask.get(mask);
  if (!attr) throw new Error(`internal: no attribution for channel set ${mask}`);
  const share = [...attr.share];
  if (share.some((x) => !Number.isFinite(x) || x < 0)) throw new Error(`internal: invalid shares ${share.join(',')} for channel set ${mask}`);
  const cents = allocate(conv.valueCents, share);
  const ratios = allocateNumber(RATIO_UNITS, share);
  const extra = fit.maskMetadata?.(mask) ?? {};
  const value = Number(conv.valueCents);
  // Within a channel, its credit goes to the campaigns of its touches on the path, one share per
  // touch (an empty path is the conversion's own channel and campaign).
  const path = conv.touches.length > 0 ? conv.touches : [{ channel: conv.channel, at: conv.at, campaign: conv.campaign }];
  const touchChannel = path.map((t) => js.channels.indexOf(t.channel));
  const ones = path.map(() => 1);
  const rows: AllocationRow[] = [];
  attr.channels.forEach((c, i) => {
    const own = attr.rHat ? totalDiagnostics(js.channels[c]!, conv.currency) : undefined;
    const rHat = attr.rHat ? Math.min(9.9999, Math.max(0, own?.rHat ?? attr.rHat[i]!)) : null;
    const ess = attr.ess ? Math.min(2_147_483_647, Math.floor(own?.ess ?? attr.ess[i]!)) : null;
    const byCampaign = campaignWeights(path, touchChannel, c, ones);
    const touchesOfChannel = byCampaign.reduce((a, [, w]) => a + w, 0);
    splitByCampaign(byCampaign, cents[i]!, ratios[i]!, (campaign, campaignCents, campaignRatio) => {
      let lower: bigint | null = null;
      let upper: bigint | null = null;
      if (attr.shareLower && attr.shareUpper) {
        // The interval of the allocated value (the campaign's part of the channel's), widened by at
        // most the rounding to contain the allocation.
        const part = (byCampaign.find(([k]) => k === campaign)?.[1] ?? 0) / touchesOfChannel;
        lower = BigInt(Math.floor(value * attr.shareLower[i]! * part));
        upper = BigInt(Math.ceil(value * attr.shareUpper[i]! * part));
        if (lower > campaignCents) lower = campaignCents;
        if (upper < campaignCents) upper = campaignCents;
      }
      rows.push({
        eventId: conv.id,
        channel: js.channels[c]!,
        campaign,
        cents: campaignCents,
        ratio: fixed(campaignRatio, 5),
        confidence: fixed(Math.round(attr.confidence[i]! * 1000), 3),
        metadata: { ...meta, ...extra, path_touches: conv.touches.length },
        ciLowerCents: lower,
        ciUpperCents: upper,
        rHat: rHat === null || Number.isNaN(rHat) ? null : rHat.toFixed(4),
        ess: ess === null || Number.isNaN(ess) ? null : ess,
        conversionAt: conv.atText,
      });
    });
  });
  return rows;
}
