import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The cookie holding a web-app session's token. */
export const SESSION_COOKIE = 'skeldir_session';

/**
 * Session cookies and invitation links carry `<tenant_id>.<secret>`: 32 random bytes
 * (base64url) after the tenant's id. The tenant part routes the lookup to that tenant's rows
 * (row-level security and, on Citus, its shard); only the SHA-256 of the secret is stored, so a
 * database leak gives no working token. A forged tenant part finds nothing: the secret decides.
 */
const TOKEN = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.([A-Za-z0-9_-]{43})$/;

export interface IssuedToken {
  token: string;
  hash: string;
}

export function issueToken(tenantId: string): IssuedToken {
  const secret = randomBytes(32).toString('base64url');
  return { token: `${tenantId.toLowerCase()}.${secret}`, hash: sha256(secret) };
}

/** The tenant and secret hash of a well-formed token; null for anything else (checked before any query). */
export function parseToken(token: string | undefined): { tenantId: string; hash: string } | null {
  const match = token === undefined ? null : TOKEN.exec(token);
  return match ? { tenantId: match[1]!, hash: sha256(match[2]!) } : null;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * The CSRF token of a session: an HMAC of the session token, so nothing more is stored and it
 * changes with every sign-in. The page reads it from GET /api/v1/auth/session (a cross-site page
 * cannot read that answer) and sends it as `X-CSRF-Token` on every state-changing request.
 */
export function csrfTokenFor(sessionToken: string): string {
  return createHmac('sha256', sessionToken).update('skeldir-csrf-v1').digest('base64url');
}

export function csrfMatches(sessionToken: string, presented: string | undefined): boolean {
  if (typeof presented !== 'string') return false;
  const expected = Buffer.from(csrfTokenFor(sessionToken));
  const given = Buffer.from(presented);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
