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

/**
 * Every UTC day of the period, oldest first, up to today (later days have had no chance of data yet), and any later
 * day a report lists (`listed`: an event may carry a future time).
 */
export function periodDays(p: Period, listed: readonly { date: string }[] = [], today = new Date()): string[] {
  const last = Math.min(Date.parse(`${p.to}T00:00:00Z`), Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate()));
  const out: string[] = [];
  for (let t = Date.parse(`${p.from}T00:00:00Z`); t <= last; t += DAY) out.push(new Date(t).toISOString().slice(0, 10));
  return [...new Set([...out, ...listed.map((d) => d.date)])].sort();
}

/**
 * One value per day of `dates` for a chart, from a report's `days` (which lists only days with conversions): a day
 * without conversions is 0 (no line drawn across it as if it had none missing), and a day between the first and last
 * day retention pruned that the report does not list is null (a gap: its events are gone, not zero).
 */
export function dailyValues<D extends { date: string }>(dates: string[], days: D[], value: (d: D) => number, pruned: { first_day: string; last_day: string } | null | undefined): (number | null)[] {
  const byDate = new Map(days.map((d) => [d.date, d]));
  return dates.map((date) => {
    const d = byDate.get(date);
    if (d) return value(d);
    return pruned && date >= pruned.first_day && date <= pruned.last_day ? null : 0;
  });
}
