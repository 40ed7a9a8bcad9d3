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
          <p class="intro">Attribution models and their parameters, currency, webhooks, keys, ad spend, and who can use this tenant.</p>
        </div>
      </div>
      <AttributionSettings />
      <ReportingCurrency />
      {canAdmin ? <Webhooks /> : <p class="note">Webhook endpoints are managed by admins and owners.</p>}
      <ApiKeys />
      {canAdmin ? <Users /> : <p class="note">Users and roles are managed by admins and owners.</p>}
      {canAdmin ? <SpendImport /> : <p class="note">Ad spend is imported by admins and owners.</p>}
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

function Secret({ label, value, note }: { label: string; value: string; note: string }) {
  return (
    <div class="secret" role="status">
      <strong>{note}</strong>
      <input readOnly value={value} aria-label={label} onFocus={(e) => e.currentTarget.select()} />
    </div>
  );
}

function ReportingCurrency() {
  const canEdit = useCan('admin');
  const [load, reload] = useLoad(() => call(api.GET('/api/v1/reporting-currency')), []);
  const [code, setCode] = useState('');
  const [problem, setProblem] = useState<Problem | null>(null);
  const [saved, setSaved] = useState(false);
  const save = async (e: Event) => {
    e.preventDefault();
    setProblem(null);
    setSaved(false);
    const { data, error, response } = await api.PUT('/api/v1/reporting-currency', { body: { reporting_currency: code.trim().toUpperCase() } });
    if (!data) return setProblem(asProblem(error, response));
    setSaved(true);
    reload();
  };
  return (
    <div>
      <h2>Reporting currency</h2>
      <Async load={load} what="the reporting currency" retry={reload}>
        {(r) => (
          <form class="invite" onSubmit={save}>
            <p class="note">
              Reports convert every amount to <strong data-testid="reporting-currency">{r.reporting_currency}</strong> at the rate of its date (rates: <code>skeldir fx import</code>).
            </p>
            {canEdit && (
              <div class="row">
                <label>
                  New currency (ISO 4217)
                  <input value={code} onInput={(e) => setCode(e.currentTarget.value)} pattern="[A-Za-z]{3}" maxLength={3} required placeholder={r.reporting_currency} />
                </label>
                <button type="submit">Change currency</button>
              </div>
            )}
            {saved && (
              <p role="status" class="ok">
                Saved.
              </p>
            )}
            {problem && <ProblemBox problem={problem} />}
          </form>
        )}
      </Async>
    </div>
  );
}

const PROVIDERS = ['stripe', 'shopify', 'paypal', 'woocommerce'] as const;

