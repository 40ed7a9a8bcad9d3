import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { asPostgres15, catalogueSnapshot } from '../db/catalogue.js';
import { runCli, ROOT, spawnCli } from '../testing/cli.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import {
  expectedIdempotencyKey,
  expectedSyntheticSession,
  generateLegacyData,
  insertLegacyData,
  roundRatio3,
} from '../testing/legacy-fixtures.js';
import { CHECKS, COLUMNS, DROPPED_INDEXES, FOREIGN_KEY, INDEXES, REVISION_LINES } from './document.js';
import { SchemaMigrator } from './migrator.js';
import { checkChain, LEGACY_HEAD, REVISIONS } from './registry.js';

const cleanup: TestDatabase[] = [];
after(async () => {
  for (const db of cleanup) await db.drop().catch(() => {});
});

async function emptyDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase('empty');
  cleanup.push(db);
  return db;
}

function migrator(db: TestDatabase): SchemaMigrator {
  return new SchemaMigrator(db.ownerPool({ max: 2 }), { roles: db.roles });
}

const cli = (db: TestDatabase, args: string[], input?: string) =>
  runCli(['migrate', ...args], { env: { DATABASE_URL: db.url }, input });

describe('the revision chain', () => {
  test('is a single ordered chain whose document revisions follow the document', () => {
    checkChain();
    for (const doc of REVISION_LINES) {
      const r = REVISIONS.find((x) => x.id === doc.revision);
      assert.ok(r, `revision ${doc.revision} exists`);
      assert.equal(r.previous, doc.previous, `${doc.revision} follows ${doc.previous}`);
    }
    assert.ok(REVISIONS.some((r) => r.id === LEGACY_HEAD));
  });

  test('refuses a chain with a gap or out of order', () => {
    const [a, b, c] = REVISIONS;
    assert.throws(() => checkChain([a!, c!]), /follows/);
    assert.throws(() => checkChain([b!, a!]), /follows/);
  });
});

