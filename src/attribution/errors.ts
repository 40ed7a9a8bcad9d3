import { DomainError } from '../errors.js';

/**
 * Typed errors of the attribution engine. `code` is stable: the worker classifies failures by
 * it (data problems are permanent: retrying cannot fix them), the CLI maps `*_invalid` codes to
 * exit 2, the HTTP layer to problem+json.
 */
export type AttributionErrorCode =
  /** The event id names no event visible in the tenant's context. Permanent. */
  | 'attribution_conversion_not_found'
  /** The event is a touchpoint (or anything but a conversion). Permanent. */
  | 'attribution_not_a_conversion'
  /** The conversion has no conversion_value_cents (or a negative one). Permanent. */
  | 'attribution_conversion_without_value'
  /** The conversion's channel is not in channel_taxonomy, so it cannot be credited. Permanent. */
  | 'attribution_channel_unknown'
  /** The transaction's tenant context is unset or differs from the tenant id passed in. Caller bug. */
  | 'attribution_tenant_context_mismatch'
  /** Bad model name, window or parameter given by a user. */
  | 'attribution_model_invalid'
  | 'attribution_window_invalid'
  | 'attribution_settings_invalid'
  /** An MCMC run did not converge (R-hat > 1.01 or bulk ESS < 400): nothing was stored as good. */
  | 'attribution_not_converged';

export class AttributionError extends DomainError {
  declare readonly code: AttributionErrorCode;
  constructor(code: AttributionErrorCode, message: string, details: Record<string, unknown> = {}, field?: string) {
    super(code, message, { details, ...(field !== undefined ? { field } : {}) });
    this.name = 'AttributionError';
  }

  /** True for problems in the data itself: retrying the same event cannot succeed. */
  get permanent(): boolean {
    return this.code !== 'attribution_tenant_context_mismatch';
  }
}
