import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { classifySpend, type RuleSet } from '../channels/classify.js';
import { loadRuleSet } from '../channels/cache.js';
import { runsCitus } from '../db/citus.js';
import type { Queryable } from '../db/pool.js';
import { withTenant } from '../db/tenant-context.js';
import { silentProgress, type Progress } from '../migrations/context.js';
import type { SpendFormat } from './csv.js';
import { SpendError } from './errors.js';
import type { SpendRow } from './rows.js';
import {
  copySpendToStaging,
  createSpendStaging,
  deleteStaleSpend,
  deleteStaleSpendFromStaging,
  insertNewSpendFromStaging,
  updateSpendFromStaging,
  upsertSpendFromStaging,
  upsertSpend,
  type ImportMeta,
  type StorableSpend,
} from './store.js';

/** Rows per INSERT statement on Citus (runsCitus; larger batches gained nothing there and hold bigger arrays). */
const CITUS_WRITE_BATCH = 5000;

/**
 * The channel of each row: the one given (it must be one of the tenant's channels), else the
 * tenant's rules on platform and campaign (classifySpend). Returns the problem of a row whose
 * given channel the tenant does not have.
 */
export function decideChannel(row: SpendRow, rules: RuleSet): { channel: string } | { problem: string } {
  if (row.channel !== null) {
    return rules.channels.has(row.channel) ? { channel: row.channel } : { problem: `channel: the tenant has no channel ${row.channel}` };
  }
  return { channel: classifySpend({ platform: row.platform, campaign_id: row.campaign_id, campaign_name: row.campaign_name }, rules).channel };
}

export interface ImportSummary {
  import_id: string;
  format: SpendFormat;
  rows: number;
  created: number;
  updated: number;
  unchanged: number;
  /** Stored rows of the days the file covers that it no longer has. */
  deleted: number;
  days: { from: string; to: string };
  by_channel: Record<string, number>;
}

/**
 * Imports a parsed file in ONE transaction: every row's channel is decided first (a row naming a
 * channel the tenant does not have makes the file bad: nothing is written), then the days the file
 * covers are replaced — rows of those (platform, account, day) scopes that the file no longer has
 * are deleted, the others inserted or updated, unchanged rows left alone.
 */
export async function importSpend(
  pool: pg.Pool,
  tenantId: string,
  file: { format: SpendFormat; rows: { line: number; row: SpendRow }[]; sourceFile: string | null },
  progress: Progress = silentProgress,
): Promise<ImportSummary> {
  return withTenant(pool, tenantId, (client) => importSpendIn(client, tenantId, file, progress));
}

/** importSpend within a transaction the caller holds in the tenant's context (POST /spend/import). */
export async function importSpendIn(
  client: Queryable,
  tenantId: string,
  file: { format: SpendFormat; rows: { line: number; row: SpendRow }[]; sourceFile: string | null },
  progress: Progress = silentProgress,
): Promise<ImportSummary> {
  const meta: ImportMeta = {
    importId: randomUUID(),
    source: `${file.format}_csv` as ImportMeta['source'],
    sourceFile: file.sourceFile,
    importedAt: new Date(),
  };
  const rules = await loadRuleSet(client, tenantId);
  const rows: StorableSpend[] = [];
  const errors: string[] = [];
  for (const { line, row } of file.rows) {
    const d = decideChannel(row, rules);
    if ('problem' in d) errors.push(`line ${line}: ${d.problem}`);
    else rows.push({ ...row, channel: d.channel });
  }
  if (errors.length) {
    throw new SpendError('spend_file_invalid', `${errors.length} bad line(s); nothing was imported:\n  ${errors.slice(0, 20).join('\n  ')}`, {
      details: { errors: errors.slice(0, 1000), bad_lines: errors.length },
    });
  }
  const summary = await writeRows(client, tenantId, rows, meta, progress);
  return { import_id: meta.importId, format: file.format, ...summary };
}

/**
 * The checked rows COPYed into a staging table, then the days they cover replaced from it
 * (store.ts: createSpendStaging says why, insertNewSpendFromStaging what was measured).
 */
