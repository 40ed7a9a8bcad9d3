/**
 * What each export contains, column by column (docs/exports.md renders this list; a test keeps the
 * two equal), and the one keyset statement that reads it.
 *
 * Every column is selected as text in its canonical form, so the driver parses nothing and the
 * encoders (encode.ts) only quote: timestamps as RFC 3339 UTC with microseconds (exact, unlike a
 * JS Date), numbers and booleans as PostgreSQL prints them, jsonb as its JSON text.
 */

/** How a column's text is written in NDJSON: a JSON string, or inlined as it is (a number, true/false, a JSON document). */
export type ColumnKind = 'string' | 'integer' | 'decimal' | 'boolean' | 'timestamp' | 'date' | 'uuid' | 'json';

export interface Column {
  name: string;
  kind: ColumnKind;
  /** SQL producing the column's text (aliases: e = attribution_events, a = attribution_allocations, l = revenue_ledger). */
  sql: string;
  description: string;
}

export interface Dataset {
  name: string;
  description: string;
  /** What `from` / `to` select on. */
  period: string;
  columns: Column[];
  /** FROM clause (with joins, each on tenant_id too). */
  from: string;
  /** The keyset: a timestamptz (or, with `timeKind` date, a date) column and the row id, both of the table the index covers. */
  time: string;
  /** `date`: the period is whole days (`from` / `to` must be dates or their midnight UTC). Default timestamp. */
  timeKind?: 'timestamp' | 'date';
  id: string;
  tenantColumn: string;
}

/** RFC 3339 in UTC with microseconds: exact, sorts as text, and parses back as the same timestamptz. */
export const ts = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

const c = (name: string, kind: ColumnKind, sql: string, description: string): Column => ({ name, kind, sql, description });

// The tenant-scoped forms (<tenant_id>:ext:<key>, <tenant_id>:<provider>:<id>) are stored so no tenant can collide
// with another (SPEC §1.2); an export gives the tenant's own value back, as the API does.
const TENANT_PREFIX = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:';

const events: Dataset = {
  name: 'events',
  description: 'Touchpoints and conversions as received, with their processing state.',
  period: 'event_timestamp (the time the event happened)',
  from: 'attribution_events e',
  time: 'e.event_timestamp',
  id: 'e.id',
  tenantColumn: 'e.tenant_id',
  columns: [
    c('id', 'uuid', 'e.id::text', 'Skeldir\'s id of the event (`GET /api/v1/events/{id}`).'),
    c('idempotency_key', 'string', `regexp_replace(e.idempotency_key, '${TENANT_PREFIX}(ext:)?', '')`, 'The idempotency key the event was sent with.'),
    c('event_type', 'string', 'e.event_type::text', '`touchpoint` or `conversion`.'),
    c('event_timestamp', 'timestamp', ts('e.event_timestamp'), 'When the event happened, UTC.'),
    c('session_id', 'uuid', 'e.session_id::text', 'The visitor session.'),
    c('user_id', 'string', 'e.user_id::text', 'The sender\'s id of the person; empty/null when anonymous.'),
    c('channel', 'string', 'e.channel::text', "One of the tenant's channel codes ([channels.md](channels.md); `unknown` when unrecognised)."),
    c('campaign_id', 'string', 'e.campaign_id::text', 'Campaign given by the sender, if any.'),
    c('conversion_value_cents', 'integer', 'e.conversion_value_cents::text', 'Value in minor units of `currency`; null when none.'),
    c('currency', 'string', 'e.currency::text', 'ISO 4217 code of the value.'),
    c('order_id', 'string', 'e.order_id::text', 'Merchant order of a conversion (links it to the ledger).'),
    c('processing_status', 'string', 'e.processing_status::text', '`pending`, `processed` or `failed`.'),
    c('processed_at', 'timestamp', ts('e.processed_at'), 'When the worker processed it.'),
    c('retry_count', 'integer', 'e.retry_count::text', 'Failed processing attempts.'),
    c('received_at', 'timestamp', ts('e.created_at'), 'When Skeldir received it.'),
    c('raw_payload', 'json', 'e.raw_payload::text', 'The event exactly as received (JSON; `{"redacted": "retention"}` once the tenant\'s retention removed it).'),
  ],
};

