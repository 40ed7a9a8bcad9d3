import { DomainError } from '../errors.js';

/**
 * The remediation workflow of a dead event (issue 5). The only moves:
 *
 *     pending ──► in_progress ──► resolved
 *        ▲             │   └────► ignored
 *        └─────────────┘
 *
 * resolved and ignored are final. The actions that make them:
 * - start:   pending → in_progress (someone is on it);
 * - retry:   pending → in_progress, or stays in_progress: re-queues the original event; the
 *            worker then moves it to resolved (processed) or back to pending (failed again);
 * - resolve: in_progress → resolved;  ignore: in_progress → ignored;
 * - reopen:  in_progress → pending.
 * Anything else is a `dead_event_transition_not_allowed` problem (409).
 */
export const REMEDIATION_STATUSES = ['pending', 'in_progress', 'resolved', 'ignored'] as const;
export type RemediationStatus = (typeof REMEDIATION_STATUSES)[number];

export const REMEDIATION_ACTIONS = ['start', 'retry', 'resolve', 'ignore', 'reopen'] as const;
export type RemediationAction = (typeof REMEDIATION_ACTIONS)[number];

const MOVES: Record<RemediationStatus, readonly RemediationStatus[]> = {
  pending: ['in_progress'],
  in_progress: ['resolved', 'ignored', 'pending'],
  resolved: [],
  ignored: [],
};

export function isRemediationStatus(s: string): s is RemediationStatus {
  return (REMEDIATION_STATUSES as readonly string[]).includes(s);
}

export function canMove(from: RemediationStatus, to: RemediationStatus): boolean {
  return MOVES[from].includes(to);
}

const TARGET: Record<RemediationAction, RemediationStatus> = {
  start: 'in_progress',
  retry: 'in_progress',
  resolve: 'resolved',
  ignore: 'ignored',
  reopen: 'pending',
};

export class DeadEventError extends DomainError {}

/** The status an action leads to from `from`, or a 409 `dead_event_transition_not_allowed` naming both. */
export function nextStatus(action: RemediationAction, from: RemediationStatus): RemediationStatus {
  const to = TARGET[action];
  // A retry of a dead event already in progress (its last retry failed, or someone started it) keeps it there.
  if (canMove(from, to) || (action === 'retry' && from === 'in_progress')) return to;
  const allowed = REMEDIATION_ACTIONS.filter((a) => canMove(from, TARGET[a]) || (a === 'retry' && from === 'in_progress'));
  throw new DeadEventError(
    'dead_event_transition_not_allowed',
    `cannot ${action} a dead event that is ${from}` +
      (allowed.length ? `; possible now: ${allowed.join(', ')}` : `; ${from} is final`) +
      (from === 'pending' && (action === 'resolve' || action === 'ignore') ? ' (start it first: pending → in_progress)' : ''),
    { details: { from, to, action, allowed_actions: allowed } },
  );
}
