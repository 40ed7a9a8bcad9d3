import type { Queryable } from '../db/pool.js';
import { insertLink, type IdentitySource } from './store.js';

/**
 * The identity graph (docs/identity.md): edges between a browser's anonymous id and a person's
 * user id. A person's journey is the touches of their user id and of every anonymous id linked
 * to it, across devices; an anonymous id linked to two people (a shared computer) counts in both
 * journeys, and links never chain (user A and user B sharing a browser do not become one person,
 * so one shared device cannot merge a household, and a forged identify adds noise to one
 * person's journey at most).
 */

/** Merge protection: at most this many anonymous ids per person; further identifies are dropped. */
export const MAX_ANONYMOUS_IDS_PER_USER = 100;

export interface LinkOutcome {
  linked: number;
  known: number;
  /** Dropped because the person has MAX_ANONYMOUS_IDS_PER_USER anonymous ids already. */
  overLimit: number;
}

/**
 * Adds identify links in the caller's transaction (tenant context set). A new edge also gets its
 * `identity_changes` row, the audit entry that the re-attribution pass picks up; an edge that
 * exists already changes nothing.
 */
export async function linkIdentities(
  client: Queryable,
  tenantId: string,
  links: readonly { anonymousId: string; userId: string; at: string }[],
  origin: { source: IdentitySource; keyId: string | null },
): Promise<LinkOutcome> {
  const out: LinkOutcome = { linked: 0, known: 0, overLimit: 0 };
  for (const l of links) {
    const outcome = await insertLink(client, tenantId, { ...l, source: origin.source, keyId: origin.keyId }, MAX_ANONYMOUS_IDS_PER_USER);
    if (outcome === 'linked') out.linked++;
    else if (outcome === 'known') out.known++;
    else out.overLimit++;
  }
  return out;
}
