// Verified webhook deliveries per second (Stripe): the signature check (HMAC-SHA256 over the raw
// body, timing-safe compare) plus the ledger write (dedup row, advisory locks, ledger row,
// reference, transition written by the trigger), through the real HTTP route (app.inject) and
// through deliverWebhook directly; and the share of the time spent in the signature check.
// Runs on its own embedded PostgreSQL (or TEST_DATABASE_URL). Figures on a shared 2-core
// machine are noisy: compare ratios measured in the same run.
//
// BENCH_WEBHOOKS_KEYS_ROUNDS=n (default 0: off) runs, instead of the above, what revision
// 202612030600's tenant-scoped unique indexes cost this write path on one server: two databases
// cloned from the same template, one as migrated, one with the indexes that are pure duplicates of
// a single-column key for the one-server code dropped (DROPPABLE below), the same deliverWebhook
// load (BENCH_WEBHOOKS_KEYS_PER_ROUND deliveries, default 1000, at BENCH_CONCURRENCY) on each in
// turn for n rounds, the order alternating per round so drift hits both alike. Prints
// deliveries/s per round, the medians and their ratio.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config.js';
import { buildApp } from '../src/http/app.js';
import { withTenant } from '../src/db/tenant-context.js';
import { createTenant } from '../src/tenants/tenants.js';
import { createTestDatabase, stopTestServer, superClient } from '../src/testing/db.js';
import { deliverWebhook } from '../src/webhooks/deliver.js';
import { createEndpoint } from '../src/webhooks/endpoints.js';
import { PayPalVerifier } from '../src/webhooks/paypal.js';
import { loadSecretKey } from '../src/webhooks/secret-key.js';
import { verifyStripe } from '../src/webhooks/signatures.js';
import { stripeCharge, stripeEvent, stripeHeaders, TEST_SECRET_KEY } from '../src/webhooks/test-support.js';

