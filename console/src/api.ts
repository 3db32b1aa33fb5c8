// A typed client for the gateway's same-origin /auth and /v1 endpoints.
//
// - Every request uses the session cookie (`credentials: 'same-origin'`); the browser
//   never holds an API key.
// - Mutating requests (POST, PUT, PATCH, DELETE) carry `X-CSRF-Token` and
//   `Content-Type: application/json`; reads never carry the token.
// - Any non-2xx answer becomes an `ApiError{status, code, message}`. The gateway and the
//   backend answer `{"code","message"}`; anything else (an HTML error page from a proxy,
//   an empty body) still gives a readable message.
// - A 401 from an API call calls `onUnauthorized` once and throws: the app switches to
//   its signed-out state. Nothing is retried.

import type {
  AgentMetrics,
  AuthConfig,
  CommandEvent,
  DiagnosticsResponse,
  CreateSandboxRequest,
  EndpointResponse,
  ListSandboxesParams,
  ListSandboxesResponse,
  Me,
  RenewResponse,
  Sandbox,
} from './types';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly requestId: string | null;

  constructor(status: number, code: string, message: string, requestId: string | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}

/** The message to show for any thrown value. */
export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error && e.message) return e.message;
  return 'Something went wrong.';
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RequestOptions {
  body?: unknown;
  signal?: AbortSignal;
  /**
   * The request is the sign-in probe (`/auth/me`) or the config: its 401 is an answer,
   * not a lost session, so `onUnauthorized` is not called.
   */
  authProbe?: boolean;
}

export interface ApiClientOptions {
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** The session's CSRF token (from /auth/me), or null when there is none. */
  getCsrfToken?: () => string | null;
  /** Called once per 401 answer of an API call (not of the auth probe). */
  onUnauthorized?: (error: ApiError) => void;
  /**
   * Wait before retrying a read that failed at the network level (the first retry waits
   * this long, the second twice as long). Defaults to 300 ms.
   */
  retryDelayMs?: number;
}

/**
 * How often a read (GET) is retried when the request never got an answer: a network
 * change (Wi-Fi, VPN, a new interface) makes the browser abort requests in flight, and a
 * read is safe to send again. Mutations are never retried here: the user decides.
 */
const READ_RETRIES = 2;

/** Whether a fetch failed because its caller aborted it (passed through as is). */
function isAbort(e: unknown): boolean {
  return (e instanceof DOMException || e instanceof Error) && e.name === 'AbortError';
}

/** The error for a request that got no answer at all. */
function networkError(): ApiError {
  return new ApiError(0, 'NETWORK_ERROR', 'Could not reach the gateway. Check your connection and try again.');
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad request',
  401: 'Authentication required',
  403: 'Forbidden',
  404: 'Not found',
  409: 'Conflict',
  413: 'Request too large',
  429: 'Too many requests',
  500: 'Internal server error',
  501: 'Not implemented',
  502: 'Bad gateway',
  503: 'Service unavailable',
  504: 'Gateway timeout',
};

/** Builds an ApiError from a non-2xx response body (JSON or not). */
export function parseError(status: number, statusText: string, bodyText: string, requestId: string | null = null): ApiError {
  const fallbackCode = `HTTP_${status}`;
  const trimmed = bodyText.trim();
  if (trimmed) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
        const o = parsed as Record<string, unknown>;
        const code = typeof o.code === 'string' && o.code ? o.code : fallbackCode;
        // FastAPI-style bodies carry `detail` instead of `message`.
        const message =
          typeof o.message === 'string' && o.message
            ? o.message
            : typeof o.detail === 'string' && o.detail
              ? o.detail
              : `${describeStatus(status, statusText)}.`;
        return new ApiError(status, code, message, requestId);
      }
    } catch {
      // Not JSON: fall through.
    }
    // A short plain-text body is worth showing; an HTML page is not.
    if (!trimmed.startsWith('<') && trimmed.length <= 300) {
      return new ApiError(status, fallbackCode, `${describeStatus(status, statusText)}: ${trimmed}`, requestId);
    }
  }
  return new ApiError(status, fallbackCode, `${describeStatus(status, statusText)}.`, requestId);
}

function describeStatus(status: number, statusText: string): string {
  const text = statusText || STATUS_TEXT[status] || 'Error';
  return `The gateway answered ${status} ${text}`;
}

/**
 * Encodes `key=value` filters the way the lifecycle API wants them: ONE `metadata`
 * parameter whose value is itself a URL-encoded query string
 * (`metadata=project%3Dapollo%26env%3Dprod`). Returns the complete `metadata=...` pair,
 * or '' for no filters.
 */
