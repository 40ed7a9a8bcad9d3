import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { App } from '../http/app.js';
import type { Database } from '../db/database.js';
import { withTenant } from '../db/tenant-context.js';
import { createEndpoint } from '../webhooks/endpoints.js';
import { loadSecretKey } from '../webhooks/secret-key.js';
import { stripeCharge, stripeEvent, stripeHeaders } from '../webhooks/test-support.js';
import { DEFAULT_WORKER_OPTIONS } from '../worker/options.js';
import { Worker } from '../worker/worker.js';
import { runModel } from '../attribution/run.js';
import { rng } from './rng.js';

/**
 * Seeds a tenant through Skeldir's own interfaces, as a merchant would: events through
 * POST /api/v1/events/batch, the worker processing them (the five rules' allocations), payments
 * through signed Stripe webhooks (some refunded, some never paid), and dead events. The browser
 * tests check every page's numbers against the API over this data.
 */
export const SEED_CHANNELS = ['facebook_paid', 'google_search_paid', 'email', 'organic', 'referral', 'tiktok_paid'] as const;

export interface Seeded {
  conversions: number;
  orders: string[];
  transactions: string[];
  deadEvents: string[];
}

export async function seedTenant(
  app: App,
  db: Pick<Database, 'appPool' | 'appClientConfig' | 'ownerPool'>,
  tenant: { tenant_id: string; api_key: string },
  o: { sessions: number; seed: number; now?: Date; deadEvents?: number; label?: string },
): Promise<Seeded> {
  const rand = rng(o.seed);
  const now = o.now ?? new Date();
  const label = o.label ?? 'seed';
  const events: Record<string, unknown>[] = [];
  const orders: { id: string; value: number; at: Date }[] = [];
  for (let s = 0; s < o.sessions; s++) {
    const session = randomUUID();
    const start = now.getTime() - (1 + rand() * 12) * 86_400_000;
    const touches = 1 + Math.floor(rand() * 3);
    for (let t = 0; t < touches; t++) {
      events.push({
        idempotency_key: `${label}-t-${s}-${t}`,
        event_type: 'touchpoint',
        event_timestamp: new Date(start + t * 3600_000).toISOString(),
        session_id: session,
        channel: SEED_CHANNELS[Math.floor(rand() * SEED_CHANNELS.length)],
        campaign_id: `${label}-campaign-${1 + Math.floor(rand() * 3)}`,
      });
    }
    if (rand() < 0.7) {
      const at = new Date(start + touches * 3600_000);
      const value = 1000 + Math.floor(rand() * 90) * 100;
      const order = `${label}-order-${s}`;
      orders.push({ id: order, value, at });
      events.push({
        idempotency_key: `${label}-c-${s}`,
        event_type: 'conversion',
        event_timestamp: at.toISOString(),
        session_id: session,
        conversion_value_cents: value,
        currency: 'USD',
        order_id: order,
      });
    }
  }
  for (let i = 0; i < events.length; i += 100) {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/events/batch',
      headers: { authorization: `Bearer ${tenant.api_key}` },
      payload: { events: events.slice(i, i + 100) },
    });
    if (res.statusCode >= 300) throw new Error(`seeding events: ${res.statusCode} ${res.body}`);
  }
  await processAll(db, tenant.tenant_id);
  await bayesianRun(db, tenant.tenant_id, now);

  // Payments: most orders are paid, a few refunded in part, some never paid (the gap).
  const owner = db.ownerPool({ max: 1 });
  const key = loadSecretKey(process.env, '/nonexistent', { create: false });
  const endpoint = await createEndpoint(owner, key, { tenantId: tenant.tenant_id, provider: 'stripe', secret: `whsec_${label}_secret` }).finally(() => owner.end());
  const transactions: string[] = [];
  for (const [i, order] of orders.entries()) {
    if (i % 4 === 3) continue;
    const id = `ch_${label}_${i}`;
    const refunded = i % 5 === 0 ? Math.floor(order.value / 4) : 0;
    const body = stripeEvent(refunded ? 'charge.refunded' : 'charge.succeeded', stripeCharge({ id, amount: order.value, refunded, orderId: order.id, created: Math.floor(order.at.getTime() / 1000) }));
    const res = await app.inject({ method: 'POST', url: `/api/v1/webhooks/stripe/${endpoint.endpoint_id}`, payload: body, headers: stripeHeaders(body, endpoint.secret) });
    if (res.statusCode !== 200) throw new Error(`seeding payments: ${res.statusCode} ${res.body}`);
    transactions.push(id);
  }

  // Ad spend on the paid channels' campaigns (those the touches carry), one row a day for two weeks, through POST /spend.
  const spend: Record<string, unknown>[] = [];
  for (const [channel, platform] of [['facebook_paid', 'meta_ads'], ['google_search_paid', 'google_ads'], ['tiktok_paid', 'tiktok_ads']] as const) {
    for (let c = 1; c <= 3; c++) {
      for (let d = 0; d < 14; d++) {
        const day = new Date(now.getTime() - d * 86_400_000).toISOString().slice(0, 10);
        spend.push({ day, platform, campaign_id: `${label}-campaign-${c}`, campaign_name: `${label} campaign ${c}`, channel, currency: 'USD', spend_cents: 200 + Math.floor(rand() * 1000), clicks: 10 + d });
      }
    }
  }
  const spent = await app.inject({ method: 'POST', url: '/api/v1/spend', headers: { authorization: `Bearer ${tenant.api_key}` }, payload: { rows: spend } });
  if (spent.statusCode !== 200 || spent.json().failed > 0) throw new Error(`seeding spend: ${spent.statusCode} ${spent.body.slice(0, 500)}`);

  const deadEvents: string[] = [];
  for (let i = 0; i < (o.deadEvents ?? 3); i++) deadEvents.push(await deadEvent(db.appPool({ max: 1 }), tenant.tenant_id, i));
  return { conversions: orders.length, orders: orders.map((x) => x.id), transactions, deadEvents };
}

