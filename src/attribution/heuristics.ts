import { allocate, allocateNumber } from '../money/allocate.js';
import { HEURISTIC_MODELS, type HeuristicModel } from './models.js';

/** One touchpoint of a journey: its channel code, time (ms since the epoch) and campaign (null: none). */
export interface Touch {
  readonly channel: string;
  readonly at: number;
  readonly campaign?: string | null;
}

/**
 * Per-touch credit of a deterministic rule, for touches in time order (ties already broken
 * by the caller). Returned weights are relative (not normalised); where the rule's shares are
 * rational they are small integers, so the money split takes its exact integer path.
 *
 * - first_touch / last_touch: the first / last touch gets everything.
 * - linear: every touch the same (a channel touched twice gets twice the credit).
 * - time_decay: 2^(−Δt / half-life), Δt = conversion time − touch time in continuous time
 *   (milliseconds, not whole days). Weights are taken relative to the most recent touch (which
 *   weighs 1), so the total never underflows to zero however old the path.
 * - position_based: 40 % first, 40 % last, 20 % shared by the touches between; one touch gets
 *   100 %, two get 50/50. As integers: 2(n−2), 1 each in the middle, 2(n−2).
 */
export function touchWeights(model: HeuristicModel, touches: readonly Touch[], conversionAt: number, halfLifeMs: number): number[] {
  const n = touches.length;
  const w = new Array<number>(n).fill(0);
  if (n === 0) return w;
  switch (model) {
    case 'first_touch':
      w[0] = 1;
      return w;
    case 'last_touch':
      w[n - 1] = 1;
      return w;
    case 'linear':
      return w.fill(1);
    case 'time_decay': {
      let newest = Infinity;
      for (const t of touches) newest = Math.min(newest, conversionAt - t.at);
      for (let i = 0; i < n; i++) w[i] = Math.pow(2, -(conversionAt - touches[i]!.at - newest) / halfLifeMs);
      return w;
    }
    case 'position_based': {
      if (n === 1) return [1];
      if (n === 2) return [1, 1];
      // POSITION_BASED_SHARES 0.4 : 0.2/(n−2) each : 0.4  ==  2(n−2) : 1 : 2(n−2), integers so the split is exact.
      const ends = 2 * (n - 2);
      w.fill(1);
      w[0] = ends;
      w[n - 1] = ends;
      return w;
    }
  }
}

/** Share of a conversion in units of 10⁻⁵ (allocation_ratio is numeric(6,5)); the units sum to exactly 100000. */
export const RATIO_UNITS = 100_000;

export interface HeuristicAllocation {
  readonly model: HeuristicModel;
  readonly channel: string;
  /** The campaign of the touches credited (null: none). */
  readonly campaign: string | null;
  readonly cents: bigint;
  /** allocation_ratio in units of 10⁻⁵. */
  readonly ratioUnits: number;
  /** confidence_score in thousandths. */
  readonly confidenceMilli: number;
}

/**
 * The allocations of the requested rules for one conversion. The path is `touches` (time
 * order); a conversion with no touchpoint in its window is credited to its own channel (the
 * channel it arrived through), for every rule.
 *
 * confidence_score of a rule-based allocation = rule agreement: 1 − (max − min) of the share this
 * channel gets under the five rules on this same path. 1 means every rule gives the channel the
 * same share, so the choice of rule does not matter for it (always so for one-channel paths);
 * 0 means one rule gives it everything and another nothing. It measures sensitivity to the rule,
 * not whether the channel caused the conversion: no deterministic rule can say that.
 */
