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

/**
 * Adds the edge (anonymous id, user id) and its audit row in one statement, unless the edge
 * exists (then nothing is written) or the user already has `maxPerUser` anonymous ids (merge
 * protection: a public key must not be able to tie thousands of browsers to one person).
 * Returns what happened.
 */
export async function insertLink(
  client: Queryable,
  tenantId: string,
  link: { anonymousId: string; userId: string; source: IdentitySource; keyId: string | null; at: string },
  maxPerUser: number,
): Promise<'linked' | 'known' | 'limit'> {
  const { rows } = await client.query<{ outcome: 'linked' | 'known' | 'limit' }>({
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
           )
           SELECT CASE WHEN EXISTS (SELECT 1 FROM ins) THEN 'linked'
                       WHEN EXISTS (SELECT 1 FROM existing) THEN 'known'
                       WHEN NOT (SELECT ok FROM room) THEN 'limit'
                       ELSE 'known' END AS outcome`,
    values: [tenantId, link.anonymousId, link.userId, link.source, link.keyId, link.at, maxPerUser, new Date()],
  });
  return rows[0]!.outcome;
}

/** Removes an edge and records the unlink; false when there was no such edge. */
export async function deleteLink(client: Queryable, tenantId: string, anonymousId: string, userId: string, source: IdentitySource): Promise<boolean> {
  const { rows } = await client.query<{ n: string }>(
    `WITH del AS (
       DELETE FROM identity_links WHERE tenant_id = $1 AND anonymous_id = $2 AND user_id = $3 RETURNING anonymous_id, user_id
     ), audit AS (
       INSERT INTO identity_changes (tenant_id, action, anonymous_id, user_id, source, created_at)
       SELECT $1, 'unlink', anonymous_id, user_id, $4, $5 FROM del
     )
     SELECT count(*) AS n FROM del`,
    [tenantId, anonymousId, userId, source, new Date()],
  );
  return Number(rows[0]!.n) > 0;
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
