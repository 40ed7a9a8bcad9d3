import type { Revision } from '../revision.js';

/**
 * Verifying a conversion's allocations no longer depends on which of two concurrent
 * transactions commits first.
 *
 * Under READ COMMITTED a payment and a conversion of the same order could each miss the other:
 * the allocation trigger did not see the uncommitted capture, and the payment's UPDATE of the
 * order's allocations did not see the uncommitted allocations; both committed, the allocations
 * stayed unverified. Both sides now take a transaction-scoped advisory lock on the order,
 * key hashtextextended(tenant_id || ':order:' || order_id, 0), before they look:
 * - skeldir_allocations_verify_inserted() (trigger trg_attribution_allocations_verify) takes it
 *   SHARED for every order among the inserted allocations (sorted), then looks at the ledger in
 *   a fresh snapshot (a new statement);
 * - the application's payment side (src/ledger/apply.ts) takes it EXCLUSIVE before it marks
 *   the order's allocations, and skips rows another transaction holds (those are being replaced;
 *   the replacement is checked by this trigger once the payment commits).
 * Shared on the allocation side: two attribution runs never wait for each other.
 */
const LOCKING = `
  CREATE OR REPLACE FUNCTION skeldir_allocations_verify_inserted() RETURNS trigger
  LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtextextended(o.tenant_id::text || ':order:' || o.order_id, 0))
       FROM (SELECT DISTINCT e.tenant_id, e.order_id
               FROM inserted n JOIN attribution_events e ON e.id = n.event_id AND e.tenant_id = n.tenant_id
              WHERE NOT n.verified AND e.event_type = 'conversion' AND e.order_id IS NOT NULL
              ORDER BY 1, 2) o;
    UPDATE attribution_allocations a
       SET verified = true, verification_source = v.verification_source, verification_timestamp = v.verification_timestamp
      FROM (SELECT DISTINCT ON (n.id) n.id, l.verification_source, l.verification_timestamp
              FROM inserted n
              JOIN attribution_events e ON e.id = n.event_id AND e.tenant_id = n.tenant_id
              JOIN revenue_ledger l ON l.tenant_id = e.tenant_id AND l.order_id = e.order_id
             WHERE NOT n.verified AND e.event_type = 'conversion' AND e.order_id IS NOT NULL AND l.state <> 'authorized'
             ORDER BY n.id, l.verification_timestamp, l.id) v
     WHERE a.id = v.id;
    RETURN NULL;
  END $$`;

/** The function exactly as revision 202611280020 created it (same text: the catalogue snapshot hashes the body). */
const PREVIOUS = `
        CREATE OR REPLACE FUNCTION skeldir_allocations_verify_inserted() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE attribution_allocations a
             SET verified = true, verification_source = v.verification_source, verification_timestamp = v.verification_timestamp
            FROM (SELECT DISTINCT ON (n.id) n.id, l.verification_source, l.verification_timestamp
                    FROM inserted n
                    JOIN attribution_events e ON e.id = n.event_id AND e.tenant_id = n.tenant_id
                    JOIN revenue_ledger l ON l.tenant_id = e.tenant_id AND l.order_id = e.order_id
                   WHERE NOT n.verified AND e.event_type = 'conversion' AND e.order_id IS NOT NULL AND l.state <> 'authorized'
                   ORDER BY n.id, l.verification_timestamp, l.id) v
           WHERE a.id = v.id;
          RETURN NULL;
        END $$`;

export const revision: Revision = {
  id: '202611280318',
  previous: '202611280313',
  title: 'allocation verification takes the order lock (no lost verification between a concurrent payment and conversion)',
  dropsOnDowngrade: [],

  async up(m) {
    await m.transaction(async () => {
      await m.exec(LOCKING);
      await m.exec(`COMMENT ON FUNCTION skeldir_allocations_verify_inserted() IS 'Trigger function: marks newly written allocations verified when the ledger has verified their conversion''s order; takes each order''s advisory lock (shared) first, as the payment side does (exclusive).'`);
    });
  },

  async down(m) {
    await m.transaction(async () => {
      await m.exec(PREVIOUS);
      await m.exec(`COMMENT ON FUNCTION skeldir_allocations_verify_inserted() IS 'Trigger function: marks newly written allocations verified when the ledger has verified their conversion''s order.'`);
    });
  },
};
