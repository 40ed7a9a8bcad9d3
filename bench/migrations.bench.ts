// Benchmark: upgrading a populated legacy database (202511141311 → head).
//
// 1,000,000 legacy events and 200,000 ledger rows (plus 200,000 allocations and 20,000 dead
// events) are seeded once and cloned, so both contenders get identical data on the same server
// in the same run (skeldir goes on from 202511151450 to head; the naive one stops there):
//   - skeldir: the real migrations (short DDL steps, NOT VALID + VALIDATE, CHECK-backed SET NOT
//     NULL, CREATE INDEX CONCURRENTLY, per-tenant batched backfills with RLS forced);
//   - naive: the same changes the way a straightforward migration does them, each revision one
//     transaction of whole-table UPDATEs, SET NOT NULL, plain CREATE INDEX and validating CHECKs.
// A sampler polls pg_locks every few milliseconds and reports the longest time any transaction
// held an ACCESS EXCLUSIVE lock on a table. Run: node --import tsx bench/migrations.bench.ts
import pg from 'pg';
import { SchemaMigrator } from '../src/migrations/migrator.js';
import { DOCUMENT_REVISIONS, headRevision, LEGACY_HEAD } from '../src/migrations/registry.js';
import { cloneDatabase, createTestDatabase, stopTestServer, superClient, urlFor, type TestDatabase } from '../src/testing/db.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const LEDGER = Number(process.env.BENCH_LEDGER ?? 200_000);
const ALLOCATIONS = Number(process.env.BENCH_ALLOCATIONS ?? 200_000);
const DEAD = Number(process.env.BENCH_DEAD ?? 20_000);
const TENANTS = Number(process.env.BENCH_TENANTS ?? 20);

async function seed(client: pg.Client): Promise<void> {
  await client.query(`INSERT INTO tenants (id, name)
    SELECT md5('t' || g)::uuid, 'tenant ' || g FROM generate_series(1, ${TENANTS}) g`);
  await client.query(`INSERT INTO attribution_events (id, tenant_id, occurred_at, external_event_id, correlation_id, session_id, revenue_cents, raw_payload)
    SELECT md5('e' || g)::uuid, md5('t' || (g % ${TENANTS} + 1))::uuid,
           timestamptz '2025-01-01' + (g % 300000) * interval '1 minute',
           CASE WHEN g % 4 IN (0, 3) THEN 'ext-' || g END,
           CASE WHEN g % 4 IN (1, 3) THEN md5('c' || g)::uuid END,
           CASE WHEN g % 2 = 0 THEN md5('s' || (g / 10))::uuid END,
           (g % 1000) * 100, jsonb_build_object('n', g)
      FROM generate_series(1, ${EVENTS}) g`);
  await client.query(`INSERT INTO revenue_ledger (id, tenant_id, revenue_cents, is_verified, verified_at)
    SELECT md5('l' || g)::uuid, md5('t' || (g % ${TENANTS} + 1))::uuid, g % 100000, g % 3 <> 0,
           CASE WHEN g % 3 = 1 THEN timestamptz '2025-06-01' + g * interval '1 second' END
      FROM generate_series(1, ${LEDGER}) g`);
  await client.query(`INSERT INTO attribution_allocations (tenant_id, event_id, channel_code, allocated_revenue_cents, allocation_ratio)
    SELECT md5('t' || (g % ${TENANTS} + 1))::uuid, md5('e' || g)::uuid, 'email', g % 1000, (g % 100000) / 100000.0
      FROM generate_series(1, ${ALLOCATIONS}) g`);
  await client.query(`INSERT INTO dead_events (tenant_id, source, error_code, error_detail, raw_payload)
    SELECT md5('t' || (g % ${TENANTS} + 1))::uuid, 'worker', 'timeout', jsonb_build_object('message', 'boom ' || g), '{}'
      FROM generate_series(1, ${DEAD}) g`);
  await client.query('VACUUM ANALYZE');
}

