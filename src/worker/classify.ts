import { AttributionError } from '../attribution/errors.js';
import { isConnectionError, isTransientSqlError } from '../db/errors.js';
import { DomainError } from '../errors.js';

/**
 * The stable classification of a processing failure, stored in dead_events.error_type and
 * attribution_events.last_error_type:
 * - validation: the event itself cannot be processed as it is (e.g. an unknown event_type);
 * - data: the event's data or what it refers to is wrong (a conversion without a value, a
 *   constraint violation, …);
 * - transient: the database was briefly in the way (deadlock, serialization failure, lock
 *   timeout, lost connection, resources exhausted);
 * - timeout: a statement ran longer than the worker's statement_timeout;
 * - internal: anything else (a bug): retried, since a fix may be deployed meanwhile.
 */
export type ErrorType = 'validation' | 'data' | 'transient' | 'timeout' | 'internal';
export const ERROR_TYPES: readonly ErrorType[] = ['validation', 'data', 'transient', 'timeout', 'internal'];

export interface ClassifiedFailure {
  type: ErrorType;
  /** A finer stable code: the domain error's code, `sqlstate_<SQLSTATE>`, or `internal`. */
  code: string;
  /**
   * Retrying the same event cannot succeed (the attribution engine says so of its data errors;
   * validation failures are the worker's own): such an event is dead-lettered at once rather
   * than retried maxRetries times. A human fixes the data and retries it from the dead-letter queue.
   */
  permanent: boolean;
  message: string;
  traceback: string | null;
  sqlstate: string | null;
}

/** A failure the worker raises itself (validation of what it was given to process). */
export class WorkerEventError extends DomainError {
  readonly permanent = true;
}

const MAX_MESSAGE = 4000;
const MAX_TRACE = 16000;

export function classifyFailure(error: unknown): ClassifiedFailure {
  const err = error instanceof Error ? error : new Error(String(error));
  const rawCode = (err as unknown as { code?: unknown }).code;
  const sqlstate = typeof rawCode === 'string' && /^[0-9A-Z]{5}$/.test(rawCode) ? rawCode : null;
  const trace = traceOf(err);
  const base = { message: truncate(err.message || err.name, MAX_MESSAGE), traceback: trace ? truncate(trace, MAX_TRACE) : null, sqlstate };

  if (err instanceof WorkerEventError) return { ...base, type: 'validation', code: err.code, permanent: true };
  if (err instanceof AttributionError) {
    // Its only non-permanent code is a tenant-context mismatch: a bug of the caller (us).
    return err.permanent ? { ...base, type: 'data', code: err.code, permanent: true } : { ...base, type: 'internal', code: err.code, permanent: false };
  }
  if (err instanceof DomainError) return { ...base, type: 'data', code: err.code, permanent: false };
  if (isConnectionError(err)) return { ...base, type: 'transient', code: sqlstate ? `sqlstate_${sqlstate}` : 'connection_lost', permanent: false };
  if (sqlstate) {
    const code = `sqlstate_${sqlstate}`;
    if (isTransientSqlError(err) || sqlstate.startsWith('53')) return { ...base, type: 'transient', code, permanent: false };
    if (sqlstate === '57014') return { ...base, type: 'timeout', code, permanent: false };
    // 22 data exception, 23 integrity constraint violation: the data, not the code.
    if (sqlstate.startsWith('22') || sqlstate.startsWith('23')) return { ...base, type: 'data', code, permanent: false };
    return { ...base, type: 'internal', code, permanent: false };
  }
  return { ...base, type: 'internal', code: 'internal', permanent: false };
}

/**
 * The stack, and for a database error what PostgreSQL said beyond the message: node-postgres's
 * stack only shows where the client received it, while DETAIL, HINT and CONTEXT (`where`: the
 * PL/pgSQL function, trigger or statement) show where in the database it arose.
 */
function traceOf(err: Error): string | null {
  const pgErr = err as Error & { detail?: unknown; hint?: unknown; where?: unknown };
  const extra = [['DETAIL', pgErr.detail], ['HINT', pgErr.hint], ['CONTEXT', pgErr.where]]
    .filter(([, v]) => typeof v === 'string' && v !== '')
    .map(([k, v]) => `${k}: ${v as string}`);
  const parts = [...(err.stack ? [err.stack] : []), ...extra];
  return parts.length ? parts.join('\n') : null;
}

/** Errors worth repeating at once, inside the same batch, without counting an attempt. */
export function isRetryableInPlace(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return isTransientSqlError(error) || (typeof code === 'string' && code.startsWith('53'));
}

/**
 * At most `max` code points of `s`, as text PostgreSQL accepts in text and jsonb columns: lone
 * surrogates and NUL become U+FFFD, and a cut never splits a surrogate pair (a `slice` by UTF-16
 * units did: `"\ud83d"` in error_detail made the jsonb cast fail and, before failures were
 * recorded under a savepoint, blocked the queue).
 */
export function truncate(s: string, max: number): string {
  const clean = s.replace(LONE_SURROGATE_OR_NUL, '\uFFFD');
  if (clean.length <= max) return clean; // UTF-16 units ≥ code points
  const points = Array.from(clean);
  return points.length <= max ? clean : `${points.slice(0, max - 1).join('')}…`;
}

// In `u` mode a surrogate pair is one code point, so \p{Cs} matches lone halves only (as in src/http/json-body.ts).
const LONE_SURROGATE_OR_NUL = /\p{Cs}|\u0000/gu;
