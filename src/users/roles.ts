/**
 * Roles, weakest first. owner: everything, including users and API keys; admin: settings,
 * webhooks, dead events, spend import; analyst and viewer: read everything, change nothing
 * (analyst is the role for people who work the numbers; it differs from viewer only in name
 * today, so a later read-heavy privilege such as exports can be given to analysts alone).
 */
export const ROLES = ['viewer', 'analyst', 'admin', 'owner'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** True when `role` may do what `needed` may. */
export function atLeast(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}
