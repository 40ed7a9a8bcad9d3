/**
 * The channel ingestion NOTIFYs (payload: the tenant id) after committing new events, and the
 * dead-letter queue after re-queuing one: idle workers LISTEN on it and claim at once instead
 * of at their next poll. A notification is only a hint; the queue itself is the table.
 */
export const EVENTS_CHANNEL = 'skeldir_events';
