import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { ApiClient, ApiError, errorMessage } from './api';
import { AnnounceContext, ApiContext, SessionContext, ToastContext, useSession, type Session } from './context';
import { Link, currentReturnPath, parseRoute, paths, useLocation } from './router';
import type { AuthConfig, Me } from './types';
import { ErrorBanner, Spinner } from './components/common';
import { SandboxList } from './pages/SandboxList';
import { SandboxDetail } from './pages/SandboxDetail';
import { CreateSandbox } from './pages/CreateSandbox';
import { AuditLog } from './pages/AuditLog';
import { ApiKeys } from './pages/ApiKeys';
import { Bindings } from './pages/Bindings';
import { NAV, visibleNav } from './nav';

type AuthState =
  | { status: 'loading' }
  | { status: 'error'; error: unknown }
  /** OIDC is configured and there is no session: offer to sign in. */
  | { status: 'signedOut'; config: AuthConfig; expired: boolean }
  /** No OIDC and the auth proxy did not identify the user. */
  | { status: 'proxyUnidentified'; config: AuthConfig }
  /** The gateway accepts API keys only. */
  | { status: 'apiKeyOnly'; config: AuthConfig }
  | { status: 'signedIn'; config: AuthConfig; me: Me };

function signedOutState(config: AuthConfig, expired: boolean): AuthState {
  if (config.oidc) return { status: 'signedOut', config, expired };
  if (config.mode === 'api_key_only') return { status: 'apiKeyOnly', config };
  return { status: 'proxyUnidentified', config };
}

const isLocalPath = (u: string) => u.startsWith('/') && !u.startsWith('//') && !u.startsWith('/\\');

export function loginHref(config: AuthConfig | null, returnTo: string = currentReturnPath()): string {
  const base = config?.loginUrl && isLocalPath(config.loginUrl) ? config.loginUrl : '/auth/login';
  const sep = base.includes('?') ? '&' : '?';
  return `${base}${sep}return_to=${encodeURIComponent(returnTo)}`;
}

/** Where to go after sign-out: a local path or an http(s) URL (the IdP's logout page). */
export function safeRedirect(url: unknown): string {
  if (typeof url !== 'string' || !url) return paths.list();
  if (isLocalPath(url)) return url;
  try {
    const u = new URL(url);
    if (u.protocol === 'https:' || u.protocol === 'http:') return u.href;
  } catch {
    // Not a URL.
  }
  return paths.list();
}

/** Full-page navigation (sign in, sign out). Replaceable in tests. */
export const browser = {
  assign(url: string): void {
    window.location.assign(url);
  },
};

export interface AppProps {
  /** For tests; defaults to the global fetch. */
  fetchImpl?: typeof fetch;
}

