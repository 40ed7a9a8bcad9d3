import { useState } from 'preact/hooks';
import { api, asProblem, call, type Problem } from '../api';
import { Async, DataTable, ProblemBox, useLoad } from '../components';
import { MODEL_NAMES, when } from '../format';
import { useCan, useSession } from '../session';

export function Settings() {
  const canAdmin = useCan('admin');
  return (
    <section>
      <div class="page-head">
        <div>
          <h1>Settings</h1>
          <p class="intro">Attribution models and their parameters, and who can use this tenant.</p>
        </div>
      </div>
      <AttributionSettings />
      {canAdmin ? <Users /> : <p class="note">Users and roles are managed by admins and owners.</p>}
      <h2>Webhook endpoints, API keys, spend import</h2>
      <p class="note">
        Not in the app yet: manage them from the command line (<code>skeldir webhook create|rotate|delete</code>, <code>skeldir tenant rotate-key|revoke-key</code>,{' '}
        <code>skeldir fx reporting-currency</code>).
      </p>
    </section>
  );
}

function AttributionSettings() {
  const canEdit = useCan('admin');
  const [load, reload] = useLoad(() => call(api.GET('/api/v1/attribution/settings')), []);
  return (
    <Async load={load} what="attribution settings" retry={reload}>
      {(s) => <SettingsForm key={JSON.stringify(s)} settings={s} canEdit={canEdit} onSaved={reload} />}
    </Async>
  );
}

function SettingsForm({ settings, canEdit, onSaved }: { settings: { models: string[]; lookback_days: number; half_life_days: number; configured: boolean }; canEdit: boolean; onSaved: () => void }) {
  const [models, setModels] = useState<string[]>(settings.models);
  const [lookback, setLookback] = useState(String(settings.lookback_days));
  const [halfLife, setHalfLife] = useState(String(settings.half_life_days));
  const [problem, setProblem] = useState<Problem | null>(null);
  const [saved, setSaved] = useState(false);
  const save = async (e: Event) => {
    e.preventDefault();
    setProblem(null);
    setSaved(false);
    const { data, error, response } = await api.PUT('/api/v1/attribution/settings', {
      body: { models: models as ('linear' | 'last_touch')[], lookback_days: Number(lookback), half_life_days: Number(halfLife) },
    });
    if (!data) return setProblem(asProblem(error, response));
    setSaved(true);
    onSaved();
  };
  return (
    <form class="settings" onSubmit={save}>
      <h2>Attribution</h2>
      <fieldset disabled={!canEdit}>
        <legend>Models computed for this tenant</legend>
        <div class="checks">
          {Object.entries(MODEL_NAMES).map(([m, label]) => (
            <label key={m} class="check">
              <input type="checkbox" checked={models.includes(m)} onChange={(e) => setModels(e.currentTarget.checked ? [...models, m] : models.filter((x) => x !== m))} />
              {label}
            </label>
          ))}
        </div>
        <label for="lookback">Lookback window (days, 1–365)</label>
        <input id="lookback" type="number" min={1} max={365} value={lookback} onInput={(e) => setLookback(e.currentTarget.value)} />
        <label for="halflife">Time-decay half-life (days)</label>
        <input id="halflife" type="number" min={0.1} step={0.1} max={365} value={halfLife} onInput={(e) => setHalfLife(e.currentTarget.value)} />
      </fieldset>
      {canEdit ? <button type="submit">Save attribution settings</button> : <p class="note">Your role can read these settings; an admin or owner can change them.</p>}
      {saved && (
        <p role="status" class="ok">
          Saved.
        </p>
      )}
      {problem && <ProblemBox problem={problem} />}
    </form>
  );
}

const ROLES = ['viewer', 'analyst', 'admin', 'owner'] as const;

function Users() {
  const isOwner = useCan('owner');
  const me = useSession().user;
  const [load, reload] = useLoad(() => call(api.GET('/api/v1/users')), []);
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<(typeof ROLES)[number]>('viewer');
  const [link, setLink] = useState<{ url: string; email: string; expires: string } | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const invite = async (e: Event) => {
    e.preventDefault();
    setProblem(null);
    const { data, error, response } = await api.POST('/api/v1/users/invitations', { body: { email, role } });
    if (!data) return setProblem(asProblem(error, response));
    setLink({ url: data.invitation_url, email: data.user.email, expires: data.expires_at });
    setEmail('');
    reload();
  };
  const change = async (id: string, next: string) => {
    setProblem(null);
    const { error, response } = await api.PATCH('/api/v1/users/{id}', { params: { path: { id } }, body: { role: next as 'viewer' } });
    if (!response.ok) setProblem(asProblem(error, response));
    reload();
  };
  const remove = async (id: string) => {
    setProblem(null);
    const { error, response } = await api.DELETE('/api/v1/users/{id}', { params: { path: { id } } });
    if (!response.ok) setProblem(asProblem(error, response));
    reload();
  };
  return (
    <div class="users">
      <h2>Users and roles</h2>
      <p class="note">Owners manage users and keys; admins change settings and work dead events; analysts and viewers read.</p>
      <Async load={load} what="users" retry={reload}>
        {(r) => (
          <DataTable
            caption="Users"
            file="users"
            rows={r.items}
            columns={[
              { key: 'email', label: 'E-mail', csv: (u) => u.email },
              {
                key: 'role',
                label: 'Role',
                csv: (u) => u.role,
                render: (u) =>
                  isOwner && u.id !== me?.id ? (
                    <select aria-label={`Role of ${u.email}`} value={u.role} onChange={(e) => change(u.id, e.currentTarget.value)}>
                      {ROLES.map((x) => (
                        <option key={x} value={x}>
                          {x}
                        </option>
                      ))}
                    </select>
                  ) : (
                    u.role
                  ),
              },
              { key: 'status', label: 'Status', csv: (u) => u.status },
              { key: 'since', label: 'Invited', csv: (u) => u.created_at, render: (u) => when(u.created_at) },
              ...(isOwner
                ? [
                    {
                      key: 'remove',
                      label: 'Remove',
                      csv: () => null,
                      render: (u: (typeof r.items)[number]) =>
                        u.id === me?.id ? (
                          '—'
                        ) : (
                          <button type="button" class="link danger" onClick={() => remove(u.id)} aria-label={`Remove ${u.email}`}>
                            Remove
                          </button>
                        ),
                    },
                  ]
                : []),
            ]}
          />
        )}
      </Async>
      {isOwner && (
        <form class="invite" onSubmit={invite}>
          <h3>Invite someone</h3>
          <div class="row">
            <label>
              E-mail
              <input type="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
            </label>
            <label>
              Role
              <select value={role} onChange={(e) => setRole(e.currentTarget.value as 'viewer')}>
                {ROLES.map((x) => (
                  <option key={x} value={x}>
                    {x}
                  </option>
                ))}
              </select>
            </label>
            <button type="submit">Create invitation link</button>
          </div>
        </form>
      )}
      {link && (
        <div class="secret" role="status">
          <strong>Send this link to {link.email}.</strong> It is shown only now, works once and expires {when(link.expires)}.
          <input readOnly value={link.url} aria-label="Invitation link" onFocus={(e) => e.currentTarget.select()} />
        </div>
      )}
      {problem && <ProblemBox problem={problem} />}
    </div>
  );
}
