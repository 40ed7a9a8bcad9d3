import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../errors.js';
import { SESSION_COOKIE } from '../users/tokens.js';

/**
 * The one registry of error codes the HTTP API can answer with, rendered as RFC 9457
 * problem details (`application/problem+json`). Domain errors carry a stable `code`; this
 * table alone decides its status and title. A code missing here is a bug, answered as 500
 * without leaking anything.
 */
export const PROBLEMS = {
  // request shape
  validation_failed: { status: 400, title: 'The request is not valid' },
  malformed_json: { status: 400, title: 'The body is not valid JSON' },
  invalid_utf8: { status: 400, title: 'The body is not valid UTF-8' },
  empty_body: { status: 400, title: 'The body is empty' },
  forbidden_key: { status: 400, title: 'The body uses a forbidden property name' },
  too_deep: { status: 400, title: 'The body is nested too deeply' },
  nul_character: { status: 400, title: 'The body contains a NUL character' },
  invalid_unicode: { status: 400, title: 'The body contains a lone UTF-16 surrogate' },
  unsupported_media_type: { status: 415, title: 'Unsupported content type' },
  payload_too_large: { status: 413, title: 'The body is too large' },
  request_aborted: { status: 400, title: 'The client aborted the request' },
  // below the router (src/http/edge.ts): what Node's HTTP parser and the connection limits refuse
  malformed_request: { status: 400, title: 'The request is not valid HTTP/1.1' },
  request_timeout: { status: 408, title: 'The request did not arrive in time' },
  expectation_failed: { status: 417, title: 'The expectation cannot be met' },
  headers_too_large: { status: 431, title: 'The request headers are too large' },
  too_many_connections: { status: 429, title: 'Too many open connections from this address', retryAfterSeconds: 1 },
  // authentication and limits
  unauthorized: { status: 401, title: 'Missing or invalid credentials', challenge: 'Bearer' },
  rate_limited: { status: 429, title: 'Too many requests' },
  // resources
  not_found: { status: 404, title: 'Not found' },
  route_not_found: { status: 404, title: 'No such route' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  conflict: { status: 409, title: 'Conflict' },
  // service
  not_ready: { status: 503, title: 'The service is not ready', retryAfterSeconds: 5 },
  database_unavailable: { status: 503, title: 'The database is unavailable', retryAfterSeconds: 2 },
  internal: { status: 500, title: 'Internal error' },
  // revenue ledger, webhooks, currency, reconciliation (src/ledger, src/webhooks, src/money, src/reconciliation)
  webhook_signature_invalid: { status: 401, title: 'The webhook signature could not be verified', challenge: 'Signature' },
  transaction_not_found: { status: 404, title: 'No such transaction' },
  transaction_ambiguous: { status: 409, title: 'The transaction id names several transactions' },
  // attribution (src/attribution)
  attribution_model_invalid: { status: 400, title: 'Unknown attribution model' },
  attribution_window_invalid: { status: 400, title: 'The attribution period is not valid' },
  attribution_settings_invalid: { status: 400, title: 'The attribution settings are not valid' },
  reconciliation_window_invalid: { status: 400, title: 'The reconciliation period is not valid' },
  reconciliation_model_invalid: { status: 400, title: 'Unknown attribution model' },
  reconciliation_overflow: { status: 422, title: 'The reconciliation sums are too large' },
  fx_rate_missing: { status: 422, title: 'No exchange rate for a conversion' },
  // tenants and ingestion (src/tenants, src/ingestion)
  idempotency_key_missing: { status: 400, title: 'An idempotency key is required' },
  idempotency_key_invalid: { status: 400, title: 'The idempotency key is not valid' },
  idempotency_key_mismatch: { status: 400, title: 'The Idempotency-Key header and the idempotency_key field differ' },
  idempotency_header_on_batch: { status: 400, title: 'A batch takes idempotency keys per event' },
  idempotency_key_reused: { status: 409, title: 'The idempotency key was used with a different body' },
  timestamp_invalid: { status: 422, title: 'The timestamp is not a real date and time' },
  timestamp_out_of_range: { status: 422, title: 'The timestamp is outside the accepted range' },
  currency_required: { status: 422, title: 'A value needs a currency' },
  currency_invalid: { status: 422, title: 'Unknown or unusable currency' },
  conversion_value_required: { status: 422, title: 'A conversion, or a currency, needs conversion_value_cents' },
  url_invalid: { status: 422, title: 'The URL is not an absolute http(s) URL' },
  // channels and channel rules (src/channels)
  channel_not_found: { status: 404, title: 'No such channel' },
  channel_exists: { status: 409, title: 'The channel exists already' },
  channel_in_use: { status: 409, title: 'The channel is still in use' },
  channel_default: { status: 409, title: 'A default channel cannot be deleted' },
  channel_invalid: { status: 422, title: 'The channel is not valid' },
  channel_rule_not_found: { status: 404, title: 'No such channel rule' },
  channel_rule_invalid: { status: 422, title: 'The channel rule is not valid' },
  channel_rule_order_invalid: { status: 422, title: 'The rule order is not valid' },
  reclassify_invalid: { status: 400, title: 'The re-classification request is not valid' },
  // ad spend (src/spend)
  spend_row_invalid: { status: 422, title: 'The spend row is not valid' },
  spend_query_invalid: { status: 400, title: 'The spend query is not valid' },
  spend_cursor_invalid: { status: 400, title: 'The pagination cursor is not valid' },
  spend_file_invalid: { status: 422, title: 'The spend file is not valid' },
  spend_time_zone_invalid: { status: 400, title: 'Unknown time zone' },
  // the performance report (src/performance)
  performance_query_invalid: { status: 400, title: 'The performance query is not valid' },
  performance_overflow: { status: 400, title: 'A sum of the performance report is too large' },
  // worker and dead-letter queue (src/worker, src/dlq)
  dead_event_not_found: { status: 404, title: 'No such dead event' },
  dead_event_transition_not_allowed: { status: 409, title: 'The dead event cannot make this remediation move' },
  dead_event_not_retryable: { status: 409, title: 'The dead event has no event left to re-queue' },
  dead_event_retry_in_flight: { status: 409, title: 'The dead event is being retried' },
  dead_event_notes_invalid: { status: 400, title: 'The remediation notes are not valid' },
  dead_event_cursor_invalid: { status: 400, title: 'The pagination cursor is not valid' },
  dead_event_limit_invalid: { status: 400, title: 'The page size is not valid' },
  // users, invitations and sessions of the web app (src/users)
  forbidden: { status: 403, title: 'Your role does not allow this' },
  csrf_failed: { status: 403, title: 'The request failed the cross-site request forgery check' },
  session_required: { status: 400, title: 'This needs a signed-in session' },
  login_failed: { status: 401, title: 'Sign-in failed', challenge: 'Session' },
  login_throttled: { status: 429, title: 'Too many failed sign-ins' },
  login_tenant_ambiguous: { status: 409, title: 'Choose a tenant' },
  invitation_invalid: { status: 400, title: 'The invitation link is not valid' },
  password_invalid: { status: 400, title: 'The password is not acceptable' },
  user_email_invalid: { status: 400, title: 'The e-mail address is not valid' },
  user_role_invalid: { status: 400, title: 'Unknown role' },
  user_exists: { status: 409, title: 'The user already exists' },
  user_not_found: { status: 404, title: 'No such user' },
  last_owner: { status: 409, title: 'A tenant keeps at least one owner' },
  report_window_invalid: { status: 400, title: 'The report period is not valid' },
  webhook_endpoint_not_found: { status: 404, title: 'No such webhook endpoint' },
  webhook_secret_invalid: { status: 400, title: 'The webhook secret is not valid' },
  webhook_grace_invalid: { status: 400, title: 'The grace period is not valid' },
  webhook_provider_invalid: { status: 400, title: 'Unknown payment provider' },
  grace_invalid: { status: 400, title: 'The grace period is not valid' },
  tenant_not_found: { status: 404, title: 'No such tenant' },
  // exports (src/exports)
  export_period_invalid: { status: 400, title: 'The export period is not valid' },
  export_dataset_invalid: { status: 400, title: 'Unknown export dataset' },
  export_format_invalid: { status: 400, title: 'Unknown export format' },
  // erasure (src/erasure)
  erasure_user_id_invalid: { status: 400, title: 'The user id is not valid' },
  // retention (src/retention)
  retention_settings_invalid: { status: 400, title: 'The retention settings are not valid' },
  // first-party collection and identity (src/collect, src/identity)
  publishable_key_invalid: { status: 401, title: 'Missing or invalid publishable key', challenge: 'PublishableKey' },
  origin_not_allowed: { status: 403, title: 'The origin is not allowed for this publishable key' },
  collect_event_too_old: { status: 422, title: 'The event is too old to collect' },
  allowed_origin_invalid: { status: 400, title: 'An allowed origin is not valid' },
  publishable_key_name_invalid: { status: 400, title: 'The key name is not valid' },
  publishable_key_not_found: { status: 404, title: 'No such publishable key' },
  publishable_key_revoked: { status: 409, title: 'The publishable key is revoked' },
  collect_counts_window_invalid: { status: 400, title: 'The days asked for are not valid' },
  identity_user_id_invalid: { status: 400, title: 'The user id is not valid' },
  identity_anonymous_id_invalid: { status: 400, title: 'The anonymous id is not valid' },
  identity_timestamp_invalid: { status: 400, title: 'The timestamp is not valid' },
  identity_link_not_found: { status: 404, title: 'No such identity link' },
  identity_link_limit: { status: 409, title: 'The person has the most anonymous ids allowed' },
} as const satisfies Record<string, ProblemSpec>;

/**
 * A problem's status and title; `retryAfterSeconds` for the ones a client should simply try
 * again (503s): sent as `Retry-After` unless the response already carries one (a 429 sets its
 * own, to the end of its window).
 */
interface ProblemSpec {
  status: number;
  title: string;
  retryAfterSeconds?: number;
  /**
   * 401s: the authentication scheme for `WWW-Authenticate` (RFC 9110 §11.6.1, which a 401 must
   * carry): `Bearer` for API keys and the metrics token (RFC 6750), `Signature` for webhooks,
   * whose providers sign the body, `PublishableKey` for the collect endpoint (its key goes in the
   * query string, ?key=pk_…), `Session` for the web app's sign-in (e-mail and password posted to
   * /api/v1/auth/login set a session cookie). The one place a 401 gets its challenge. No browser
   * prompts for these schemes (only Basic, Digest, Negotiate and NTLM do).
   */
  challenge?: 'Bearer' | 'Signature' | 'PublishableKey' | 'Session';
}

/** Domain modules add their codes here (one line each), e.g. `idempotency_key_reused: { status: 409, … }`. */
export type ProblemCode = keyof typeof PROBLEMS;

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  request_id?: string;
  /** The input that is wrong, as a JSON pointer into the body or a parameter name. */
  field?: string;
  errors?: { field: string; message: string }[];
  [extra: string]: unknown;
}

