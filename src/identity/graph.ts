import type pg from 'pg';
import { attributeConversion } from '../attribution/entry.js';
import { readSettings } from '../attribution/settings.js';
import type { Queryable } from '../db/pool.js';
import { withTenant } from '../db/tenant-context.js';
import { formatInstant, formatInstantOrNull } from '../db/timestamps.js';
import { parseTimestamp } from '../ingestion/prepare.js';
import { IdentityError } from './errors.js';
import { changesOfUser, deleteLinks, insertLink, linksOfUser, lockAffectedConversions, markRecomputed, type ChangeRow, type IdentitySource, type LinkRow } from './store.js';

/**
 * The identity graph (docs/collect.md, "Identity"): edges between a browser's anonymous id and a
 * person's user id. A person's journey is the touches of their user id and of every anonymous id
 * linked to it, across devices; an anonymous id linked to two people (a shared computer) counts
 * in both journeys, and links never chain (user A and user B sharing a browser do not become one
 * person, so one shared device cannot merge a household, and a forged identify adds noise to one
 * person's journey at most).
 *
 * Every change (link or unlink) re-attributes the conversions it affects in the transaction that
 * makes it: the change, its audit row (identity_changes), the rewritten allocations and the
 * audit row's recomputed_at commit together or not at all, so a change is recomputed exactly once
 * and allocations are replaced, never added to.
 */

/** Merge protection: at most this many anonymous ids per person; further identifies are dropped. */
export const MAX_ANONYMOUS_IDS_PER_USER = 100;

const ANONYMOUS_ID = /^[\x21-\x7E]{1,255}$/;
const USER_ID = /^[^\s\p{Cc}\u2028\u2029](?:[^\p{Cc}\u2028\u2029]*[^\s\p{Cc}\u2028\u2029])?$/u;

/** A user id as events carry it: 1 to 255 characters, no control characters, no surrounding white space. */
export function checkUserId(text: string, field = 'user_id'): string {
  if (text.length === 0 || text.length > 255 || !USER_ID.test(text)) {
    throw new IdentityError('identity_user_id_invalid', `${field} must be 1 to 255 characters without control characters or surrounding white space`, field);
  }
  return text;
}

/** An anonymous id as the tracker makes them: 1 to 255 printable ASCII characters, no spaces. */
export function checkAnonymousId(text: string, field = 'anonymous_id'): string {
  if (!ANONYMOUS_ID.test(text)) throw new IdentityError('identity_anonymous_id_invalid', `${field} must be 1 to 255 printable ASCII characters without spaces`, field);
  return text;
}

export interface LinkOutcome {
  linked: number;
  known: number;
  /** Dropped because the person has MAX_ANONYMOUS_IDS_PER_USER anonymous ids already. */
  overLimit: number;
  /** Conversions re-attributed because of the new links. */
  conversionsRecomputed: number;
}

/**
 * Adds identify links in the caller's transaction (tenant context set). A new edge gets its
 * `identity_changes` row and re-attributes the conversions it affects (see reattribute); an
 * edge that exists already changes nothing.
 */
export async function linkIdentities(
  client: pg.ClientBase,
  tenantId: string,
  links: readonly { anonymousId: string; userId: string; at: string }[],
  origin: { source: IdentitySource; keyId: string | null },
): Promise<LinkOutcome> {
  const out: LinkOutcome = { linked: 0, known: 0, overLimit: 0, conversionsRecomputed: 0 };
  for (const l of links) {
    const r = await insertLink(client, tenantId, { ...l, source: origin.source, keyId: origin.keyId }, MAX_ANONYMOUS_IDS_PER_USER);
    if (r.outcome === 'linked') {
      out.linked++;
      out.conversionsRecomputed += await reattribute(client, tenantId, l.userId, l.anonymousId, r.changeId!);
    } else if (r.outcome === 'known') out.known++;
    else out.overLimit++;
  }
  return out;
}

/**
 * Removes a person's links (all, or the one to `anonymousId`) in the caller's transaction, each
 * with its audit row, and re-attributes the conversions they affected.
 */
export async function unlinkIdentities(
  client: pg.ClientBase,
  tenantId: string,
  userId: string,
  anonymousId: string | null,
  source: IdentitySource,
): Promise<{ unlinked: string[]; conversionsRecomputed: number }> {
  const removed = await deleteLinks(client, tenantId, userId, anonymousId, source);
  let conversions = 0;
  for (const r of removed) conversions += await reattribute(client, tenantId, userId, r.anonymousId, r.changeId);
  return { unlinked: removed.map((r) => r.anonymousId), conversionsRecomputed: conversions };
}

