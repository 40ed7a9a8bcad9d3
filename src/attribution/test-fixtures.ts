import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { seedDefaultChannels } from '../channels/store.js';
import { withTenant } from '../db/tenant-context.js';

/** Test and benchmark fixtures: tenants and events inserted the way ingestion stores them. */

/** A tenant with its default channels (`superOrOwner` a superuser, or a client whose transaction has the tenant's context). */

export async function createTenant(superOrOwner: pg.ClientBase, name = 'attribution test'): Promise<string> {
  const id = randomUUID();
  const r = await superOrOwner.query<{ id: string }>(
    `INSERT INTO tenants (id, name, api_key_hash, notification_email) VALUES ($1::uuid, $2, 'unset:' || $1::text, 'tenant-' || $1::text || '@skeldir.invalid') RETURNING id`,
    [id, name],
  );
  await seedDefaultChannels(superOrOwner, id);
  return r.rows[0]!.id;
}

export interface FixtureEvent {
  id?: string;
  type: 'touchpoint' | 'conversion';
  channel: string;
  session: string;
  at: Date | string;
  value?: number | null;
  currency?: string;
  userId?: string | null;
  /** attribution_events.anonymous_id (a browser of the identity graph). */
  anonymousId?: string | null;
  campaign?: string | null;
  orderId?: string | null;
}

/** Inserts events as the application role in the tenant's context (RLS applies). Returns their ids in order. */
export async function insertEvents(appPool: pg.Pool, tenantId: string, events: readonly FixtureEvent[]): Promise<string[]> {
  const ids = events.map((e) => e.id ?? randomUUID());
  await withTenant(appPool, tenantId, async (c) => {
    for (let from = 0; from < events.length; from += 5000) {
      const chunk = events.slice(from, from + 5000);
      const chunkIds = ids.slice(from, from + 5000);
      // In a CTE, as ingestion's insert (src/ingestion/store.ts): on Citus a bare INSERT … SELECT
      // unnest(…) is run as COPY, which row-level security refuses ("COPY FROM not supported").
      await c.query(
        `WITH ins AS (INSERT INTO attribution_events
           (id, tenant_id, event_type, channel, session_id, event_timestamp, occurred_at, conversion_value_cents, revenue_cents,
            currency, idempotency_key, raw_payload, processing_status, user_id, anonymous_id, campaign_id, order_id)
         SELECT i.id, $1::uuid, i.type, i.channel, i.session, i.at, i.at, i.value, coalesce(i.value, 0), i.currency,
                $1::text || ':ext:' || i.id::text, '{}'::jsonb, 'processed', i.user_id, i.anonymous_id, i.campaign, i.order_id
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::timestamptz[], $7::int[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
           AS i(id, type, channel, session, at, value, currency, user_id, anonymous_id, campaign, order_id)
         RETURNING 1)
         SELECT count(*) FROM ins`,
        [
          tenantId,
          chunkIds,
          chunk.map((e) => e.type),
          chunk.map((e) => e.channel),
          chunk.map((e) => e.session),
          chunk.map((e) => (typeof e.at === 'string' ? e.at : e.at.toISOString())),
          chunk.map((e) => e.value ?? null),
          chunk.map((e) => e.currency ?? 'USD'),
          chunk.map((e) => e.userId ?? null),
          chunk.map((e) => e.anonymousId ?? null),
          chunk.map((e) => e.campaign ?? null),
          chunk.map((e) => e.orderId ?? null),
        ],
      );
    }
  });
  return ids;
}

export const daysBefore = (at: Date, days: number) => new Date(at.getTime() - days * 86_400_000);
