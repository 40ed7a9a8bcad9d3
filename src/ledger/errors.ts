import { DomainError } from '../errors.js';

/**
 * Ledger errors. Codes are stable:
 * - ledger_fact_invalid: a provider event that cannot become a ledger fact (bad amount, id …);
 *   webhooks dead-letter these (the provider would only resend them).
 * - ledger_currency_mismatch: a refund or dispute in another currency than its payment.
 * - ledger_reference_conflict: the event's ids name two different ledger rows.
 * - transaction_not_found / transaction_ambiguous: GET /revenue/transactions/{id}.
 */
export class LedgerError extends DomainError {}