/**
 * A Bayesian run over the web app's default period (the 30 UTC days up to `now`'s, as web/src/period.ts has it), so
 * the Channels page shows its totals' intervals as error bars. 4 chains of 500 warm-up and 1,000 draws: on the 60
 * sessions of the web tests it converges (R-hat 1.002-1.003, bulk ESS 3,700-4,500, seeds 1-3) in ~1.5 s; 200 draws
 * did not (ESS under 400), and a run that does not converge stores nothing.
 */
async function bayesianRun(db: Pick<Database, 'appPool'>, tenantId: string, now: Date): Promise<void> {
  const day = Date.parse(`${now.toISOString().slice(0, 10)}T00:00:00Z`);
  const pool = db.appPool({ max: 1 });
  try {
    const run = await runModel(pool, tenantId, {
      model: 'bayesian',
      from: new Date(day - 29 * 86_400_000),
      to: new Date(day + 86_400_000),
      trigger: 'cli',
      bayesian: { chains: 4, warmup: 500, draws: 1000, seed: 1 },
    });
    if (run.status !== 'succeeded') throw new Error(`seeding: the bayesian run did not converge (${JSON.stringify(run.diagnostics)})`);
  } finally {
    await pool.end();
  }
}

/** Runs a worker until no event of the tenant is pending. */
async function processAll(db: Pick<Database, 'appPool' | 'appClientConfig'>, tenantId: string): Promise<void> {
  const worker = new Worker(db, { ...DEFAULT_WORKER_OPTIONS, concurrency: 1, pollMs: 50 });
  const pool = db.appPool({ max: 1 });
  await worker.start();
  try {
    for (let i = 0; i < 1200; i++) {
      const pending = await withTenant(pool, tenantId, (c) =>
        c.query<{ n: number }>(`SELECT count(*)::int AS n FROM attribution_events WHERE tenant_id = $1 AND processing_status = 'pending'`, [tenantId]),
      );
      if (pending.rows[0]!.n === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the worker did not process the seeded events in 60 s');
  } finally {
    await worker.stop();
    await pool.end();
  }
}

/** A dead event as the worker leaves one after its last retry (a failed event and its row), with a trace. */
async function deadEvent(pool: pg.Pool, tenantId: string, i: number): Promise<string> {
  try {
    return await withTenant(pool, tenantId, async (c) => {
      const eventId = randomUUID();
      await c.query(
        `INSERT INTO attribution_events (id, tenant_id, event_type, channel, session_id, event_timestamp, occurred_at, conversion_value_cents,
           revenue_cents, currency, idempotency_key, raw_payload, processing_status, retry_count)
         VALUES ($1::uuid, $2::uuid, 'conversion', 'email', gen_random_uuid(), now(), now(), 2500, 2500, 'USD', $2::text || ':ext:dead-' || $1::text,
                 '{"event_type": "conversion", "order_id": "broken"}', 'failed', 6)`,
        [eventId, tenantId],
      );
      const r = await c.query<{ id: string }>(
        `INSERT INTO dead_events (tenant_id, event_id, source, event_type, error_type, error_code, error_message, error_traceback, error_detail,
           retry_count, raw_payload, remediation_status, created_at)
         VALUES ($1, $2, 'worker', 'conversion', 'data', 'fx_rate_missing', $3, 'Error: no EUR→USD rate\n    at convert (src/money/fx.ts)', '{"code": "fx_rate_missing"}', 6,
                 '{"event_type": "conversion", "order_id": "broken"}', 'pending', now() - make_interval(mins => $4))
         RETURNING id`,
        [tenantId, eventId, `no EUR→USD rate on or before the conversion date (${i + 1})`, i * 7],
      );
      return r.rows[0]!.id;
    });
  } finally {
    await pool.end();
  }
}
