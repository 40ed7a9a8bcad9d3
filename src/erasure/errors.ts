import { DomainError } from '../errors.js';

/** Errors of erasure (src/erasure); HTTP statuses in src/http/problems.ts, exit codes in src/cli/run.ts. */
export class ErasureError extends DomainError {
  constructor(code: 'erasure_user_id_invalid', message: string, field?: string) {
    super(code, message, field === undefined ? {} : { field });
    this.name = 'ErasureError';
  }
}