export function App({ fetchImpl }: AppProps) {
  const [auth, setAuth] = useState<AuthState>({ status: 'loading' });
  const [announcement, setAnnouncement] = useState('');
  const [toastText, setToastText] = useState<string | null>(null);
  const toastTimer = useRef<number | undefined>(undefined);
  const toast = useCallback((message: string) => {
    setToastText(message);
    window.clearTimeout(toastTimer.current);
    toastTimer.current = window.setTimeout(() => setToastText(null), 6000);
  }, []);
  useEffect(() => () => window.clearTimeout(toastTimer.current), []);
  const meRef = useRef<Me | null>(null);
  const configRef = useRef<AuthConfig | null>(null);

  const announceTimer = useRef<number | undefined>(undefined);
  const announce = useCallback((message: string) => {
    // Clear first so that the same message twice is announced twice.
    setAnnouncement('');
    window.clearTimeout(announceTimer.current);
    announceTimer.current = window.setTimeout(() => setAnnouncement(message), 50);
  }, []);
  // A pending announcement must not fire after the app is gone.
  useEffect(() => () => window.clearTimeout(announceTimer.current), []);

  const api = useMemo(
    () =>
      new ApiClient({
        ...(fetchImpl ? { fetch: fetchImpl } : {}),
        getCsrfToken: () => meRef.current?.csrfToken ?? null,
        onUnauthorized: () => {
          // The session is gone: show the signed-out state. Never retried automatically.
          meRef.current = null;
          const config = configRef.current;
          setAuth(config ? signedOutState(config, true) : { status: 'error', error: new ApiError(401, 'GATEWAY::UNAUTHENTICATED', 'Authentication required.') });
        },
      }),
    [fetchImpl],
  );

  const check = useCallback(
    async (signal?: AbortSignal) => {
      setAuth({ status: 'loading' });
      try {
        const config = await api.authConfig(signal);
        configRef.current = config;
        try {
          const me = await api.me(signal);
          meRef.current = me;
          setAuth({ status: 'signedIn', config, me });
        } catch (e) {
          if (e instanceof ApiError && e.status === 401) setAuth(signedOutState(config, false));
          else throw e;
        }
      } catch (e) {
        if (signal?.aborted) return;
        setAuth({ status: 'error', error: e });
      }
    },
    [api],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    void check(ctrl.signal);
    return () => ctrl.abort();
  }, [check]);

  const signOut = useCallback(async () => {
    try {
      const res = await api.logout();
      meRef.current = null;
      browser.assign(safeRedirect(res?.redirect));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401 && configRef.current) {
        meRef.current = null;
        setAuth(signedOutState(configRef.current, false));
        return;
      }
      throw e;
    }
  }, [api]);

  const session: Session | null = useMemo(
    () => (auth.status === 'signedIn' ? { config: auth.config, me: auth.me, signOut } : null),
    [auth, signOut],
  );

  return (
    <ApiContext.Provider value={api}>
      <AnnounceContext.Provider value={announce}>
        <ToastContext.Provider value={toast}>
        <a className="skip-link" href="#main">
          Skip to content
        </a>
        {session ? (
          <SessionContext.Provider value={session}>
            <SignedInShell />
          </SessionContext.Provider>
        ) : (
          <>
            <header className="topbar">
              <div className="topbar-inner">
                <span className="brand">Gatehouse</span>
              </div>
            </header>
            <main id="main" className="page page-narrow" tabIndex={-1}>
              <AuthGate auth={auth} onRetry={() => void check()} />
            </main>
          </>
        )}
        <div className="sr-only" aria-live="polite" aria-atomic="true" data-testid="announcer">
          {announcement}
        </div>
        {toastText && (
          <div className="toast" role="status" data-testid="toast">
            <span>{toastText}</span>
            <button type="button" className="btn btn-ghost btn-small" onClick={() => setToastText(null)}>
              Dismiss
            </button>
          </div>
        )}
        </ToastContext.Provider>
      </AnnounceContext.Provider>
    </ApiContext.Provider>
  );
}

function AuthGate({ auth, onRetry }: { auth: AuthState; onRetry: () => void }) {
  useEffect(() => {
    document.title = 'Gatehouse console';
  }, []);
  switch (auth.status) {
    case 'loading':
      return (
        <div className="center-card" aria-busy="true">
          <Spinner label="Checking your sign-in…" />
        </div>
      );
    case 'error':
      return (
        <section className="center-card" aria-labelledby="gate-title">
          <h1 id="gate-title" tabIndex={-1}>
            The console could not start
          </h1>
          <ErrorBanner error={auth.error} />
          <button type="button" className="btn btn-secondary" onClick={onRetry}>
            Try again
          </button>
        </section>
      );
    case 'signedOut':
      return (
        <section className="center-card" aria-labelledby="gate-title">
          <h1 id="gate-title" tabIndex={-1}>
            Sign in to Gatehouse
          </h1>
          {auth.expired && (
            <p className="banner banner-warning" role="status">
              Your session has ended. Sign in again to continue.
            </p>
          )}
          <p>Manage your sandboxes: create, inspect, renew and delete them, and open their endpoints.</p>
          <button
            type="button"
            className="btn btn-primary btn-large"
            onClick={() => browser.assign(loginHref(auth.config))}
          >
            Sign in
          </button>
        </section>
      );
    case 'proxyUnidentified':
      return (
        <section className="center-card" aria-labelledby="gate-title" data-testid="auth-proxy-misconfigured">
          <h1 id="gate-title" tabIndex={-1}>
            Authentication required
          </h1>
          <p className="banner banner-warning">
            Authentication required — this console is behind an auth proxy that did not identify you (auth proxy
            misconfiguration?).
          </p>
          <p>
            The gateway expects your identity from a trusted auth proxy, and this request arrived without one. Ask
            the operator to check that the proxy in front of Gatehouse authenticates you and is listed in{' '}
            <code>auth.trusted_header.trusted_proxies</code>.
          </p>
          <button type="button" className="btn btn-secondary" onClick={onRetry}>
            Check again
          </button>
        </section>
      );
    case 'apiKeyOnly':
      return (
        <section className="center-card" aria-labelledby="gate-title">
          <h1 id="gate-title" tabIndex={-1}>
            Console sign-in is turned off
          </h1>
          <p>
            This gateway runs with <code>auth.mode = "api_key_only"</code>: it accepts API keys only, and the console
            never uses one. Ask the operator to enable user sign-in (<code>api_key_and_user</code>).
          </p>
        </section>
      );
    case 'signedIn':
      return null;
  }
}