/** The naive migration: one transaction per revision, whole-table statements. */
const NAIVE: string[] = [
  `ALTER TABLE tenants ADD COLUMN api_key_hash varchar(255), ADD COLUMN notification_email varchar(255);
   UPDATE tenants SET api_key_hash = 'unset:' || id, notification_email = 'tenant-' || id || '@skeldir.invalid';
   ALTER TABLE tenants ALTER COLUMN api_key_hash SET NOT NULL, ALTER COLUMN notification_email SET NOT NULL;
   CREATE UNIQUE INDEX idx_tenants_api_key_hash ON tenants (api_key_hash);`,
  `ALTER TABLE attribution_events ADD COLUMN idempotency_key varchar(255), ADD COLUMN event_type varchar(50),
     ADD COLUMN channel varchar(100), ADD COLUMN campaign_id varchar(255), ADD COLUMN conversion_value_cents integer,
     ADD COLUMN currency varchar(3) NOT NULL DEFAULT 'USD', ADD COLUMN event_timestamp timestamptz,
     ADD COLUMN processed_at timestamptz DEFAULT now(), ADD COLUMN processing_status varchar(20) NOT NULL DEFAULT 'pending',
     ADD COLUMN retry_count integer NOT NULL DEFAULT 0;
   UPDATE attribution_events SET
     idempotency_key = tenant_id::text || COALESCE(':ext:' || external_event_id, ':corr:' || correlation_id::text, ':id:' || id::text),
     event_type = 'unknown', channel = 'unknown', event_timestamp = occurred_at, conversion_value_cents = revenue_cents,
     processing_status = 'processed', session_id = COALESCE(session_id, md5('skeldir:legacy-session:' || id::text)::uuid);
   ALTER TABLE attribution_events ALTER COLUMN idempotency_key SET NOT NULL, ALTER COLUMN event_type SET NOT NULL,
     ALTER COLUMN channel SET NOT NULL, ALTER COLUMN event_timestamp SET NOT NULL, ALTER COLUMN session_id SET NOT NULL,
     ADD CONSTRAINT ck_attribution_events_processing_status_valid CHECK (processing_status IN ('pending', 'processed', 'failed')),
     ADD CONSTRAINT ck_attribution_events_retry_count_positive CHECK (retry_count >= 0);
   CREATE UNIQUE INDEX idx_events_idempotency ON attribution_events (idempotency_key);
   CREATE INDEX idx_events_tenant_timestamp ON attribution_events (tenant_id, event_timestamp DESC);
   CREATE INDEX idx_events_processing_status ON attribution_events (processing_status, processed_at) WHERE processing_status = 'pending';
   DROP INDEX idx_attribution_events_tenant_external_event_id;
   DROP INDEX idx_attribution_events_tenant_correlation_id;`,
  `ALTER TABLE attribution_allocations ADD COLUMN model_type varchar(50), ADD COLUMN confidence_score numeric(4,3),
     ADD COLUMN credible_interval_lower_cents integer, ADD COLUMN credible_interval_upper_cents integer,
     ADD COLUMN convergence_r_hat numeric(5,4), ADD COLUMN effective_sample_size integer,
     ADD COLUMN verified boolean NOT NULL DEFAULT false, ADD COLUMN verification_source varchar(50),
     ADD COLUMN verification_timestamp timestamptz;
   UPDATE attribution_allocations SET model_type = 'unknown', confidence_score = round(allocation_ratio, 3);
   ALTER TABLE attribution_allocations ALTER COLUMN model_type SET NOT NULL, ALTER COLUMN confidence_score SET NOT NULL,
     ADD CONSTRAINT ck_allocations_confidence_score CHECK (confidence_score >= 0 AND confidence_score <= 1);
   CREATE INDEX idx_allocations_channel_performance ON attribution_allocations (tenant_id, channel_code, created_at DESC)
     INCLUDE (allocated_revenue_cents, confidence_score);`,
  `ALTER TABLE revenue_ledger ADD COLUMN transaction_id varchar(255), ADD COLUMN order_id varchar(255),
     ADD COLUMN state varchar(50), ADD COLUMN previous_state varchar(50), ADD COLUMN amount_cents integer,
     ADD COLUMN currency varchar(3) NOT NULL DEFAULT 'USD', ADD COLUMN verification_source varchar(50),
     ADD COLUMN verification_timestamp timestamptz, ADD COLUMN metadata jsonb;
   UPDATE revenue_ledger SET transaction_id = 'legacy_' || id, state = CASE WHEN is_verified THEN 'captured' ELSE 'authorized' END,
     amount_cents = revenue_cents, verification_source = 'legacy_migration', verification_timestamp = COALESCE(verified_at, created_at);
   ALTER TABLE revenue_ledger ALTER COLUMN transaction_id SET NOT NULL, ALTER COLUMN state SET NOT NULL,
     ALTER COLUMN amount_cents SET NOT NULL, ALTER COLUMN verification_source SET NOT NULL,
     ALTER COLUMN verification_timestamp SET NOT NULL,
     ADD CONSTRAINT ck_revenue_ledger_state_valid CHECK (state IN ('authorized', 'captured', 'refunded', 'chargeback'));
   CREATE UNIQUE INDEX idx_revenue_ledger_transaction_id ON revenue_ledger (transaction_id);
   CREATE INDEX idx_revenue_ledger_state ON revenue_ledger (state);
   CREATE INDEX idx_revenue_ledger_tenant_state ON revenue_ledger (tenant_id, state, created_at DESC);`,
  `ALTER TABLE dead_events ADD COLUMN event_type varchar(50), ADD COLUMN error_type varchar(100), ADD COLUMN error_message text,
     ADD COLUMN error_traceback text, ADD COLUMN retry_count integer NOT NULL DEFAULT 0, ADD COLUMN last_retry_at timestamptz,
     ADD COLUMN remediation_status varchar(20) NOT NULL DEFAULT 'pending', ADD COLUMN remediation_notes text,
     ADD COLUMN resolved_at timestamptz;
   UPDATE dead_events SET event_type = COALESCE(raw_payload->>'event_type', 'unknown'), error_type = error_code,
     error_message = COALESCE(error_detail->>'message', error_detail::text), error_traceback = error_detail->>'stack';
   ALTER TABLE dead_events ALTER COLUMN event_type SET NOT NULL, ALTER COLUMN error_type SET NOT NULL,
     ALTER COLUMN error_message SET NOT NULL,
     ADD CONSTRAINT ck_dead_events_remediation_status_valid CHECK (remediation_status IN ('pending', 'in_progress', 'resolved', 'ignored')),
     ADD CONSTRAINT ck_dead_events_retry_count_positive CHECK (retry_count >= 0);
   CREATE INDEX idx_dead_events_remediation ON dead_events (remediation_status, created_at DESC);`,
  `CREATE TABLE revenue_state_transitions (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
     ledger_id uuid NOT NULL REFERENCES revenue_ledger (id) ON DELETE CASCADE, from_state varchar(50), to_state varchar(50) NOT NULL,
     reason text, transitioned_at timestamptz NOT NULL DEFAULT now());
   CREATE INDEX idx_revenue_state_transitions_ledger_id ON revenue_state_transitions (ledger_id, transitioned_at DESC);`,
];

