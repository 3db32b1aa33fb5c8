import { useId, useRef, type ReactNode } from 'react';
import { ApiError } from '../api';
import { Dialog } from './Dialog';
import { friendlyError } from '../friendly';

const TRANSITIONAL = new Set(['Pending', 'Pausing', 'Resuming', 'Stopping']);

export function isTransitional(state: string): boolean {
  return TRANSITIONAL.has(state);
}

/** A sandbox state as a colored badge; transitional states get a moving dot. */
export function StateBadge({ state }: { state: string }) {
  const known = /^[A-Za-z]+$/.test(state) ? state.toLowerCase() : 'unknown';
  return (
    <span className={`badge badge-${known}`} data-state={state}>
      {isTransitional(state) && <span className="pulse" aria-hidden="true" />}
      {state}
    </span>
  );
}

/**
 * An error in plain words with a next step; the API's code and the request id stay
 * visible for support. Raw engine text (registry addresses, dial errors) is not shown.
 */
export function ErrorBanner({ error, onDismiss }: { error: unknown; onDismiss?: () => void }) {
  if (!error) return null;
  const f = friendlyError(error);
  const code = error instanceof ApiError ? error.code : null;
  const requestId = error instanceof ApiError ? error.requestId : null;
  return (
    <div className="banner banner-error" role="alert">
      <p className="banner-message">{f.summary}</p>
      {f.showDetail && error instanceof Error && <p className="banner-detail">{error.message}</p>}
      {f.next && <p className="banner-next">{f.next}</p>}
      {(code || requestId) && (
        <p className="banner-meta">
          {code && <code>{code}</code>}
          {requestId && <span> · request {requestId}</span>}
        </p>
      )}
      {onDismiss && (
        <button type="button" className="btn btn-ghost btn-small" onClick={onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}

export function Notice({ children, tone = 'info' }: { children: ReactNode; tone?: 'info' | 'warning' | 'success' }) {
  return <div className={`banner banner-${tone}`}>{children}</div>;
}

/** A scope token (`alice.4kq0…`): the readable part, the full value in the title. */
export function Token({ value }: { value: string | null }) {
  if (!value) return <span className="muted">—</span>;
  const dot = value.indexOf('.');
  return (
    <span className="token" title={value}>
      {dot === -1 ? value : value.slice(0, dot)}
    </span>
  );
}

export interface ConfirmDialogProps {
  title: string;
  confirmLabel: string;
  onConfirm: () => void;
  onCancel: () => void;
  busy?: boolean;
  error?: unknown;
  children: ReactNode;
}

/** A confirm dialog; Cancel has the initial focus so Enter never destroys by accident. */
export function ConfirmDialog({ title, confirmLabel, onConfirm, onCancel, busy, error, children }: ConfirmDialogProps) {
  const cancelRef = useRef<HTMLButtonElement>(null);
  const bodyId = useId();
  return (
    <Dialog title={title} onClose={onCancel} initialFocus={cancelRef} describedBy={bodyId}>
      <div id={bodyId} className="dialog-body">
        {children}
      </div>
      <ErrorBanner error={error} />
      <div className="dialog-actions">
        <button ref={cancelRef} type="button" className="btn btn-secondary" onClick={onCancel}>
          Cancel
        </button>
        <button
          type="button"
          className="btn btn-danger"
          onClick={() => !busy && onConfirm()}
          aria-disabled={busy ? 'true' : undefined}
          aria-busy={busy ? 'true' : undefined}
        >
          {busy ? `${confirmLabel}…` : confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}

export function Spinner({ label }: { label: string }) {
  return (
    <span className="spinner-wrap">
      <span className="spinner" aria-hidden="true" />
      <span>{label}</span>
    </span>
  );
}