async function writeRows(client: Queryable, tenantId: string, rows: StorableSpend[], meta: ImportMeta, progress: Progress) {
  const bar = progress.start('spend rows written', rows.length);
  let deleted = 0;
  let counts = { created: 0, updated: 0 };
  try {
    if (rows.length > 0 && (await runsCitus(client))) {
      deleted = await deleteStaleSpend(client, tenantId, rows);
      const all = { created: 0, updated: 0, unchanged: 0 };
      for (let at = 0; at < rows.length; at += CITUS_WRITE_BATCH) {
        const part = rows.slice(at, at + CITUS_WRITE_BATCH);
        for (const o of await upsertSpend(client, tenantId, part, meta)) all[o.outcome]++;
        bar.tick(part.length);
      }
      counts = { created: all.created, updated: all.updated };
    } else if (rows.length > 0) {
      await createSpendStaging(client);
      await copySpendToStaging(client, rows, (n) => bar.tick(n));
      deleted = await deleteStaleSpendFromStaging(client, tenantId);
      counts = await writeFromStaging(client, tenantId, meta);
    }
  } finally {
    bar.stop();
  }
  const byChannel: Record<string, number> = {};
  // The first and last day in one pass (YYYY-MM-DD compares as text), not a sort of every row's day.
  let from = '';
  let to = '';
  for (const r of rows) {
    byChannel[r.channel] = (byChannel[r.channel] ?? 0) + 1;
    if (from === '' || r.day < from) from = r.day;
    if (r.day > to) to = r.day;
  }
  return { rows: rows.length, ...counts, unchanged: rows.length - counts.created - counts.updated, deleted, days: { from, to }, by_channel: byChannel };
}

/**
 * Updates, then plain inserts (the fast path); if a concurrent writer stored one of the new keys
 * meanwhile (unique violation), back to the savepoint and one INSERT … ON CONFLICT DO UPDATE.
 */
async function writeFromStaging(client: Queryable, tenantId: string, meta: ImportMeta): Promise<{ created: number; updated: number }> {
  await client.query('SAVEPOINT skeldir_spend_write');
  try {
    const updated = await updateSpendFromStaging(client, tenantId, meta);
    const created = await insertNewSpendFromStaging(client, tenantId, meta);
    await client.query('RELEASE SAVEPOINT skeldir_spend_write');
    return { created, updated };
  } catch (error) {
    if ((error as { code?: string }).code !== '23505') throw error;
    await client.query('ROLLBACK TO SAVEPOINT skeldir_spend_write');
    return upsertSpendFromStaging(client, tenantId, meta);
  }
}

/**
 * POST /spend: checked rows are upserted by natural key (not atomic, like the event batch: a bad
 * row does not sink the others; sending the same rows again changes nothing). Returns each
 * valid row's outcome by its index; the caller adds the problems of the rows it refused.
 */
export async function postSpend(
  client: Queryable,
  tenantId: string,
  rows: { index: number; row: SpendRow }[],
): Promise<({ index: number; outcome: 'created' | 'updated' | 'unchanged'; id: string; channel: string } | { index: number; error: SpendError })[]> {
  const rules = await loadRuleSet(client, tenantId);
  const storable: { index: number; row: StorableSpend }[] = [];
  const out: ({ index: number; outcome: 'created' | 'updated' | 'unchanged'; id: string; channel: string } | { index: number; error: SpendError })[] = [];
  for (const { index, row } of rows) {
    const d = decideChannel(row, rules);
    if ('problem' in d) out.push({ index, error: new SpendError('spend_row_invalid', d.problem, { field: `body/rows/${index}/channel` }) });
    else storable.push({ index, row: { ...row, channel: d.channel } });
  }
  const meta: ImportMeta = { importId: randomUUID(), source: 'api', sourceFile: null, importedAt: new Date() };
  // Two rows of one request with the same natural key: the later one is stored; both report its outcome.
  const outcomes = await upsertSpend(client, tenantId, dedupeLast(storable.map((s) => s.row)), meta);
  const byKey = new Map<string, (typeof outcomes)[number]>();
  dedupeLast(storable.map((s) => s.row)).forEach((r, i) => byKey.set(keyOf(r), outcomes[i]!));
  for (const s of storable) {
    const o = byKey.get(keyOf(s.row))!;
    out.push({ index: s.index, outcome: o.outcome, id: o.id, channel: s.row.channel });
  }
  return out.sort((a, b) => a.index - b.index);
}

const keyOf = (r: StorableSpend) => [r.platform, r.account_id, r.campaign_id, r.ad_group_id, r.ad_id, r.day].join('\u0000');

function dedupeLast(rows: StorableSpend[]): StorableSpend[] {
  const m = new Map<string, StorableSpend>();
  for (const r of rows) {
    m.delete(keyOf(r));
    m.set(keyOf(r), r);
  }
  return [...m.values()];
}
