import { DomainError } from '../errors.js';

/** Errors of the identity graph (src/identity); HTTP statuses in src/http/problems.ts, exit codes in src/cli/run.ts. */
export type IdentityErrorCode = 'identity_user_id_invalid' | 'identity_anonymous_id_invalid' | 'identity_timestamp_invalid' | 'identity_link_not_found' | 'identity_link_limit';

export class IdentityError extends DomainError {
  constructor(code: IdentityErrorCode, message: string, field?: string) {
    super(code, message, field === undefined ? {} : { field });
    this.name = 'IdentityError';
  }
}