/**
 * Re-attributes the conversions of `userId` that an edge to `anonymousId` affects — those with a
 * touch of the anonymous id in their lookback window — with the graph as it is now in this
 * transaction, and marks the change recomputed. Only conversions the worker has processed are
 * recomputed: the others are attributed by the worker, after this transaction (they are locked
 * until then), so they see the change too. Population models pick the change up at their next
 * run. Returns how many conversions were recomputed.
 */
async function reattribute(client: pg.ClientBase, tenantId: string, userId: string, anonymousId: string, changeId: string): Promise<number> {
  const settings = await readSettings(client, tenantId);
  const affected = await lockAffectedConversions(client, tenantId, userId, anonymousId, settings.lookbackDays);
  const processed = affected.filter((c) => c.processing_status === 'processed');
  for (const c of processed) await attributeConversion(client, tenantId, c.id);
  await markRecomputed(client, tenantId, [changeId], processed.length);
  return processed.length;
}

type Printed<T> = { [K in keyof T]: T[K] extends Date ? string : T[K] extends Date | null ? string | null : T[K] };

export interface PersonIdentity {
  user_id: string;
  links: Printed<Omit<LinkRow, 'user_id'>>[];
  changes: Printed<ChangeRow>[];
}

/** A person's links and their audit trail (empty lists for a user id the graph does not know). */
export async function readIdentity(client: Queryable, tenantId: string, userId: string): Promise<PersonIdentity> {
  const links = (await linksOfUser(client, tenantId, userId)).map((l) => ({
    anonymous_id: l.anonymous_id,
    source: l.source,
    publishable_key_id: l.publishable_key_id,
    linked_at: formatInstant(l.linked_at),
  }));
  const changes = (await changesOfUser(client, tenantId, userId)).map((c) => ({
    ...c,
    created_at: formatInstant(c.created_at),
    recomputed_at: formatInstantOrNull(c.recomputed_at),
  }));
  return { user_id: userId, links, changes };
}

/** The server-side identify (POST /api/v1/identify, `skeldir identity link`): one link, in its own transaction. */
export async function identify(
  pool: pg.Pool,
  tenantId: string,
  input: { anonymousId: string; userId: string; at?: string },
  source: IdentitySource,
): Promise<{ anonymous_id: string; user_id: string; outcome: 'linked' | 'known'; conversions_recomputed: number }> {
  const anonymousId = checkAnonymousId(input.anonymousId);
  const userId = checkUserId(input.userId);
  let at = new Date().toISOString();
  if (input.at !== undefined) {
    const ms = parseTimestamp(input.at);
    if (ms === null) throw new IdentityError('identity_timestamp_invalid', `timestamp ${JSON.stringify(input.at)} is not a date and time`, 'timestamp');
    at = new Date(ms).toISOString();
  }
  const r = await withTenant(pool, tenantId, (c) => linkIdentities(c, tenantId, [{ anonymousId, userId, at }], { source, keyId: null }));
  if (r.overLimit > 0) {
    throw new IdentityError('identity_link_limit', `user ${JSON.stringify(userId)} has ${MAX_ANONYMOUS_IDS_PER_USER} anonymous ids already (the most one person may have); unlink some first`, 'user_id');
  }
  return { anonymous_id: anonymousId, user_id: userId, outcome: r.linked > 0 ? 'linked' : 'known', conversions_recomputed: r.conversionsRecomputed };
}

/** Unlinks (DELETE /api/v1/people/{user_id}/links[/{anonymous_id}], `skeldir identity unlink`), in its own transaction. */
export async function unlink(
  pool: pg.Pool,
  tenantId: string,
  input: { userId: string; anonymousId: string | null },
  source: IdentitySource,
): Promise<{ user_id: string; unlinked: string[]; conversions_recomputed: number }> {
  const userId = checkUserId(input.userId);
  const anonymousId = input.anonymousId === null ? null : checkAnonymousId(input.anonymousId);
  const r = await withTenant(pool, tenantId, (c) => unlinkIdentities(c, tenantId, userId, anonymousId, source));
  if (anonymousId !== null && r.unlinked.length === 0) {
    throw new IdentityError('identity_link_not_found', `user ${JSON.stringify(userId)} has no link to anonymous id ${JSON.stringify(anonymousId)}`, 'anonymous_id');
  }
  return { user_id: userId, unlinked: r.unlinked, conversions_recomputed: r.conversionsRecomputed };
}

/** A person's links and audit trail, in its own transaction. */
export async function showIdentity(pool: pg.Pool, tenantId: string, userId: string): Promise<PersonIdentity> {
  checkUserId(userId);
  return withTenant(pool, tenantId, (c) => readIdentity(c, tenantId, userId));
}
