import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import type { Queryable } from '../db/pool.js';
import type { SpendRow } from './rows.js';

/**
 * The SQL of ad spend, one function per statement; every statement names the tenant
 * (`tenant_id = $1`) and runs in a transaction with the tenant's context set.
 */

/** A spend row with its channel decided, ready to store. */
export interface StorableSpend extends Omit<SpendRow, 'channel'> {
  channel: string;
}

export interface StoredSpend {
  id: string;
  day: string;
  platform: string;
  account_id: string;
  campaign_id: string;
  campaign_name: string | null;
  ad_group_id: string;
  ad_group_name: string | null;
  ad_id: string;
  ad_name: string | null;
  channel_code: string;
  currency: string;
  spend_cents: string;
  impressions: string | null;
  clicks: string | null;
  source: string;
  source_file: string | null;
  import_id: string;
  imported_at: Date;
}

const COLUMNS = `id, day::text AS day, platform, account_id, campaign_id, campaign_name, ad_group_id, ad_group_name, ad_id, ad_name,
  channel_code, currency, spend_cents::text AS spend_cents, impressions::text AS impressions, clicks::text AS clicks, source, source_file, import_id, imported_at`;

/**
 * The columns of ad_spend a write gives per row, in the staging table's (and the unnest input's) order;
 * each INSERT adds tenant_id and the import's source, source_file, import_id and imported_at.
 */
const SPEND_COLUMNS = 'day, platform, account_id, campaign_id, campaign_name, ad_group_id, ad_group_name, ad_id, ad_name, channel_code, currency, spend_cents, impressions, clicks';

export interface ImportMeta {
  importId: string;
  source: 'api' | 'google_ads_csv' | 'meta_ads_csv' | 'generic_csv';
  sourceFile: string | null;
  /** Passed in, not now(): Citus-friendly, and one instant for the whole import. */
  importedAt: Date;
}

/**
 * The natural key's conflict clause of both upserts (batches and staging): the stored row is
 * replaced only when something differs, so an unchanged row keeps its id and its import.
 */
const REPLACE_CHANGED = `ON CONFLICT (tenant_id, platform, account_id, campaign_id, ad_group_id, ad_id, day) DO UPDATE
         SET campaign_name = EXCLUDED.campaign_name, ad_group_name = EXCLUDED.ad_group_name, ad_name = EXCLUDED.ad_name,
             channel_code = EXCLUDED.channel_code, currency = EXCLUDED.currency, spend_cents = EXCLUDED.spend_cents,
             impressions = EXCLUDED.impressions, clicks = EXCLUDED.clicks, source = EXCLUDED.source, source_file = EXCLUDED.source_file,
             import_id = EXCLUDED.import_id, imported_at = EXCLUDED.imported_at
         WHERE (s.campaign_name, s.ad_group_name, s.ad_name, s.channel_code, s.currency, s.spend_cents, s.impressions, s.clicks)
               IS DISTINCT FROM
               (EXCLUDED.campaign_name, EXCLUDED.ad_group_name, EXCLUDED.ad_name, EXCLUDED.channel_code, EXCLUDED.currency,
                EXCLUDED.spend_cents, EXCLUDED.impressions, EXCLUDED.clicks)`;

/**
 * Inserts rows or replaces the stored row of the same natural key when anything differs (an
 * unchanged row is left as it is: same id, same import); returns, in input order, what became of
 * each row. Rows are sorted by key first, so two imports of overlapping rows lock them in one order.
 */
