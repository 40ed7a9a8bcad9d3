import { DomainError } from '../errors.js';

/** Typed errors of the performance report; `code` is stable (HTTP: src/http/problems.ts; CLI: exit 2). */
export type PerformanceErrorCode = 'performance_query_invalid' | 'performance_overflow';

export class PerformanceError extends DomainError {
  declare readonly code: PerformanceErrorCode;
  constructor(code: PerformanceErrorCode, message: string, options: { field?: string } = {}) {
    super(code, message, options);
    this.name = 'PerformanceError';
  }
}