function Webhooks() {
  const [load, reload] = useLoad(() => call(api.GET('/api/v1/webhook-endpoints')), []);
  const [provider, setProvider] = useState<(typeof PROVIDERS)[number]>('stripe');
  const [secret, setSecret] = useState('');
  const [description, setDescription] = useState('');
  const [shown, setShown] = useState<{ url: string; secret: string } | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const create = async (e: Event) => {
    e.preventDefault();
    setProblem(null);
    const { data, error, response } = await api.POST('/api/v1/webhook-endpoints', {
      body: { provider, ...(secret.trim() ? { secret: secret.trim() } : {}), ...(description.trim() ? { description: description.trim() } : {}) },
    });
    if (!data) return setProblem(asProblem(error, response));
    setShown({ url: location.origin + data.url_path, secret: data.secret });
    setSecret('');
    setDescription('');
    reload();
  };
  const rotate = async (id: string) => {
    setProblem(null);
    const { data, error, response } = await api.POST('/api/v1/webhook-endpoints/{id}/rotate', { params: { path: { id } }, body: { grace_hours: 24 } });
    if (!data) return setProblem(asProblem(error, response));
    setShown({ url: location.origin + data.url_path, secret: data.secret });
    reload();
  };
  const remove = async (id: string) => {
    setProblem(null);
    const { error, response } = await api.DELETE('/api/v1/webhook-endpoints/{id}', { params: { path: { id } } });
    if (!response.ok) setProblem(asProblem(error, response));
    reload();
  };
  return (
    <div>
      <h2>Webhook endpoints</h2>
      <p class="note">Each payment provider sends its webhooks to an endpoint's URL, signed with its secret.</p>
      <Async load={load} what="webhook endpoints" retry={reload}>
        {(r) =>
          r.items.length === 0 ? (
            <p class="note">No endpoint yet: create one below and register its URL with the provider.</p>
          ) : (
            <DataTable
              caption="Webhook endpoints"
              file="webhook-endpoints"
              rows={r.items}
              columns={[
                { key: 'provider', label: 'Provider', csv: (e) => e.provider },
                { key: 'description', label: 'Description', csv: (e) => e.description ?? '' },
                { key: 'url', label: 'URL path', csv: (e) => e.url_path, render: (e) => <code>{e.url_path}</code> },
                { key: 'deliveries', label: 'Deliveries', numeric: true, csv: (e) => e.deliveries },
                { key: 'last', label: 'Last delivery', csv: (e) => e.last_delivery_at ?? '', render: (e) => when(e.last_delivery_at) },
                {
                  key: 'actions',
                  label: 'Actions',
                  csv: () => null,
                  render: (e) => (
                    <>
                      <button type="button" class="link" onClick={() => rotate(e.endpoint_id)} aria-label={`Rotate secret of ${e.provider} ${e.description ?? e.endpoint_id}`}>
                        Rotate secret
                      </button>
                      <button type="button" class="link danger" onClick={() => remove(e.endpoint_id)} aria-label={`Delete ${e.provider} ${e.description ?? e.endpoint_id}`}>
                        Delete
                      </button>
                    </>
                  ),
                },
              ]}
            />
          )
        }
      </Async>
      <form class="invite" onSubmit={create}>
        <h3>New endpoint</h3>
        <div class="row">
          <label>
            Provider
            <select value={provider} onChange={(e) => setProvider(e.currentTarget.value as 'stripe')}>
              {PROVIDERS.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
          </label>
          <label>
            Secret (optional; PayPal: its webhook ID)
            <input value={secret} onInput={(e) => setSecret(e.currentTarget.value)} maxLength={500} />
          </label>
          <label>
            Description
            <input value={description} onInput={(e) => setDescription(e.currentTarget.value)} maxLength={255} />
          </label>
          <button type="submit">Create endpoint</button>
        </div>
      </form>
      {shown && (
        <>
          <Secret label="Endpoint URL" value={shown.url} note="Register this URL with the provider." />
          <Secret label="Signing secret" value={shown.secret} note="The signing secret, shown only now: copy it into the provider's settings." />
        </>
      )}
      {problem && <ProblemBox problem={problem} />}
    </div>
  );
}

function ApiKeys() {
  const isOwner = useCan('owner');
  const [load, reload] = useLoad(() => (isOwner ? call(api.GET('/api/v1/api-keys')) : Promise.resolve(null)), [isOwner]);
  const [grace, setGrace] = useState('24h');
  const [key, setKey] = useState<{ key: string; until: string | null } | null>(null);
  const [confirm, setConfirm] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  if (!isOwner) return <p class="note">API keys are managed by owners.</p>;
  const rotate = async () => {
    setProblem(null);
    const { data, error, response } = await api.POST('/api/v1/api-keys/rotate', { body: { grace } });
    if (!data) return setProblem(asProblem(error, response));
    setKey({ key: data.api_key, until: data.previous_key_valid_until });
    reload();
  };
  const revoke = async () => {
    setProblem(null);
    const { data, error, response } = await api.POST('/api/v1/api-keys/revoke', { body: { confirm: 'revoke' } });
    if (!data) return setProblem(asProblem(error, response));
    setConfirm(false);
    setKey(null);
    reload();
  };
  return (
    <div>
      <h2>API keys</h2>
      <Async load={load} what="API keys" retry={reload}>
        {(k) =>
          k && (
            <p class="note" data-testid="key-state">
              Current key: <strong>{k.current_key}</strong>
              {k.keys_in_grace.length > 0 && <> · {k.keys_in_grace.length} rotated-out key(s) still working until {when(k.keys_in_grace[k.keys_in_grace.length - 1])}</>}
            </p>
          )
        }
      </Async>
      <div class="invite">
        <div class="row">
          <label>
            The previous key keeps working for
            <select value={grace} onChange={(e) => setGrace(e.currentTarget.value)}>
              <option value="0">no time (stops now)</option>
              <option value="1h">1 hour</option>
              <option value="24h">24 hours</option>
              <option value="7d">7 days</option>
            </select>
          </label>
          <button type="button" onClick={rotate}>
            Rotate API key
          </button>
        </div>
        <div class="row">
          <label class="check">
            <input type="checkbox" checked={confirm} onChange={(e) => setConfirm(e.currentTarget.checked)} />
            Every key of this tenant stops working now
          </label>
          <button type="button" class="secondary danger" disabled={!confirm} onClick={revoke}>
            Revoke all keys
          </button>
        </div>
      </div>
      {key && <Secret label="New API key" value={key.key} note={`The new API key, shown only now.${key.until ? ` The previous key works until ${when(key.until)}.` : ''}`} />}
      {problem && <ProblemBox problem={problem} />}
    </div>
  );
}

const PLATFORMS = ['google_ads', 'meta_ads', 'tiktok_ads', 'microsoft_ads', 'linkedin_ads', 'other'] as const;
const PLATFORM_NAMES: Record<(typeof PLATFORMS)[number], string> = {
  google_ads: 'Google Ads (campaign report CSV)',
  meta_ads: 'Meta (Ads Manager export)',
  tiktok_ads: 'TikTok Ads (generic CSV)',
  microsoft_ads: 'Microsoft Ads (generic CSV)',
  linkedin_ads: 'LinkedIn Ads (generic CSV)',
  other: 'Other (generic CSV)',
};

/** The file's bytes as base64 (what POST /spend/import takes: a UTF-16 export survives unchanged). */
function base64Of(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ''));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

