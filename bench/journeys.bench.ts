// Benchmark: a conversion's path with the identity graph (issue 14), per conversion as the worker
// loads it, on its own embedded PostgreSQL. Three queries over the same tables in the same run:
//   - graph:    loadPath (src/attribution/journeys.ts): session, user, the anonymous ids linked to
//               the user and the conversion's own anonymous id, one index-served branch each (UNION);
//   - before:   the path query before the identity graph (session OR user only): the peer, what
//               the worker paid before;
//   - naive-or: the graph rule written as one OR with an IN (subquery) on identity_links: what the
//               UNION form avoids (EXPLAIN: an index scan of the tenant's whole lookback window by time,
//               every touch filtered; the UNION's branches are index scans with the time in the
//               index condition, 0.3 ms at 30,000 touches).
// graph is a named statement, as in the code; before and naive-or are sent unnamed, as the path
// query was before. The figures of this shared machine vary by 2× between runs: read the ratios.
// Data: BENCH_TOUCHES touchpoints (default 300,000) over 60,000 sessions and 20,000 users, a third of
// them carrying one of 40,000 anonymous ids; 15,000 people linked to 2 browsers each; 5,000
// conversions. Each contender loads the paths of the same BENCH_PATHS conversions (default 2,000).
// Run: node --import tsx bench/journeys.bench.ts
import { randomUUID } from 'node:crypto';

const TOUCHES = Number(process.env.BENCH_TOUCHES ?? 300_000);
const PATHS = Number(process.env.BENCH_PATHS ?? 2_000);
const SESSIONS = 60_000;
const USERS = 20_000;
const BROWSERS = 40_000;
const CONVERSIONS = 5_000;
const DAY = 86_400_000;
const T0 = Date.parse('2026-06-01T00:00:00Z');

