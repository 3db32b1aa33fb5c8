// Types of the gateway's /auth endpoints and of the OpenSandbox lifecycle API
// (shared/reference/opensandbox-api/sandbox-lifecycle.yml), as far as the console uses them.

export type AuthMode = 'api_key_and_user' | 'api_key_only';

export interface AuthConfig {
  oidc: boolean;
  loginUrl: string;
  mode: AuthMode;
  /** Sandbox ports open on their own origins through a hand-off (`server.sandbox_domain`). */
  sandboxOrigins?: boolean;
}

export interface Me {
  subject: string;
  team: string | null;
  role: string;
  permissions: string[];
  csrfToken: string | null;
  authMethod: string;
  /** Roles that allow nothing beyond the caller's own: what a new API key may carry. */
  assignableRoles?: string[];
}

export type SandboxStateName =
  | 'Pending'
  | 'Running'
  | 'Pausing'
  | 'Paused'
  | 'Resuming'
  | 'Stopping'
  | 'Terminated'
  | 'Failed';

export interface SandboxStatus {
  /** One of SandboxStateName; unknown future states are shown as they come. */
  state: string;
  reason?: string;
  message?: string;
  lastTransitionAt?: string;
}

export interface ImageSpec {
  uri: string;
}

export interface Sandbox {
  id: string;
  image?: ImageSpec;
  snapshotId?: string;
  status: SandboxStatus;
  metadata?: Record<string, string>;
  entrypoint: string[];
  expiresAt?: string | null;
  createdAt: string;
}

export interface Pagination {
  page: number;
  pageSize: number;
  totalItems: number;
  totalPages: number;
  hasNextPage: boolean;
}

export interface ListSandboxesResponse {
  items: Sandbox[];
  pagination: Pagination;
}

export interface ListSandboxesParams {
  states?: string[];
  /** `key=value` filters, ANDed by the server. */
  metadata?: Array<[string, string]>;
  page?: number;
  pageSize?: number;
}

export interface CreateSandboxRequest {
  image: ImageSpec;
  entrypoint: string[];
  timeout?: number;
  resourceLimits?: Record<string, string>;
  env?: Record<string, string>;
  metadata?: Record<string, string>;
}

export interface RenewResponse {
  expiresAt: string;
}

export interface EndpointResponse {
  endpoint: string;
  headers?: Record<string, string>;
}

/** The actions of the gateway's role table that the console cares about. */
export type Permission =
  | 'sandbox:list'
  | 'sandbox:read'
  | 'sandbox:endpoint'
  | 'sandbox:create'
  | 'sandbox:delete'
  | 'sandbox:pause'
  | 'sandbox:resume'
  | 'sandbox:renew'
  | 'sandbox:metadata'
  | 'sandbox:proxy'
  | 'sandbox:diagnostics';

/** `GET /sandboxes/{id}/diagnostics/logs?scope=container`. */
export interface DiagnosticsResponse {
  content: string;
  truncated?: boolean;
}

/** The agent's `GET /metrics` (execd contract). */
export interface AgentMetrics {
  cpu_count: number;
  cpu_used_pct: number;
  mem_total_mib: number;
  mem_used_mib: number;
  timestamp: number;
}

/** One event of the agent's command stream. */
export interface CommandEvent {
  type: string;
  text?: string;
  error?: { ename: string; evalue: string; traceback?: string[] };
  execution_count?: number;
  execution_time?: number;
}