export async function upsertSpend(client: Queryable, tenantId: string, rows: readonly StorableSpend[], meta: ImportMeta): Promise<{ outcome: 'created' | 'updated' | 'unchanged'; id: string }[]> {
  if (rows.length === 0) return [];
  const col = <T>(f: (r: StorableSpend) => T) => rows.map(f);
  const r = await client.query<{ n: number; id: string; inserted: boolean }>({
    name: 'skeldir_spend_upsert',
    text: `WITH input AS (
       SELECT * FROM unnest($2::date[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                            $11::text[], $12::text[], $13::bigint[], $14::bigint[], $15::bigint[])
         WITH ORDINALITY AS i(${SPEND_COLUMNS}, n)
     ),
     written AS (
       INSERT INTO ad_spend AS s (tenant_id, ${SPEND_COLUMNS}, source, source_file, import_id, imported_at)
       SELECT $1, ${SPEND_COLUMNS}, $16, $17, $18, $19
         FROM input ORDER BY platform, account_id, campaign_id, ad_group_id, ad_id, day
       ${REPLACE_CHANGED}
       RETURNING s.id, s.platform, s.account_id, s.campaign_id, s.ad_group_id, s.ad_id, s.day, (s.xmax = 0) AS inserted
     )
     SELECT i.n::int AS n, coalesce(w.id, s.id) AS id, w.inserted
       FROM input i
       LEFT JOIN written w ON (w.platform, w.account_id, w.campaign_id, w.ad_group_id, w.ad_id, w.day)
                            = (i.platform, i.account_id, i.campaign_id, i.ad_group_id, i.ad_id, i.day)
       LEFT JOIN ad_spend s ON w.id IS NULL AND s.tenant_id = $1
                            AND (s.platform, s.account_id, s.campaign_id, s.ad_group_id, s.ad_id, s.day)
                              = (i.platform, i.account_id, i.campaign_id, i.ad_group_id, i.ad_id, i.day)
      ORDER BY i.n`,
    values: [
      tenantId,
      col((x) => x.day),
      col((x) => x.platform),
      col((x) => x.account_id),
      col((x) => x.campaign_id),
      col((x) => x.campaign_name),
      col((x) => x.ad_group_id),
      col((x) => x.ad_group_name),
      col((x) => x.ad_id),
      col((x) => x.ad_name),
      col((x) => x.channel),
      col((x) => x.currency),
      col((x) => x.spend_cents.toString()),
      col((x) => x.impressions?.toString() ?? null),
      col((x) => x.clicks?.toString() ?? null),
      meta.source,
      meta.sourceFile,
      meta.importId,
      meta.importedAt.toISOString(),
    ],
  });
  return r.rows.map((x) => ({ outcome: x.inserted === null ? 'unchanged' : x.inserted ? 'created' : 'updated', id: x.id }));
}

/**
 * On Citus (runsCitus), a file import replaces the days it covers: the stored rows of its (platform, account, day)
 * scopes that the file no longer has (a campaign paused, an ad group removed) are deleted.
 */
export async function deleteStaleSpend(client: Queryable, tenantId: string, rows: readonly StorableSpend[]): Promise<number> {
  if (rows.length === 0) return 0;
  const r = await client.query(
    `WITH input AS (
       SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::date[])
         AS i(platform, account_id, campaign_id, ad_group_id, ad_id, day)
     ), scope AS (SELECT DISTINCT platform, account_id, day FROM input)
     DELETE FROM ad_spend s USING scope
      WHERE s.tenant_id = $1 AND s.platform = scope.platform AND s.account_id = scope.account_id AND s.day = scope.day
        AND NOT EXISTS (SELECT 1 FROM input i WHERE (i.platform, i.account_id, i.campaign_id, i.ad_group_id, i.ad_id, i.day)
                                                  = (s.platform, s.account_id, s.campaign_id, s.ad_group_id, s.ad_id, s.day))`,
    [
      tenantId,
      rows.map((x) => x.platform),
      rows.map((x) => x.account_id),
      rows.map((x) => x.campaign_id),
      rows.map((x) => x.ad_group_id),
      rows.map((x) => x.ad_id),
      rows.map((x) => x.day),
    ],
  );
  return r.rowCount ?? 0;
}

/**
 * A file import's rows go through a staging table: COPY into ad_spend itself is refused for the
 * application role (forced row-level security), a temporary table has none, and one
 * INSERT … SELECT from it then goes through the policies. Measured at 50,000 rows: 0.39× COPY's
 * throughput with 5,000-row INSERT … unnest batches, see docs/spend.md for the staging figure.
 * Dropped at the end of the transaction. Not on Citus (runsCitus says why).
 */
export async function createSpendStaging(client: Queryable): Promise<void> {
  await client.query(
    `CREATE TEMPORARY TABLE skeldir_spend_staging (
       day date NOT NULL, platform text NOT NULL, account_id text NOT NULL, campaign_id text NOT NULL, campaign_name text,
       ad_group_id text NOT NULL, ad_group_name text, ad_id text NOT NULL, ad_name text, channel_code text NOT NULL,
       currency text NOT NULL, spend_cents bigint NOT NULL, impressions bigint, clicks bigint
     ) ON COMMIT DROP`,
  );
}

/** One field of COPY's text format: backslash, tab, newline and carriage return escaped; null is \N. */
export function copyText(value: string | bigint | null): string {
  if (value === null) return '\\N';
  const s = typeof value === 'string' ? value : value.toString();
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!) : s;
}
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** Rows per chunk written to the COPY stream. */
const COPY_CHUNK = 2000;