const allocations: Dataset = {
  name: 'allocations',
  description: 'Revenue of each conversion credited to channels, one row per conversion, model, channel and campaign.',
  period: 'the conversion time (allocations carry it in created_at)',
  from: 'attribution_allocations a JOIN attribution_events e ON e.tenant_id = a.tenant_id AND e.id = a.event_id',
  time: 'a.created_at',
  id: 'a.id',
  tenantColumn: 'a.tenant_id',
  columns: [
    c('id', 'uuid', 'a.id::text', 'Id of the allocation.'),
    c('event_id', 'uuid', 'a.event_id::text', 'The conversion event (`events.id`).'),
    c('conversion_time', 'timestamp', ts('a.created_at'), 'When the conversion happened, UTC.'),
    c('model_type', 'string', 'a.model_type::text', 'Attribution model (first_touch, last_touch, last_non_direct, linear, time_decay, position_based, markov, shapley, bayesian).'),
    c('model_version', 'string', 'a.model_version', 'Version of the model code.'),
    c('channel', 'string', 'a.channel_code', 'Channel credited.'),
    c('campaign_id', 'string', 'a.campaign_id::text', 'Campaign of the touches credited (campaign_id, else utm_campaign); null when none.'),
    c('allocated_revenue_cents', 'integer', 'a.allocated_revenue_cents::text', 'Revenue credited, minor units of `currency`; a conversion\'s rows of one model sum to its value.'),
    c('currency', 'string', 'e.currency::text', 'ISO 4217 code of the conversion.'),
    c('allocation_ratio', 'decimal', 'a.allocation_ratio::text', 'Share of the conversion credited, 0 to 1 (5 decimals).'),
    c('confidence_score', 'decimal', 'a.confidence_score::text', 'How sure the model is, 0 to 1 (meaning per model: docs/attribution.md).'),
    c('credible_interval_lower_cents', 'integer', 'a.credible_interval_lower_cents::text', 'Bayesian: lower bound of the 94 % credible interval; null for other models.'),
    c('credible_interval_upper_cents', 'integer', 'a.credible_interval_upper_cents::text', 'Bayesian: upper bound of the 94 % credible interval; null for other models.'),
    c('convergence_r_hat', 'decimal', 'a.convergence_r_hat::text', 'Bayesian: R-hat of the run; null for other models.'),
    c('effective_sample_size', 'integer', 'a.effective_sample_size::text', 'Bayesian: bulk effective sample size; null for other models.'),
    c('verified', 'boolean', 'a.verified::text', 'True once the ledger verified the conversion\'s order.'),
    c('verification_source', 'string', 'a.verification_source::text', 'What verified it (the payment provider).'),
    c('verification_timestamp', 'timestamp', ts('a.verification_timestamp'), 'When it was verified.'),
  ],
};

const ledger: Dataset = {
  name: 'ledger',
  description: 'Payments from the revenue ledger, one row per transaction, in their current state.',
  period: 'created_at (when Skeldir recorded the payment)',
  from: 'revenue_ledger l',
  time: 'l.created_at',
  id: 'l.id',
  tenantColumn: 'l.tenant_id',
  columns: [
    c('id', 'uuid', 'l.id::text', 'Id of the ledger row.'),
    c('transaction_id', 'string', `regexp_replace(l.transaction_id, '${TENANT_PREFIX}[a-z]+:', '')`, 'The provider\'s transaction id (`legacy_<id>` for migrated rows).'),
    c('provider', 'string', 'l.verification_source::text', 'Who reported it: stripe, shopify, paypal, woocommerce (or legacy_migration).'),
    c('order_id', 'string', 'l.order_id::text', 'Merchant order it pays for.'),
    c('state', 'string', 'l.state::text', '`authorized`, `captured`, `refunded` or `chargeback`.'),
    c('previous_state', 'string', 'l.previous_state::text', 'State before the last transition.'),
    c('amount_cents', 'integer', 'l.amount_cents::text', 'Amount in minor units of `currency` (its own exponent).'),
    c('captured_cents', 'integer', 'l.captured_cents::text', 'Captured so far when partially captured; null means the whole amount once captured.'),
    c('refunded_cents', 'integer', 'l.refunded_cents::text', 'Refunded so far (cumulative).'),
    c('chargeback_cents', 'integer', 'l.chargeback_cents::text', 'Lost to chargebacks.'),
    c('currency', 'string', 'l.currency::text', 'ISO 4217 code of the amounts.'),
    c('verification_timestamp', 'timestamp', ts('l.verification_timestamp'), 'When the provider verified the last state.'),
    c('recorded_at', 'timestamp', ts('l.created_at'), 'When Skeldir recorded it.'),
    c('updated_at', 'timestamp', ts('l.updated_at'), 'When it last changed.'),
    c('metadata', 'json', 'l.metadata::text', 'Provider details and the FX quote used for reporting (`fx`: rate, date, source).'),
  ],
};

