import type { MigrationContext } from '../context.js';
import type { Revision } from '../revision.js';

/**
 * The worker's claim, index-driven for retries too (review of issue 5, SHOULD 4).
 *
 * `skeldir_claim_events` (202611280021) walks idx_events_processing_status and only *filters*
 * on `next_attempt_at`: every not-yet-due retry ahead of the due rows is read and thrown away,
 * on every claim and every idle poll (measured by the reviewer: 1M processed + 50k waiting + 100
 * due → 50,000 rows removed by filter, ~17 ms per claim; 200k pending, nearly all waiting → a
 * Seq Scan and a Sort of the whole table). Here both parts of "due" are range scans of their
 * own partial index, so a claim reads about as many rows as it locks, whatever the backlog:
 *
 * - idx_events_claim_retry (next_attempt_at) WHERE pending AND next_attempt_at IS NOT NULL:
 *   retries, walked up to now() in due order;
 * - idx_events_claim_new (processed_at, created_at) WHERE pending AND next_attempt_at IS NULL:
 *   events due at once: re-queued from the dead-letter queue first (processed_at is when they
 *   died; NULLs sort last), then new events in arrival order (created_at; the old claim gave
 *   physical order, which is arrival order only until rows are updated or space reused).
 *
 * `skeldir_claim_due_events(n)` takes due retries first (oldest due first), then the others,
 * each branch a subquery `FOR UPDATE SKIP LOCKED` (PostgreSQL refuses FOR UPDATE on a UNION arm
 * itself) under one outer LIMIT: the Append is pulled lazily, so a
 * branch locks only the rows the claim returns. Retries first because their number is bounded
 * (failed events, each at most max_retries times) while new events can arrive faster than they
 * are processed: the other order could postpone a due retry for as long as a backlog lasts.
 *
 * The 202611280021 function stays (a worker of the previous release calls it during a rolling
 * upgrade); the worker of this release requires the new one. idx_events_processing_status is
 * the design document's and stays too (skeldir_queue_stats counts pending rows through it).
 */
const CLAIM_SIG = 'skeldir_claim_due_events(integer)';

export const revision: Revision = {
  id: '202611280313',
  previous: '202611280300',
  title: 'worker: claim due retries and new events through two partial indexes (skeldir_claim_due_events)',
  dropsOnDowngrade: [],

  async up(m) {
    await m.createIndex('idx_events_claim_retry', `attribution_events (next_attempt_at)
      WHERE processing_status = 'pending' AND next_attempt_at IS NOT NULL`);
    await m.createIndex('idx_events_claim_new', `attribution_events (processed_at, created_at)
      WHERE processing_status = 'pending' AND next_attempt_at IS NULL`);
    await m.transaction(async () => {
      await m.exec(`COMMENT ON INDEX idx_events_claim_retry IS 'Pending events waiting for a retry, by due time: the worker claims the due ones with a range scan (skeldir_claim_due_events).'`);
      await m.exec(`COMMENT ON INDEX idx_events_claim_new IS 'Pending events due at once (new, or re-queued from the dead-letter queue), in claim order (skeldir_claim_due_events).'`);
      // $1, not a parameter name: the test EXPLAINs this very body (pg_proc.prosrc) as a prepared statement.
      // enable_bitmapscan = off, as in 202611280021: the tenant policy OR'ed with the system
      // role's otherwise leads the planner to a BitmapOr and a Sort of every candidate row.
      // enable_sort = off, enable_incremental_sort = off and `processed_at, created_at`: only
      // the two new indexes give these orders without a sort, so the plan does not depend on
      // statistics (which lag behind a burst of failures). idx_events_processing_status also
      // gives `processed_at` order, and the planner took it for the second branch on a table
      // without retries, which would filter every waiting retry again once there are some.
      await m.exec(`
        CREATE OR REPLACE FUNCTION ${CLAIM_SIG.replace('(integer)', '(p_limit integer)')}
        RETURNS TABLE (id uuid, tenant_id uuid, event_type text, retry_count integer)
        LANGUAGE sql VOLATILE SECURITY DEFINER
        SET search_path = public, pg_temp
        SET enable_bitmapscan = off
        SET enable_sort = off
        SET enable_incremental_sort = off
        AS $$
          SELECT c.id, c.tenant_id, c.event_type, c.retry_count
            FROM (SELECT * FROM (SELECT e.id, e.tenant_id, e.event_type::text AS event_type, e.retry_count
                                   FROM attribution_events e
                                  WHERE e.processing_status = 'pending' AND e.next_attempt_at IS NOT NULL AND e.next_attempt_at <= now()
                                  ORDER BY e.next_attempt_at
                                  LIMIT $1
                                    FOR UPDATE SKIP LOCKED) retry
                  UNION ALL
                  SELECT * FROM (SELECT e.id, e.tenant_id, e.event_type::text AS event_type, e.retry_count
                                   FROM attribution_events e
                                  WHERE e.processing_status = 'pending' AND e.next_attempt_at IS NULL
                                  ORDER BY e.processed_at, e.created_at
                                  LIMIT $1
                                    FOR UPDATE SKIP LOCKED) new) c
           LIMIT $1
        $$`);
      await m.exec(`REVOKE ALL ON FUNCTION ${CLAIM_SIG} FROM PUBLIC`);
      await m.exec(`GRANT EXECUTE ON FUNCTION ${CLAIM_SIG} TO ${m.roles.app}`);
      await m.exec(
        `COMMENT ON FUNCTION ${CLAIM_SIG} IS 'Locks up to n due pending events of any tenant (FOR UPDATE SKIP LOCKED) for the caller''s transaction: due retries first, then events due at once, each through its partial index; returns only ids, tenants, types and retry counts (SECURITY DEFINER, owned by the system role).'`,
      );
      await giveToSystemRole(m, CLAIM_SIG);
    });
  },

  async down(m) {
    await m.exec(`DROP FUNCTION IF EXISTS ${CLAIM_SIG}`);
    await m.dropIndex('idx_events_claim_new');
    await m.dropIndex('idx_events_claim_retry');
  },
};

/** As in 202611280021 (a released revision's helper is not shared): ALTER … OWNER TO needs CREATE on the schema for the moment of the transfer. */
async function giveToSystemRole(m: MigrationContext, signature: string): Promise<void> {
  const [had] = await m.exec<{ ok: boolean }>(`SELECT has_schema_privilege($1, 'public', 'CREATE') AS ok`, [m.roles.system]);
  if (!had!.ok) await m.exec(`GRANT CREATE ON SCHEMA public TO ${m.roles.system}`);
  await m.exec(`ALTER FUNCTION ${signature} OWNER TO ${m.roles.system}`);
  if (!had!.ok) await m.exec(`REVOKE CREATE ON SCHEMA public FROM ${m.roles.system}`);
}
