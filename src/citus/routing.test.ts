/**
 * Issue 16, "every tenant query routed to one shard by an explicit tenant_id", checked over every
 * /api/v1 route on the cluster (npm run test:citus). A tenant is seeded through Skeldir's own
 * interfaces (events, the worker's allocations, a Bayesian run, Stripe payments in the ledger,
 * spend, dead events: src/testing/web-seed.ts), then every route the app registers under /api/v1
 * is driven once or more (the steps below; a route without a step fails the test, so a route added
 * later is covered or named), as the tenant's API key, a signed-in user's session, or anonymously
 * (sign-in, webhooks, collection). Around each request Citus counts the statements it executed on
 * one shard and on several (citus_stat_counters, citus.enable_stat_counters), and
 * citus.multi_task_query_log_level = notice makes every multi-shard statement send a notice,
 * caught on the connection that ran it together with its text (and the PL/pgSQL context when it
 * ran inside a function). A multi-shard statement that is not on ALLOWED, with its reason, fails.
 * Reference-table statements are one task: they count as single-shard.
 * The seeding (the worker among it) is asserted the same way (SEEDING_ALLOWED), and so are the background and CLI
 * paths (retention, the attribution scheduler, re-classification, erasure, dlq retry, exports, webhook redelivery),
 * driven through the functions their commands call, in this process so that their notices are caught
 * (BACKGROUND_ALLOWED).
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../config.js';
import { ident } from '../db/pool.js';
import { buildApp, type App } from '../http/app.js';
import { createTenant } from '../tenants/tenants.js';
import { createTestDatabase, superClient, testsRunOnCitus, type TestDatabase } from '../testing/db.js';
import { seedTenant, type Seeded } from '../testing/web-seed.js';
import { acceptInvitation, inviteUser } from '../users/users.js';
import { stripeCharge, stripeEvent, stripeHeaders, TEST_SECRET_KEY } from '../webhooks/test-support.js';
import { schedulePass } from '../attribution/scheduler.js';
import { writeSettings } from '../attribution/settings.js';
import { countEvents, reclassifyAll } from '../channels/reclassify.js';
import { existingTenant } from '../cli/tenant-flag.js';
import { withTenant } from '../db/tenant-context.js';
import { applyRemediation, getDeadEvent } from '../dlq/store.js';
import { erasePerson } from '../erasure/erase.js';
import { DATASET_NAMES } from '../exports/datasets.js';
import { performanceExport } from '../exports/performance.js';
import { exportChunks } from '../exports/stream.js';
import { identify } from '../identity/graph.js';
import { checkPerformanceQuery } from '../performance/check.js';
import { runRetention, tenantsWithRetention, writeRetentionSettings } from '../retention/retention.js';
import { deliverWebhook } from '../webhooks/deliver.js';
import { createEndpoint } from '../webhooks/endpoints.js';
import { PayPalVerifier, paypalOptionsFromEnv } from '../webhooks/paypal.js';
import { loadSecretKey } from '../webhooks/secret-key.js';

process.env.SKELDIR_SECRET_KEY ??= TEST_SECRET_KEY;
const citus = testsRunOnCitus();

/**
 * Multi-shard statements that are meant to be: each names the route, a pattern of the statement
 * (or of its PL/pgSQL context) and why it cannot name one tenant.
 */
const ALLOWED: { step: string; statement: RegExp; why: string }[] = [
  {
    step: 'POST /api/v1/auth/login (e-mail only)',
    statement: /skeldir_login_candidates/,
    why: 'sign-in without a tenant: an e-mail may belong to users of several tenants, so the lookup (the system role\'s function) reads every tenant\'s users by design; once per sign-in, not per request (a session names its tenant)',
  },
];

/** The seeding phase (API, worker, Bayesian run, webhooks, spend), measured as one step named 'seeding'. */
const SEEDING_ALLOWED: { step: string; statement: RegExp; why: string }[] = [
  {
    step: 'seeding',
    statement: /skeldir_due_tenants/,
    why: "by design (docs/scaling.md, the worker's claim): the worker first asks which tenants have due work, a read of every shard that locks nothing (the system role's function), once per batch; each claim that follows names its tenant",
  },
];

/**
 * The background and CLI paths, each step the functions its command calls (the CLI's own body, in
 * this process so that its notices are caught), for the seeded tenant.
 */
const BACKGROUND_ALLOWED: { step: string; statement: RegExp; why: string }[] = [];

interface Multi {
  text: string;
  where: string | undefined;
}
interface Capture {
  statements: number;
  multi: Multi[];
}
let capturing: Capture | null = null;

/**
 * Every connection of this process (the API's pools, the worker's) reports its multi-shard notices
 * with the text of the statement it is running; every statement sent while capturing is counted.
 */
function instrument(): () => void {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: pg.Client & { __routing?: boolean; _activeQuery?: { text?: string } }, ...args: unknown[]) {
    if (!this.__routing) {
      this.__routing = true;
      this.on('notice', (msg) => {
        if (capturing && /multi-task query about to be executed/.test(msg.message ?? '')) capturing.multi.push({ text: this._activeQuery?.text ?? '(unknown)', where: msg.where });
      });
    }
    if (capturing) capturing.statements++;
    return original.apply(this, args);
  };
  return () => {
    proto.query = original;
  };
}

