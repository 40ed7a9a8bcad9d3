import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export type Role = 'viewer' | 'analyst' | 'admin' | 'owner';
const RANK: Record<Role, number> = { viewer: 0, analyst: 1, admin: 2, owner: 3 };

export interface Session {
  tenant: { id: string; name: string };
  user: { id: string; email: string; role: Role } | null;
  role: Role;
  csrf_token: string | null;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  return useContext(SessionContext)!;
}

/** Whether the signed-in user's role allows `needed` (controls the role may not use are not shown). */
export function useCan(needed: Role): boolean {
  return RANK[useSession().role] >= RANK[needed];
}
