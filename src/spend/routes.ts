import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { AD_PLATFORMS } from '../channels/classify.js';
import { bodyAjv, validationProblem } from '../http/app.js';
import { problemFor } from '../http/problems.js';
import { SpendError } from './errors.js';
import { checkFilePlatform, decodeSpendFile, parseSpendFile, SPEND_FORMATS, type SpendFormat } from './csv.js';
import { importSpendIn, postSpend } from './import.js';
import { convertedSpend } from './report.js';
import { checkSpendRow, dayProblem, type SpendRow } from './rows.js';
import { deleteSpend, listSpend, type StoredSpend } from './store.js';
import { formatInstant } from '../db/timestamps.js';

export const MAX_SPEND_ROWS = 5000;
/** Largest file POST /spend/import takes (a month of ad-level rows of a large account is far below; the CLI takes more). */
export const MAX_IMPORT_BYTES = 16 * 1024 * 1024;
const security = [{ apiKey: [] }];
const tags = ['spend'];
const Platform = Type.Unsafe<(typeof AD_PLATFORMS)[number]>({ type: 'string', enum: [...AD_PLATFORMS], description: 'Ad platform' });
const Day = (description: string) => Type.String({ format: 'date', description });
/**
 * A day in a query string: YYYY-MM-DD. The HTTP layer writes a bare `from` / `to` out as its
 * midnight UTC (one rule for instants on every route), so that form is a day too; any other
 * instant is refused: spend comes in whole days.
 */
export const QueryDay = (description: string) =>
  Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}(T00:00:00(\\.0{1,6})?Z)?$', description: `${description} YYYY-MM-DD (a whole day).` });
/** The day of a QueryDay value; throws spend_query_invalid for a date that does not exist or is out of range. */
export function queryDay(field: string, value: string): string {
  const day = value.slice(0, 10);
  const p = dayProblem(day);
  if (p) throw new SpendError('spend_query_invalid', `${field}: ${p}`, { field });
  return day;
}
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

const RowInput = Type.Object(
  {
    day: Day("The day of the spend, in the tenant's reporting time zone (YYYY-MM-DD)."),
    platform: Platform,
    account_id: Type.Optional(Type.String({ maxLength: 100 })),
    campaign_id: Type.String({ minLength: 1, maxLength: 255, description: "The platform's campaign id." }),
    campaign_name: Type.Optional(Type.String({ maxLength: 500 })),
    ad_group_id: Type.Optional(Type.String({ maxLength: 255 })),
    ad_group_name: Type.Optional(Type.String({ maxLength: 500 })),
    ad_id: Type.Optional(Type.String({ maxLength: 255 })),
    ad_name: Type.Optional(Type.String({ maxLength: 500 })),
    channel: Type.Optional(Type.String({ maxLength: 100, description: "One of the tenant's channels; default: the channel rules decide on platform and campaign." })),
    currency: Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217 code of spend_cents.' }),
    spend_cents: Type.Integer({ minimum: 0, maximum: 1e15, description: 'Spend in minor units of currency.' }),
    impressions: Type.Optional(Type.Integer({ minimum: 0, maximum: 1e15 })),
    clicks: Type.Optional(Type.Integer({ minimum: 0, maximum: 1e15 })),
  },
  { additionalProperties: false },
);

