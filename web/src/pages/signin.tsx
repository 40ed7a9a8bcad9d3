import { useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { api, asProblem, type Problem } from '../api';
import { ProblemBox } from '../components';
import type { Session } from '../session';

function Card({ title, children }: { title: string; children: preact.ComponentChildren }) {
  return (
    <main class="signin" id="main">
      <div class="card">
        <div class="brand">
          <span class="logo" aria-hidden="true">◆</span> Skeldir
        </div>
        <h1>{title}</h1>
        {children}
      </div>
    </main>
  );
}

export function Login({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [tenants, setTenants] = useState<{ tenant_id: string; name: string }[] | null>(null);
  const [tenant, setTenant] = useState('');
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setProblem(null);
    const { data, error, response } = await api.POST('/api/v1/auth/login', { body: { email, password, ...(tenant ? { tenant_id: tenant } : {}) } });
    setBusy(false);
    if (data) return onSignedIn(data as Session);
    const p = asProblem(error, response);
    if (p.code === 'login_tenant_ambiguous' && Array.isArray(p.tenants)) {
      setTenants(p.tenants as { tenant_id: string; name: string }[]);
      setTenant((p.tenants as { tenant_id: string }[])[0]!.tenant_id);
    }
    setProblem(p);
  };
  return (
    <Card title="Sign in">
      <form onSubmit={submit}>
        <label for="email">E-mail</label>
        <input id="email" type="email" autoComplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        <label for="password">Password</label>
        <input id="password" type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        {tenants && (
          <>
            <label for="tenant">Tenant</label>
            <select id="tenant" value={tenant} onChange={(e) => setTenant(e.currentTarget.value)}>
              {tenants.map((t) => (
                <option value={t.tenant_id} key={t.tenant_id}>
                  {t.name}
                </option>
              ))}
            </select>
          </>
        )}
        {problem && <ProblemBox problem={problem} />}
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <p class="hint">No account yet? An owner of your tenant invites you: <code>skeldir user invite</code> or Settings → Users.</p>
    </Card>
  );
}

export function AcceptInvitation({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const token = location.hash.slice(1);
  const { route } = useLocation();
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [problem, setProblem] = useState<Problem | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (password !== again) {
      setProblem({ title: 'The passwords differ', detail: 'type the same password twice', status: 400, code: 'mismatch' });
      return;
    }
    const { data, error, response } = await api.POST('/api/v1/auth/invitations/accept', { body: { token, password } });
    if (data) {
      route('/', true);
      onSignedIn(data as Session);
      return;
    }
    setProblem(asProblem(error, response));
  };
  return (
    <Card title="Set your password">
      <form onSubmit={submit}>
        <p>Choose a password of at least 12 characters. This link works once.</p>
        <label for="new-password">New password</label>
        <input id="new-password" type="password" autoComplete="new-password" minLength={12} required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <label for="confirm-password">Repeat the password</label>
        <input id="confirm-password" type="password" autoComplete="new-password" required value={again} onInput={(e) => setAgain(e.currentTarget.value)} />
        {problem && <ProblemBox problem={problem} />}
        <button type="submit">Set password and sign in</button>
      </form>
    </Card>
  );
}
