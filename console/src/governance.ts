// The gateway's own governance API under /gatehouse/v1 (audit trail, personal API keys,
// RBAC bindings), as the console uses it. Same client, same rules as /v1: the session
// cookie, the CSRF header on changes, `ApiError` for every non-2xx answer.

import type { ApiClient } from './api';

/** `allowed`, `denied` or `error`. */
export type AuditOutcome = 'allowed' | 'denied' | 'error';

export const OUTCOMES: readonly AuditOutcome[] = ['allowed', 'denied', 'error'];

/** One event of the durable audit trail (`GET /gatehouse/v1/audit`). */
export interface AuditEvent {
  id: string;
  /** RFC 3339 UTC. */
  time: string;
  request_id: string;
  principal: {
    subject: string;
    team: string | null;
    role: string | null;
    auth_method: string;
    key_name: string | null;
  };
  action: string | null;
  sandbox_id: string | null;
  method: string;
  path: string;
  status: number;
  outcome: AuditOutcome;
  reason: string | null;
  duration_ms: number;
  peer: string | null;
}

export interface AuditPage {
  items: AuditEvent[];
  nextCursor: string | null;
}

/** The audit page's filters; empty strings mean "any". `since`/`until` are RFC 3339. */
export interface AuditFilters {
  actor: string;
  team: string;
  sandbox: string;
  action: string;
  outcome: '' | AuditOutcome;
  since: string;
  until: string;
}

export const NO_FILTERS: AuditFilters = { actor: '', team: '', sandbox: '', action: '', outcome: '', since: '', until: '' };

const FILTER_KEYS = ['actor', 'team', 'sandbox', 'action', 'outcome', 'since', 'until'] as const;

/** The filters as query parameters (the same names in the page URL and the API). */
export function auditParams(f: AuditFilters): URLSearchParams {
  const q = new URLSearchParams();
  for (const k of FILTER_KEYS) {
    const v = f[k].trim();
    if (v) q.set(k, v);
  }
  return q;
}

/** Reads the filters from a query string; unknown outcomes are dropped. */
export function readAuditFilters(search: string): AuditFilters {
  const q = new URLSearchParams(search);
  const get = (k: string) => q.get(k) ?? '';
  const outcome = get('outcome');
  return {
    actor: get('actor'),
    team: get('team'),
    sandbox: get('sandbox'),
    action: get('action'),
    outcome: (OUTCOMES as readonly string[]).includes(outcome) ? (outcome as AuditOutcome) : '',
    since: get('since'),
    until: get('until'),
  };
}

/** A personal or team API key as listed (never the secret). */
export interface ApiKey {
  id: string;
  prefix: string;
  name: string;
  subject: string;
  team: string | null;
  role: string;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** The answer to a create: the key itself, shown once. */
export interface CreatedKey extends ApiKey {
  key: string;
}

export interface CreateKeyRequest {
  name: string;
  role?: string;
  expiresInDays?: number;
  team?: string;
}

/** `active`, `expired` or `revoked`, at `now`. */
export function keyState(k: ApiKey, now: number): 'active' | 'expired' | 'revoked' {
  if (k.revokedAt) return 'revoked';
  if (k.expiresAt && Date.parse(k.expiresAt) <= now) return 'expired';
  return 'active';
}

/** The server's rule for key names: 1-64 letters, digits, spaces, `-`, `_` or `.`. */
export function keyNameError(name: string): string | null {
  if (!name.trim()) return 'Give the key a name, e.g. ci-pipeline.';
  if (name.length > 64) return 'At most 64 characters.';
  if (!/^[A-Za-z0-9 ._-]+$/.test(name)) return 'Use letters, digits, spaces, dashes, underscores and dots only.';
  return null;
}

export type BindingKind = 'subject' | 'group';

/** An RBAC binding in the governance store. */
export interface Binding {
  kind: BindingKind;
  name: string;
  role: string;
  team: string | null;
  createdBy: string;
  createdAt: string;
}

export interface BindingList {
  items: Binding[];
  /** False while the gateway cannot read the store: the last bindings read still apply. */
  fresh: boolean;
}

export interface PutBindingRequest {
  kind: BindingKind;
  name: string;
  role: string;
  team?: string;
}

/** The server's rule for binding names: 1-256 characters, no `/`, no control characters. */
export function bindingNameError(name: string): string | null {
  if (!name) return 'Name the subject or group.';
  if (name.length > 256) return 'At most 256 characters.';
  // eslint-disable-next-line no-control-regex
  if (/[/\u0000-\u001f\u007f]/.test(name)) return "A name cannot contain '/' or control characters.";
  return null;
}

const seg = (s: string) => encodeURIComponent(s);

/** The governance calls, on the console's API client. */
export function governance(api: ApiClient) {
  return {
    audit(filters: AuditFilters, opts: { cursor?: string | null; limit?: number; signal?: AbortSignal } = {}): Promise<AuditPage> {
      const q = auditParams(filters);
      q.set('limit', String(opts.limit ?? 50));
      if (opts.cursor) q.set('cursor', opts.cursor);
      return api.request<AuditPage>('GET', `/gatehouse/v1/audit?${q.toString()}`, { signal: opts.signal });
    },
    listKeys(all: boolean, signal?: AbortSignal): Promise<{ items: ApiKey[] }> {
      return api.request<{ items: ApiKey[] }>('GET', `/gatehouse/v1/keys${all ? '?all=true' : ''}`, { signal });
    },
    createKey(req: CreateKeyRequest): Promise<CreatedKey> {
      return api.request<CreatedKey>('POST', '/gatehouse/v1/keys', { body: req });
    },
    revokeKey(id: string): Promise<void> {
      return api.request<void>('DELETE', `/gatehouse/v1/keys/${seg(id)}`);
    },
    listBindings(signal?: AbortSignal): Promise<BindingList> {
      return api.request<BindingList>('GET', '/gatehouse/v1/bindings', { signal });
    },
    putBinding(req: PutBindingRequest): Promise<Binding> {
      return api.request<Binding>('PUT', '/gatehouse/v1/bindings', { body: req });
    },
    deleteBinding(kind: BindingKind, name: string): Promise<void> {
      return api.request<void>('DELETE', `/gatehouse/v1/bindings/${seg(kind)}/${seg(name)}`);
    },
  };
}