const RowOutput = Type.Object(
  {
    id: Type.String(),
    day: Type.String(),
    platform: Type.String(),
    account_id: Type.String(),
    campaign_id: Type.String(),
    campaign_name: Nullable(Type.String()),
    ad_group_id: Type.String(),
    ad_group_name: Nullable(Type.String()),
    ad_id: Type.String(),
    ad_name: Nullable(Type.String()),
    channel: Type.String(),
    currency: Type.String(),
    spend_cents: Type.Integer(),
    impressions: Type.Union([Type.Integer(), Type.Null()]),
    clicks: Type.Union([Type.Integer(), Type.Null()]),
    source: Type.String(),
    source_file: Nullable(Type.String()),
    import_id: Type.String(),
    imported_at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);

const rowJson = (r: StoredSpend) => ({
  id: r.id,
  day: r.day,
  platform: r.platform,
  account_id: r.account_id,
  campaign_id: r.campaign_id,
  campaign_name: r.campaign_name,
  ad_group_id: r.ad_group_id,
  ad_group_name: r.ad_group_name,
  ad_id: r.ad_id,
  ad_name: r.ad_name,
  channel: r.channel_code,
  currency: r.currency,
  spend_cents: Number(r.spend_cents),
  impressions: r.impressions === null ? null : Number(r.impressions),
  clicks: r.clicks === null ? null : Number(r.clicks),
  source: r.source,
  source_file: r.source_file,
  import_id: r.import_id,
  imported_at: formatInstant(r.imported_at),
});

const ListQuery = Type.Object(
  {
    from: Type.Optional(QueryDay('First day (inclusive):')),
    to: Type.Optional(QueryDay('Day after the last (exclusive):')),
    platform: Type.Optional(Platform),
    account_id: Type.Optional(Type.String({ maxLength: 100 })),
    campaign_id: Type.Optional(Type.String({ maxLength: 255 })),
    channel: Type.Optional(Type.String({ maxLength: 100 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Rows per page (default 100).' })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'next_cursor of the previous page.' })),
  },
  { additionalProperties: false },
);

const DeleteQuery = Type.Object(
  {
    platform: Platform,
    from: QueryDay('First day (inclusive):'),
    to: QueryDay('Day after the last (exclusive):'),
    account_id: Type.Optional(Type.String({ maxLength: 100 })),
  },
  { additionalProperties: false },
);

const SummaryQuery = Type.Object(
  {
    from: QueryDay('First day (inclusive):'),
    to: QueryDay('Day after the last (exclusive):'),
    group_by: Type.Optional(Type.Unsafe<'channel' | 'campaign' | 'platform' | 'day'>({ type: 'string', enum: ['channel', 'campaign', 'platform', 'day'], description: 'Default channel.' })),
  },
  { additionalProperties: false },
);

const ImportBody = Type.Object(
  {
    platform: Platform,
    format: Type.Optional(Type.Unsafe<SpendFormat>({ type: 'string', enum: [...SPEND_FORMATS], description: 'Default: recognised from the header.' })),
    account: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Account id for rows the file names none for.' })),
    currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$', description: 'Currency for a file that names none (ISO 4217).' })),
    channel: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: "Channel for every row (default: the tenant's channel rules decide per campaign)." })),
    file_name: Type.Optional(Type.String({ maxLength: 1000, description: 'Name of the file, recorded with the rows.' })),
    content_base64: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9+/]*={0,2}$', description: `The file's bytes, base64 (at most ${MAX_IMPORT_BYTES / 1024 / 1024} MiB decoded).` }),
  },
  { additionalProperties: false },
);

/** A period of days: both real dates, from before to, at most 3,660 days (ten years). */
export function checkDays(from: string, to: string): void {
  for (const [field, v] of [['from', from], ['to', to]] as const) {
    const p = dayProblem(v);
    if (p) throw new SpendError('spend_query_invalid', `${field}: ${p}`, { field });
  }
  if (from >= to) throw new SpendError('spend_query_invalid', `to (${to}) must be after from (${from})`, { field: 'to' });
  if ((Date.parse(to) - Date.parse(from)) / 86_400_000 > 3660) throw new SpendError('spend_query_invalid', 'the period is longer than ten years', { field: 'to' });
}

const cursorOf = (r: StoredSpend) => Buffer.from(`${r.day}|${r.id}`).toString('base64url');
function parseCursor(cursor: string): { day: string; id: string } {
  const m = /^(\d{4}-\d{2}-\d{2})\|([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m || Buffer.from(`${m[1]}|${m[2]}`).toString('base64url') !== cursor) throw new SpendError('spend_cursor_invalid', 'the cursor is not one this endpoint gave', { field: 'cursor' });
  return { day: m[1]!, id: m[2]! };
}

/** POST / GET / DELETE /spend and GET /spend/summary (issue 12; docs/spend.md). */
export const spendRoutes: FastifyPluginAsync = async (app) => {
  // The envelope is checked up front, each row on its own (as the event batch does): one bad row does not sink the others.
  const ajv = bodyAjv();
  const validateRow = ajv.compile(RowInput);
  const envelope = ajv.compile(Type.Object({ rows: Type.Array(Type.Unknown(), { minItems: 1, maxItems: MAX_SPEND_ROWS }) }, { additionalProperties: false }));
  const anything = ajv.compile({});
  app.post<{ Body: { rows: Static<typeof RowInput>[] } }>(
    '/spend',
    {
      bodyLimit: 8 * 1024 * 1024,
      config: { problems: [] },
      validatorCompiler: ({ httpPart }) => (httpPart === 'body' ? envelope : anything),
      schema: {
        tags,
        summary: `Store 1–${MAX_SPEND_ROWS} spend rows; per-row results (idempotent: a row replaces the stored row of its natural key)`,
        description:
          'Each row is one day of one campaign (ad group, ad) of one platform account. Not atomic: a bad row gets its problem in its result and does not sink the others. ' +
          '201 created, 200 updated or unchanged (outcome says which); sending the same rows again changes nothing.',
        security,
        body: Type.Object({ rows: Type.Array(RowInput, { minItems: 1, maxItems: MAX_SPEND_ROWS }) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            results: Type.Array(Type.Object({
              index: Type.Integer(),
              status: Type.Integer(),
              outcome: Type.Optional(Type.String({ description: 'created, updated or unchanged' })),
              id: Type.Optional(Type.String()),
              channel: Type.Optional(Type.String()),
              problem: Type.Optional(Type.Unknown()),
            })),
            created: Type.Integer(),
            updated: Type.Integer(),
            unchanged: Type.Integer(),
            failed: Type.Integer(),
          }),
        },
      },
    },
    async (request) => {
      const valid: { index: number; row: SpendRow }[] = [];
      const results: { index: number; status: number; outcome?: string; id?: string; channel?: string; problem?: unknown }[] = [];
      (request.body.rows as unknown[]).forEach((raw, index) => {
        try {
          if (!validateRow(raw)) throw validationProblem(validateRow.errors ?? [], `body/rows/${index}`);
          valid.push({ index, row: checkSpendRow(raw as Static<typeof RowInput>, `body/rows/${index}`) });
        } catch (error) {
          results.push({ index, ...problemOf(error) });
        }
      });
      const stored = valid.length ? await request.inTenant((c) => postSpend(c, request.tenantId, valid)) : [];
      for (const s of stored) {
        if ('error' in s) results.push({ index: s.index, ...problemOf(s.error) });
        else results.push({ index: s.index, status: s.outcome === 'created' ? 201 : 200, outcome: s.outcome, id: s.id, channel: s.channel });
      }
      results.sort((a, b) => a.index - b.index);
      const n = (f: (r: (typeof results)[number]) => boolean) => results.filter(f).length;
      return { results, created: n((r) => r.outcome === 'created'), updated: n((r) => r.outcome === 'updated'), unchanged: n((r) => r.outcome === 'unchanged'), failed: n((r) => r.status >= 400) };
    },
  );

  // A file as the CLI's `skeldir spend import` takes it, for the web app's upload: the same parser,
  // the same all-or-nothing check and the same replacement of the days it covers. The bytes come
  // base64-encoded in JSON (a UTF-16 "CSV for Excel" survives, and the typed client and the CSRF
  // check stay those of every other call).
  app.post<{ Body: Static<typeof ImportBody> }>(
    '/spend/import',
    {
      bodyLimit: Math.ceil((MAX_IMPORT_BYTES * 4) / 3) + 64 * 1024,
      config: { access: 'admin', problems: ['forbidden', 'csrf_failed', 'spend_file_invalid'] },
      schema: {
        tags,
        summary: "Import one spend file (a Google Ads report CSV, a Meta Ads Manager export or the generic CSV), as `skeldir spend import` does: every line checked first, a file with any bad line imports nothing (each named), the days it covers replaced",
        security,
        body: ImportBody,
        response: {
          200: Type.Object({
            import_id: Type.String(),
            format: Type.String(),
            rows: Type.Integer(),
            created: Type.Integer(),
            updated: Type.Integer(),
            unchanged: Type.Integer(),
            deleted: Type.Integer({ description: 'Stored rows of the days the file covers that it no longer has' }),
            days: Type.Object({ from: Type.String(), to: Type.String() }),
            by_channel: Type.Record(Type.String(), Type.Integer()),
            skipped_lines: Type.Integer({ description: 'Lines that are not data (report titles, totals)' }),
          }),
        },
      },
    },
    async (request) => {
      const b = request.body;
      const bytes = Buffer.from(b.content_base64, 'base64');
      if (bytes.length === 0) throw new SpendError('spend_file_invalid', 'the file is empty', { field: 'body/content_base64' });
      if (bytes.length > MAX_IMPORT_BYTES) throw new SpendError('spend_file_invalid', `the file is larger than ${MAX_IMPORT_BYTES / 1024 / 1024} MiB: import it with skeldir spend import`, { field: 'body/content_base64' });
      const parsed = parseSpendFile(decodeSpendFile(bytes), {
        platform: b.platform,
        ...(b.format ? { format: b.format } : {}),
        ...(b.account ? { account: b.account } : {}),
        ...(b.currency ? { currency: b.currency } : {}),
        ...(b.channel ? { channel: b.channel } : {}),
      });
      checkFilePlatform(parsed.format, b.platform, 'platform');
      const summary = await request.inTenant((c) => importSpendIn(c, request.tenantId, { format: parsed.format, rows: parsed.rows, sourceFile: b.file_name?.slice(0, 255) ?? null }));
      return { ...summary, skipped_lines: parsed.skipped.length };
    },
  );

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/spend',
    {
      config: { problems: ['spend_query_invalid', 'spend_cursor_invalid'] },
      schema: {
        tags,
        summary: 'Spend rows in (day, id) order, with filters and keyset pagination',
        security,
        querystring: ListQuery,
        response: { 200: Type.Object({ rows: Type.Array(RowOutput), next_cursor: Nullable(Type.String()) }) },
      },
    },
    async (request) => {
      const q = { ...request.query, from: request.query.from && queryDay('from', request.query.from), to: request.query.to && queryDay('to', request.query.to) };
      const limit = q.limit ?? 100;
      const rows = await request.inTenant((c) =>
        listSpend(c, request.tenantId, {
          limit,
          ...(q.from ? { from: q.from } : {}),
          ...(q.to ? { to: q.to } : {}),
          ...(q.platform ? { platform: q.platform } : {}),
          ...(q.account_id !== undefined ? { accountId: q.account_id } : {}),
          ...(q.campaign_id !== undefined ? { campaignId: q.campaign_id } : {}),
          ...(q.channel !== undefined ? { channel: q.channel } : {}),
          ...(q.cursor !== undefined ? { after: parseCursor(q.cursor) } : {}),
        }),
      );
      return { rows: rows.map(rowJson), next_cursor: rows.length === limit ? cursorOf(rows[rows.length - 1]!) : null };
    },
  );

  app.delete<{ Querystring: Static<typeof DeleteQuery> }>(
    '/spend',
    {
      config: { problems: ['spend_query_invalid'] },
      schema: {
        tags,
        summary: "Delete a platform's spend of [from, to) (one account's with account_id)",
        security,
        querystring: DeleteQuery,
        response: { 200: Type.Object({ deleted: Type.Integer() }) },
      },
    },
    async (request) => {
      const q = { ...request.query, from: queryDay('from', request.query.from), to: queryDay('to', request.query.to) };
      checkDays(q.from, q.to);
      return { deleted: await request.inTenant((c) => deleteSpend(c, request.tenantId, q.platform, q.from, q.to, q.account_id)) };
    },
  );

  app.get<{ Querystring: Static<typeof SummaryQuery> }>(
    '/spend/summary',
    {
      config: { problems: ['spend_query_invalid'] },
      schema: {
        tags,
        summary: "Spend of [from, to) per channel, campaign, platform or day, in the reporting currency at each day's rate; days without a rate listed as gaps",
        security,
        querystring: SummaryQuery,
        response: {
          200: Type.Object({
            from: Type.String(),
            to: Type.String(),
            currency: Type.String(),
            group_by: Type.String(),
            lines: Type.Array(Type.Object({ key: Type.Record(Type.String(), Type.Unknown()), spend_cents: Type.Integer(), rows: Type.Integer(), unconverted_rows: Type.Integer() })),
            total_spend_cents: Type.Integer(),
            fx_gaps: Type.Array(Type.Object({ currency: Type.String(), day: Type.String(), spend_cents: Type.Integer(), rows: Type.Integer() }), {
              description: 'Spend left out of every converted figure: no rate for its currency on or before its day (import one with skeldir fx import)',
            }),
          }),
        },
      },
    },
    async (request) => {
      const from = queryDay('from', request.query.from);
      const to = queryDay('to', request.query.to);
      const groupBy = request.query.group_by ?? 'channel';
      checkDays(from, to);
      return request.inTenant(async (c) => {
        const reporting = (await c.query<{ c: string }>(`SELECT reporting_currency AS c FROM tenants WHERE id = $1`, [request.tenantId])).rows[0]!.c;
        const { lines, gaps } = await convertedSpend(c, request.tenantId, from, to, reporting);
        const groups = new Map<string, { key: Record<string, unknown>; cents: bigint; rows: number; unconverted: number }>();
        let total = 0n;
        for (const l of lines) {
          const key: Record<string, unknown> =
            groupBy === 'channel' ? { channel: l.channel_code }
            : groupBy === 'platform' ? { platform: l.platform }
            : groupBy === 'day' ? { day: l.day }
            : { platform: l.platform, campaign_id: l.campaign_id, campaign_name: l.campaign_name, channel: l.channel_code };
          const k = JSON.stringify(groupBy === 'campaign' ? [l.platform, l.campaign_id, l.channel_code] : key);
          const g = groups.get(k) ?? { key, cents: 0n, rows: 0, unconverted: 0 };
          g.rows += l.rows;
          if (l.reporting_cents === null) g.unconverted += l.rows;
          else g.cents += l.reporting_cents;
          groups.set(k, g);
          total += l.reporting_cents ?? 0n;
        }
        return {
          from,
          to,
          currency: reporting,
          group_by: groupBy,
          lines: [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, g]) => ({ key: g.key, spend_cents: safe(g.cents), rows: g.rows, unconverted_rows: g.unconverted })),
          total_spend_cents: safe(total),
          fx_gaps: gaps.map((g) => ({ ...g, spend_cents: safe(BigInt(g.spend_cents)) })),
        };
      });
    },
  );
};

/** A sum as a JSON number, refused (not rounded) past 2^53 minor units. */
function safe(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new SpendError('spend_query_invalid', 'a sum exceeds 2^53 minor units; narrow the period');
  return Number(v);
}

function problemOf(error: unknown): { status: number; problem: unknown } {
  const { status, body } = problemFor(error);
  return { status, problem: body };
}