process.env.SKELDIR_SECRET_KEY = TEST_SECRET_KEY;
const N = Number(process.env.BENCH_WEBHOOKS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const SECRET = 'whsec_bench_secret_0123456789';

const KEY_ROUNDS = Number(process.env.BENCH_WEBHOOKS_KEYS_ROUNDS ?? 0);
const KEY_PER_ROUND = Number(process.env.BENCH_WEBHOOKS_KEYS_PER_ROUND ?? 1000);
/**
 * Revision 202612030600's unique indexes that a verified delivery writes and that one server can
 * do without: each restates a single-column unique key with tenant_id in front, and no statement
 * names it (ON CONFLICT target) nor any foreign key rests on it (checked below). Not here:
 * idx_revenue_ledger_references_tenant_reference (the reference insert's ON CONFLICT target),
 * idx_dead_events_tenant_event (the dead-lettering's ON CONFLICT target), and the two a verified
 * delivery does not write: idx_dead_events_tenant_id_id (only a dead-lettered one does) and
 * idx_attribution_model_runs_tenant_id_id (attribution runs).
 */
const DROPPABLE = ['idx_revenue_ledger_tenant_transaction', 'idx_revenue_state_transitions_tenant_id_id', 'idx_webhook_deliveries_tenant_id_id'];

async function tenantKeysPhase(): Promise<void> {
  const key = loadSecretKey(process.env, '/nonexistent');
  const paypal = new PayPalVerifier({ allowedHosts: [], pinned: [], extraRoots: [], toleranceSeconds: 300 });
  const setup = async (drop: boolean) => {
    const db = await createTestDatabase('head');
    const su = await superClient(db);
    const { rows } = await su.query<{ name: string; constraints: string[] }>(
      `SELECT i.relname AS name, array_remove(array_agg(c.conname::text), NULL) AS constraints
         FROM pg_class i LEFT JOIN pg_constraint c ON c.conindid = i.oid
        WHERE i.relname = ANY($1) GROUP BY i.relname`,
      [DROPPABLE],
    );
    if (rows.length !== DROPPABLE.length) throw new Error(`expected the indexes ${DROPPABLE.join(', ')}, found ${rows.map((r) => r.name).join(', ')}`);
    for (const r of rows) if (r.constraints.length) throw new Error(`${r.name} is used by ${r.constraints.join(', ')}: not droppable`);
    if (drop) for (const name of DROPPABLE) await su.query(`DROP INDEX ${name}`);
    await su.end();
    const owner = db.ownerPool({ max: 1 });
    const { tenant_id } = await createTenant(owner, { name: 'Bench', email: 'bench@x.example' });
    const ep = await createEndpoint(owner, key, { tenantId: tenant_id, provider: 'stripe', secret: SECRET });
    await owner.end();
    const pool = db.appPool({ max: CONCURRENCY + 2 });
    const deliver = (items: ReturnType<typeof batch>) => run(items, CONCURRENCY, async ({ body, headers }) => {
      const r = await deliverWebhook({ pool, key, paypal }, 'stripe', ep.endpoint_id, Buffer.from(body), headers);
      if (r.status !== 'applied') throw new Error(JSON.stringify(r));
    });
    await deliver(batch(200)); // warm-up: connections, plan caches
    return { db, pool, deliver, rates: [] as number[] };
  };
  const withKeys = await setup(false);
  const without = await setup(true);
  try {
    for (let r = 0; r < KEY_ROUNDS; r++) {
      for (const side of r % 2 === 0 ? [withKeys, without] : [without, withKeys]) {
        const items = batch(KEY_PER_ROUND);
        side.rates.push(KEY_PER_ROUND / ((await side.deliver(items)) / 1000));
      }
    }
  } finally {
    for (const side of [withKeys, without]) {
      await side.pool.end();
      await side.db.drop();
    }
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const a = median(withKeys.rates);
  const b = median(without.rates);
  console.log(`revision 202612030600's droppable tenant-scoped keys on the webhook write path: ${KEY_ROUNDS} rounds of ${KEY_PER_ROUND} Stripe deliveries (deliverWebhook, concurrency ${CONCURRENCY}) per database, order alternating`);
  console.log(`dropped in the second database: ${DROPPABLE.join(', ')}`);
  console.log(`with them (as migrated):  median ${a.toFixed(0)} deliveries/s (rounds: ${withKeys.rates.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`without them:             median ${b.toFixed(0)} deliveries/s (rounds: ${without.rates.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`ratio with/without: ${(a / b).toFixed(3)} (cost ${((1 - a / b) * 100).toFixed(1)} %)`);
  // The same round's pair ran back to back: its ratio shows the noise the medians' ratio carries.
  const paired = withKeys.rates.map((x, i) => x / without.rates[i]!);
  console.log(`per-round ratios: ${paired.map((x) => x.toFixed(3)).join(', ')} (median ${median(paired).toFixed(3)}, range ${Math.min(...paired).toFixed(3)}-${Math.max(...paired).toFixed(3)})`);
}

if (KEY_ROUNDS > 0) {
  await tenantKeysPhase();
  await stopTestServer();
  process.exit(0);
}

const db = await createTestDatabase('head');
const owner = db.ownerPool({ max: 1 });
const key = loadSecretKey(process.env, '/nonexistent');
const { tenant_id } = await createTenant(owner, { name: 'Bench', email: 'bench@x.example' });
const ep = await createEndpoint(owner, key, { tenantId: tenant_id, provider: 'stripe', secret: SECRET });
await owner.end();
const app = await buildApp({ db, config: loadConfig({}), logger: false, poolSize: CONCURRENCY + 2 });

function batch(n: number) {
  return Array.from({ length: n }, (_, i) => {
    // A realistic Stripe charge event (~1.5 KB): pad metadata like a real integration's.
    const body = stripeEvent('charge.succeeded', {
      ...stripeCharge({ id: `ch_${randomUUID().replace(/-/g, '')}`, amount: 1000 + i, orderId: `ORD-${i}` }),
      billing_details: { address: { city: 'Berlin', country: 'DE', line1: 'Unter den Linden 1', postal_code: '10117' }, email: 'x@example.com', name: 'A Buyer' },
      description: 'x'.repeat(600),
    });
    return { body, headers: stripeHeaders(body, SECRET) };
  });
}

async function run<T>(items: T[], concurrency: number, fn: (x: T) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
  return performance.now() - t0;
}

// Warm-up (JIT, pool connections, plan caches).
await run(batch(200), CONCURRENCY, async ({ body, headers }) => {
  const r = await app.inject({ method: 'POST', url: `/api/v1/webhooks/stripe/${ep.endpoint_id}`, payload: body, headers });
  if (r.statusCode !== 200) throw new Error(r.body);
});

// 1. The signature check alone, over the same kind of bodies.
const sigItems = batch(N);
const bodies = sigItems.map((x) => ({ buf: Buffer.from(x.body), sig: x.headers['stripe-signature'] }));
const now = Math.floor(Date.now() / 1000);
let ok = 0;
const tSig0 = performance.now();
for (let rep = 0; rep < 5; rep++) for (const b of bodies) ok += verifyStripe(b.buf, b.sig, SECRET, now) ? 1 : 0;
const sigMs = (performance.now() - tSig0) / (5 * N);
if (ok !== 5 * N) throw new Error('signature check failed in the benchmark');

// 2. Full deliveries through the HTTP route, sequential and concurrent.
const post = async ({ body, headers }: { body: string; headers: Record<string, string> }) => {
  const r = await app.inject({ method: 'POST', url: `/api/v1/webhooks/stripe/${ep.endpoint_id}`, payload: body, headers });
  if (r.statusCode !== 200 || r.json().status !== 'applied') throw new Error(r.body);
};
const seqMs = await run(batch(Math.min(N, 1000)), 1, post);
const seqN = Math.min(N, 1000);
const conMs = await run(batch(N), CONCURRENCY, post);

// 3. deliverWebhook without HTTP (what the route adds is parsing headers and the response).
const deps = { pool: app.appPool, key, paypal: new PayPalVerifier({ allowedHosts: [], pinned: [], extraRoots: [], toleranceSeconds: 300 }) };
const directMs = await run(batch(N), CONCURRENCY, async ({ body, headers }) => {
  const r = await deliverWebhook(deps, 'stripe', ep.endpoint_id, Buffer.from(body), headers);
  if (r.status !== 'applied') throw new Error(JSON.stringify(r));
});

// 4. Duplicates: a redelivered event costs the signature check and one conflicting insert.
const dups = batch(200);
await run(dups, CONCURRENCY, post);
const dupMs = await run([...dups, ...dups, ...dups, ...dups, ...dups], CONCURRENCY, async ({ body, headers }) => {
  const r = await app.inject({ method: 'POST', url: `/api/v1/webhooks/stripe/${ep.endpoint_id}`, payload: body, headers });
  if (r.json().status !== 'duplicate') throw new Error(r.body);
});

// 5. Ceiling: the cheapest tenant-scoped transaction (BEGIN, set tenant, one SELECT, COMMIT) at the same concurrency.
const ceilMs = await run(Array.from({ length: N }, () => 0), CONCURRENCY, async () => {
  await withTenant(app.appPool, tenant_id, (c) => c.query('SELECT 1'));
});
const ceiling = N / (ceilMs / 1000);

const perSeq = seqMs / seqN;
const perCon = conMs / N;
console.log(`Stripe deliveries (charge.succeeded, ~${Buffer.byteLength(sigItems[0]!.body)} bytes), N=${N}, concurrency ${CONCURRENCY}`);
console.log(`signature check alone:              ${(sigMs * 1000).toFixed(1)} µs per delivery (${Math.round(1000 / sigMs).toLocaleString('en')} checks/s on one core)`);
console.log(`HTTP route, sequential:             ${(1000 / perSeq).toFixed(0)} verified deliveries/s (${perSeq.toFixed(2)} ms each)`);
console.log(`HTTP route, ${CONCURRENCY} concurrent:            ${(1000 / perCon).toFixed(0)} verified deliveries/s`);
console.log(`deliverWebhook, ${CONCURRENCY} concurrent:        ${(N / (directMs / 1000)).toFixed(0)} verified deliveries/s`);
console.log(`duplicates (redeliveries):          ${(dups.length * 5 / (dupMs / 1000)).toFixed(0)} /s`);
console.log(`ceiling (empty tenant transaction): ${ceiling.toFixed(0)} /s; deliverWebhook reaches ${((N / (directMs / 1000)) / ceiling * 100).toFixed(1)} % of it`);
console.log(`share of time in the signature check: ${((sigMs / perSeq) * 100).toFixed(2)} % of a sequential delivery`);

await app.close();
await db.drop();
await stopTestServer();