function SignedInShell() {
  const { pathname } = useLocation();
  const route = parseRoute(pathname);
  const first = useRef(true);

  // Move focus to the new page's heading on client-side navigation.
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const h1 = document.querySelector<HTMLElement>('#main h1');
    h1?.focus();
  }, [pathname]);

  let page;
  switch (route.name) {
    case 'list':
      page = <SandboxList />;
      break;
    case 'create':
      page = <CreateSandbox />;
      break;
    case 'detail':
      page = <SandboxDetail key={route.id} id={route.id} />;
      break;
    case 'governance':
      page = <GovernancePage page={route.page} />;
      break;
    default:
      page = <NotFound />;
  }
  return (
    <>
      <Header current={route.name === 'governance' ? route.page : route.name} />
      <main id="main" className="page" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}

function Header({ current }: { current: string }) {
  const { me, signOut } = useSession();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const canSignOut = me.authMethod === 'session';

  const onSignOut = async () => {
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      await signOut();
    } catch (e) {
      setError(errorMessage(e));
      setBusy(false);
    }
  };

  return (
    <header className="topbar">
      <div className="topbar-inner">
        <Link to={paths.list()} className="brand">
          Gatehouse
        </Link>
        <nav aria-label="Main" className="mainnav">
          {visibleNav(me).map((n) => (
            <Link key={n.route} to={n.path} aria-current={current === n.route ? 'page' : undefined}>
              {n.label}
            </Link>
          ))}
        </nav>
        <div className="user" aria-label="Signed-in user" role="group">
          <span className="user-subject" data-testid="user-subject">
            {me.subject}
          </span>
          <span className="user-meta">
            {me.team ? (
              <span data-testid="user-team">
                <span className="sr-only">team </span>
                {me.team}
              </span>
            ) : (
              <span className="muted">no team</span>
            )}
            <span className="role-chip" data-testid="user-role">
              <span className="sr-only">role </span>
              {me.role}
            </span>
          </span>
          {canSignOut && (
            <button
              type="button"
              className="btn btn-ghost btn-small"
              onClick={onSignOut}
              aria-disabled={busy ? 'true' : undefined}
            >
              Sign out
            </button>
          )}
        </div>
      </div>
      {error && (
        <div className="topbar-error" role="alert">
          Sign-out failed: {error}
        </div>
      )}
    </header>
  );
}

function NotFound() {
  useEffect(() => {
    document.title = 'Not found · Gatehouse';
  }, []);
  return (
    <section>
      <h1 tabIndex={-1}>Page not found</h1>
      <p>
        There is no console page at this address. <Link to={paths.list()}>Go to the sandbox list</Link>.
      </p>
    </section>
  );
}

/**
 * A governance page (audit log, API keys, bindings): shown when the caller's permissions
 * include it (the same rule as the nav); otherwise a plain note, and nothing is asked of
 * the gateway.
 */
function GovernancePage({ page }: { page: 'audit' | 'keys' | 'bindings' }) {
  const { me } = useSession();
  const item = NAV.find((n) => n.route === page)!;
  const shown = visibleNav(me).some((n) => n.route === page);
  useEffect(() => {
    if (!shown) document.title = `${item.label} · Gatehouse`;
  }, [item.label, shown]);
  if (shown) {
    if (page === 'audit') return <AuditLog />;
    if (page === 'keys') return <ApiKeys />;
    return <Bindings />;
  }
  return (
    <section>
      <h1 tabIndex={-1}>{item.label}</h1>
      <p>
        Your role ({me.role}) does not include this page. <Link to={paths.list()}>Go to the sandbox list</Link>.
      </p>
    </section>
  );
}
