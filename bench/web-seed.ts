// The tenant the web benchmark measures (and that tmp/ scratch scripts can build to EXPLAIN its
// queries): `events` events over the 90 days up to now, in sessions of 5 events (4 touchpoints,
// then a conversion with an order), the default channels, allocations of two rule models for
// every conversion (last_touch: the conversion's channel; linear: it and the session's first
// touch's channel, half each), created at the conversion's time as the engine writes them, a
// ledger row for 3 of 4 orders, 90 days of spend on 3 paid channels, 1,000 dead events.
import type pg from 'pg';
import { withTriggersOff } from '../src/testing/triggers-off.js';

export const BENCH_TENANT = '00000000-0000-4000-8000-00000000be0c';

/** Bulk data as the superuser with triggers off (session_replication_role = replica, on every node: withTriggersOff), consistent by construction. */
export async function seedWebTenant(client: pg.Client, events: number): Promise<void> {
  const T = `'${BENCH_TENANT}'::uuid`;
  await withTriggersOff(client, () => client.query(`INSERT INTO tenants (id, name, api_key_hash, notification_email) VALUES (${T}, 'Bench', encode(sha256('bench'::bytea), 'hex'), 'ops@bench.example')`));
  // The tenant (a reference table on Citus) in a transaction of its own, then its rows.
  await withTriggersOff(client, () => seedRows(client, T, events));
  await client.query('VACUUM ANALYZE');
}

async function seedRows(client: pg.Client, T: string, events: number): Promise<void> {
  await client.query(
    `INSERT INTO tenant_channels (tenant_id, code, display_name, family, is_paid, is_active, is_default)
     SELECT ${T}, code, display_name, family, is_paid, is_active, true FROM channel_taxonomy`,
  );
  const channels = `(ARRAY['email', 'direct', 'organic', 'facebook_paid', 'google_search_paid', 'referral', 'tiktok_paid'])`;
  await client.query(
    `INSERT INTO attribution_events (id, tenant_id, occurred_at, event_timestamp, raw_payload, revenue_cents, idempotency_key, event_type, channel,
        session_id, conversion_value_cents, currency, order_id, processing_status, processed_at)
     SELECT md5('e' || g)::uuid, ${T}, ts, ts, jsonb_build_object('n', g), 0, '${BENCH_TENANT}' || ':ext:bench-' || g,
            CASE WHEN g % 5 = 0 THEN 'conversion' ELSE 'touchpoint' END, ${channels}[(g * 7 + g / 5) % 7 + 1],
            md5('s' || ((g - 1) / 5))::uuid, CASE WHEN g % 5 = 0 THEN 1000 + (g % 90) * 100 END, 'USD',
            CASE WHEN g % 5 = 0 THEN 'order-' || g END, 'processed', ts
       FROM generate_series(1, ${events}) g,
            LATERAL (SELECT now() - ((${events} - g) * (90 * 86400.0 / ${events})) * interval '1 second' AS ts) x`,
  );
  await client.query(
    `INSERT INTO attribution_allocations (tenant_id, event_id, channel_code, allocated_revenue_cents, allocation_ratio, model_type, model_version, confidence_score, created_at)
     SELECT ${T}, id, channel, conversion_value_cents, 1, 'last_touch', 'bench', 0.8, event_timestamp
       FROM attribution_events WHERE tenant_id = ${T} AND event_type = 'conversion'`,
  );
  await client.query(
    `INSERT INTO attribution_allocations (tenant_id, event_id, channel_code, allocated_revenue_cents, allocation_ratio, model_type, model_version, confidence_score, created_at)
     SELECT ${T}, c.id, p.channel, p.cents, 0.5, 'linear', 'bench', 0.8, c.event_timestamp
       FROM attribution_events c
       JOIN attribution_events f ON f.tenant_id = c.tenant_id AND f.id = md5('e' || (substr(c.order_id, 7)::int - 4))::uuid
       CROSS JOIN LATERAL (VALUES (c.channel, c.conversion_value_cents - c.conversion_value_cents / 2), (f.channel, c.conversion_value_cents / 2)) p(channel, cents)
      WHERE c.tenant_id = ${T} AND c.event_type = 'conversion'`,
  );
  await client.query(
    `INSERT INTO revenue_ledger (tenant_id, revenue_cents, is_verified, transaction_id, state, amount_cents, currency, verification_source, verification_timestamp, order_id)
     SELECT ${T}, conversion_value_cents, true, '${BENCH_TENANT}' || ':stripe:ch_' || order_id, 'captured', conversion_value_cents, 'USD', 'stripe', event_timestamp, order_id
       FROM attribution_events WHERE tenant_id = ${T} AND event_type = 'conversion' AND (hashtext(order_id) & 3) <> 0`,
  );
  await client.query(`INSERT INTO revenue_state_transitions (tenant_id, ledger_id, from_state, to_state) SELECT tenant_id, id, NULL, 'captured' FROM revenue_ledger WHERE tenant_id = ${T}`);
  await client.query(
    `INSERT INTO ad_spend (tenant_id, platform, account_id, campaign_id, campaign_name, channel_code, day, currency, spend_cents, clicks, impressions, source, import_id, imported_at)
     SELECT ${T}, p.platform, 'acct', p.platform || '-c' || c, 'Campaign ' || c, p.channel, d::date, 'USD', 10000 + c * 2500 + extract(doy FROM d)::int * 10, 100 + c, 5000 + c, 'api',
            md5('import')::uuid, now()
       FROM (VALUES ('google_ads', 'google_search_paid'), ('meta_ads', 'facebook_paid'), ('tiktok_ads', 'tiktok_paid')) p(platform, channel),
            generate_series(1, 3) c, generate_series(now() - interval '89 days', now(), interval '1 day') d`,
  );
  await client.query(
    `INSERT INTO dead_events (tenant_id, source, error_code, error_detail, raw_payload, event_type, error_type, error_message, created_at)
     SELECT ${T}, 'worker', 'timeout', jsonb_build_object('message', 'boom ' || g), '{}', 'conversion', 'transient', 'boom ' || g, now() - g * interval '1 minute'
       FROM generate_series(1, 1000) g`,
  );
}