function SpendImport() {
  const [platform, setPlatform] = useState<(typeof PLATFORMS)[number]>('google_ads');
  const [currency, setCurrency] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [done, setDone] = useState<{ rows: number; created: number; updated: number; unchanged: number; deleted: number; days: { from: string; to: string }; file: string } | null>(null);
  const upload = async (e: Event) => {
    e.preventDefault();
    if (!file) return;
    setProblem(null);
    setDone(null);
    setBusy(true);
    try {
      const body = { platform, file_name: file.name, content_base64: await base64Of(file), ...(currency.trim() ? { currency: currency.trim().toUpperCase() } : {}) };
      const { data, error, response } = await api.POST('/api/v1/spend/import', { body });
      if (!data) setProblem(asProblem(error, response));
      else setDone({ ...data, file: file.name });
    } catch {
      setProblem({ title: 'The file could not be read', detail: 'choose the file again', status: 0, code: 'file_unreadable' });
    } finally {
      setBusy(false);
    }
  };
  return (
    <div>
      <h2>Spend import</h2>
      <form class="invite" onSubmit={upload} aria-label="Spend import">
        <p class="note">
          A Google Ads campaign report, a Meta Ads Manager export or a generic CSV (<code>day, platform, campaign_id, currency, spend, …</code>; docs/spend.md). Every line is
          checked first: a file with a bad line imports nothing. The days the file covers are replaced.
        </p>
        <div class="row">
          <label>
            Platform
            <select value={platform} onChange={(e) => setPlatform(e.currentTarget.value as (typeof PLATFORMS)[number])}>
              {PLATFORMS.map((p) => (
                <option value={p} key={p}>
                  {PLATFORM_NAMES[p]}
                </option>
              ))}
            </select>
          </label>
          <label>
            Currency, if the file names none
            <input value={currency} onInput={(e) => setCurrency(e.currentTarget.value)} pattern="[A-Za-z]{3}" maxLength={3} placeholder="USD" />
          </label>
          <label>
            Spend file (CSV)
            <input type="file" accept=".csv,text/csv" required onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} />
          </label>
          <button type="submit" disabled={busy || !file}>
            {busy ? 'Importing…' : 'Import spend'}
          </button>
        </div>
        {done && (
          <p role="status" class="ok" data-testid="spend-imported">
            {done.file}: {done.rows} rows ({done.created} new, {done.updated} changed, {done.unchanged} unchanged, {done.deleted} removed), days {done.days.from} to {done.days.to}.
          </p>
        )}
        {problem && <ProblemBox problem={problem} />}
      </form>
    </div>
  );
}