async function main(): Promise<void> {
  const { createTestDatabase, stopTestServer, superClient } = await import('../src/testing/db.js');
  const { createTenant } = await import('../src/attribution/test-fixtures.js');
  const { withTenant } = await import('../src/db/tenant-context.js');
  const { loadConversionForUpdate, loadPath } = await import('../src/attribution/journeys.js');

  const db = await createTestDatabase('head');
  const su = await superClient(db);
  const app = db.appPool({ max: 2 });
  try {
    const tenant = await createTenant(su, 'journeys bench');
    const sessions = Array.from({ length: SESSIONS }, () => randomUUID());
    const channels = ['email', 'organic', 'referral', 'facebook_paid', 'google_search_paid'];
    // Deterministic spread: touch i belongs to session i % SESSIONS, user (i * 7) % USERS for a fifth
    // of them, browser (i * 13) % BROWSERS for a third; times over 60 days.
    await su.query(
      `INSERT INTO attribution_events (tenant_id, event_type, channel, session_id, event_timestamp, occurred_at, idempotency_key, raw_payload,
                                       processing_status, user_id, anonymous_id, revenue_cents)
       SELECT $1::uuid, 'touchpoint', ($4::text[])[1 + i % 5], ($3::uuid[])[1 + i % $5], to_timestamp($6 / 1000.0 + (i * 17 % 5184000)),
              to_timestamp($6 / 1000.0 + (i * 17 % 5184000)), $1::uuid::text || ':t:' || i, '{}', 'processed',
              CASE WHEN i % 5 = 0 THEN 'user-' || (i * 7 % $7) END, CASE WHEN i % 3 = 0 THEN 'anon-' || (i * 13 % $8) END, 0
       FROM generate_series(1, $2) i`,
      [tenant, TOUCHES, sessions, channels, SESSIONS, T0, USERS, BROWSERS],
    );
    await su.query(
      `INSERT INTO identity_links (tenant_id, anonymous_id, user_id, source, linked_at)
       SELECT $1, 'anon-' || ((u * 2 + k) % $3), 'user-' || u, 'api', now() FROM generate_series(0, $2 - 1) u, generate_series(0, 1) k
       ON CONFLICT DO NOTHING`,
      [tenant, 15_000, BROWSERS],
    );
    const conv = await su.query<{ id: string }>(
      `INSERT INTO attribution_events (tenant_id, event_type, channel, session_id, event_timestamp, occurred_at, idempotency_key, raw_payload,
                                       processing_status, user_id, anonymous_id, conversion_value_cents, revenue_cents)
       SELECT $1::uuid, 'conversion', 'direct', ($3::uuid[])[1 + (i * 11) % $4], to_timestamp($5 / 1000.0 + 2592000 + (i * 31 % 2592000)),
              to_timestamp($5 / 1000.0 + 2592000 + (i * 31 % 2592000)), $1::uuid::text || ':c:' || i, '{}', 'processed',
              'user-' || (i * 3 % $6), CASE WHEN i % 4 = 0 THEN 'anon-' || (i * 5 % $7) END, 1000, 1000
       FROM generate_series(1, $2) i RETURNING id`,
      [tenant, CONVERSIONS, sessions, SESSIONS, T0, USERS, BROWSERS],
    );
    await su.query('ANALYZE attribution_events; ANALYZE identity_links');
    const ids = conv.rows.map((r) => r.id).slice(0, PATHS);

    const before = `SELECT coalesce(ct.code, 'unknown') AS channel, t.campaign_id AS campaign, (extract(epoch FROM t.event_timestamp) * 1000)::text AS at_ms
       FROM attribution_events t LEFT JOIN tenant_channels ct ON ct.tenant_id = t.tenant_id AND ct.code = t.channel
       WHERE t.tenant_id = $1 AND (t.session_id = $2 OR ($3::varchar IS NOT NULL AND t.user_id = $3)) AND t.event_type = 'touchpoint'
         AND t.event_timestamp <= $4::timestamptz AND t.event_timestamp >= $4::timestamptz - make_interval(hours => 24 * $5)
       ORDER BY t.event_timestamp, t.id`;
    const naive = `SELECT coalesce(ct.code, 'unknown') AS channel, t.campaign_id AS campaign, (extract(epoch FROM t.event_timestamp) * 1000)::text AS at_ms
       FROM attribution_events t LEFT JOIN tenant_channels ct ON ct.tenant_id = t.tenant_id AND ct.code = t.channel
       WHERE t.tenant_id = $1 AND t.event_type = 'touchpoint'
         AND (t.session_id = $2 OR ($3::varchar IS NOT NULL AND t.user_id = $3)
              OR t.anonymous_id IN (SELECT l.anonymous_id FROM identity_links l WHERE l.tenant_id = $1 AND l.user_id = $3)
              OR ($6::varchar IS NOT NULL AND t.anonymous_id = $6))
         AND t.event_timestamp <= $4::timestamptz AND t.event_timestamp >= $4::timestamptz - make_interval(hours => 24 * $5)
       ORDER BY t.event_timestamp, t.id`;

    // Each contender runs over every conversion twice and the second pass is timed: the first
    // reads the pages into the cache (the contender measured first would pay for it otherwise).
    const run = async (name: string, fn: (c: import('pg').PoolClient, id: string) => Promise<number>, warm = ids) => {
      return withTenant(app, tenant, async (c) => {
        for (const id of warm) await fn(c, id);
        let touches = 0;
        const t0 = performance.now();
        for (const id of ids) touches += await fn(c, id);
        const ms = performance.now() - t0;
        return { name, ms, touches };
      });
    };
    const graph = await run('graph', async (c, id) => (await loadPath(c, tenant, await loadConversionForUpdate(c, tenant, id), 30)).length);
    const peer = await run('before', async (c, id) => {
      const conv = await loadConversionForUpdate(c, tenant, id);
      return (await c.query(before, [tenant, conv.sessionId, conv.userId, conv.atText, 30])).rows.length;
    });
    const naiveOr = await run(
      'naive-or',
      async (c, id) => {
        const conv = await loadConversionForUpdate(c, tenant, id);
        return (await c.query(naive, [tenant, conv.sessionId, conv.userId, conv.atText, 30, conv.anonymousId])).rows.length;
      },
      ids.slice(0, 50), // the graph and before passes have read the same pages already
    );
    console.log(`journeys benchmark: ${TOUCHES.toLocaleString('en-US')} touches, ${CONVERSIONS.toLocaleString('en-US')} conversions, 30,000 links; paths of ${ids.length.toLocaleString('en-US')} conversions (conversion row + path, one connection)`);
    for (const r of [graph, peer, naiveOr]) {
      console.log(`${r.name.padEnd(9)} ${(r.ms / ids.length).toFixed(3).padStart(7)} ms per conversion   ${(r.touches / ids.length).toFixed(2)} touches per path`);
    }
    console.log(`ratios: graph/before ${(graph.ms / peer.ms).toFixed(2)}x the time (and ${(graph.touches / peer.touches).toFixed(2)}x the touches); naive-or/graph ${(naiveOr.ms / graph.ms).toFixed(1)}x`);
    if (graph.touches !== naiveOr.touches) throw new Error(`graph found ${graph.touches} touches, naive-or ${naiveOr.touches}: they must agree`);
  } finally {
    await app.end();
    await su.end();
    await db.drop();
    await stopTestServer();
  }
}

await main();