/** Streams rows into the staging table with COPY FROM STDIN (text format); `tick` is told of each chunk. */
export async function copySpendToStaging(client: Queryable, rows: readonly StorableSpend[], tick: (n: number) => void = () => {}): Promise<void> {
  function* chunks() {
    for (let at = 0; at < rows.length; at += COPY_CHUNK) {
      let text = '';
      const end = Math.min(rows.length, at + COPY_CHUNK);
      for (let i = at; i < end; i++) {
        const r = rows[i]!;
        text += `${r.day}\t${copyText(r.platform)}\t${copyText(r.account_id)}\t${copyText(r.campaign_id)}\t${copyText(r.campaign_name)}\t${copyText(r.ad_group_id)}\t${copyText(r.ad_group_name)}\t${copyText(r.ad_id)}\t${copyText(r.ad_name)}\t${copyText(r.channel)}\t${copyText(r.currency)}\t${r.spend_cents}\t${copyText(r.impressions)}\t${copyText(r.clicks)}\n`;
      }
      yield text;
      tick(end - at);
    }
  }
  const stream = client.query(
    copyFrom(
      `COPY skeldir_spend_staging (${SPEND_COLUMNS}) FROM STDIN`,
    ),
  );
  await pipeline(Readable.from(chunks()), stream);
}

/**
 * A file import replaces the days it covers: the stored rows of the staged (platform, account,
 * day) scopes that the file no longer has (a campaign paused, an ad group removed) are deleted.
 */
export async function deleteStaleSpendFromStaging(client: Queryable, tenantId: string): Promise<number> {
  const r = await client.query(
    `DELETE FROM ad_spend s USING (SELECT DISTINCT platform, account_id, day FROM skeldir_spend_staging) scope
      WHERE s.tenant_id = $1 AND s.platform = scope.platform AND s.account_id = scope.account_id AND s.day = scope.day
        AND NOT EXISTS (SELECT 1 FROM skeldir_spend_staging i WHERE (i.platform, i.account_id, i.campaign_id, i.ad_group_id, i.ad_id, i.day)
                                                              = (s.platform, s.account_id, s.campaign_id, s.ad_group_id, s.ad_id, s.day))`,
    [tenantId],
  );
  return r.rowCount ?? 0;
}

const KEY_MATCH = `(i.platform, i.account_id, i.campaign_id, i.ad_group_id, i.ad_id, i.day) = (s.platform, s.account_id, s.campaign_id, s.ad_group_id, s.ad_id, s.day)`;
const DIFFERS = `(s.campaign_name, s.ad_group_name, s.ad_name, s.channel_code, s.currency, s.spend_cents, s.impressions, s.clicks)
  IS DISTINCT FROM (i.campaign_name, i.ad_group_name, i.ad_name, i.channel_code, i.currency, i.spend_cents, i.impressions, i.clicks)`;

/**
 * The stored rows of the staged keys that differ from their staged row, replaced by it (an
 * unchanged row is left as it is: same id, same import); returns how many.
 */
export async function updateSpendFromStaging(client: Queryable, tenantId: string, meta: ImportMeta): Promise<number> {
  const r = await client.query(
    `UPDATE ad_spend s
        SET campaign_name = i.campaign_name, ad_group_name = i.ad_group_name, ad_name = i.ad_name, channel_code = i.channel_code,
            currency = i.currency, spend_cents = i.spend_cents, impressions = i.impressions, clicks = i.clicks,
            source = $2, source_file = $3, import_id = $4, imported_at = $5
       FROM skeldir_spend_staging i
      WHERE s.tenant_id = $1 AND ${KEY_MATCH} AND ${DIFFERS}`,
    [tenantId, meta.source, meta.sourceFile, meta.importId, meta.importedAt.toISOString()],
  );
  return r.rowCount ?? 0;
}

/**
 * The staged rows whose key is not stored yet, inserted with a plain INSERT (measured at 50,000
 * rows: 1.5 s, against 2.0 s for INSERT … ON CONFLICT DO UPDATE of the same rows: the speculative
 * insertion is the difference). A concurrent writer can store one of the keys first: the unique
 * key then refuses the statement (23505) and the caller falls back to upsertSpendFromStaging.
 * Sorted by key, so two imports of overlapping rows take the key locks in one order.
 */
export async function insertNewSpendFromStaging(client: Queryable, tenantId: string, meta: ImportMeta): Promise<number> {
  const r = await client.query(
    `INSERT INTO ad_spend (tenant_id, ${SPEND_COLUMNS}, source, source_file, import_id, imported_at)
     SELECT $1, ${SPEND_COLUMNS}, $2, $3, $4, $5
       FROM skeldir_spend_staging i
      WHERE NOT EXISTS (SELECT 1 FROM ad_spend s WHERE s.tenant_id = $1 AND ${KEY_MATCH})
      ORDER BY platform, account_id, campaign_id, ad_group_id, ad_id, day`,
    [tenantId, meta.source, meta.sourceFile, meta.importId, meta.importedAt.toISOString()],
  );
  return r.rowCount ?? 0;
}

