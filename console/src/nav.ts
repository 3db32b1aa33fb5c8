// The console's main navigation. Sandboxes is always there; the governance pages (audit
// log, API keys, role bindings) appear only when the signed-in user's permissions (from
// /auth/me, i.e. the role table) include the action that reads them: `audit:read`,
// `apikey:manage`, `binding:read`.

import type { Me } from './types';

export interface NavItem {
  /** Route name (see router.ts). */
  route: 'list' | 'audit' | 'keys' | 'bindings';
  label: string;
  path: string;
  /** Permissions any one of which shows the page to this user; empty = always. */
  needs: string[];
}

export const NAV: NavItem[] = [
  { route: 'list', label: 'Sandboxes', path: '/console/', needs: [] },
  { route: 'audit', label: 'Audit log', path: '/console/audit', needs: ['audit:read'] },
  { route: 'keys', label: 'API keys', path: '/console/keys', needs: ['apikey:manage'] },
  { route: 'bindings', label: 'Bindings', path: '/console/bindings', needs: ['binding:read'] },
];

/** The navigation entries this user sees. */
export function visibleNav(me: Me): NavItem[] {
  return NAV.filter((n) => n.needs.length === 0 || n.needs.some((p) => me.permissions.includes(p)));
}
