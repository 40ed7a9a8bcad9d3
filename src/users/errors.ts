import { DomainError } from '../errors.js';

/**
 * Errors of users, invitations and sessions (codes mapped to HTTP in src/http/problems.ts, to
 * exit codes in src/cli/run.ts): user_email_invalid, user_role_invalid, user_exists,
 * user_not_found, last_owner, password_invalid, invitation_invalid, login_failed,
 * login_throttled, login_tenant_ambiguous, forbidden, csrf_failed.
 */
export class UserError extends DomainError {}
