import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import { seedDefaultChannels } from '../channels/store.js';
import { withTenant } from '../db/tenant-context.js';
import { createTestDatabase, superClient, type TestDatabase } from '../testing/db.js';
import { insertTenants } from '../worker/test-fixtures.js';
import { importSpend } from './import.js';
import type { SpendRow } from './rows.js';
import { copyText, upsertSpend } from './store.js';

// importSpend writes through COPY into a staging table (store.ts): the text it streams must
// carry every string exactly, and a key stored concurrently must not sink the import.
let db: TestDatabase;
let su: pg.Client;
let app: pg.Pool;
let tenant: string;

before(async () => {
  db = await createTestDatabase('head');
  su = await superClient(db);
  [tenant] = (await insertTenants(su, 1)) as [string];
  await seedDefaultChannels(su, tenant);
  app = db.appPool({ max: 3 });
});
after(async () => {
  await app?.end();
  await su?.end();
  await db?.drop();
});

const row = (o: Partial<SpendRow>): SpendRow => ({
  day: '2026-02-01',
  platform: 'google_ads',
  account_id: 'acc',
  campaign_id: 'c1',
  campaign_name: null,
  ad_group_id: '',
  ad_group_name: null,
  ad_id: '',
  ad_name: null,
  channel: 'google_search_paid',
  currency: 'USD',
  spend_cents: 100n,
  impressions: null,
  clicks: null,
  ...o,
});

describe('the COPY text of a spend import', () => {
  test('copyText escapes backslash, tab, newline and carriage return, and writes null as \\N', () => {
    assert.equal(copyText('a\\b\tc\nd\re'), 'a\\\\b\\tc\\nd\\re');
    assert.equal(copyText('\\N'), '\\\\N');
    assert.equal(copyText(null), '\\N');
    assert.equal(copyText(12n), '12');
  });

  test('property: any text (tabs, quotes, newlines, backslashes, \\N, unicode) round-trips exactly through importSpend', async () => {
    // PostgreSQL text cannot hold NUL; everything else must come back as it went in.
    const special = fc.constantFrom('\t', '\n', '\r', '\\', '\\N', '"', "'", ',', ' ', 'N', 'é', '😀', '\u2028', '\u00a0', '.');
    const text = fc.string({ unit: fc.oneof(special, fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), maxLength: 30 }).filter((s) => !s.includes('\u0000'));
    const nullable = fc.option(text, { nil: null });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ campaign_name: nullable, ad_group_name: nullable, ad_name: nullable, campaign_id: text.filter((s) => s.trim() !== '') }), { minLength: 1, maxLength: 4 }), async (cases) => {
        run++;
        const rows = cases.map((c, i) => ({ line: i + 2, row: row({ ...c, ad_id: `run${run}-${i}`, account_id: `run${run}` }) }));
        const summary = await importSpend(app, tenant, { format: 'generic', rows, sourceFile: 'prop\t"x".csv' });
        assert.equal(summary.created, rows.length);
        const stored = await withTenant(app, tenant, async (c) =>
          (await c.query(`SELECT campaign_id, campaign_name, ad_group_name, ad_name, ad_id FROM ad_spend WHERE tenant_id = $1 AND account_id = $2 ORDER BY ad_id`, [tenant, `run${run}`])).rows,
        );
        const expected = rows.map((r) => ({ campaign_id: r.row.campaign_id, campaign_name: r.row.campaign_name, ad_group_name: r.row.ad_group_name, ad_name: r.row.ad_name, ad_id: r.row.ad_id }));
        assert.deepEqual(stored, expected.sort((a, b) => (a.ad_id < b.ad_id ? -1 : 1)));
      }),
      { numRuns: 60 },
    );
  });
});

describe('the summary of an import', () => {
  test('names the first and last day of the file whatever the rows\' order, and counts rows per channel', async () => {
    const summary = await importSpend(app, tenant, {
      format: 'generic',
      rows: [
        { line: 2, row: row({ account_id: 'span', campaign_id: 'a', day: '2026-03-05' }) },
        { line: 3, row: row({ account_id: 'span', campaign_id: 'a', day: '2025-12-31', channel: 'google_display_paid' }) },
        { line: 4, row: row({ account_id: 'span', campaign_id: 'a', day: '2026-03-07' }) },
        { line: 5, row: row({ account_id: 'span', campaign_id: 'a', day: '2026-01-15' }) },
      ],
      sourceFile: 'span.csv',
    });
    assert.deepEqual(summary.days, { from: '2025-12-31', to: '2026-03-07' });
    assert.deepEqual(summary.by_channel, { google_search_paid: 3, google_display_paid: 1 });
  });
});

describe('a key stored by a concurrent writer during the import', () => {
  test('the import waits, then replaces that row (the ON CONFLICT fallback) and writes the others', async () => {
    const client = await app.connect();
    try {
      await client.query(`BEGIN; SET LOCAL app.current_tenant_id = '${tenant}'`);
      await upsertSpend(client, tenant, [{ ...row({ account_id: 'race', campaign_id: 'taken', spend_cents: 1n }), channel: 'google_search_paid' }], {
        importId: '00000000-0000-4000-8000-000000000001',
        source: 'api',
        sourceFile: null,
        importedAt: new Date(),
      });
      // The import's plain INSERT blocks on the uncommitted key, then gets a unique violation when it commits.
      const importing = importSpend(app, tenant, {
        format: 'generic',
        rows: [
          { line: 2, row: row({ account_id: 'race', campaign_id: 'taken', spend_cents: 500n }) },
          { line: 3, row: row({ account_id: 'race', campaign_id: 'free', spend_cents: 700n }) },
        ],
        sourceFile: 'race.csv',
      });
      await waitForLockWait();
      await client.query('COMMIT');
      const summary = await importing;
      assert.deepEqual([summary.created, summary.updated, summary.unchanged], [1, 1, 0]);
    } finally {
      client.release();
    }
    const stored = (await su.query(`SELECT campaign_id, spend_cents::int AS cents, source FROM ad_spend WHERE tenant_id = $1 AND account_id = 'race' ORDER BY campaign_id`, [tenant])).rows;
    assert.deepEqual(stored, [
      { campaign_id: 'free', cents: 700, source: 'generic_csv' },
      { campaign_id: 'taken', cents: 500, source: 'generic_csv' },
    ]);
  });
});

/** Until some backend waits for a lock (the import behind the uncommitted key). */
async function waitForLockWait(): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const r = await su.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`);
    if (r.rows[0].n > 0) return;
    await new Promise((res) => setTimeout(res, 25));
  }
  throw new Error('the import never waited for the concurrent key');
}