/** Samples pg_locks: the longest ACCESS EXCLUSIVE hold on a table of `database`, per transaction. */
class LockSampler {
  private readonly seen = new Map<string, { first: number; last: number; table: string }>();
  private running = true;
  private done: Promise<void> | undefined;
  samples = 0;

  constructor(private readonly client: pg.Client, private readonly database: string, private readonly intervalMs = 5) {}

  start(): void {
    this.done = (async () => {
      while (this.running) {
        const now = performance.now();
        const { rows } = await this.client.query<{ key: string; relname: string }>(
          `SELECT l.pid || ':' || l.virtualtransaction || ':' || c.relname AS key, c.relname
             FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
            WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.granted
              AND c.relkind IN ('r', 'p') AND l.database = (SELECT oid FROM pg_database WHERE datname = $1)`,
          [this.database],
        );
        this.samples++;
        for (const r of rows) {
          const entry = this.seen.get(r.key);
          if (entry) entry.last = now;
          else this.seen.set(r.key, { first: now, last: now, table: r.relname });
        }
        await new Promise((resolve) => setTimeout(resolve, this.intervalMs));
      }
    })();
  }

  async stop(): Promise<{ longestMs: number; table: string; holds: number }> {
    this.running = false;
    await this.done;
    let longestMs = 0;
    let table = '-';
    for (const e of this.seen.values()) {
      // A hold seen in one sample lasted up to one sampling interval.
      const held = e.last - e.first + this.intervalMs;
      if (held > longestMs) {
        longestMs = held;
        table = e.table;
      }
    }
    return { longestMs, table, holds: this.seen.size };
  }
}

