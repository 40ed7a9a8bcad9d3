import { DomainError } from '../errors.js';

export type ExportErrorCode = 'export_dataset_invalid' | 'export_format_invalid' | 'export_period_invalid';

/** Errors of exports (src/exports); the HTTP statuses are in src/http/problems.ts, the exit codes in src/cli/run.ts. */
export class ExportError extends DomainError {
  constructor(code: ExportErrorCode, message: string, field?: string) {
    super(code, message, field === undefined ? {} : { field });
    this.name = 'ExportError';
  }
}
