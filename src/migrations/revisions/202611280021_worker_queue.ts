import type { MigrationContext } from '../context.js';
import type { Revision } from '../revision.js';

/**
 * The worker's queue and dead-letter workflow (issue 5).
 *
 * attribution_events (the queue, design document phase 5):
 * - `next_attempt_at`: exponential backoff with jitter after a failed attempt (NULL = due);
 * - `last_error_type`, `last_error_message`: why the last attempt failed, for operators.
 * dead_events (phase 8a):
 * - `event_id`: the event a worker gave up on, so `retry` can re-queue it; at most one dead
 *   event per event (an event that dies again after a retry reopens its dead event).
 *
 * Cross-tenant access, the one thing the application role cannot do (row-level security is
 * forced even for the owner): two SECURITY DEFINER functions owned by the system role, each
 * backed by a narrow policy TO that role:
 * - `skeldir_claim_events(n)` locks up to n due pending events of any tenant with
 *   `FOR UPDATE SKIP LOCKED` through idx_events_processing_status. The locks belong to the
 *   CALLER's transaction: the worker processes each event in that same transaction with the
 *   event's tenant context set (as the application role), so claim, work and completion commit
 *   or roll back together. The system role may see and lock pending rows only, and never
 *   change them (its UPDATE policy's WITH CHECK is false).
 * - `skeldir_queue_stats()` returns aggregates only (counts, the oldest pending time), never a
 *   row or a tenant id: what /metrics and `skeldir worker --status` show.
 * worker_instances / worker_throughput: liveness and per-minute counters of worker processes
 * (system data, no tenant column, so no row-level security).
 */

const CLAIM_SIG = 'skeldir_claim_events(integer)';
const STATS_SIG = 'skeldir_queue_stats()';
/** Columns the system role reads to claim and count; it updates none (UPDATE on one column is what FOR UPDATE requires). */
const SYSTEM_EVENT_COLUMNS = 'id, tenant_id, event_type, retry_count, processing_status, processed_at, next_attempt_at, created_at';

