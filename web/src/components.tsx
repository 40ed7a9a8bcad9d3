import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Problem } from './api';

export type Load<T> = { state: 'loading' } | { state: 'error'; problem: Problem } | { state: 'ok'; data: T };

/** Runs `fn` when `deps` change; the latest answer wins (an older request finishing late is ignored). */
export function useLoad<T>(fn: () => Promise<T>, deps: unknown[]): [Load<T>, () => void] {
  const [load, setLoad] = useState<Load<T>>({ state: 'loading' });
  const [tick, setTick] = useState(0);
  const seq = useRef(0);
  useEffect(() => {
    const mine = ++seq.current;
    setLoad({ state: 'loading' });
    fn().then(
      (data) => mine === seq.current && setLoad({ state: 'ok', data }),
      (problem: Problem) => mine === seq.current && setLoad({ state: 'error', problem }),
    );
  }, [...deps, tick]);
  return [load, () => setTick((t) => t + 1)];
}

export function ProblemBox({ problem, retry }: { problem: Problem; retry?: () => void }) {
  return (
    <div class="problem" role="alert">
      <strong>{problem.title}</strong>
      <p>{problem.detail}</p>
      {retry && (
        <button type="button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="loading" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function Empty({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty">
      <strong>{title}</strong>
      {children && <div>{children}</div>}
    </div>
  );
}

/** Loading, error (the problem's title and detail) or the content. */
export function Async<T>({ load, what, retry, children }: { load: Load<T>; what: string; retry?: () => void; children: (data: T) => ComponentChildren }) {
  if (load.state === 'loading') return <Loading what={what} />;
  if (load.state === 'error') return <ProblemBox problem={load.problem} retry={retry} />;
  return <>{children(load.data)}</>;
}

export interface Column<R> {
  key: string;
  label: string;
  numeric?: boolean;
  /** What the cell shows. */
  render?: (row: R) => ComponentChildren;
  /** What the CSV file holds (plain numbers, no currency symbols). */
  csv: (row: R) => string | number | null;
}

function csvCell(value: string | number | null): string {
  if (value === null) return '';
  const text = String(value);
  // Quote, and defuse cells a spreadsheet would run as a formula.
  const safe = /^[=+\-@\t\r]/.test(text) && !/^-?\d/.test(text) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function toCsv<R>(columns: Column<R>[], rows: R[]): string {
  return [columns.map((c) => csvCell(c.label)).join(','), ...rows.map((r) => columns.map((c) => csvCell(c.csv(r))).join(','))].join('\r\n') + '\r\n';
}

function download(name: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** A table with a caption (what it is, for screen readers too) and a CSV download of exactly its rows. */
export function DataTable<R>({
  caption,
  columns,
  rows,
  file,
  onRow,
  rowLabel,
}: {
  caption: string;
  columns: Column<R>[];
  rows: R[];
  file: string;
  onRow?: (row: R) => void;
  rowLabel?: (row: R) => string;
}) {
  return (
    <div class="table-block">
      <div class="table-head">
        <h3>{caption}</h3>
        <button type="button" class="secondary" onClick={() => download(`${file}.csv`, toCsv(columns, rows))}>
          Download CSV
        </button>
      </div>
      <div class="table-scroll" tabIndex={0} role="region" aria-label={caption}>
        <table>
          <thead>
            <tr>
              {columns.map((c) => (
                <th scope="col" class={c.numeric ? 'num' : undefined} key={c.key}>
                  {c.label}
                </th>
              ))}
              {onRow && (
                <th scope="col">
                  <span class="sr-only">Open</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={i}>
                {columns.map((c) => (
                  <td class={c.numeric ? 'num' : undefined} key={c.key} data-label={c.label}>
                    {c.render ? c.render(r) : String(c.csv(r) ?? '—')}
                  </td>
                ))}
                {onRow && (
                  <td>
                    <button type="button" class="link" onClick={() => onRow(r)}>
                      {rowLabel ? rowLabel(r) : 'Open'}
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

export function Metric({ label, value, note, testId }: { label: string; value: string; note?: string; testId?: string }) {
  return (
    <div class="metric" data-testid={testId}>
      <div class="metric-label">{label}</div>
      <div class="metric-value">{value}</div>
      {note && <div class="metric-note">{note}</div>}
    </div>
  );
}

/**
 * What the tenant's retention rule did to the period (a report's `from_aggregates` or `pruned`): shown as it is
 * worded by the API, above the figures and in empty states, so nobody reads an old period's numbers as complete.
 */
export function RetentionNote({ source }: { source: { note: string } | null | undefined }) {
  return source ? (
    <p class="note retention-note" role="note" data-testid="retention-note">
      {source.note}
    </p>
  ) : null;
}
