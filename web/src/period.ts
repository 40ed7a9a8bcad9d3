import { useLocation } from 'preact-iso';

/** The period every report shows: ?from=YYYY-MM-DD&to=YYYY-MM-DD in the URL (to is inclusive), default the last 30 days. */
export interface Period {
  from: string;
  to: string;
}

const DAY = 86_400_000;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

export function defaultPeriod(now = new Date()): Period {
  const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  return { from: new Date(to.getTime() - 29 * DAY).toISOString().slice(0, 10), to: to.toISOString().slice(0, 10) };
}

export function usePeriod(): [Period, (p: Period) => void] {
  const { query, path, route } = useLocation();
  const fallback = defaultPeriod();
  const period = { from: DATE.test(query.from ?? '') ? query.from! : fallback.from, to: DATE.test(query.to ?? '') ? query.to! : fallback.to };
  const set = (p: Period) => {
    const q = new URLSearchParams({ ...query, from: p.from, to: p.to });
    route(`${path}?${q.toString()}`);
  };
  return [period, set];
}

/** The API's half-open instants [from 00:00, day after `to` 00:00) UTC. */
export function instants(p: Period): { from: string; to: string } {
  return { from: `${p.from}T00:00:00Z`, to: new Date(Date.parse(`${p.to}T00:00:00Z`) + DAY).toISOString() };
}

/** The same period as whole days for the spend routes: [from, the day after `to`). */
export function days(p: Period): { from: string; to: string } {
  return { from: p.from, to: new Date(Date.parse(`${p.to}T00:00:00Z`) + DAY).toISOString().slice(0, 10) };
}
