import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { LocationProvider, Route, Router, useLocation } from 'preact-iso';
import { api, asProblem, call, setCsrfToken, type Problem } from './api';
import { Loading, ProblemBox } from './components';
import { SessionContext, type Session } from './session';
import { Login, AcceptInvitation } from './pages/signin';
import { Overview } from './pages/overview';
import { Channels } from './pages/channels';
import { Models } from './pages/models';
import { Paths } from './pages/paths';
import { Campaigns } from './pages/campaigns';
import { Reconciliation } from './pages/reconciliation';
import { Transactions } from './pages/transactions';
import { DeadEvents } from './pages/dead-events';
import { Settings } from './pages/settings';

const NAV = [
  ['/', 'Overview'],
  ['/channels', 'Channels'],
  ['/models', 'Model comparison'],
  ['/paths', 'Conversion paths'],
  ['/reconciliation', 'Reconciliation'],
  ['/transactions', 'Transactions'],
  ['/dead-events', 'Dead events'],
  ['/settings', 'Settings'],
] as const;

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const { path, query } = useLocation();
  const [menu, setMenu] = useState(false);
  // Keep the period when moving between pages.
  const keep = query.from && query.to ? `?from=${encodeURIComponent(query.from)}&to=${encodeURIComponent(query.to)}` : '';
  useEffect(() => {
    const title = NAV.find(([href]) => href === path)?.[1] ?? (path === '/campaigns' ? 'Campaigns' : 'Skeldir');
    document.title = `${title} · ${session.tenant.name} · Skeldir`;
    setMenu(false);
    document.getElementById('main')?.focus();
  }, [path]);
  const signOut = async () => {
    await call(api.POST('/api/v1/auth/logout')).catch(() => undefined);
    onSignOut();
  };
  return (
    <SessionContext.Provider value={session}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <div class="brand">
          <span class="logo" aria-hidden="true">◆</span> Skeldir <span class="tenant">{session.tenant.name}</span>
        </div>
        <button type="button" class="menu-toggle" aria-expanded={menu} aria-controls="nav" onClick={() => setMenu(!menu)}>
          Menu
        </button>
        <div class="who">
          <span>
            {session.user?.email} <span class="role">{session.role}</span>
          </span>
          <button type="button" class="secondary" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <div class="layout">
        <nav id="nav" class={menu ? 'open' : ''} aria-label="Pages">
          <ul>
            {NAV.map(([href, label]) => (
              <li key={href}>
                <a href={href + keep} aria-current={path === href ? 'page' : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <main id="main" tabIndex={-1}>
          <Router>
            <Route path="/" component={Overview} />
            <Route path="/channels" component={Channels} />
            <Route path="/campaigns" component={Campaigns} />
            <Route path="/models" component={Models} />
            <Route path="/paths" component={Paths} />
            <Route path="/reconciliation" component={Reconciliation} />
            <Route path="/transactions" component={Transactions} />
            <Route path="/dead-events" component={DeadEvents} />
            <Route path="/settings" component={Settings} />
            <Route default component={NotFound} />
          </Router>
        </main>
      </div>
    </SessionContext.Provider>
  );
}

function NotFound() {
  return (
    <section>
      <h1>No such page</h1>
      <p>
        <a href="/">Go to the overview</a>
      </p>
    </section>
  );
}

function App() {
  const { path } = useLocation();
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [problem, setProblem] = useState<Problem | null>(null);
  const load = async () => {
    const { data, error, response } = await api.GET('/api/v1/auth/session').catch(() => ({ data: undefined, error: undefined, response: undefined }));
    if (response?.status === 401) {
      setSession(null);
      return;
    }
    if (!data) {
      setProblem(asProblem(error, response));
      return;
    }
    setCsrfToken(data.csrf_token);
    setSession(data as Session);
  };
  useEffect(() => void load(), []);
  const signedIn = (s: Session) => {
    setCsrfToken(s.csrf_token);
    setSession(s);
  };
  if (path === '/invite') return <AcceptInvitation onSignedIn={signedIn} />;
  if (problem) return <ProblemBox problem={problem} retry={() => location.reload()} />;
  if (session === undefined) return <Loading what="Skeldir" />;
  if (session === null) return <Login onSignedIn={signedIn} />;
  return (
    <Shell
      session={session}
      onSignOut={() => {
        setCsrfToken(null);
        setSession(null);
      }}
    />
  );
}

render(
  <LocationProvider>
    <App />
  </LocationProvider>,
  document.getElementById('app')!,
);
