import { useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { api, asProblem, call, type Problem } from '../api';
import { Async, DataTable, Empty, Metric, ProblemBox, useLoad } from '../components';
import { count, when } from '../format';
import { useCan } from '../session';

const STATUSES = ['pending', 'in_progress', 'resolved', 'ignored'] as const;
type Action = 'start' | 'retry' | 'resolve' | 'ignore' | 'reopen';
/** The moves each status allows (src/dlq/transitions.ts); only these buttons are offered. */
const MOVES: Record<string, Action[]> = { pending: ['start', 'retry'], in_progress: ['retry', 'resolve', 'ignore', 'reopen'], resolved: [], ignored: [] };
const LABEL: Record<Action, string> = { start: 'Start', retry: 'Retry', resolve: 'Resolve', ignore: 'Ignore', reopen: 'Reopen' };

function age(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function Health() {
  const [load, retry] = useLoad(() => call(api.GET('/api/v1/worker/health')), []);
  return (
    <Async load={load} what="worker health" retry={retry}>
      {(h) => (
        <div class="metrics" aria-label="Worker health">
          <Metric testId="queue" label="Queue" value={count(h.pending)} note={`${count(h.retrying)} waiting for a retry`} />
          <Metric testId="oldest" label="Oldest pending" value={h.oldest_pending_at ? age(Math.max(0, (Date.now() - Date.parse(h.oldest_pending_at)) / 1000)) : 'none'} />
          <Metric testId="dead-rate" label="Dead-lettered" value={`${count(h.dead_last_hour)} / h`} note={`${count(h.dead_last_day)} in 24 h`} />
          <Metric testId="workers" label="Workers alive" value={h.workers_alive === null ? '—' : count(h.workers_alive)} note={h.workers_alive === 0 ? 'start one: skeldir worker' : undefined} />
        </div>
      )}
    </Async>
  );
}

export function DeadEvents() {
  const { query, path, route } = useLocation();
  const status = query.status && STATUSES.includes(query.status as 'pending') ? query.status : 'pending,in_progress';
  const open = query.open ?? '';
  const go = (q: Record<string, string>) => route(`${path}?${new URLSearchParams({ ...query, ...q }).toString()}`);
  const [load, retry] = useLoad(() => call(api.GET('/api/v1/dead-events', { params: { query: { status, limit: 100 } } })), [status]);
  return (
    <section>
      <div class="page-head">
        <div>
          <h1>Dead events</h1>
          <p class="intro">Events the worker gave up on after its retries: see why, fix the cause, then retry, resolve or ignore them.</p>
        </div>
        <div class="controls">
          <label class="inline">
            Status
            <select value={status} onChange={(e) => go({ status: e.currentTarget.value, open: '' })}>
              <option value="pending,in_progress">Open (pending or in progress)</option>
              {STATUSES.map((s) => (
                <option value={s} key={s}>
                  {s.replace('_', ' ')}
                </option>
              ))}
            </select>
          </label>
        </div>
      </div>
      <Health />
      <Async load={load} what="dead events" retry={retry}>
        {(r) =>
          r.items.length === 0 ? (
            <Empty title="No dead events with this status">Events that fail every retry land here.</Empty>
          ) : (
            <DataTable
              caption="Dead events, newest first"
              file="dead-events"
              rows={r.items}
              onRow={(d) => go({ open: d.id })}
              rowLabel={() => 'Open'}
              columns={[
                { key: 'created', label: 'Died', csv: (d) => d.created_at, render: (d) => when(d.created_at) },
                { key: 'type', label: 'Event', csv: (d) => d.event_type },
                { key: 'error', label: 'Error', csv: (d) => `${d.error_type}: ${d.error_code}`, render: (d) => <span title={d.error_message}>{`${d.error_type}: ${d.error_code}`}</span> },
                { key: 'message', label: 'Message', csv: (d) => d.error_message },
                { key: 'retries', label: 'Retries', numeric: true, csv: (d) => d.retry_count },
                { key: 'status', label: 'Status', csv: (d) => d.remediation_status, render: (d) => <span class={`badge badge-${d.remediation_status}`}>{d.remediation_status.replace('_', ' ')}</span> },
              ]}
            />
          )
        }
      </Async>
      {open && (
        <Detail
          id={open}
          onClose={() => go({ open: '' })}
          onChanged={() => {
            retry();
          }}
        />
      )}
    </section>
  );
}

function Detail({ id, onClose, onChanged }: { id: string; onClose: () => void; onChanged: () => void }) {
  const canAct = useCan('admin');
  const [load, reload] = useLoad(() => call(api.GET('/api/v1/dead-events/{id}', { params: { path: { id } } })), [id]);
  const [notes, setNotes] = useState('');
  const [problem, setProblem] = useState<Problem | null>(null);
  const [done, setDone] = useState('');
  const act = async (action: Action) => {
    setProblem(null);
    const { data, error, response } = await api.POST(`/api/v1/dead-events/{id}/${action}` as '/api/v1/dead-events/{id}/retry', {
      params: { path: { id } },
      body: notes.trim() ? { notes: notes.trim() } : {},
    });
    if (!data) return setProblem(asProblem(error, response));
    setNotes('');
    setDone(`${LABEL[action]}: now ${data.remediation_status.replace('_', ' ')}`);
    reload();
    onChanged();
  };
  return (
    <section class="detail" aria-labelledby="detail-title">
      <div class="detail-head">
        <h2 id="detail-title">Dead event</h2>
        <button type="button" class="secondary" onClick={onClose}>
          Close
        </button>
      </div>
      <Async load={load} what="the dead event" retry={reload}>
        {(d) => (
          <>
            <dl class="facts">
              <dt>Status</dt>
              <dd data-testid="detail-status">{d.remediation_status.replace('_', ' ')}</dd>
              <dt>Error</dt>
              <dd>
                {d.error_type}: {d.error_code} — {d.error_message}
              </dd>
              <dt>Event</dt>
              <dd>
                {d.event_type} {d.event_id ? <code>{d.event_id}</code> : null} {d.event_status ? `(event is ${d.event_status})` : ''}
              </dd>
              <dt>Died</dt>
              <dd>{when(d.created_at)}</dd>
            </dl>
            {d.error_traceback && (
              <details>
                <summary>Trace</summary>
                <pre>{d.error_traceback}</pre>
              </details>
            )}
            <details open>
              <summary>Payload</summary>
              <pre>{JSON.stringify(d.raw_payload, null, 2)}</pre>
            </details>
            <h3>Notes</h3>
            <pre class="notes">{d.remediation_notes ?? 'No notes yet.'}</pre>
            {canAct && MOVES[d.remediation_status]!.length > 0 && (
              <form class="actions" onSubmit={(e) => e.preventDefault()}>
                <label for="notes">Note for this action (optional)</label>
                <textarea id="notes" rows={2} maxLength={2000} value={notes} onInput={(e) => setNotes(e.currentTarget.value)} />
                <div class="buttons">
                  {MOVES[d.remediation_status]!.map((a) => (
                    <button type="button" key={a} class={a === 'retry' ? undefined : 'secondary'} onClick={() => act(a)}>
                      {LABEL[a]}
                    </button>
                  ))}
                </div>
              </form>
            )}
            {!canAct && <p class="note">Your role can read dead events; an admin or owner can retry, resolve or ignore them.</p>}
            {done && (
              <p role="status" class="ok">
                {done}
              </p>
            )}
            {problem && <ProblemBox problem={problem} />}
          </>
        )}
      </Async>
    </section>
  );
}
