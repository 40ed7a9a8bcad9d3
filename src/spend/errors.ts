import { DomainError } from '../errors.js';

/**
 * Typed errors of ad spend; `code` is stable (HTTP: src/http/problems.ts; CLI: `*_invalid` exits 2).
 * A file with bad lines is one spend_file_invalid naming every bad line (details.errors).
 */
export type SpendErrorCode =
  | 'spend_file_invalid'
  | 'spend_row_invalid'
  | 'spend_query_invalid'
  | 'spend_cursor_invalid'
  | 'spend_time_zone_invalid';

export class SpendError extends DomainError {
  declare readonly code: SpendErrorCode;
  constructor(code: SpendErrorCode, message: string, options: { field?: string; details?: Record<string, unknown> } = {}) {
    super(code, message, options);
    this.name = 'SpendError';
  }
}
