/**
 * The attribution models, their versions and default parameters. `model_type` values are
 * exactly these names (SPEC §2, issue 6). A model's version changes whenever its output for the
 * same input could change; it is stored on every allocation row and every run.
 */
export const HEURISTIC_MODELS = ['first_touch', 'last_touch', 'last_non_direct', 'linear', 'time_decay', 'position_based'] as const;
/** The five rules whose agreement is a rule model's confidence_score (last_non_direct is last_touch on a path without direct). */
export const AGREEMENT_RULES = ['first_touch', 'last_touch', 'linear', 'time_decay', 'position_based'] as const;
export const POPULATION_MODELS = ['markov', 'shapley', 'bayesian'] as const;
export const MODEL_TYPES = [...HEURISTIC_MODELS, ...POPULATION_MODELS] as const;

export type HeuristicModel = (typeof HEURISTIC_MODELS)[number];
export type PopulationModel = (typeof POPULATION_MODELS)[number];
export type ModelType = (typeof MODEL_TYPES)[number];

/** /2: allocations are split by the campaign of the touches credited (a channel's figures are unchanged). */
export const MODEL_VERSIONS: Record<ModelType, string> = {
  first_touch: 'first_touch/2',
  last_touch: 'last_touch/2',
  last_non_direct: 'last_non_direct/1',
  linear: 'linear/2',
  time_decay: 'time_decay/2',
  position_based: 'position_based/2',
  // /3: 1000 bootstrap replicates (confidence over them); bayesian/3: rows carry their channel
  // total's R-hat and ESS, and convergence is judged on parameters and totals.
  markov: 'markov/3',
  shapley: 'shapley/3',
  bayesian: 'bayesian/3',
};

/**
 * Models a tenant gets when it has configured none: five deterministic heuristics (last_non_direct
 * is there to be chosen, not a default: adding it would change every tenant's rows), which
 * need only the conversion's own path and so are computed by the worker as each conversion is
 * processed. The population models (markov, shapley, bayesian) need the whole window's journeys;
 * they are computed by `skeldir attribution run` and by the scheduler for tenants that enable them.
 */
export const DEFAULT_MODELS: readonly ModelType[] = AGREEMENT_RULES;

export const DEFAULT_LOOKBACK_DAYS = 30;
export const DEFAULT_HALF_LIFE_DAYS = 7;
/**
 * position_based: the shares of the first touch, of the touches between (together) and of the last
 * touch, as recorded with every run and row. heuristics.ts applies them as the integer weights
 * 2(n−2) : 1 each : 2(n−2), which are exactly these ratios, so the money split stays exact.
 */
export const POSITION_BASED_SHARES = { first: 0.4, middle: 0.2, last: 0.4 } as const;

export function isModelType(s: string): s is ModelType {
  return (MODEL_TYPES as readonly string[]).includes(s);
}
export function isHeuristic(m: ModelType): m is HeuristicModel {
  return (HEURISTIC_MODELS as readonly string[]).includes(m);
}
export function isPopulation(m: ModelType): m is PopulationModel {
  return (POPULATION_MODELS as readonly string[]).includes(m);
}

export const DAY_MS = 86_400_000;

/** Mass of the intervals of a run's channel and campaign totals, for every population model (bayesian: credibleMass). */
export const TOTAL_MASS = 0.94;
