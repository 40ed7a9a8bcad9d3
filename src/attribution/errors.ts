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
  /** The conversion has no conversion_value_cents (or a negative one). Permanent. (Channels outside channel_taxonomy are not an error: they read as `unknown`.) */
  | 'attribution_conversion_without_value'
  /** The transaction's tenant context is unset or differs from the tenant id passed in. Caller bug. */
  | 'attribution_tenant_context_mismatch'
  /** Bad model name, window or parameter given by a user. */
  | 'attribution_model_invalid'
  | 'attribution_window_invalid'
  | 'attribution_settings_invalid';
// A Bayesian run that does not converge is not an error: it is a run with status not_converged (RunSummary.status).

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