describe('skeldir migrate on an empty database', () => {
  let db: TestDatabase;
  before(async () => {
    db = await emptyDatabase();
  });

  test('upgrade head, downgrade base, upgrade head again', async () => {
    const current0 = await cli(db, ['current']);
    assert.equal(current0.code, 0, current0.stderr);
    assert.equal(current0.stdout.trim(), 'base');

    const up = await cli(db, ['upgrade']);
    assert.equal(up.code, 0, up.stderr);
    const head = REVISIONS[REVISIONS.length - 1]!.id;
    assert.equal((await cli(db, ['current'])).stdout.trim(), head);

    const down = await cli(db, ['downgrade', 'base', '--yes']);
    assert.equal(down.code, 0, down.stderr);
    assert.equal((await cli(db, ['current'])).stdout.trim(), 'base');
    const client = await superClient(db);
    try {
      const { rows } = await client.query(
        `SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND relkind = 'r' AND relname NOT LIKE 'skeldir_migration%'`,
      );
      assert.deepEqual(rows, [], 'base leaves no Skeldir table behind');
    } finally {
      await client.end();
    }

    const again = await cli(db, ['upgrade', 'head']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((await cli(db, ['current'])).stdout.trim(), head);

    const idle = await cli(db, ['upgrade']);
    assert.equal(idle.code, 0);
    assert.match(idle.stdout, new RegExp(`already at ${head}`));
  });

  test('history lists the chain newest first and marks head and current', async () => {
    const { code, stdout } = await cli(db, ['history']);
    assert.equal(code, 0);
    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, REVISIONS.length);
    assert.match(lines[0]!, /\(head\) \(current\)/);
    assert.match(lines[lines.length - 1]!, /^base -> 202511141300, /);
    assert.ok(lines.some((l) => l.startsWith('202511141311 -> 202511151400, ')));
  });

  test('an unknown revision is a clear error with exit code 2 and changes nothing', async () => {
    for (const args of [['upgrade', '999999999999'], ['downgrade', 'nope'], ['upgrade', '2025111514']]) {
      const r = await cli(db, args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /unknown revision/);
    }
    const wrongWay = await cli(db, ['upgrade', LEGACY_HEAD]);
    assert.equal(wrongWay.code, 2);
    assert.match(wrongWay.stderr, /use `skeldir migrate downgrade/);
    assert.equal((await cli(db, ['current'])).stdout.trim(), REVISIONS[REVISIONS.length - 1]!.id);
  });

  test('the schema at head matches the committed snapshot (npm run schema:snapshot)', async () => {
    const client = await superClient(db);
    try {
      // Made on PostgreSQL 15; compared as 15 prints it, so the suite holds on 16-18 too.
      const live = asPostgres15(await catalogueSnapshot(client));
      const committed = readFileSync(join(ROOT, 'schema', 'head.txt'), 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('#'));
      assert.deepEqual(live, committed, 'schema/head.txt is stale: run npm run schema:snapshot and review the diff');
    } finally {
      await client.end();
    }
  });

  test('every column, index, CHECK and foreign key of the document holds at head', async () => {
    const client = await superClient(db);
    try {
      for (const c of COLUMNS) {
        const { rows } = await client.query(
          `SELECT format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable,
                  pg_get_expr(d.adbin, d.adrelid) AS default, col_description(a.attrelid, a.attnum) AS comment
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped`,
          [`public.${c.table}`, c.column],
        );
        assert.equal(rows.length, 1, `${c.table}.${c.column} exists (line ${c.line})`);
        assert.equal(rows[0].type, c.type, `${c.table}.${c.column} type`);
        assert.equal(rows[0].nullable, c.nullable, `${c.table}.${c.column} nullability`);
        assert.equal(rows[0].default, c.default, `${c.table}.${c.column} default`);
        assert.match(rows[0].comment ?? '', new RegExp(`INVARIANT: ${c.invariant}`), `${c.table}.${c.column} INVARIANT tag`);
      }
      for (const i of INDEXES) {
        const { rows } = await client.query(`SELECT pg_get_indexdef(to_regclass($1)) AS def`, [`public.${i.name}`]);
        assert.equal(rows[0].def, i.definition, `${i.name} (line ${i.line})`);
      }
      for (const d of DROPPED_INDEXES) {
        const { rows } = await client.query(`SELECT to_regclass($1) AS r`, [`public.${d.name}`]);
        assert.equal(rows[0].r, null, `${d.name} is dropped (line ${d.line})`);
      }
      for (const k of [...CHECKS, FOREIGN_KEY]) {
        const { rows } = await client.query(
          `SELECT pg_get_constraintdef(oid) AS def, convalidated FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2`,
          [`public.${k.table}`, k.name],
        );
        assert.equal(rows.length, 1, `${k.name} exists (line ${k.line})`);
        assert.equal(rows[0].def, k.definition, k.name);
        assert.equal(rows[0].convalidated, true, `${k.name} is validated`);
      }
    } finally {
      await client.end();
    }
  });
});

describe('every revision reverses exactly', () => {
  test('the schema after upgrade R equals the schema after going up to head and down to R', async () => {
    const db = await emptyDatabase();
    const m = migrator(db);
    const client = await superClient(db);
    try {
      const up = new Map<string, string[]>();
      up.set('base', await catalogueSnapshot(client));
      for (const r of REVISIONS) {
        await m.upgrade(r.id);
        up.set(r.id, await catalogueSnapshot(client));
      }
      const targets = ['base', ...REVISIONS.map((r) => r.id)].reverse().slice(1);
      for (const target of targets) {
        await m.downgrade(target);
        assert.deepEqual(await catalogueSnapshot(client), up.get(target), `schema at ${target} after downgrading to it`);
      }
    } finally {
      await client.end();
      await m.close();
    }
  });
});

describe('upgrading a populated legacy database', () => {
  const data = generateLegacyData({ tenants: 4, events: 12_000, ledger: 10_000, allocations: 10_000, dead: 10_000 });
  let db: TestDatabase;
  let client: pg.Client;

  before(async () => {
    db = await emptyDatabase();
    const m = migrator(db);
    await m.upgrade(LEGACY_HEAD);
    await m.close();
    client = await superClient(db);
    await insertLegacyData(client, data);
    // Small batches so every table is backfilled in many batches, as on a large database.
    const r = await runCli(['migrate', 'upgrade', 'head'], { env: { DATABASE_URL: db.url, SKELDIR_MIGRATION_BATCH_SIZE: '700' } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /attribution_events: idempotency keys, timestamps, sessions: 12000\/12000 done/);
  });
  after(async () => {
    await client?.end();
  });

  test('no row is lost', async () => {
    const counts = (await client.query(`SELECT
      (SELECT count(*) FROM tenants)::int AS tenants, (SELECT count(*) FROM attribution_events)::int AS events,
      (SELECT count(*) FROM revenue_ledger)::int AS ledger, (SELECT count(*) FROM attribution_allocations)::int AS allocations,
      (SELECT count(*) FROM dead_events)::int AS dead`)).rows[0];
    assert.deepEqual(counts, { tenants: 4, events: 12_000, ledger: 10_000, allocations: 10_000, dead: 10_000 });
  });

  test('tenants get an unusable key hash and a reserved address', async () => {
    const { rows } = await client.query(`SELECT id, api_key_hash, notification_email FROM tenants`);
    for (const t of rows) {
      assert.equal(t.api_key_hash, `unset:${t.id}`);
      assert.equal(t.notification_email, `tenant-${t.id}@skeldir.invalid`);
    }
  });

  test('events: tenant-scoped idempotency keys, timestamps, values, synthetic sessions, processed', async () => {
    const { rows } = await client.query(`SELECT id, idempotency_key, event_type, channel, campaign_id, conversion_value_cents,
        currency, event_timestamp, processing_status, retry_count, processed_at IS NOT NULL AS has_processed_at, session_id
      FROM attribution_events`);
    const byId = new Map(rows.map((r) => [r.id, r]));
    let synthetic = 0;
    for (const e of data.events) {
      const r = byId.get(e.id);
      assert.ok(r, `event ${e.id} kept`);
      assert.equal(r.idempotency_key, expectedIdempotencyKey(e));
      assert.ok(r.idempotency_key.length <= 255);
      assert.equal(r.event_timestamp.toISOString(), e.occurred_at);
      assert.equal(r.conversion_value_cents, e.revenue_cents);
      assert.equal(r.event_type, 'unknown');
      assert.equal(r.channel, 'unknown');
      assert.equal(r.campaign_id, null);
      assert.equal(r.currency, 'USD');
      assert.equal(r.processing_status, 'processed');
      assert.equal(r.retry_count, 0);
      assert.equal(r.has_processed_at, true);
      if (e.session_id === null) {
        synthetic++;
        assert.equal(r.session_id, expectedSyntheticSession(e.id));
      } else {
        assert.equal(r.session_id, e.session_id);
      }
    }
    assert.equal(synthetic, 6000);
    const pending = await client.query(`SELECT count(*)::int AS n FROM attribution_events WHERE processing_status = 'pending'`);
    assert.equal(pending.rows[0].n, 0, 'legacy events are not re-queued');
  });

  test('ledger: legacy_<id>, captured when verified, amounts and verification times', async () => {
    const { rows } = await client.query(`SELECT id, transaction_id, state, previous_state, amount_cents, currency, verification_source,
        verification_timestamp::text AS vt, created_at::text AS created, verified_at::text AS verified, order_id, metadata
      FROM revenue_ledger`);
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const l of data.ledger) {
      const r = byId.get(l.id);
      assert.ok(r);
      assert.equal(r.transaction_id, `legacy_${l.id}`);
      assert.equal(r.state, l.is_verified ? 'captured' : 'authorized');
      assert.equal(r.previous_state, null);
      assert.equal(r.amount_cents, l.revenue_cents);
      assert.equal(r.currency, 'USD');
      assert.equal(r.verification_source, 'legacy_migration');
      assert.equal(r.vt, l.verified_at === null ? r.created : r.verified);
      assert.equal(r.order_id, null);
      assert.equal(r.metadata, null);
    }
  });

  test('allocations: model_type unknown, confidence from the ratio, unverified', async () => {
    const { rows } = await client.query(`SELECT id, model_type, confidence_score, verified, credible_interval_lower_cents,
        convergence_r_hat FROM attribution_allocations`);
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const a of data.allocations) {
      const r = byId.get(a.id);
      assert.ok(r);
      assert.equal(r.model_type, 'unknown');
      assert.equal(r.confidence_score, roundRatio3(a.allocation_ratio), `ratio ${a.allocation_ratio}`);
      assert.equal(r.verified, false);
      assert.equal(r.credible_interval_lower_cents, null);
      assert.equal(r.convergence_r_hat, null);
    }
  });

  test('dead events: classification, message and trace from the legacy columns', async () => {
    const { rows } = await client.query(`SELECT id, event_type, error_type, error_message, error_traceback, retry_count,
        remediation_status, error_detail::text AS detail_text FROM dead_events`);
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const d of data.dead) {
      const r = byId.get(d.id);
      assert.ok(r);
      assert.equal(r.event_type, typeof d.raw_payload.event_type === 'string' ? d.raw_payload.event_type : 'unknown');
      assert.equal(r.error_type, d.error_code.slice(0, 100));
      assert.equal(r.error_message, typeof d.error_detail.message === 'string' ? d.error_detail.message : r.detail_text);
      assert.deepEqual(JSON.parse(r.detail_text), d.error_detail);
      assert.equal(r.error_traceback, (d.error_detail.traceback ?? d.error_detail.stack ?? null) as string | null);
      assert.equal(r.retry_count, 0);
      assert.equal(r.remediation_status, 'pending');
    }
  });

  test('the populated database ends with exactly the schema of an empty one', async () => {
    const fresh = await createTestDatabase('head');
    cleanup.push(fresh);
    const freshClient = await superClient(fresh);
    try {
      assert.deepEqual(await catalogueSnapshot(client), await catalogueSnapshot(freshClient));
    } finally {
      await freshClient.end();
    }
  });
});

describe('an upgrade killed part-way', () => {
  test('is finished by running it again, with the same result', async () => {
    const data = generateLegacyData({ tenants: 3, events: 6000, ledger: 3000, allocations: 3000, dead: 1000, seed: 7 });
    const db = await emptyDatabase();
    const m = migrator(db);
    await m.upgrade(LEGACY_HEAD);
    await m.close();
    const client = await superClient(db);
    try {
      await insertLegacyData(client, data);
      // Tiny batches make the backfill slow enough to kill in the middle of it.
      const child = spawnCli(['migrate', 'upgrade', 'head'], { env: { DATABASE_URL: db.url, SKELDIR_MIGRATION_BATCH_SIZE: '20' } });
      let stderr = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`never reached the events backfill: ${stderr}`)), 60_000);
        child.stderr!.on('data', (d) => {
          stderr += d;
          if (/attribution_events: idempotency keys, timestamps, sessions: \d+\/6000 \(/.test(stderr)) {
            clearTimeout(timer);
            child.kill('SIGKILL');
            resolve();
          }
        });
      });
      await new Promise((resolve) => child.on('close', resolve));
      const half = await client.query(`SELECT count(*) FILTER (WHERE idempotency_key IS NULL)::int AS todo, count(*)::int AS n FROM attribution_events`);
      assert.ok(half.rows[0].todo > 0 && half.rows[0].todo < 6000, `killed mid-backfill (${half.rows[0].todo} rows left)`);
      const current = await cli(db, ['current']);
      assert.equal(current.stdout.trim(), '202511151400', 'phase 5 is not recorded as applied');
      assert.match(current.stderr, /the upgrade of revision 202511151410 .* did not finish/);

      const again = await cli(db, ['upgrade', 'head']);
      assert.equal(again.code, 0, again.stderr);
      assert.doesNotMatch((await cli(db, ['current'])).stderr, /did not finish/);
      const { rows } = await client.query(`SELECT id, idempotency_key, session_id FROM attribution_events`);
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const e of data.events) {
        assert.equal(byId.get(e.id).idempotency_key, expectedIdempotencyKey(e));
        assert.equal(byId.get(e.id).session_id, e.session_id ?? expectedSyntheticSession(e.id));
      }
      const fresh = await createTestDatabase('head');
      cleanup.push(fresh);
      const freshClient = await superClient(fresh);
      try {
        assert.deepEqual(await catalogueSnapshot(client), await catalogueSnapshot(freshClient), 'same schema as a clean upgrade');
      } finally {
        await freshClient.end();
      }
    } finally {
      await client.end();
    }
  });
});

describe('concurrency and safety', () => {
  test('two upgrades started at once leave one consistent result', async () => {
    const db = await emptyDatabase();
    const [a, b] = await Promise.all([cli(db, ['upgrade', 'head']), cli(db, ['upgrade', 'head'])]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const client = await superClient(db);
    try {
      const applied = await client.query(`SELECT name FROM skeldir_migration ORDER BY name`);
      assert.deepEqual(applied.rows.map((r) => r.name), REVISIONS.map((r) => r.id), 'each revision applied exactly once');
      const template = await createTestDatabase('head');
      cleanup.push(template);
      const tc = await superClient(template);
      try {
        assert.deepEqual(await catalogueSnapshot(client), await catalogueSnapshot(tc));
      } finally {
        await tc.end();
      }
    } finally {
      await client.end();
    }
    // Exactly one of the two did the work; the other found the schema at head.
    const outputs = [a.stdout, b.stdout];
    assert.equal(outputs.filter((o) => /^base -> /.test(o)).length, 1, 'one run did the work');
    assert.equal(outputs.filter((o) => /^already at /.test(o)).length, 1, 'the other found it done');
  });

  test('a downgrade that drops data says so and needs --yes', async () => {
    const db = await createTestDatabase('head');
    cleanup.push(db);
    const client = await superClient(db);
    try {
      await client.query(`INSERT INTO tenants (name, api_key_hash, notification_email) VALUES ('t', 'h1', 'a@example.com')`);
      const refused = await cli(db, ['downgrade', LEGACY_HEAD]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /WARNING: this downgrade permanently deletes data/);
      assert.match(refused.stderr, /columns api_key_hash, notification_email of tenants: 1 row hold data/);
      assert.match(refused.stderr, /pass --yes/);
      assert.equal((await cli(db, ['current'])).stdout.trim(), REVISIONS[REVISIONS.length - 1]!.id, 'nothing was reverted');

      // Without a terminal there is nobody to ask: refused even when an answer is piped in.
      const piped = await cli(db, ['downgrade', LEGACY_HEAD], 'y\n');
      assert.equal(piped.code, 1);
      assert.equal((await cli(db, ['current'])).stdout.trim(), REVISIONS[REVISIONS.length - 1]!.id);

      const done = await cli(db, ['downgrade', LEGACY_HEAD, '--yes']);
      assert.equal(done.code, 0, done.stderr);
      assert.match(done.stderr, /WARNING/);
      assert.equal((await cli(db, ['current'])).stdout.trim(), LEGACY_HEAD);
      const cols = await client.query(`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'tenants' AND column_name = 'api_key_hash'`);
      assert.equal(cols.rows[0].n, 0);
    } finally {
      await client.end();
    }
  });

  test('a downgrade refuses when the schema moved after its data-loss warning', async () => {
    const db = await emptyDatabase();
    const m = migrator(db);
    try {
      await m.upgrade('202511151400');
      await assert.rejects(m.downgrade(LEGACY_HEAD, { expectedFrom: '202511141300' }), { code: 'schema_changed' });
      assert.equal(await m.current(), '202511151400', 'nothing was done');
    } finally {
      await m.close();
    }
  });

  test('a downgrade that failed part-way is re-applied by the next upgrade', async () => {
    const db = await emptyDatabase();
    const head = REVISIONS[REVISIONS.length - 1]!.id;
    // Phase 4's downgrade drops its index, then fails before dropping the columns.
    const broken = REVISIONS.map((r) =>
      r.id !== '202511151400' ? r : { ...r, async down(m: Parameters<typeof r.down>[0]) { await m.dropIndex('idx_tenants_api_key_hash'); throw new Error('crash (simulated)'); } },
    );
    const m = new SchemaMigrator(db.ownerPool({ max: 3 }), { roles: db.roles, revisions: broken });
    try {
      await m.upgrade('head');
      await assert.rejects(m.downgrade(LEGACY_HEAD), { code: 'migration_failed' });
      assert.equal(await m.current(), '202511151400', 'still recorded, though half reverted');
      assert.deepEqual(await m.inflight().then((i) => i && [i.revision, i.direction]), ['202511151400', 'down']);
      const result = await m.upgrade('head');
      assert.deepEqual(result.resumed, { revision: '202511151400', interrupted: 'down', finished: 'up' });
      assert.equal(result.to, head);
      assert.equal(await m.inflight(), undefined);
      const client = await superClient(db);
      const fresh = await createTestDatabase('head');
      cleanup.push(fresh);
      const freshClient = await superClient(fresh);
      try {
        assert.deepEqual(await catalogueSnapshot(client), await catalogueSnapshot(freshClient), 'the index is back');
      } finally {
        await client.end();
        await freshClient.end();
      }
    } finally {
      await m.close();
    }
  });

  test('a downgrade of an empty schema needs no confirmation', async () => {
    const db = await emptyDatabase();
    assert.equal((await cli(db, ['upgrade', '202511151400'])).code, 0);
    const r = await cli(db, ['downgrade', LEGACY_HEAD]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /WARNING/);
  });
});