type As = 'key' | 'session' | 'second session' | 'none';
interface Step {
  /** `METHOD /pattern` as the app registers it. */
  route: string;
  /** Tells two steps of one route apart (in the report and in ALLOWED). */
  note?: string;
  as: As;
  url: () => string;
  payload?: () => unknown;
  headers?: () => Record<string, string>;
  /** The statuses that show the route did its work (not a validation answer). */
  expect: number[];
  /** Keeps something of the answer for a later step. */
  keep?: (body: any) => void;
}

let db: TestDatabase;
let app: App;
let su: pg.Client;
let tenant: { tenant_id: string; api_key: string };
let seeded: Seeded;
let session: { token: string; csrf_token: string };
let secondSession: { token: string; csrf_token: string };
let restore: (() => void) | undefined;
const EMAIL = 'owner@routing.example';
const PASSWORD = 'a long enough password';
const SHOP = 'https://shop.routing.example';
const web = loadConfig({}).web;
const kept: Record<string, string> = {};
const day = (offsetDays: number) => new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);

interface Result {
  step: string;
  status: number;
  statements: number;
  single: number;
  multiCount: number;
  multi: Multi[];
}
const results: Result[] = [];
let seedingResult: Result | undefined;

/** The multi-shard statements of `rs` that no entry of `allowed` explains, each named with its step. */
function unexplainedOf(rs: Result[], allowed: { step: string; statement: RegExp }[]): string[] {
  const out: string[] = [];
  for (const r of rs) {
    for (const m of r.multi) {
      if (allowed.some((a) => a.step === r.step && (a.statement.test(m.text) || (m.where !== undefined && a.statement.test(m.where))))) continue;
      out.push(`${r.step}: ${m.text.replace(/\s+/g, ' ').slice(0, 300)}${m.where ? ` [${m.where.replace(/\s+/g, ' ')}]` : ''}`);
    }
    // A multi-shard execution without its notice (e.g. from a connection this process did not open) is named too.
    if (r.multiCount > r.multi.length) out.push(`${r.step}: ${r.multiCount - r.multi.length} multi-shard statement(s) counted by Citus without a notice`);
  }
  return out;
}

/** The entries of `allowed` no multi-shard statement of `rs` needed (the allowlist stays short and true). */
function unusedOf(rs: Result[], allowed: { step: string; statement: RegExp }[]): string[] {
  return allowed.filter((a) => !rs.some((r) => r.step === a.step && r.multi.some((m) => a.statement.test(m.text) || (m.where !== undefined && a.statement.test(m.where))))).map((a) => `${a.step}: ${a.statement}`);
}

/** Runs `fn` as one measured step: the statements this process sent, Citus's counts, the multi-shard notices. */
async function measure<T>(step: string, fn: () => Promise<T>): Promise<{ result: Result; value: T }> {
  const before = await counters();
  const capture: Capture = { statements: 0, multi: [] };
  capturing = capture;
  let value: T;
  try {
    value = await fn();
  } finally {
    capturing = null;
  }
  const after = await counters();
  return { result: { step, status: 0, statements: capture.statements, single: after.single - before.single, multiCount: after.multi - before.multi, multi: capture.multi }, value };
}

async function counters(): Promise<{ single: number; multi: number }> {
  const { rows } = await su.query<{ single: string; multi: string }>(
    `SELECT query_execution_single_shard AS single, query_execution_multi_shard AS multi FROM citus_stat_counters WHERE name = current_database()`,
  );
  return { single: Number(rows[0]!.single), multi: Number(rows[0]!.multi) };
}