/** An error the HTTP layer raises itself (domain modules throw DomainError). */
export class HttpProblem extends DomainError {}

export function problemFor(error: unknown): { status: number; body: Omit<Problem, 'instance' | 'request_id'>; retryAfterSeconds?: number; challenge?: string } {
  const code = error instanceof DomainError ? error.code : undefined;
  const spec = code !== undefined && Object.hasOwn(PROBLEMS, code) ? (PROBLEMS as Record<string, ProblemSpec>)[code] : undefined;
  if (!spec || !(error instanceof DomainError)) {
    return {
      status: 500,
      body: { type: typeFor('internal'), title: PROBLEMS.internal.title, status: 500, detail: 'An unexpected error occurred; it has been logged.', code: 'internal' },
    };
  }
  const body: Omit<Problem, 'instance' | 'request_id'> = {
    type: typeFor(error.code),
    title: spec.title,
    status: spec.status,
    detail: error.message,
    code: error.code,
  };
  if (error.field !== undefined) body.field = error.field;
  const details = error.options.details;
  if (details) for (const [k, v] of Object.entries(details)) if (!(k in body)) body[k] = v;
  return { status: spec.status, body, retryAfterSeconds: spec.retryAfterSeconds, challenge: spec.challenge };
}

export function typeFor(code: string): string {
  return `/problems/${code}`;
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
  const { status, body, retryAfterSeconds, challenge } = problemFor(error);
  if (retryAfterSeconds !== undefined && !reply.hasHeader('retry-after')) reply.header('retry-after', String(retryAfterSeconds));
  if (challenge) reply.header('www-authenticate', wwwAuthenticate(challenge, request));
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ ...body, instance: request.url.split('?')[0], request_id: String(request.id) });
}

/**
 * The challenge of a 401. For Bearer, RFC 6750 §3: `error="invalid_token"` when credentials were
 * sent and refused; none when they were missing. An API route refusing a session cookie (signed
 * out, expired) offers both ways in: `Bearer realm="skeldir", Session realm="skeldir"`.
 */
function wwwAuthenticate(scheme: string, request: FastifyRequest): string {
  const sent = scheme === 'Bearer' && request.headers.authorization !== undefined;
  const session = scheme === 'Bearer' && !sent && request.cookies?.[SESSION_COOKIE] !== undefined;
  return `${scheme} realm="skeldir"${sent ? ', error="invalid_token"' : ''}${session ? ', Session realm="skeldir"' : ''}`;
}