async function measure(name: string, db: TestDatabase, adminUrl: string, run: () => Promise<void>) {
  // In the measured database: pg_locks names relations by oid, resolvable only in its own catalogue.
  const samplerClient = new pg.Client({ connectionString: urlFor(adminUrl, db.name) });
  await samplerClient.connect();
  const sampler = new LockSampler(samplerClient, db.name);
  sampler.start();
  const t0 = performance.now();
  await run();
  const seconds = (performance.now() - t0) / 1000;
  const locks = await sampler.stop();
  await samplerClient.end();
  return { name, seconds, ...locks };
}

async function main() {
  const source = await createTestDatabase('empty');
  const migrator = new SchemaMigrator(source.ownerPool({ max: 2 }), { roles: source.roles });
  await migrator.upgrade(LEGACY_HEAD);
  await migrator.close();
  const client = await superClient(source);
  const t0 = performance.now();
  await seed(client);
  await client.end();
  console.log(`seeded ${EVENTS} events, ${LEDGER} ledger rows, ${ALLOCATIONS} allocations, ${DEAD} dead events, ${TENANTS} tenants in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // Clone the seeded database for the naive contender (identical data, same server).
  const naive = await cloneDatabase(source.adminUrl, source.roles, source.name);

  const results = [];
  const phases = { skeldir: [] as string[], naive: [] as string[] };
  let laterSeconds = 0;
  results.push(
    await measure('skeldir (batched, lock-light)', source, source.adminUrl, async () => {
      const m = new SchemaMigrator(source.ownerPool({ max: 2 }), { roles: source.roles });
      try {
        for (const revision of DOCUMENT_REVISIONS) {
          const t = performance.now();
          await m.upgrade(revision);
          phases.skeldir.push(((performance.now() - t) / 1000).toFixed(1));
        }
        // Then Skeldir's own later revisions, to head (what `skeldir start` does on a legacy database).
        const t = performance.now();
        await m.upgrade('head');
        laterSeconds = (performance.now() - t) / 1000;
      } finally {
        await m.close();
      }
    }),
  );
  results.push(
    await measure('naive (whole-table UPDATEs, one transaction per revision)', naive, source.adminUrl, async () => {
      const c = await superClient(naive);
      try {
        for (const script of NAIVE) {
          const t = performance.now();
          await c.query('BEGIN');
          await c.query(script);
          await c.query('COMMIT');
          phases.naive.push(((performance.now() - t) / 1000).toFixed(1));
        }
      } finally {
        await c.end();
      }
    }),
  );

  console.log('\nupgrade 202511141311 → 202511151450 (the document\'s six revisions; skeldir then continues to head)');
  console.log('contender'.padEnd(60), 'total s'.padStart(8), 'longest ACCESS EXCLUSIVE hold'.padStart(32));
  for (const r of results) {
    console.log(r.name.padEnd(60), r.seconds.toFixed(1).padStart(8), `${r.longestMs.toFixed(0)} ms on ${r.table}`.padStart(32));
  }
  console.log(`\nseconds per phase (4, 5, 6, 7, 8a, 8b): skeldir ${phases.skeldir.join(' / ')}; naive ${phases.naive.join(' / ')}`);
  const [ours, theirs] = results;
  const documentSeconds = ours!.seconds - laterSeconds;
  console.log(`\nskeldir: ${documentSeconds.toFixed(1)} s for the six document revisions + ${laterSeconds.toFixed(1)} s for the later revisions = ${ours!.seconds.toFixed(1)} s to head (${headRevision()})`);
  console.log(`ratio of longest exclusive hold, skeldir / naive: ${(ours!.longestMs / theirs!.longestMs).toFixed(4)}`);
  console.log(`ratio of time for the six document revisions, skeldir / naive: ${(documentSeconds / theirs!.seconds).toFixed(2)}`);
  console.log(`goals: total < 60 s (${ours!.seconds < 60 ? 'met' : 'NOT met'}), no exclusive hold > 1000 ms (${ours!.longestMs <= 1000 ? 'met' : 'NOT met'})`);

  await naive.drop();
  await source.drop();
  await stopTestServer();
}

await main();