export function encodeMetadataFilter(pairs: ReadonlyArray<readonly [string, string]>): string {
  if (pairs.length === 0) return '';
  const inner = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return `metadata=${encodeURIComponent(inner)}`;
}

/** The query string (without `?`) of a list request. */
export function listQuery(params: ListSandboxesParams): string {
  const parts: string[] = [];
  for (const s of params.states ?? []) parts.push(`state=${encodeURIComponent(s)}`);
  const md = encodeMetadataFilter(params.metadata ?? []);
  if (md) parts.push(md);
  parts.push(`page=${params.page ?? 1}`);
  parts.push(`pageSize=${params.pageSize ?? 20}`);
  return parts.join('&');
}

const seg = (s: string | number) => encodeURIComponent(String(s));

export function sandboxPath(id: string): string {
  return `/v1/sandboxes/${seg(id)}`;
}

/** The in-sandbox agent's port (execd). */
export const AGENT_PORT = 44772;

/** The proxy route to the sandbox's agent. */
export function agentPath(id: string): string {
  return `/v1/sandboxes/${seg(id)}/proxy/${AGENT_PORT}`;
}

/**
 * Splits the agent's event stream into events: one JSON object per frame, frames ended
 * by a blank line (execd's framing); standard `data:` lines are accepted too.
 */
export class EventStreamParser {
  private buf = '';
  constructor(private readonly onEvent: (e: CommandEvent) => void) {}

  push(chunk: string): void {
    this.buf += chunk;
    let i;
    while ((i = this.buf.indexOf('\n\n')) !== -1) {
      const frame = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      this.frame(frame);
    }
  }

  end(): void {
    if (this.buf.trim()) this.frame(this.buf);
    this.buf = '';
  }

  private frame(frame: string): void {
    const text = frame
      .split('\n')
      .map((l) => (l.startsWith('data:') ? l.slice(5).trimStart() : l))
      .join('\n')
      .trim();
    if (!text) return;
    try {
      const v: unknown = JSON.parse(text);
      if (v && typeof v === 'object' && typeof (v as CommandEvent).type === 'string') this.onEvent(v as CommandEvent);
    } catch {
      // Not an event (a comment or a partial frame at the end): skipped.
    }
  }
}

/** The same-origin proxy URL the console opens in a new tab. */
export function proxyPath(id: string, port: number): string {
  return `/v1/sandboxes/${seg(id)}/proxy/${seg(port)}/`;
}

/** The server-proxy endpoint comes without a scheme: add this page's. */
export function endpointUrl(endpoint: string, protocol: string = window.location.protocol): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint)) return endpoint;
  return `${protocol}//${endpoint}`;
}

export class ApiClient {
  private readonly fetchImpl: typeof fetch;
  private readonly getCsrfToken: () => string | null;
  private readonly onUnauthorized: ((e: ApiError) => void) | undefined;
  private readonly retryDelayMs: number;

  constructor(opts: ApiClientOptions = {}) {
    this.fetchImpl = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.getCsrfToken = opts.getCsrfToken ?? (() => null);
    this.onUnauthorized = opts.onUnauthorized;
    this.retryDelayMs = opts.retryDelayMs ?? 300;
  }