/**
 * The staged rows inserted, or replacing the stored row of the same natural key when anything
 * differs (an unchanged row is left as it is); returns how many were created and updated (the
 * others are unchanged). The slower path (see insertNewSpendFromStaging), taken only when a
 * concurrent writer stored one of the keys in the meantime.
 */
export async function upsertSpendFromStaging(client: Queryable, tenantId: string, meta: ImportMeta): Promise<{ created: number; updated: number }> {
  const r = await client.query<{ created: number; updated: number }>(
    `WITH written AS (
       INSERT INTO ad_spend AS s (tenant_id, ${SPEND_COLUMNS}, source, source_file, import_id, imported_at)
       SELECT $1, ${SPEND_COLUMNS}, $2, $3, $4, $5
         FROM skeldir_spend_staging ORDER BY platform, account_id, campaign_id, ad_group_id, ad_id, day
       ${REPLACE_CHANGED}
       RETURNING (s.xmax = 0) AS inserted
     )
     SELECT count(*) FILTER (WHERE inserted)::int AS created, count(*) FILTER (WHERE NOT inserted)::int AS updated FROM written`,
    [tenantId, meta.source, meta.sourceFile, meta.importId, meta.importedAt.toISOString()],
  );
  return r.rows[0]!;
}

export interface SpendFilter {
  from?: string;
  to?: string;
  platform?: string;
  accountId?: string;
  campaignId?: string;
  channel?: string;
  /** Keyset: rows after (day, id). */
  after?: { day: string; id: string };
  limit: number;
}

/** Spend rows in (day, id) order, `limit` of them. */
export async function listSpend(client: Queryable, tenantId: string, f: SpendFilter): Promise<StoredSpend[]> {
  const r = await client.query<StoredSpend>(
    `SELECT ${COLUMNS} FROM ad_spend
      WHERE tenant_id = $1
        AND ($2::date IS NULL OR day >= $2) AND ($3::date IS NULL OR day < $3)
        AND ($4::text IS NULL OR platform = $4) AND ($5::text IS NULL OR account_id = $5)
        AND ($6::text IS NULL OR campaign_id = $6) AND ($7::text IS NULL OR channel_code = $7)
        AND ($8::date IS NULL OR (day >= $8 AND (day, id) > ($8::date, $9::uuid)))
      ORDER BY day, id
      LIMIT $10`,
    [tenantId, f.from ?? null, f.to ?? null, f.platform ?? null, f.accountId ?? null, f.campaignId ?? null, f.channel ?? null, f.after?.day ?? null, f.after?.id ?? null, f.limit],
  );
  return r.rows;
}

/** Deletes a platform's spend of [from, to) (one account's, when given). */
export async function deleteSpend(client: Queryable, tenantId: string, platform: string, from: string, to: string, accountId?: string): Promise<number> {
  const r = await client.query(
    `DELETE FROM ad_spend WHERE tenant_id = $1 AND platform = $2 AND day >= $3 AND day < $4 AND ($5::text IS NULL OR account_id = $5)`,
    [tenantId, platform, from, to, accountId ?? null],
  );
  return r.rowCount ?? 0;
}

export type SpendGroup = 'channel' | 'campaign' | 'platform' | 'day';

export interface SpendAggregate {
  day: string;
  currency: string;
  platform: string;
  channel_code: string;
  campaign_id: string;
  campaign_name: string | null;
  cents: string;
  impressions: string | null;
  clicks: string | null;
  rows: number;
}

/**
 * Spend of [from, to) summed per (day, currency, platform, channel, campaign): the finest grain
 * any report groups by, each converted once at its day's rate (report.ts). Served by
 * idx_ad_spend_tenant_day.
 */
export async function spendByDay(client: Queryable, tenantId: string, from: string, to: string): Promise<SpendAggregate[]> {
  const r = await client.query<SpendAggregate>(
    `SELECT day::text AS day, currency, platform, channel_code, campaign_id, max(campaign_name) AS campaign_name,
            sum(spend_cents)::text AS cents, sum(impressions)::text AS impressions, sum(clicks)::text AS clicks, count(*)::int AS rows
       FROM ad_spend
      WHERE tenant_id = $1 AND day >= $2 AND day < $3
      GROUP BY day, currency, platform, channel_code, campaign_id`,
    [tenantId, from, to],
  );
  return r.rows;
}