export const revision: Revision = {
  id: '202611280021',
  previous: '202611280020',
  title: 'worker queue: backoff and error columns, dead event link, claim and stats functions, worker counters',
  dropsOnDowngrade: [
    { table: 'attribution_events', columns: ['next_attempt_at', 'last_error_type', 'last_error_message'] },
    { table: 'dead_events', columns: ['event_id'] },
    { table: 'worker_instances' },
    { table: 'worker_throughput' },
  ],

  async up(m) {
    await m.ddl(`ALTER TABLE attribution_events
      ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz,
      ADD COLUMN IF NOT EXISTS last_error_type varchar(100),
      ADD COLUMN IF NOT EXISTS last_error_message text`);
    await m.comment('attribution_events', null, {
      next_attempt_at:
        'Earliest time the worker attempts the pending event again after a failed attempt (exponential backoff with jitter); NULL when due now.',
      last_error_type: 'Classification of the last failed processing attempt (validation, data, transient, timeout, internal); NULL when none.',
      last_error_message: 'Message of the last failed processing attempt; NULL when none.',
    });

    await m.ddl(`ALTER TABLE dead_events ADD COLUMN IF NOT EXISTS event_id uuid`);
    if (!(await m.constraintExists('dead_events', 'fk_dead_events_event_id'))) {
      await m.ddl(`ALTER TABLE dead_events ADD CONSTRAINT fk_dead_events_event_id FOREIGN KEY (event_id)
        REFERENCES attribution_events (id) ON DELETE SET NULL NOT VALID`);
    }
    await m.exec(`ALTER TABLE dead_events VALIDATE CONSTRAINT fk_dead_events_event_id`);
    await m.comment('dead_events', null, {
      event_id: 'The attribution event the worker gave up on (re-queued by a retry); NULL for dead events of other sources or whose event is gone.',
    });
    await m.createIndex('idx_dead_events_event_id', 'dead_events (event_id) WHERE event_id IS NOT NULL', { unique: true });
    await m.exec(`COMMENT ON INDEX idx_dead_events_event_id IS 'At most one dead event per event; the worker finds the dead event of a retried event by it.'`);
    await m.createIndex('idx_dead_events_tenant_created', 'dead_events (tenant_id, created_at DESC, id DESC)');
    await m.exec(`COMMENT ON INDEX idx_dead_events_tenant_created IS 'A tenant''s dead events, newest first (the remediation list and its keyset pagination).'`);

    await m.transaction(async () => {
      await m.exec(`
        CREATE TABLE IF NOT EXISTS worker_instances (
          id uuid NOT NULL,
          hostname varchar(255) NOT NULL,
          pid integer NOT NULL,
          concurrency integer NOT NULL,
          batch_size integer NOT NULL,
          started_at timestamptz NOT NULL DEFAULT now(),
          heartbeat_at timestamptz NOT NULL DEFAULT now(),
          stopped_at timestamptz,
          CONSTRAINT pk_worker_instances PRIMARY KEY (id),
          CONSTRAINT ck_worker_instances_concurrency_positive CHECK (concurrency >= 1),
          CONSTRAINT ck_worker_instances_batch_size_positive CHECK (batch_size >= 1)
        )`);
      await m.grantApp('worker_instances', 'SELECT, INSERT, UPDATE, DELETE');
      await m.comment('worker_instances', 'Worker processes, for liveness: each one registers at start and beats every few seconds. System data: no tenant.', {
        id: 'Random id of the worker process, chosen at its start.',
        hostname: 'Host the worker process runs on.',
        pid: 'Operating-system process id of the worker.',
        concurrency: 'Batches the process runs at once (each on its own connection).',
        batch_size: 'Events claimed per batch.',
        started_at: 'When the process started.',
        heartbeat_at: 'Last sign of life; a worker silent for 30 s counts as gone.',
        stopped_at: 'When the process stopped cleanly; NULL while running or after a crash.',
      });

      await m.exec(`
        CREATE TABLE IF NOT EXISTS worker_throughput (
          instance_id uuid NOT NULL,
          slot integer NOT NULL,
          bucket_minute timestamptz NOT NULL,
          processed bigint NOT NULL DEFAULT 0,
          failed bigint NOT NULL DEFAULT 0,
          dead_lettered bigint NOT NULL DEFAULT 0,
          CONSTRAINT pk_worker_throughput PRIMARY KEY (instance_id, slot, bucket_minute),
          CONSTRAINT ck_worker_throughput_counts_non_negative CHECK (processed >= 0 AND failed >= 0 AND dead_lettered >= 0)
        )`);
      await m.grantApp('worker_throughput', 'SELECT, INSERT, UPDATE, DELETE');
      await m.comment(
        'worker_throughput',
        'Events handled per worker batch loop and minute, written in the same transaction as the work (exact even after crashes). Old minutes are folded into one row per table so totals never decrease. System data: no tenant.',
        {
          instance_id: 'worker_instances.id of the process (the nil UUID for the folded totals of old minutes).',
          slot: 'Batch loop within the process (0 .. concurrency-1); one row per loop and minute, so loops never wait on each other.',
          bucket_minute: 'The minute (date_trunc) the counts belong to; -infinity for folded old minutes.',
          processed: 'Events marked processed.',
          failed: 'Failed attempts scheduled for a retry.',
          dead_lettered: 'Events given up on (marked failed and copied to dead_events).',
        },
      );

      // The system role reads (and may lock) pending events, and counts dead events.
      await m.exec(`GRANT SELECT (${SYSTEM_EVENT_COLUMNS}), UPDATE (processing_status) ON attribution_events TO ${m.roles.system}`);
      await m.exec(`GRANT SELECT (remediation_status) ON dead_events TO ${m.roles.system}`);
      await m.exec(`DROP POLICY IF EXISTS attribution_events_system_claim ON attribution_events`);
      await m.exec(`CREATE POLICY attribution_events_system_claim ON attribution_events FOR SELECT TO ${m.roles.system}
        USING (processing_status = 'pending')`);
      await m.exec(`DROP POLICY IF EXISTS attribution_events_system_lock ON attribution_events`);
      // FOR UPDATE needs the row to pass an UPDATE policy's USING; WITH CHECK (false) means no row can ever be changed by it.
      await m.exec(`CREATE POLICY attribution_events_system_lock ON attribution_events FOR UPDATE TO ${m.roles.system}
        USING (processing_status = 'pending') WITH CHECK (false)`);
      await m.exec(`DROP POLICY IF EXISTS dead_events_system_stats ON dead_events`);
      await m.exec(`CREATE POLICY dead_events_system_stats ON dead_events FOR SELECT TO ${m.roles.system} USING (true)`);

      // $1, not a parameter name: the test EXPLAINs this very body (pg_proc.prosrc) as a prepared statement.
      // enable_bitmapscan = off: the tenant policy (TO PUBLIC) is OR'ed with the system role's,
      // and on a small or freshly analysed table the planner answers that OR with a BitmapOr and a
      // Sort of every pending row; the claim must walk idx_events_processing_status in order so
      // that LIMIT with SKIP LOCKED stops after n rows, whatever the queue's length.
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_claim_events(p_limit integer)
        RETURNS TABLE (id uuid, tenant_id uuid, event_type text, retry_count integer)
        LANGUAGE sql VOLATILE SECURITY DEFINER
        SET search_path = public, pg_temp
        SET enable_bitmapscan = off
        AS $$
          SELECT e.id, e.tenant_id, e.event_type::text, e.retry_count
            FROM attribution_events e
           WHERE e.processing_status = 'pending'
             AND (e.next_attempt_at IS NULL OR e.next_attempt_at <= now())
           ORDER BY e.processed_at
           LIMIT $1
             FOR UPDATE SKIP LOCKED
        $$`);
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_queue_stats()
        RETURNS TABLE (pending bigint, due bigint, retrying bigint, oldest_pending_at timestamptz,
                       dead_pending bigint, dead_in_progress bigint, dead_resolved bigint, dead_ignored bigint,
                       measured_at timestamptz)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
          SELECT q.pending, q.due, q.retrying, q.oldest_pending_at,
                 d.dead_pending, d.dead_in_progress, d.dead_resolved, d.dead_ignored, now()
            FROM (SELECT count(*) AS pending,
                         count(*) FILTER (WHERE e.next_attempt_at IS NULL OR e.next_attempt_at <= now()) AS due,
                         count(*) FILTER (WHERE e.retry_count > 0) AS retrying,
                         min(e.created_at) AS oldest_pending_at
                    FROM attribution_events e WHERE e.processing_status = 'pending') q,
                 (SELECT count(*) FILTER (WHERE x.remediation_status = 'pending') AS dead_pending,
                         count(*) FILTER (WHERE x.remediation_status = 'in_progress') AS dead_in_progress,
                         count(*) FILTER (WHERE x.remediation_status = 'resolved') AS dead_resolved,
                         count(*) FILTER (WHERE x.remediation_status = 'ignored') AS dead_ignored
                    FROM dead_events x) d
        $$`);
      for (const [sig, comment] of [
        [CLAIM_SIG, 'Locks up to n due pending events of any tenant (FOR UPDATE SKIP LOCKED, oldest first) for the caller\'s transaction; returns only ids, tenants, types and retry counts (SECURITY DEFINER, owned by the system role).'],
        [STATS_SIG, 'Queue and dead-letter aggregates over all tenants, for metrics: counts and the oldest pending time, never a row (SECURITY DEFINER, owned by the system role).'],
      ] as const) {
        await m.exec(`REVOKE ALL ON FUNCTION ${sig} FROM PUBLIC`);
        await m.exec(`GRANT EXECUTE ON FUNCTION ${sig} TO ${m.roles.app}`);
        await m.exec(`COMMENT ON FUNCTION ${sig} IS '${comment.replace(/'/g, "''")}'`);
        await giveToSystemRole(m, sig);
      }
    });
  },

  async down(m) {
    await m.exec(`DROP FUNCTION IF EXISTS ${STATS_SIG}`);
    await m.exec(`DROP FUNCTION IF EXISTS ${CLAIM_SIG}`);
    await m.exec(`DROP POLICY IF EXISTS dead_events_system_stats ON dead_events`);
    await m.exec(`DROP POLICY IF EXISTS attribution_events_system_lock ON attribution_events`);
    await m.exec(`DROP POLICY IF EXISTS attribution_events_system_claim ON attribution_events`);
    await m.exec(`REVOKE SELECT (remediation_status) ON dead_events FROM ${m.roles.system}`);
    if (await m.columnExists('attribution_events', 'next_attempt_at')) {
      await m.exec(`REVOKE SELECT (${SYSTEM_EVENT_COLUMNS}), UPDATE (processing_status) ON attribution_events FROM ${m.roles.system}`);
    }
    await m.exec('DROP TABLE IF EXISTS worker_throughput');
    await m.exec('DROP TABLE IF EXISTS worker_instances');
    await m.dropIndex('idx_dead_events_tenant_created');
    await m.dropIndex('idx_dead_events_event_id');
    await m.dropConstraint('dead_events', 'fk_dead_events_event_id');
    await m.ddl('ALTER TABLE dead_events DROP COLUMN IF EXISTS event_id');
    await m.ddl(`ALTER TABLE attribution_events
      DROP COLUMN IF EXISTS last_error_message,
      DROP COLUMN IF EXISTS last_error_type,
      DROP COLUMN IF EXISTS next_attempt_at`);
  },
};

/**
 * Hands a function to the system role. ALTER … OWNER TO needs the new owner to hold CREATE on
 * the schema; the system role gets it only for the moment of the transfer (unless it had it).
 */
async function giveToSystemRole(m: MigrationContext, signature: string): Promise<void> {
  const [had] = await m.exec<{ ok: boolean }>(`SELECT has_schema_privilege($1, 'public', 'CREATE') AS ok`, [m.roles.system]);
  if (!had!.ok) await m.exec(`GRANT CREATE ON SCHEMA public TO ${m.roles.system}`);
  await m.exec(`ALTER FUNCTION ${signature} OWNER TO ${m.roles.system}`);
  if (!had!.ok) await m.exec(`REVOKE CREATE ON SCHEMA public FROM ${m.roles.system}`);
}