const spend: Dataset = {
  name: 'spend',
  description: 'Ad spend as imported, one row per day, platform, account, campaign, ad group and ad.',
  period: 'day (the day of the spend; from / to are whole days)',
  from: 'ad_spend s',
  time: 's.day',
  timeKind: 'date',
  id: 's.id',
  tenantColumn: 's.tenant_id',
  columns: [
    c('id', 'uuid', 's.id::text', 'Id of the spend row (`GET /api/v1/spend`).'),
    c('day', 'date', 's.day::text', "The day of the spend (YYYY-MM-DD), in the tenant's reporting time zone, as the platform reported it."),
    c('platform', 'string', 's.platform::text', 'Ad platform: google_ads, meta_ads, tiktok_ads, microsoft_ads, linkedin_ads or other.'),
    c('account_id', 'string', 's.account_id::text', "The platform's account id; empty string when the import named none."),
    c('campaign_id', 'string', 's.campaign_id::text', "The platform's campaign id (what touches carry as campaign_id)."),
    c('campaign_name', 'string', 's.campaign_name::text', 'Campaign name as exported; null when none.'),
    c('ad_group_id', 'string', 's.ad_group_id::text', 'Ad group (ad set) id; empty string when the row covers the whole campaign.'),
    c('ad_group_name', 'string', 's.ad_group_name::text', 'Ad group name; null when none.'),
    c('ad_id', 'string', 's.ad_id::text', 'Ad id; empty string when the row covers the whole ad group or campaign.'),
    c('ad_name', 'string', 's.ad_name::text', 'Ad name; null when none.'),
    c('channel', 'string', 's.channel_code', "The tenant's channel the spend is bought for."),
    c('currency', 'string', 's.currency::text', 'ISO 4217 code of `spend_cents` (the ad account\'s currency).'),
    c('spend_cents', 'integer', 's.spend_cents::text', 'Spend in minor units of `currency`, never negative.'),
    c('impressions', 'integer', 's.impressions::text', 'Impressions; null when not reported.'),
    c('clicks', 'integer', 's.clicks::text', 'Clicks (Meta: link clicks); null when not reported.'),
    c('source', 'string', 's.source::text', 'How the row arrived: api, google_ads_csv, meta_ads_csv or generic_csv.'),
    c('source_file', 'string', 's.source_file::text', 'File name of the import; null when not from a file.'),
    c('import_id', 'uuid', 's.import_id::text', 'The import that last wrote the row.'),
    c('imported_at', 'timestamp', ts('s.imported_at'), 'When that import ran.'),
    c('updated_at', 'timestamp', ts('s.updated_at'), 'When the row last changed.'),
  ],
};

export const DATASETS = { events, allocations, ledger, spend } as const satisfies Record<string, Dataset>;
export type DatasetName = keyof typeof DATASETS;
export const DATASET_NAMES = Object.keys(DATASETS) as DatasetName[];

export function isDatasetName(s: string): s is DatasetName {
  return Object.hasOwn(DATASETS, s);
}

/**
 * One keyset page: rows of the tenant in [from, to) strictly after (after_time, after_id), in
 * (time, id) order, through the dataset's (tenant_id, time, id) index (spend: idx_ad_spend_tenant_day on
 * (tenant_id, day), its rows of one day sorted by id: a day holds at most the ad-level rows of one day's import,
 * so a page re-reads no more than one day). $1 tenant, $2 from, $3 to,
 * $4 after_time, $5 after_id, $6 limit. The last two output columns are the keyset of the row.
 */
export function pageSql(d: Dataset): string {
  const t = d.timeKind === 'date' ? 'date' : 'timestamptz';
  return `SELECT ${d.columns.map((col) => col.sql).join(', ')}, ${t === 'date' ? `${d.time}::text` : ts(d.time)}, ${d.id}::text
    FROM ${d.from}
   WHERE ${d.tenantColumn} = $1 AND ${d.time} >= $2::${t} AND ${d.time} < $3::${t}
     AND ${d.time} >= $4::${t} AND (${d.time}, ${d.id}) > ($4::${t}, $5::uuid)
   ORDER BY ${d.time}, ${d.id}
   LIMIT $6`;
}
