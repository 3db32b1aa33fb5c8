// What the signed-in user may do, from /auth/me's `permissions`. The console only
// reflects the role table: the gateway decides.

import type { Me, Permission } from './types';

const DOING: Record<Permission, string> = {
  'sandbox:list': 'listing sandboxes',
  'sandbox:read': 'viewing sandboxes',
  'sandbox:endpoint': 'getting sandbox endpoints',
  'sandbox:create': 'creating sandboxes',
  'sandbox:delete': 'deleting sandboxes',
  'sandbox:pause': 'pausing sandboxes',
  'sandbox:resume': 'resuming sandboxes',
  'sandbox:renew': 'renewing sandboxes',
  'sandbox:metadata': 'editing sandbox metadata',
  'sandbox:proxy': 'opening sandboxes through the proxy',
  'sandbox:diagnostics': 'reading sandbox logs',
};

export function can(me: Me | null | undefined, action: Permission): boolean {
  return !!me && me.permissions.includes(action);
}

/** Why an action is not allowed, or null when it is. */
export function denyReason(me: Me | null | undefined, action: Permission): string | null {
  if (can(me, action)) return null;
  const role = me?.role ?? 'unknown';
  return `Your role (${role}) does not allow ${DOING[action]}.`;
}
