import type { Queryable } from '../db/pool.js';

/**
 * The SQL of the identity graph, one function per statement, in the caller's transaction with
 * the tenant context set; each statement names its tenant (`tenant_id = $1`).
 */

export type IdentitySource = 'collect' | 'api' | 'cli';

export interface LinkRow {
  anonymous_id: string;
  user_id: string;
  source: IdentitySource;
  publishable_key_id: string | null;
  linked_at: Date;
}

export interface ChangeRow {
  id: string;
  action: 'link' | 'unlink';
  anonymous_id: string;
  source: IdentitySource;
  publishable_key_id: string | null;
  created_at: Date;
  recomputed_at: Date | null;
  conversions_recomputed: number | null;
}

/**
 * Adds the edge (anonymous id, user id) and its audit row in one statement, unless the edge
 * exists (then nothing is written) or the user already has `maxPerUser` anonymous ids (merge
 * protection: a public key must not be able to tie thousands of browsers to one person).
 * Returns what happened, and the audit row's id when linked.
 */
export async function insertLink(
  client: Queryable,
  tenantId: string,
  link: { anonymousId: string; userId: string; source: IdentitySource; keyId: string | null; at: string },
  maxPerUser: number,
): Promise<{ outcome: 'linked' | 'known' | 'limit'; changeId: string | null }> {
  const { rows } = await client.query<{ outcome: 'linked' | 'known' | 'limit'; change_id: string | null }>({
    name: 'skeldir_identity_link',
    text: `WITH existing AS (
             SELECT 1 FROM identity_links WHERE tenant_id = $1 AND anonymous_id = $2 AND user_id = $3
           ), room AS (
             SELECT count(*) < $7 AS ok FROM (SELECT 1 FROM identity_links WHERE tenant_id = $1 AND user_id = $3 LIMIT $7) AS l
           ), ins AS (
             INSERT INTO identity_links (tenant_id, anonymous_id, user_id, source, publishable_key_id, linked_at)
             SELECT $1, $2, $3, $4, $5, $6::timestamptz WHERE NOT EXISTS (SELECT 1 FROM existing) AND (SELECT ok FROM room)
             ON CONFLICT (tenant_id, anonymous_id, user_id) DO NOTHING
             RETURNING 1
           ), audit AS (
             INSERT INTO identity_changes (tenant_id, action, anonymous_id, user_id, source, publishable_key_id, created_at)
             SELECT $1, 'link', $2, $3, $4, $5, $8 FROM ins
             RETURNING id
           )
           SELECT CASE WHEN EXISTS (SELECT 1 FROM ins) THEN 'linked'
                       WHEN EXISTS (SELECT 1 FROM existing) THEN 'known'
                       WHEN NOT (SELECT ok FROM room) THEN 'limit'
                       ELSE 'known' END AS outcome,
                  (SELECT id FROM audit) AS change_id`,
    values: [tenantId, link.anonymousId, link.userId, link.source, link.keyId, link.at, maxPerUser, new Date()],
  });
  return { outcome: rows[0]!.outcome, changeId: rows[0]!.change_id };
}

/**
 * Removes the user's edges (all of them, or the one to `anonymousId`) and records an unlink for
 * each. Returns the anonymous ids unlinked and their audit rows.
 */
export async function deleteLinks(
  client: Queryable,
  tenantId: string,
  userId: string,
  anonymousId: string | null,
  source: IdentitySource,
): Promise<{ anonymousId: string; changeId: string }[]> {
  const { rows } = await client.query<{ anonymous_id: string; id: string }>(
    `WITH del AS (
       DELETE FROM identity_links WHERE tenant_id = $1 AND user_id = $2 AND ($3::varchar IS NULL OR anonymous_id = $3)
       RETURNING anonymous_id, user_id
     )
     INSERT INTO identity_changes (tenant_id, action, anonymous_id, user_id, source, created_at)
     SELECT $1, 'unlink', anonymous_id, user_id, $4, $5 FROM del
     RETURNING anonymous_id, id`,
    [tenantId, userId, anonymousId, source, new Date()],
  );
  return rows.map((r) => ({ anonymousId: r.anonymous_id, changeId: r.id })).sort((a, b) => (a.anonymousId < b.anonymousId ? -1 : a.anonymousId > b.anonymousId ? 1 : 0));
}

/** The anonymous ids linked to a user, oldest link first. */
export async function linksOfUser(client: Queryable, tenantId: string, userId: string): Promise<LinkRow[]> {
  const { rows } = await client.query<LinkRow>(
    `SELECT anonymous_id, user_id, source, publishable_key_id, linked_at FROM identity_links
      WHERE tenant_id = $1 AND user_id = $2 ORDER BY linked_at, anonymous_id`,
    [tenantId, userId],
  );
  return rows;
}

/** The audit trail of a user's links and unlinks, oldest first. */
export async function changesOfUser(client: Queryable, tenantId: string, userId: string): Promise<ChangeRow[]> {
  const { rows } = await client.query<ChangeRow>(
    `SELECT id, action, anonymous_id, source, publishable_key_id, created_at, recomputed_at, conversions_recomputed FROM identity_changes
      WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at, id`,
    [tenantId, userId],
  );
  return rows;
}

/**
 * Locks the conversions of `userId` whose lookback window holds a touch of `anonymousId` (the
 * conversions whose path an edge between them adds to or takes from), in id order, whatever
 * their processing status: the worker claims events FOR UPDATE SKIP LOCKED, so a conversion
 * locked here is processed after this transaction (and sees its change), and one the worker
 * holds is waited for, then re-read. Returns them with the status they have then.
 */
export async function lockAffectedConversions(
  client: Queryable,
  tenantId: string,
  userId: string,
  anonymousId: string,
  lookbackDays: number,
): Promise<{ id: string; processing_status: string }[]> {
  const { rows } = await client.query<{ id: string; processing_status: string }>(
    `SELECT c.id, c.processing_status FROM attribution_events c
      WHERE c.tenant_id = $1 AND c.user_id = $2 AND c.event_type = 'conversion'
        AND EXISTS (SELECT 1 FROM attribution_events t
                     WHERE t.tenant_id = $1 AND t.anonymous_id = $3 AND t.event_type = 'touchpoint'
                       AND t.event_timestamp <= c.event_timestamp
                       AND t.event_timestamp >= c.event_timestamp - make_interval(hours => 24 * $4))
      ORDER BY c.id
      FOR NO KEY UPDATE OF c`,
    [tenantId, userId, anonymousId, lookbackDays],
  );
  return rows;
}

/** Records that a change's conversions were re-attributed (once: only a change not yet recomputed). */
export async function markRecomputed(client: Queryable, tenantId: string, changeIds: readonly string[], conversions: number): Promise<number> {
  const { rowCount } = await client.query(
    `UPDATE identity_changes SET recomputed_at = $4, conversions_recomputed = $3
      WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND recomputed_at IS NULL`,
    [tenantId, changeIds, conversions, new Date()],
  );
  return rowCount ?? 0;
}