export function heuristicAllocations(
  models: readonly HeuristicModel[],
  touches: readonly Touch[],
  conversionAt: number,
  conversionChannel: string,
  valueCents: bigint,
  halfLifeMs: number,
  conversionCampaign: string | null = null,
): HeuristicAllocation[] {
  const path = touches.length > 0 ? touches : [{ channel: conversionChannel, at: conversionAt, campaign: conversionCampaign }];
  // Distinct channels in code order, and each touch's channel index: computed once for all rules
  // (measured: per-rule maps and sorts were half the cost of a conversion).
  const channels = [...new Set(path.map((t) => t.channel))].sort();
  const m = channels.length;
  const index = m === 1 ? null : new Map(channels.map((c, i) => [c, i]));
  const touchChannel = path.map((t) => (index ? index.get(t.channel)! : 0));
  const credit = new Map<HeuristicModel, number[]>();
  const perTouchCredit = new Map<HeuristicModel, number[]>();
  const lo = new Array<number>(m).fill(Infinity);
  const hi = new Array<number>(m).fill(-Infinity);
  for (const rule of HEURISTIC_MODELS) {
    const perTouch = touchWeights(rule, path, conversionAt, halfLifeMs);
    const w = new Array<number>(m).fill(0);
    let total = 0;
    for (let i = 0; i < perTouch.length; i++) {
      w[touchChannel[i]!]! += perTouch[i]!;
      total += perTouch[i]!;
    }
    credit.set(rule, w);
    perTouchCredit.set(rule, perTouch);
    // Rule agreement per channel, from each rule's shares.
    for (let i = 0; i < m; i++) {
      const share = w[i]! / total;
      if (share < lo[i]!) lo[i] = share;
      if (share > hi[i]!) hi[i] = share;
    }
  }
  const confidence = channels.map((_, i) => Math.min(1000, Math.max(0, Math.round((1 - (hi[i]! - lo[i]!)) * 1000))));
  const out: HeuristicAllocation[] = [];
  for (const model of models) {
    const weights = credit.get(model)!;
    const cents = m === 1 ? [valueCents] : allocate(valueCents, weights);
    const ratios = m === 1 ? [RATIO_UNITS] : allocateNumber(RATIO_UNITS, weights);
    const perTouch = perTouchCredit.get(model)!;
    for (let i = 0; i < m; i++) {
      // Rules that give a channel nothing (first/last touch) still get no row for it: a row says
      // "this channel was credited"; the shares of the rows written sum to 1.
      if (weights[i] === 0) continue;
      const byCampaign = campaignWeights(path, touchChannel, i, perTouch);
      splitByCampaign(byCampaign, cents[i]!, ratios[i]!, (campaign, c, r) =>
        out.push({ model, channel: channels[i]!, campaign, cents: c, ratioUnits: r, confidenceMilli: confidence[i]! }),
      );
    }
  }
  return out;
}

/**
 * The credit of channel `channel`'s touches per campaign (touch weights summed), campaigns in
 * order (null first, then by code unit order), campaigns credited nothing left out.
 */
export function campaignWeights(
  path: readonly Touch[],
  touchChannel: readonly number[],
  channel: number,
  perTouch: readonly number[],
): [string | null, number][] {
  const by = new Map<string | null, number>();
  for (let t = 0; t < path.length; t++) {
    if (touchChannel[t] !== channel || perTouch[t] === 0) continue;
    const k = path[t]!.campaign ?? null;
    by.set(k, (by.get(k) ?? 0) + perTouch[t]!);
  }
  return [...by.entries()].sort(([a], [b]) => (a === b ? 0 : a === null ? -1 : b === null ? 1 : a < b ? -1 : 1));
}

/**
 * Splits a channel's cents and ratio units over its campaigns in proportion to their weights
 * (largest remainder, exact sums; ties to the campaign first in order): the channel's figures
 * are those it has without campaigns, the campaigns' add up to them exactly.
 */
export function splitByCampaign(
  byCampaign: readonly [string | null, number][],
  cents: bigint,
  ratioUnits: number,
  emit: (campaign: string | null, cents: bigint, ratioUnits: number) => void,
): void {
  if (byCampaign.length <= 1) return emit(byCampaign[0]?.[0] ?? null, cents, ratioUnits);
  const w = byCampaign.map(([, x]) => x);
  const c = allocate(cents, w);
  const r = allocateNumber(ratioUnits, w);
  byCampaign.forEach(([campaign], k) => emit(campaign, c[k]!, r[k]!));
}