function steps(): Step[] {
  const key = () => tenant.api_key;
  const dead = (i: number) => seeded.deadEvents[i]!;
  const from = `${day(-30)}T00:00:00Z`;
  const to = `${day(2)}T00:00:00Z`;
  const range = `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
  const dayRange = `from=${day(-30)}&to=${day(1)}`;
  const event = (extra: Record<string, unknown> = {}) => ({
    idempotency_key: `routing-${randomUUID()}`,
    event_type: 'conversion',
    event_timestamp: new Date(Date.now() - 3600_000).toISOString(),
    session_id: randomUUID(),
    channel: 'email',
    conversion_value_cents: 1500,
    currency: 'USD',
    order_id: `routing-order-${randomUUID()}`,
    ...extra,
  });
  const stripeBody = () => stripeEvent('charge.succeeded', stripeCharge({ id: `ch_routing_${randomBytes(4).toString('hex')}`, amount: 1500, orderId: seeded.orders[0] }));
  let webhookBody = '';
  return [
    // Reads first, over the seeded data.
    { route: 'GET /api/v1/tenant', as: 'key', url: () => '/api/v1/tenant', expect: [200] },
    { route: 'GET /api/v1/events/:id', as: 'key', url: () => `/api/v1/events/${kept.event}`, expect: [200] },
    { route: 'GET /api/v1/revenue/transactions/:transaction_id', as: 'key', url: () => `/api/v1/revenue/transactions/${seeded.transactions[0]}`, expect: [200] },
    { route: 'GET /api/v1/reconciliation', as: 'key', url: () => `/api/v1/reconciliation?${range}`, expect: [200] },
    { route: 'GET /api/v1/dead-events', as: 'key', url: () => '/api/v1/dead-events', expect: [200] },
    { route: 'GET /api/v1/dead-events/:id', as: 'key', url: () => `/api/v1/dead-events/${dead(0)}`, expect: [200] },
    { route: 'GET /api/v1/attribution/channels', as: 'key', url: () => `/api/v1/attribution/channels?model=linear&${range}`, expect: [200] },
    { route: 'GET /api/v1/attribution/channels', as: 'key', url: () => `/api/v1/attribution/channels?model=bayesian&${range}`, expect: [200] },
    { route: 'GET /api/v1/attribution/models', as: 'key', url: () => '/api/v1/attribution/models', expect: [200] },
    { route: 'GET /api/v1/attribution/comparison', as: 'key', url: () => `/api/v1/attribution/comparison?${range}`, expect: [200] },
    { route: 'GET /api/v1/attribution/settings', as: 'key', url: () => '/api/v1/attribution/settings', expect: [200] },
    { route: 'GET /api/v1/users', as: 'key', url: () => '/api/v1/users', expect: [200] },
    { route: 'GET /api/v1/webhook-endpoints', as: 'key', url: () => '/api/v1/webhook-endpoints', expect: [200] },
    { route: 'GET /api/v1/api-keys', as: 'key', url: () => '/api/v1/api-keys', expect: [200] },
    { route: 'GET /api/v1/reporting-currency', as: 'key', url: () => '/api/v1/reporting-currency', expect: [200] },
    { route: 'GET /api/v1/reports/paths', as: 'key', url: () => `/api/v1/reports/paths?${range}`, expect: [200] },
    { route: 'GET /api/v1/worker/health', as: 'key', url: () => '/api/v1/worker/health', expect: [200, 503] },
    ...(['events', 'allocations', 'ledger', 'spend'] as const).map((d): Step => ({ route: 'GET /api/v1/exports/:dataset', as: 'key', url: () => `/api/v1/exports/${d}?${range}`, expect: [200] })),
    { route: 'GET /api/v1/exports/performance', as: 'key', url: () => `/api/v1/exports/performance?${dayRange}`, expect: [200] },
    { route: 'GET /api/v1/channels', as: 'key', url: () => '/api/v1/channels', expect: [200] },
    { route: 'GET /api/v1/channels/rules', as: 'key', url: () => '/api/v1/channels/rules', expect: [200] },
    { route: 'GET /api/v1/retention/settings', as: 'key', url: () => '/api/v1/retention/settings', expect: [200] },
    { route: 'GET /api/v1/publishable-keys', as: 'key', url: () => '/api/v1/publishable-keys', expect: [200] },
    { route: 'GET /api/v1/spend', as: 'key', url: () => `/api/v1/spend?${dayRange}`, expect: [200] },
    { route: 'GET /api/v1/spend/summary', as: 'key', url: () => `/api/v1/spend/summary?${dayRange}`, expect: [200] },
    { route: 'GET /api/v1/performance', as: 'key', url: () => `/api/v1/performance?${dayRange}`, expect: [200] },
    // Sign-in and the session's own routes.
    { route: 'POST /api/v1/auth/login', note: 'e-mail only', as: 'none', url: () => '/api/v1/auth/login', payload: () => ({ email: EMAIL, password: PASSWORD }), expect: [200] },
    { route: 'POST /api/v1/auth/login', note: 'with tenant_id', as: 'none', url: () => '/api/v1/auth/login', payload: () => ({ email: EMAIL, password: PASSWORD, tenant_id: tenant.tenant_id }), expect: [200] },
    { route: 'GET /api/v1/auth/session', as: 'session', url: () => '/api/v1/auth/session', expect: [200] },
    { route: 'GET /api/v1/dead-events', as: 'session', url: () => '/api/v1/dead-events', expect: [200] },
    // Writes.
    { route: 'POST /api/v1/events', as: 'key', url: () => '/api/v1/events', payload: () => event(), expect: [201] },
    { route: 'POST /api/v1/events/batch', as: 'key', url: () => '/api/v1/events/batch', payload: () => ({ events: [event(), event({ event_type: 'touchpoint', conversion_value_cents: undefined, currency: undefined, order_id: undefined })] }), expect: [200, 201, 207] },
    { route: 'PUT /api/v1/attribution/settings', as: 'key', url: () => '/api/v1/attribution/settings', payload: () => ({ models: ['linear', 'first_touch'], lookback_days: 30 }), expect: [200] },
    { route: 'POST /api/v1/dead-events/:id/start', as: 'key', url: () => `/api/v1/dead-events/${dead(0)}/start`, payload: () => ({}), expect: [200] },
    { route: 'POST /api/v1/dead-events/:id/resolve', as: 'key', url: () => `/api/v1/dead-events/${dead(0)}/resolve`, payload: () => ({ notes: 'fixed by hand' }), expect: [200] },
    { route: 'POST /api/v1/dead-events/:id/start', as: 'key', url: () => `/api/v1/dead-events/${dead(1)}/start`, payload: () => ({}), expect: [200] },
    { route: 'POST /api/v1/dead-events/:id/ignore', as: 'key', url: () => `/api/v1/dead-events/${dead(1)}/ignore`, payload: () => ({ notes: 'a test order' }), expect: [200] },
    { route: 'POST /api/v1/dead-events/:id/start', as: 'key', url: () => `/api/v1/dead-events/${dead(3)}/start`, payload: () => ({}), expect: [200] },
    { route: 'POST /api/v1/dead-events/:id/reopen', as: 'key', url: () => `/api/v1/dead-events/${dead(3)}/reopen`, payload: () => ({}), expect: [200] },
    { route: 'POST /api/v1/dead-events/:id/retry', as: 'session', url: () => `/api/v1/dead-events/${dead(2)}/retry`, payload: () => ({}), expect: [200] },
    { route: 'POST /api/v1/users/invitations', as: 'key', url: () => '/api/v1/users/invitations', payload: () => ({ email: 'viewer@routing.example', role: 'viewer' }), expect: [201], keep: (b) => (kept.invitation = String(b.invitation_url).split('#')[1]!) },
    { route: 'POST /api/v1/auth/invitations/accept', as: 'none', url: () => '/api/v1/auth/invitations/accept', payload: () => ({ token: kept.invitation, password: PASSWORD }), expect: [200, 201], keep: (b) => (kept.viewer = b.user?.id ?? b.user_id ?? '') },
    { route: 'PATCH /api/v1/users/:id', as: 'session', url: () => `/api/v1/users/${kept.viewerId}`, payload: () => ({ role: 'analyst' }), expect: [200] },
    { route: 'DELETE /api/v1/users/:id', as: 'session', url: () => `/api/v1/users/${kept.viewerId}`, expect: [200, 204] },
    { route: 'POST /api/v1/webhook-endpoints', as: 'key', url: () => '/api/v1/webhook-endpoints', payload: () => ({ provider: 'stripe', secret: 'whsec_routing_secret_1', description: 'Routing' }), expect: [201], keep: (b) => (kept.endpoint = b.endpoint_id) },
    {
      route: 'POST /api/v1/webhooks/:provider/:endpoint_id',
      as: 'none',
      url: () => `/api/v1/webhooks/stripe/${kept.endpoint}`,
      payload: () => (webhookBody = stripeBody()),
      headers: () => stripeHeaders(webhookBody, 'whsec_routing_secret_1'),
      expect: [200],
    },
    { route: 'POST /api/v1/webhook-endpoints/:id/rotate', as: 'key', url: () => `/api/v1/webhook-endpoints/${kept.endpoint}/rotate`, payload: () => ({ grace_hours: 1 }), expect: [200] },
    { route: 'DELETE /api/v1/webhook-endpoints/:id', as: 'key', url: () => `/api/v1/webhook-endpoints/${kept.endpoint}`, expect: [200, 204] },
    { route: 'PUT /api/v1/reporting-currency', as: 'key', url: () => '/api/v1/reporting-currency', payload: () => ({ reporting_currency: 'USD' }), expect: [200] },
    { route: 'POST /api/v1/channels', as: 'key', url: () => '/api/v1/channels', payload: () => ({ code: 'routing_partner', display_name: 'Routing partner', family: 'referral' }), expect: [201] },
    { route: 'PATCH /api/v1/channels/:code', as: 'key', url: () => '/api/v1/channels/routing_partner', payload: () => ({ display_name: 'Routing partners' }), expect: [200] },
    { route: 'POST /api/v1/channels/rules', as: 'key', url: () => '/api/v1/channels/rules', payload: () => ({ name: 'Partner', channel: 'routing_partner', conditions: [{ field: 'utm_source', op: 'equals', value: 'partner' }] }), expect: [201], keep: (b) => (kept.rule = b.id) },
    { route: 'PUT /api/v1/channels/rules/:id', as: 'key', url: () => `/api/v1/channels/rules/${kept.rule}`, payload: () => ({ name: 'Partners', channel: 'routing_partner', conditions: [{ field: 'utm_source', op: 'in', value: ['partner', 'partners'] }] }), expect: [200] },
    { route: 'PUT /api/v1/channels/rules/order', as: 'key', url: () => '/api/v1/channels/rules/order', payload: () => ({ ids: [kept.rule] }), expect: [200] },
    { route: 'POST /api/v1/channels/test', as: 'key', url: () => '/api/v1/channels/test', payload: () => ({ touch: { utm_source: 'partner' } }), expect: [200] },
    { route: 'POST /api/v1/channels/reclassify', as: 'key', url: () => '/api/v1/channels/reclassify', payload: () => ({}), expect: [200, 202] },
    { route: 'DELETE /api/v1/channels/rules/:id', as: 'key', url: () => `/api/v1/channels/rules/${kept.rule}`, expect: [200, 204] },
    { route: 'DELETE /api/v1/channels/:code', as: 'key', url: () => '/api/v1/channels/routing_partner', expect: [200, 204] },
    { route: 'PUT /api/v1/retention/settings', as: 'key', url: () => '/api/v1/retention/settings', payload: () => ({ payload_days: 3650, event_days: null, dead_event_payload_days: 3650 }), expect: [200] },
    { route: 'POST /api/v1/publishable-keys', as: 'key', url: () => '/api/v1/publishable-keys', payload: () => ({ name: 'shop', allowed_origins: [SHOP] }), expect: [201], keep: (b) => ((kept.pk = b.key), (kept.pkId = b.id)) },
    { route: 'PATCH /api/v1/publishable-keys/:id', as: 'key', url: () => `/api/v1/publishable-keys/${kept.pkId}`, payload: () => ({ name: 'the shop' }), expect: [200] },
    { route: 'OPTIONS /api/v1/collect', as: 'none', url: () => `/api/v1/collect?key=${encodeURIComponent(kept.pk!)}`, headers: () => ({ origin: SHOP, 'access-control-request-method': 'POST' }), expect: [200, 204] },
    {
      route: 'POST /api/v1/collect',
      as: 'none',
      url: () => `/api/v1/collect?key=${encodeURIComponent(kept.pk!)}`,
      headers: () => ({ origin: SHOP, 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', 'content-type': 'text/plain;charset=UTF-8' }),
      payload: () =>
        JSON.stringify({
          events: [
            { type: 'touch', event_id: `ev_${randomBytes(8).toString('hex')}`, timestamp: new Date().toISOString(), anonymous_id: 'anon_routing_1', session_id: 'sess_routing_1', url: `${SHOP}/?utm_source=partner` },
            { type: 'identify', event_id: `ev_${randomBytes(8).toString('hex')}`, timestamp: new Date().toISOString(), anonymous_id: 'anon_routing_1', user_id: 'person-routing-1' },
          ],
        }),
      expect: [200, 202, 204],
    },
    { route: 'GET /api/v1/publishable-keys/:id/counts', as: 'key', url: () => `/api/v1/publishable-keys/${kept.pkId}/counts?${dayRange}`, expect: [200] },
    { route: 'DELETE /api/v1/publishable-keys/:id', as: 'key', url: () => `/api/v1/publishable-keys/${kept.pkId}`, expect: [200, 204] },
    { route: 'POST /api/v1/identify', as: 'key', url: () => '/api/v1/identify', payload: () => ({ anonymous_id: 'anon_routing_2', user_id: 'person-routing-1' }), expect: [200, 201] },
    { route: 'GET /api/v1/people/:user_id/links', as: 'key', url: () => '/api/v1/people/person-routing-1/links', expect: [200] },
    { route: 'DELETE /api/v1/people/:user_id/links/:anonymous_id', as: 'key', url: () => '/api/v1/people/person-routing-1/links/anon_routing_2', expect: [200, 204] },
    { route: 'DELETE /api/v1/people/:user_id/links', as: 'key', url: () => '/api/v1/people/person-routing-1/links', expect: [200, 204] },
    { route: 'DELETE /api/v1/people/:user_id', as: 'key', url: () => '/api/v1/people/person-routing-1', expect: [200, 202] },
    {
      route: 'POST /api/v1/spend',
      as: 'key',
      url: () => '/api/v1/spend',
      payload: () => ({ rows: [{ day: day(-1), platform: 'other', campaign_id: 'routing-c', campaign_name: 'Routing', channel: 'email', currency: 'USD', spend_cents: 1234, clicks: 3 }] }),
      expect: [200],
    },
    {
      route: 'POST /api/v1/spend/import',
      as: 'key',
      url: () => '/api/v1/spend/import',
      payload: () => ({ platform: 'other', format: 'generic', currency: 'USD', content_base64: Buffer.from(`day,campaign_id,spend\n${day(-2)},routing-import,12.34\n`).toString('base64') }),
      expect: [200],
    },
    { route: 'DELETE /api/v1/spend', as: 'key', url: () => `/api/v1/spend?platform=other&${dayRange}`, expect: [200] },
    // Last: the key and the sessions stop working.
    { route: 'POST /api/v1/auth/logout', as: 'second session', url: () => '/api/v1/auth/logout', payload: () => ({}), expect: [200, 204] },
    { route: 'POST /api/v1/auth/logout-everywhere', as: 'session', url: () => '/api/v1/auth/logout-everywhere', payload: () => ({}), expect: [200] },
    { route: 'POST /api/v1/api-keys/rotate', as: 'key', url: () => '/api/v1/api-keys/rotate', payload: () => ({ grace: '1h' }), expect: [200], keep: (b) => (kept.newKey = b.api_key) },
    { route: 'POST /api/v1/api-keys/revoke', as: 'key', url: () => '/api/v1/api-keys/revoke', payload: () => ({ confirm: 'revoke', previous_only: true }), expect: [200] },
  ];
}

async function drive(step: Step): Promise<{ status: number; body: string }> {
  // The payload first: a webhook's signature header is computed over it.
  const payload = step.payload?.();
  const headers: Record<string, string> = { ...(step.headers?.() ?? {}) };
  if (step.as === 'key') headers.authorization = `Bearer ${kept.newKey && step.route !== 'POST /api/v1/api-keys/revoke' ? kept.newKey : tenant.api_key}`;
  const s = step.as === 'session' ? session : step.as === 'second session' ? secondSession : undefined;
  if (s) Object.assign(headers, { cookie: `skeldir_session=${s.token}`, 'x-csrf-token': s.csrf_token });
  const [method] = step.route.split(' ') as [string];
  const res = await app.inject({
    method: method as 'GET',
    url: step.url(),
    headers,
    ...(payload === undefined ? {} : { payload: typeof payload === 'string' ? payload : JSON.stringify(payload) }),
    ...(payload !== undefined && typeof payload !== 'string' && !headers['content-type'] ? { headers: { ...headers, 'content-type': 'application/json' } } : {}),
  });
  return { status: res.statusCode, body: res.body };
}

describe('every /api/v1 route on the cluster: its statements run on one shard', { skip: citus ? false : 'needs a Citus cluster (npm run test:citus): on one server there are no shards to fan out to' }, () => {
  before(async () => {
    db = await createTestDatabase('head');
    su = await superClient(db);
    // For every connection opened from here on (the seeding's and the measured app's pools, the worker's).
    await su.query(`ALTER DATABASE ${ident(db.name)} SET citus.enable_stat_counters = on`);
    await su.query(`ALTER DATABASE ${ident(db.name)} SET citus.multi_task_query_log_level = 'notice'`);
    restore = instrument();
    const owner = db.ownerPool({ max: 1 });
    tenant = await createTenant(owner, { name: 'Routing', email: 'ops@routing.example' });
    // A second tenant with data of its own: the shards hold more than the one tenant.
    const other = await createTenant(owner, { name: 'Other', email: 'ops@other-routing.example' });
    await owner.end();
    const seedApp = await buildApp({ db, config: loadConfig({}), logger: false, rateLimit: { max: 0 } });
    // The seeding is measured too, and asserted in its own test: the worker's claim reads the tenants with due
    // work on every shard by design (SEEDING_ALLOWED); nothing else of it may fan out.
    const seeding: Capture = { statements: 0, multi: [] };
    const seedBefore = await counters();
    capturing = seeding;
    try {
      seeded = await seedTenant(seedApp, db, tenant, { sessions: 60, seed: 1, deadEvents: 4, label: 'routing' });
      await seedTenant(seedApp, db, other, { sessions: 20, seed: 2, deadEvents: 1, label: 'other' });
      const inv = await inviteUser(seedApp.appPool, tenant.tenant_id, { email: EMAIL, role: 'owner' }, web);
      await acceptInvitation(seedApp.appPool, inv.invitation_url.split('#')[1]!, PASSWORD, web);
    } finally {
      capturing = null;
      await seedApp.close();
    }
    const seedAfter = await counters();
    const byText = new Map<string, number>();
    for (const m of seeding.multi) {
      const k = `${m.text.replace(/\s+/g, ' ').slice(0, 160)}${m.where ? ` [${m.where.replace(/\s+/g, ' ').slice(0, 120)}]` : ''}`;
      byText.set(k, (byText.get(k) ?? 0) + 1);
    }
    console.log(`# routing: seeding (API, worker, Bayesian run, webhooks, spend): ${seeding.statements} statements sent, ${seedAfter.single - seedBefore.single} single-shard, ${seedAfter.multi - seedBefore.multi} multi-shard`);
    for (const [k, n] of byText) console.log(`# routing: seeding multi-shard ${n}x: ${k}`);
    seedingResult = { step: 'seeding', status: 0, statements: seeding.statements, single: seedAfter.single - seedBefore.single, multiCount: seedAfter.multi - seedBefore.multi, multi: seeding.multi };
    kept.event = (await su.query(`SELECT id FROM attribution_events WHERE tenant_id = $1 AND event_type = 'conversion' AND processing_status = 'processed' LIMIT 1`, [tenant.tenant_id])).rows[0].id;
    app = await buildApp({ db, config: loadConfig({}), logger: false, rateLimit: { max: 0 } });
  });
  after(async () => {
    restore?.();
    await app?.close();
    await su?.end();
    await db?.drop();
  });

  test('every route registered under /api/v1 has a step, and every step names a registered route', () => {
    const registered = new Set(app.routeList.filter((r) => r.url.startsWith('/api/v1/')).map((r) => `${r.method} ${r.url}`));
    const driven = new Set(steps().map((s) => s.route));
    assert.deepEqual([...registered].filter((r) => !driven.has(r)).sort(), [], 'routes without a step: add one to steps() in src/citus/routing.test.ts');
    assert.deepEqual([...driven].filter((r) => !registered.has(r)).sort(), [], 'steps naming no registered route');
  });

  test('driven with real data, no route runs a statement on more than one shard unless ALLOWED says why', async () => {
    // The seeded session, after the measured app exists (its resolution is measured with the routes).
    session = await signIn();
    secondSession = await signIn();
    for (const step of steps()) {
      const before = await counters();
      const capture: Capture = { statements: 0, multi: [] };
      capturing = capture;
      let res: { status: number; body: string };
      try {
        res = await drive(step);
      } finally {
        capturing = null;
      }
      const after = await counters();
      assert.ok(step.expect.includes(res.status), `${step.route} (${step.url()}): ${res.status} ${res.body.slice(0, 400)}`);
      if (step.keep) step.keep(JSON.parse(res.body));
      if (step.route === 'POST /api/v1/auth/invitations/accept') kept.viewerId = (await su.query(`SELECT id FROM tenant_users WHERE tenant_id = $1 AND email = 'viewer@routing.example'`, [tenant.tenant_id])).rows[0].id;
      results.push({ step: step.note ? `${step.route} (${step.note})` : step.route, status: res.status, statements: capture.statements, single: after.single - before.single, multiCount: after.multi - before.multi, multi: capture.multi });
    }
    const unexplained = unexplainedOf(results, ALLOWED);
    const totals = results.reduce((t, r) => ({ statements: t.statements + r.statements, single: t.single + r.single, multi: t.multi + r.multiCount }), { statements: 0, single: 0, multi: 0 });
    console.log(`# routing: ${new Set(results.map((r) => r.step.split(' (')[0])).size} routes, ${results.length} requests, ${totals.statements} statements sent, ${totals.single} single-shard, ${totals.multi} multi-shard (Citus counters)`);
    for (const r of results) if (r.multi.length || r.multiCount) console.log(`# routing: ${r.step} ${r.status}: ${r.multiCount} multi-shard: ${r.multi.map((m) => m.text.replace(/\s+/g, ' ').slice(0, 160)).join(' | ')}`);
    for (const r of results) console.log(`# routing: ${r.status} ${r.step}: ${r.statements} statements, ${r.single} single-shard, ${r.multiCount} multi-shard`);
    assert.deepEqual(unexplained, [], 'multi-shard statements: name tenant_id in them, or add them to ALLOWED with the reason');
    // The allowlist stays short and true: an entry no statement needs any more is removed.
    assert.deepEqual(unusedOf(results, ALLOWED), [], 'ALLOWED entries that no multi-shard statement matched: remove them');
  });

  test('the seeding (API, worker, Bayesian run, webhooks, spend) runs on one shard but for the worker\'s due-tenants read', () => {
    assert.ok(seedingResult, 'the seeding was measured');
    assert.ok(seedingResult.statements > 0 && seedingResult.single > 0, `the seeding ran statements: ${JSON.stringify({ ...seedingResult, multi: undefined })}`);
    assert.deepEqual(unexplainedOf([seedingResult], SEEDING_ALLOWED), [], 'multi-shard statements while seeding: name tenant_id in them, or add them to SEEDING_ALLOWED with the reason');
    assert.deepEqual(unusedOf([seedingResult], SEEDING_ALLOWED), [], 'SEEDING_ALLOWED entries that no multi-shard statement matched: remove them');
  });

  test('the background and CLI paths (retention, scheduler, re-classification, erasure, dlq retry, exports, webhook redelivery) run on one shard unless BACKGROUND_ALLOWED says why', async () => {
    const t = tenant.tenant_id;
    const owner = db.ownerPool({ max: 1, applicationName: 'routing-background-owner' });
    const appPool = db.appPool({ max: 2, applicationName: 'routing-background-app' });
    const bg: Result[] = [];
    const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      const { result, value } = await measure(name, fn);
      bg.push(result);
      return value;
    };
    try {
      // skeldir channels reclassify --tenant T (src/channels/cli.ts: tenantPool, countEvents, reclassifyAll).
      const reclassified = await step('channels reclassify', async () => {
        await existingTenant(appPool, t);
        const total = await withTenant(appPool, t, (c) => countEvents(c, t, {}));
        return { total, result: await reclassifyAll(appPool, t, { limit: 50 }) };
      });
      assert.ok(reclassified.total > 0 && reclassified.result.examined === reclassified.total, JSON.stringify(reclassified));

      // skeldir export DATASET --tenant T (src/exports/cli.ts: existingTenant, exportChunks to the end).
      for (const dataset of DATASET_NAMES) {
        const rows = await step(`export ${dataset}`, async () => {
          const stats = { rows: 0 };
          for await (const _ of exportChunks(appPool, { tenantId: await existingTenant(appPool, t), dataset, format: 'csv', pageSize: 100 }, stats));
          return stats.rows;
        });
        assert.ok(rows >= 0);
      }
      const perf = await step('export performance', async () =>
        performanceExport(appPool, await existingTenant(appPool, t), checkPerformanceQuery({ from: day(-30), to: day(1) }), 'csv'),
      );
      assert.ok(perf.rows > 0, 'the performance export has rows');

      // skeldir attribution schedule --once (src/attribution/cli.ts: schedulePass over every tenant), a population model due.
      await withTenant(appPool, t, (c) => writeSettings(c, t, { models: ['linear', 'markov'] }));
      const runs = await step('attribution schedule --once', () => schedulePass(owner, appPool, {}));
      assert.ok(runs.some((r) => r.tenantId === t && r.model === 'markov' && r.status !== 'failed'), JSON.stringify(runs));

      // skeldir dlq retry ID --tenant T (src/dlq/cli.ts: the owner in the tenant's context, getDeadEvent + applyRemediation).
      const pending = (await su.query<{ id: string }>(`SELECT id FROM dead_events WHERE tenant_id = $1 AND remediation_status = 'pending' ORDER BY id LIMIT 1`, [t])).rows[0];
      assert.ok(pending, 'a pending dead event to retry');
      const retried = await step('dlq retry', async () => {
        const dlqPool = db.ownerPool({ max: 1, applicationName: 'skeldir-dlq' });
        try {
          return await withTenant(dlqPool, t, async (c) => {
            await getDeadEvent(c, t, pending.id);
            return applyRemediation(c, t, pending.id, 'retry', { actor: 'cli' });
          });
        } finally {
          await dlqPool.end();
        }
      });
      assert.equal(retried.remediation_status, 'in_progress');

      // A provider's redelivery of a webhook already applied (src/webhooks/deliver.ts, the handler of the webhook route):
      // the first delivery applies it, the redelivery is a duplicate.
      const key = loadSecretKey(process.env, '/nonexistent', { create: false });
      const endpoint = await createEndpoint(owner, key, { tenantId: t, provider: 'stripe', secret: 'whsec_routing_redelivery' });
      const deps = { pool: appPool, key, paypal: new PayPalVerifier(paypalOptionsFromEnv(process.env)) };
      const body = stripeEvent('charge.succeeded', stripeCharge({ id: `ch_redeliver_${randomBytes(4).toString('hex')}`, amount: 2500, orderId: seeded.orders[1] }));
      const first = await step('webhook delivery', () => deliverWebhook(deps, 'stripe', endpoint.endpoint_id, Buffer.from(body), stripeHeaders(body, endpoint.secret)));
      const again = await step('webhook redelivery', () => deliverWebhook(deps, 'stripe', endpoint.endpoint_id, Buffer.from(body), stripeHeaders(body, endpoint.secret)));
      assert.equal(first.status, 'applied', JSON.stringify(first));
      assert.equal(again.status, 'duplicate', JSON.stringify(again));

      // skeldir people erase USER --tenant T (src/erasure/cli.ts: existingTenant, erasePerson), for a person with a link.
      await identify(appPool, t, { anonymousId: 'anon_routing_erase', userId: 'person-routing-erase' }, 'cli');
      const receipt = await step('people erase', async () => erasePerson(appPool, { tenantId: await existingTenant(appPool, t), userId: 'person-routing-erase', requestedBy: 'cli:routing' }));
      assert.ok(receipt, 'a receipt');

      // skeldir retention configure / run --tenant T / run (every tenant) (src/retention/cli.ts), last: it deletes old events.
      await step('retention configure', async () => withTenant(owner, await existingTenant(appPool, t), (c) => writeRetentionSettings(c, t, { payload_days: 7, event_days: 14, dead_event_payload_days: 7 })));
      const one = await step('retention run --tenant', async () => runRetention(appPool, await existingTenant(appPool, t)));
      assert.ok(one.events_deleted > 0 || one.payloads_redacted > 0, `retention changed something: ${JSON.stringify(one)}`);
      const every = await step('retention run (every tenant)', async () => {
        const reports = [];
        for (const id of await tenantsWithRetention(owner)) reports.push(await runRetention(appPool, id));
        return reports;
      });
      assert.deepEqual(every.map((r) => r.tenant_id), [t]);
    } finally {
      await owner.end();
      await appPool.end();
    }
    const totals = bg.reduce((a, r) => ({ statements: a.statements + r.statements, single: a.single + r.single, multi: a.multi + r.multiCount }), { statements: 0, single: 0, multi: 0 });
    console.log(`# routing: background and CLI paths: ${bg.length} steps, ${totals.statements} statements sent, ${totals.single} single-shard, ${totals.multi} multi-shard (Citus counters)`);
    for (const r of bg) console.log(`# routing: background ${r.step}: ${r.statements} statements, ${r.single} single-shard, ${r.multiCount} multi-shard${r.multi.length ? `: ${r.multi.map((m) => `${m.text.replace(/\s+/g, ' ').slice(0, 200)}${m.where ? ` [${m.where.replace(/\s+/g, ' ').slice(0, 120)}]` : ''}`).join(' | ')}` : ''}`);
    assert.deepEqual(unexplainedOf(bg, BACKGROUND_ALLOWED), [], 'multi-shard statements on a background or CLI path: name tenant_id in them, or add them to BACKGROUND_ALLOWED with the reason');
    assert.deepEqual(unusedOf(bg, BACKGROUND_ALLOWED), [], 'BACKGROUND_ALLOWED entries that no multi-shard statement matched: remove them');
  });
});

/** Signs the seeded owner in (a session of the measured app's pool). */
async function signIn(): Promise<{ token: string; csrf_token: string }> {
  const res = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: EMAIL, password: PASSWORD, tenant_id: tenant.tenant_id } });
  assert.equal(res.statusCode, 200, res.body);
  const cookie = [res.headers['set-cookie']].flat().find((c) => String(c).startsWith('skeldir_session='));
  const body = res.json();
  return { token: String(cookie).split(';')[0]!.split('=')[1]!, csrf_token: body.csrf_token };
}