  async request<T>(method: HttpMethod, path: string, opts: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (MUTATING.has(method)) {
      headers['Content-Type'] = 'application/json';
      const token = this.getCsrfToken();
      if (token) headers['X-CSRF-Token'] = token;
    }
    const init: RequestInit = {
      method,
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      redirect: 'follow',
    };
    if (opts.body !== undefined) init.body = JSON.stringify(opts.body);
    if (opts.signal) init.signal = opts.signal;

    const retries = MUTATING.has(method) ? 0 : READ_RETRIES;
    let res: Response;
    for (let attempt = 0; ; attempt++) {
      try {
        res = await this.fetchImpl(path, init);
        break;
      } catch (e) {
        if (isAbort(e)) throw e;
        if (attempt < retries && !opts.signal?.aborted) {
          await new Promise((resolve) => setTimeout(resolve, this.retryDelayMs * (attempt + 1)));
          continue;
        }
        throw networkError();
      }
    }

    const requestId = res.headers.get('X-Request-ID');
    const text = res.status === 204 ? '' : await res.text();
    if (!res.ok) {
      const err = parseError(res.status, res.statusText, text, requestId);
      if (res.status === 401 && !opts.authProbe) this.onUnauthorized?.(err);
      throw err;
    }
    if (!text.trim()) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(res.status, 'INVALID_RESPONSE', 'The gateway sent a response the console could not read.', requestId);
    }
  }

  // ---- /auth ----

  authConfig(signal?: AbortSignal): Promise<AuthConfig> {
    return this.request<AuthConfig>('GET', '/auth/config', { signal, authProbe: true });
  }

  me(signal?: AbortSignal): Promise<Me> {
    return this.request<Me>('GET', '/auth/me', { signal, authProbe: true });
  }

  logout(): Promise<{ redirect?: string } | undefined> {
    return this.request<{ redirect?: string } | undefined>('POST', '/auth/logout', { authProbe: true });
  }

  // ---- /v1/sandboxes ----

  listSandboxes(params: ListSandboxesParams, signal?: AbortSignal): Promise<ListSandboxesResponse> {
    return this.request<ListSandboxesResponse>('GET', `/v1/sandboxes?${listQuery(params)}`, { signal });
  }

  getSandbox(id: string, signal?: AbortSignal): Promise<Sandbox> {
    return this.request<Sandbox>('GET', sandboxPath(id), { signal });
  }

  createSandbox(req: CreateSandboxRequest): Promise<Sandbox> {
    return this.request<Sandbox>('POST', '/v1/sandboxes', { body: req });
  }

  deleteSandbox(id: string): Promise<void> {
    return this.request<void>('DELETE', sandboxPath(id));
  }

  pauseSandbox(id: string): Promise<void> {
    return this.request<void>('POST', `${sandboxPath(id)}/pause`);
  }

  resumeSandbox(id: string): Promise<void> {
    return this.request<void>('POST', `${sandboxPath(id)}/resume`);
  }

  renewExpiration(id: string, expiresAt: string): Promise<RenewResponse> {
    return this.request<RenewResponse>('POST', `${sandboxPath(id)}/renew-expiration`, { body: { expiresAt } });
  }

  /** JSON merge patch: a `null` value deletes the key. */
  patchMetadata(id: string, patch: Record<string, string | null>): Promise<Sandbox> {
    return this.request<Sandbox>('PATCH', `${sandboxPath(id)}/metadata`, { body: patch });
  }

  /** The sandbox's own output (stdout and stderr of its entrypoint), last lines. */
  logs(id: string, signal?: AbortSignal): Promise<DiagnosticsResponse> {
    return this.request<DiagnosticsResponse>('GET', `${sandboxPath(id)}/diagnostics/logs?scope=container`, { signal });
  }

  /** Live CPU and memory from the in-sandbox agent, through the proxy route. */
  metrics(id: string, signal?: AbortSignal): Promise<AgentMetrics> {
    return this.request<AgentMetrics>('GET', `${agentPath(id)}/metrics`, { signal });
  }

  /**
   * Runs a shell command in the sandbox through its agent (the proxy route to the agent's
   * port; the backend adds the agent's token) and calls `onEvent` for each event of the
   * streamed answer as it arrives.
   */
  /** A single-use URL that opens a sandbox port on its own origin (`POST /auth/sandbox-handoff`). */
  async sandboxHandoff(id: string, port: number): Promise<string> {
    const q = new URLSearchParams({ sandbox: id, port: String(port) });
    const r = await this.request<{ url: string }>('POST', `/auth/sandbox-handoff?${q.toString()}`);
    return r.url;
  }

  async runCommand(id: string, command: string, onEvent: (e: CommandEvent) => void, signal?: AbortSignal): Promise<void> {
    const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'text/event-stream' };
    const token = this.getCsrfToken();
    if (token) headers['X-CSRF-Token'] = token;
    const init: RequestInit = {
      method: 'POST',
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      body: JSON.stringify({ command, timeout: 60_000 }),
    };
    if (signal) init.signal = signal;
    let res: Response;
    try {
      res = await this.fetchImpl(`${agentPath(id)}/command`, init);
    } catch (e) {
      if (isAbort(e)) throw e;
      throw networkError();
    }
    if (!res.ok) {
      const err = parseError(res.status, res.statusText, await res.text(), res.headers.get('X-Request-ID'));
      if (res.status === 401) this.onUnauthorized?.(err);
      throw err;
    }
    const parser = new EventStreamParser(onEvent);
    if (!res.body) {
      parser.push(await res.text());
      parser.end();
      return;
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.push(decoder.decode(value, { stream: true }));
    }
    parser.end();
  }

  getEndpoint(id: string, port: number, signal?: AbortSignal): Promise<EndpointResponse> {
    return this.request<EndpointResponse>(
      'GET',
      `${sandboxPath(id)}/endpoints/${seg(port)}?use_server_proxy=true`,
      { signal },
    );
  }
}
