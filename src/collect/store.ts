import type { Queryable } from '../db/pool.js';

/**
 * The SQL of publishable keys and collect counts, one function per statement. Every statement
 * runs in the caller's transaction with the tenant context set, and names the tenant itself
 * (`tenant_id = $1`) so it routes to one shard on Citus.
 */

export interface KeyRow {
  id: string;
  tenant_id: string;
  key_hint: string;
  name: string;
  allowed_origins: string[];
  require_consent: boolean;
  honor_gpc: boolean;
  created_at: Date;
  updated_at: Date;
  revoked_at: Date | null;
}

const COLUMNS = 'id, tenant_id, key_hint, name, allowed_origins, require_consent, honor_gpc, created_at, updated_at, revoked_at';

export async function insertKey(
  client: Queryable,
  tenantId: string,
  k: { hash: string; hint: string; name: string; origins: string[]; requireConsent: boolean; honorGpc: boolean },
): Promise<KeyRow> {
  const { rows } = await client.query<KeyRow>(
    `INSERT INTO publishable_keys (tenant_id, key_hash, key_hint, name, allowed_origins, require_consent, honor_gpc)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
    [tenantId, k.hash, k.hint, k.name, k.origins, k.requireConsent, k.honorGpc],
  );
  return rows[0]!;
}

/** The key with this hash, if it is not revoked. */
export async function findActiveKeyByHash(client: Queryable, tenantId: string, hash: string): Promise<(KeyRow & { key_hash: string }) | undefined> {
  const { rows } = await client.query<KeyRow & { key_hash: string }>({
    name: 'skeldir_publishable_key_lookup',
    text: `SELECT ${COLUMNS}, key_hash FROM publishable_keys WHERE tenant_id = $1 AND key_hash = $2 AND revoked_at IS NULL`,
    values: [tenantId, hash],
  });
  return rows[0];
}

export async function listKeys(client: Queryable, tenantId: string): Promise<KeyRow[]> {
  const { rows } = await client.query<KeyRow>(`SELECT ${COLUMNS} FROM publishable_keys WHERE tenant_id = $1 ORDER BY created_at, id`, [tenantId]);
  return rows;
}

export async function findKey(client: Queryable, tenantId: string, id: string): Promise<KeyRow | undefined> {
  const { rows } = await client.query<KeyRow>(`SELECT ${COLUMNS} FROM publishable_keys WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
  return rows[0];
}

/** Changes the settings given (null leaves one as it is) of a key that is not revoked. */
export async function updateKey(
  client: Queryable,
  tenantId: string,
  id: string,
  k: { name: string | null; origins: string[] | null; requireConsent: boolean | null; honorGpc: boolean | null },
): Promise<KeyRow | undefined> {
  const { rows } = await client.query<KeyRow>(
    `UPDATE publishable_keys
        SET name = coalesce($3, name), allowed_origins = coalesce($4, allowed_origins),
            require_consent = coalesce($5, require_consent), honor_gpc = coalesce($6, honor_gpc)
      WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL
      RETURNING ${COLUMNS}`,
    [tenantId, id, k.name, k.origins, k.requireConsent, k.honorGpc],
  );
  return rows[0];
}

/** Revokes a key (at `at`); a key revoked already keeps its first revocation time. */
export async function revokeKey(client: Queryable, tenantId: string, id: string, at: Date): Promise<KeyRow | undefined> {
  const { rows } = await client.query<KeyRow>(
    `UPDATE publishable_keys SET revoked_at = coalesce(revoked_at, $3) WHERE tenant_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
    [tenantId, id, at],
  );
  return rows[0];
}

export interface DailyCounts {
  touches: number;
  identifies: number;
  bots: number;
  anonymous: number;
}

/** Adds counts of several (key, day) pairs of one tenant in one statement. */
export async function addCounts(client: Queryable, tenantId: string, rows: readonly ({ keyId: string; day: string } & DailyCounts)[]): Promise<void> {
  if (rows.length === 0) return;
  await client.query(
    `INSERT INTO collect_daily_counts AS c (tenant_id, key_id, day, touches, identifies, bots, anonymous, updated_at)
     SELECT $1, u.key_id, u.day, u.touches, u.identifies, u.bots, u.anonymous, $8
       FROM unnest($2::uuid[], $3::date[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])
            AS u(key_id, day, touches, identifies, bots, anonymous)
     ORDER BY u.key_id, u.day
     ON CONFLICT (tenant_id, key_id, day) DO UPDATE
       SET touches = c.touches + excluded.touches, identifies = c.identifies + excluded.identifies,
           bots = c.bots + excluded.bots, anonymous = c.anonymous + excluded.anonymous, updated_at = excluded.updated_at`,
    [
      tenantId,
      rows.map((r) => r.keyId),
      rows.map((r) => r.day),
      rows.map((r) => r.touches),
      rows.map((r) => r.identifies),
      rows.map((r) => r.bots),
      rows.map((r) => r.anonymous),
      new Date(),
    ],
  );
}

/** A key's counts per day of [from, to], oldest first. */
export async function readCounts(client: Queryable, tenantId: string, keyId: string, from: string, to: string): Promise<({ day: string } & DailyCounts)[]> {
  const { rows } = await client.query<{ day: string; touches: string; identifies: string; bots: string; anonymous: string }>(
    `SELECT to_char(day, 'YYYY-MM-DD') AS day, touches, identifies, bots, anonymous
       FROM collect_daily_counts WHERE tenant_id = $1 AND key_id = $2 AND day BETWEEN $3 AND $4 ORDER BY day`,
    [tenantId, keyId, from, to],
  );
  return rows.map((r) => ({ day: r.day, touches: Number(r.touches), identifies: Number(r.identifies), bots: Number(r.bots), anonymous: Number(r.anonymous) }));
}
