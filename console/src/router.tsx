// A small history-API router for the console's three pages under /console/.
// The gateway serves index.html for every /console/... path that is not a file.

import { useSyncExternalStore, type ComponentPropsWithRef, type MouseEvent } from 'react';

export const BASE = '/console';

export type Route =
  | { name: 'list' }
  | { name: 'create' }
  | { name: 'detail'; id: string }
  | { name: 'governance'; page: 'audit' | 'keys' | 'bindings' }
  | { name: 'notFound' };

export function parseRoute(pathname: string): Route {
  let p = pathname;
  if (p === BASE) p = `${BASE}/`;
  if (!p.startsWith(`${BASE}/`)) return { name: 'notFound' };
  const rest = p.slice(BASE.length + 1).replace(/\/+$/, '');
  if (rest === '' || rest === 'index.html') return { name: 'list' };
  if (rest === 'new') return { name: 'create' };
  if (rest === 'audit' || rest === 'keys' || rest === 'bindings') return { name: 'governance', page: rest };
  const m = /^sandboxes\/([^/]+)$/.exec(rest);
  if (m) {
    try {
      return { name: 'detail', id: decodeURIComponent(m[1]!) };
    } catch {
      return { name: 'notFound' };
    }
  }
  return { name: 'notFound' };
}

export const paths = {
  list: () => `${BASE}/`,
  create: () => `${BASE}/new`,
  detail: (id: string) => `${BASE}/sandboxes/${encodeURIComponent(id)}`,
};

const NAV_EVENT = 'gatehouse:navigate';

function subscribe(cb: () => void): () => void {
  window.addEventListener('popstate', cb);
  window.addEventListener(NAV_EVENT, cb);
  return () => {
    window.removeEventListener('popstate', cb);
    window.removeEventListener(NAV_EVENT, cb);
  };
}

const snapshot = () => window.location.pathname + window.location.search;

/** The current path and query, re-rendering on navigation. */
export function useLocation(): { pathname: string; search: string } {
  const full = useSyncExternalStore(subscribe, snapshot, snapshot);
  const q = full.indexOf('?');
  return q === -1 ? { pathname: full, search: '' } : { pathname: full.slice(0, q), search: full.slice(q) };
}

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (to === snapshot()) return;
  if (opts.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  window.dispatchEvent(new Event(NAV_EVENT));
}

/** The same-origin path to come back to after signing in. */
export function currentReturnPath(): string {
  const p = snapshot();
  return p.startsWith(`${BASE}/`) || p === BASE ? p : `${BASE}/`;
}

type LinkProps = Omit<ComponentPropsWithRef<'a'>, 'href'> & { to: string };

/** An `<a>` that navigates client-side on a plain left click. */
export function Link({ to, onClick, ...rest }: LinkProps) {
  const handle = (e: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (rest.target && rest.target !== '_self') return;
    e.preventDefault();
    navigate(to);
  };
  return <a href={to} onClick={handle} {...rest} />;
}
