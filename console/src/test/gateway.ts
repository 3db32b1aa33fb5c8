// A fake gateway for component tests: answers /auth and /v1 from route handlers and
// records every request the console makes.

import { vi } from 'vitest';
import type { AuthConfig, Me, Sandbox } from '../types';

export interface Call {
  method: string;
  path: string;
  url: URL;
  headers: Record<string, string>;
  body: unknown;
  credentials: RequestCredentials | undefined;
}

export interface Reply {
  status: number;
  body?: unknown;
  /** A raw body (not JSON). */
  text?: string;
}

export type Handler = (call: Call) => Reply | undefined;

export const OIDC_CONFIG: AuthConfig = { oidc: true, loginUrl: '/auth/login', mode: 'api_key_and_user' };
export const PROXY_CONFIG: AuthConfig = { oidc: false, loginUrl: '/auth/login', mode: 'api_key_and_user' };

export const ALL_PERMISSIONS = [
  'sandbox:list',
  'sandbox:read',
  'sandbox:endpoint',
  'sandbox:create',
  'sandbox:delete',
  'sandbox:pause',
  'sandbox:resume',
  'sandbox:renew',
  'sandbox:metadata',
  'sandbox:proxy',
  'sandbox:diagnostics',
];

export const ALICE: Me = {
  subject: 'alice',
  team: 'team-a',
  role: 'operator',
  permissions: ALL_PERMISSIONS,
  csrfToken: 'csrf-alice-123',
  authMethod: 'session',
};

export const BOB: Me = {
  subject: 'bob',
  team: 'team-a',
  role: 'read_only',
  permissions: ['sandbox:list', 'sandbox:read', 'sandbox:endpoint'],
  csrfToken: 'csrf-bob-456',
  authMethod: 'session',
};

export const UNAUTHENTICATED: Reply = {
  status: 401,
  body: { code: 'GATEWAY::UNAUTHENTICATED', message: 'Authentication required.' },
};

export function sandbox(over: Partial<Sandbox> & { id: string }): Sandbox {
  return {
    image: { uri: 'gatehouse/busybox:latest' },
    status: { state: 'Running', reason: 'container_running', message: 'Sandbox is running.' },
    metadata: {
      'access.owner': 'alice.4kq0abcdefghijklmnop',
      'access.team': 'team-a.9zz1qrstuvwxyz012345',
      project: 'apollo',
    },
    entrypoint: ['sh', '-c', 'sleep infinity'],
    createdAt: new Date(Date.now() - 120_000).toISOString(),
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    ...over,
  };
}

export function listReply(items: Sandbox[], page = 1, pageSize = 20, totalItems = items.length): Reply {
  const totalPages = Math.ceil(totalItems / pageSize);
  return {
    status: 200,
    body: { items, pagination: { page, pageSize, totalItems, totalPages, hasNextPage: page < totalPages } },
  };
}

export interface FakeGateway {
  fetch: typeof fetch & ReturnType<typeof vi.fn>;
  calls: Call[];
  /** Calls other than /auth/config and /auth/me. */
  apiCalls: () => Call[];
  route: (method: string, path: string | RegExp, handler: Handler | Reply) => void;
}

export function fakeGateway(opts: { config?: AuthConfig | Reply; me?: Me | Reply } = {}): FakeGateway {
  const calls: Call[] = [];
  const routes: Array<{ method: string; path: string | RegExp; handler: Handler }> = [];
  const route = (method: string, path: string | RegExp, handler: Handler | Reply) => {
    const h: Handler = typeof handler === 'function' ? handler : () => handler;
    // Later routes win, so a test can override a default.
    routes.unshift({ method, path, handler: h });
  };
  const asReply = (v: AuthConfig | Me | Reply): Reply =>
    'status' in v && typeof v.status === 'number' ? (v as Reply) : { status: 200, body: v };

  route('GET', '/auth/config', asReply(opts.config ?? OIDC_CONFIG));
  route('GET', '/auth/me', asReply(opts.me ?? ALICE));

  const impl = async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(String(input), 'http://gatehouse.test');
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => {
      headers[k] = v;
    });
    const body = typeof init.body === 'string' && init.body ? JSON.parse(init.body) : undefined;
    const call: Call = {
      method: (init.method ?? 'GET').toUpperCase(),
      path: url.pathname,
      url,
      headers,
      body,
      credentials: init.credentials,
    };
    calls.push(call);
    if (init.signal?.aborted) throw new DOMException('aborted', 'AbortError');
    for (const r of routes) {
      if (r.method !== call.method) continue;
      const match = typeof r.path === 'string' ? r.path === url.pathname : r.path.test(url.pathname);
      if (!match) continue;
      const reply = r.handler(call);
      if (!reply) continue;
      const text = reply.text ?? (reply.body === undefined ? '' : JSON.stringify(reply.body));
      return new Response(reply.status === 204 ? null : text, {
        status: reply.status,
        headers: reply.text === undefined ? { 'Content-Type': 'application/json' } : { 'Content-Type': 'text/plain' },
      });
    }
    return new Response(JSON.stringify({ code: 'GATEWAY::UNKNOWN_ROUTE', message: `No route ${call.method} ${url.pathname}` }), {
      status: 404,
      headers: { 'Content-Type': 'application/json' },
    });
  };
  const fetch = vi.fn(impl) as unknown as FakeGateway['fetch'];
  return {
    fetch,
    calls,
    apiCalls: () => calls.filter((c) => !c.path.startsWith('/auth/config') && !c.path.startsWith('/auth/me')),
    route,
  };
}
