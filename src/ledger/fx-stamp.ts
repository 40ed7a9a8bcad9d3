import type pg from 'pg';
import { withTenant } from '../db/tenant-context.js';
import { findRate, type FxQuote } from '../money/fx.js';

/**
 * Records the FX rate in `metadata.fx` of ledger rows that have none for their tenant's
 * reporting currency (payments that arrived before a rate for their date was imported, or
 * after the reporting currency changed). Administrative: runs as the schema owner, tenant by
 * tenant with the tenant context set, 1000 rows per transaction. A recorded rate is never
 * replaced by this (reports stay reproducible). Returns how many rows got a rate and how many
 * still have none.
 */
export async function stampLedgerFx(owner: pg.Pool): Promise<{ stamped: number; without_rate: number }> {
  const tenants = (await owner.query<{ id: string; rc: string }>(`SELECT id, reporting_currency AS rc FROM tenants ORDER BY id`)).rows;
  let stamped = 0;
  let withoutRate = 0;
  for (const t of tenants) {
    let last = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const done = await withTenant(owner, t.id, async (c) => {
        const { rows } = await c.query<{ id: string; currency: string; at: Date }>(
          `SELECT id, currency, verification_timestamp AS at FROM revenue_ledger
            WHERE tenant_id = $1 AND id > $2 AND currency <> $3
              AND (metadata IS NULL OR jsonb_typeof(metadata->'fx') IS DISTINCT FROM 'object' OR metadata->'fx'->>'quote' <> $3)
            ORDER BY id LIMIT 1000`,
          [t.id, last, t.rc],
        );
        const cache = new Map<string, FxQuote | null>();
        for (const r of rows) {
          const date = r.at.toISOString().slice(0, 10);
          const k = `${r.currency}|${date}`;
          if (!cache.has(k)) cache.set(k, await findRate(c, r.currency, t.rc, date));
          const q = cache.get(k);
          if (!q) {
            withoutRate++;
            continue;
          }
          await c.query(`UPDATE revenue_ledger SET metadata = jsonb_set(COALESCE(metadata, '{}'::jsonb), '{fx}', $2::jsonb) WHERE tenant_id = $3 AND id = $1`, [r.id, JSON.stringify(q), t.id]);
          stamped++;
        }
        if (rows.length) last = rows[rows.length - 1]!.id;
        return rows.length < 1000;
      });
      if (done) break;
    }
  }
  return { stamped, without_rate: withoutRate };
}
