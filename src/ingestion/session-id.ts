import { v5 as uuidv5 } from 'uuid';

/**
 * Session ids that are not UUIDs (the tracker's ids, a GA client id such as
 * `GA1.2.1234567890.1700000000`, a platform's visitor id) are mapped onto the UUID `session_id`
 * column by a name-based UUID (RFC 9562 version 5, SHA-1):
 *
 *   session_id = UUIDv5(namespace SESSION_NAMESPACE, name = the opaque id as UTF-8)
 *   SESSION_NAMESPACE = UUIDv5(namespace URL 6ba7b811-9dad-11d1-80b4-00c04fd430c8, name "skeldir:session_id")
 *                     = bcc465e0-01b6-5c13-a824-b3dc8a0830d4
 *
 * so anyone can compute the stored id of an opaque one in any language, and the same opaque id
 * always lands in the same session, whoever sends it (the tracker, or a server passing it on).
 * The id is taken exactly as given (case and all). A UUID is stored as it is (lower-cased).
 */
export const SESSION_NAMESPACE = 'bcc465e0-01b6-5c13-a824-b3dc8a0830d4';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Opaque ids: 1–255 visible ASCII characters (no spaces), the shape of every visitor id in use. */
export const OPAQUE_ID_PATTERN = '^[\\x21-\\x7E]{1,255}$';

/** The `session_id` an id is stored under: a UUID as it is, anything else by its name-based UUID. */
export function sessionUuid(id: string): string {
  return UUID.test(id) ? id.toLowerCase() : uuidv5(id, SESSION_NAMESPACE);
}
