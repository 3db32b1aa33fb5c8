// The console's main navigation. Sandboxes is always there; the governance pages (audit
// log, API keys, role bindings) appear only when the gateway says they exist: the
// signed-in user's permissions (from /auth/me) name one of their actions.

import type { Me } from './types';

export interface NavItem {
  /** Route name (see router.ts). */
  route: 'list' | 'audit' | 'keys' | 'bindings';
  label: string;
  path: string;
  /** Permission prefixes that make the page exist for this user; empty = always. */
  needs: string[];
}

export const NAV: NavItem[] = [
  { route: 'list', label: 'Sandboxes', path: '/console/', needs: [] },
  { route: 'audit', label: 'Audit log', path: '/console/audit', needs: ['audit:'] },
  { route: 'keys', label: 'API keys', path: '/console/keys', needs: ['key:', 'keys:', 'apikey:'] },
  { route: 'bindings', label: 'Bindings', path: '/console/bindings', needs: ['binding:', 'bindings:'] },
];

/** The navigation entries this user sees. */
export function visibleNav(me: Me): NavItem[] {
  return NAV.filter((n) => n.needs.length === 0 || me.permissions.some((p) => n.needs.some((pre) => p.startsWith(pre))));
}
