import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../api';
import { useAnnounce, useApi, useSession } from '../context';
import { useNow, usePolling } from '../hooks';
import { can, denyReason } from '../permissions';
import { Link, navigate, paths } from '../router';
import type { Sandbox } from '../types';
import { expiryText, formatDateTime, ownerOf, teamOf, userMetadata } from '../format';
import { joinCommand, validateMetadataKey, validateMetadataValue } from '../validation';
import { ActionButton } from '../components/ActionButton';
import { ConfirmDialog, ErrorBanner, Notice, Spinner, StateBadge, Token, isTransitional } from '../components/common';
import { LogsPanel } from '../components/LogsPanel';
import { PortsPanel } from '../components/PortsPanel';
import { ResourcesPanel } from '../components/ResourcesPanel';
import { Terminal } from '../components/Terminal';
import { DateTime } from '../components/DateTime';
import { useToast } from '../context';
import { explainStatus } from '../friendly';
import { LIVE_REFRESH_MS, canFollowEvents, useLifecycleEvents } from '../events';

export { parsePort } from '../components/PortsPanel';

/** Renewal choices: how much to add to the current expiry (or to now, if it has passed). */
export const RENEW_CHOICES = [
  { label: '15 minutes', ms: 15 * 60_000 },
  { label: '1 hour', ms: 3_600_000 },
  { label: '4 hours', ms: 4 * 3_600_000 },
  { label: '24 hours', ms: 24 * 3_600_000 },
] as const;

/** Remembered for the page's lifetime once the backend answers 501 to pause or resume. */
let pauseUnsupported = false;
export function resetPauseSupportForTests(): void {
  pauseUnsupported = false;
}

export function renewTarget(expiresAt: string, addMs: number, now: number): string {
  const current = Date.parse(expiresAt);
  const from = Number.isNaN(current) ? now : Math.max(now, current);
  return new Date(from + addMs).toISOString();
}

export function SandboxDetail({ id }: { id: string }) {
  const api = useApi();
  const { me } = useSession();
  const announce = useAnnounce();
  const toast = useToast();
  const [sandbox, setSandbox] = useState<Sandbox | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [gone, setGone] = useState(false);
  const [actionError, setActionError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [deleteError, setDeleteError] = useState<unknown>(null);
  const [noPause, setNoPause] = useState(pauseUnsupported);
  const [renewChoice, setRenewChoice] = useState(1);
  const [nonce, setNonce] = useState(0);
  const lastJson = useRef('');
  const now = useNow(1000);
  const renewSelectId = useId();

  useEffect(() => {
    document.title = `Sandbox ${id} · Gatehouse`;
  }, [id]);

  const state = sandbox?.status.state ?? '';
  const lastState = useRef('');
  lastState.current = state;
  // Live updates: an event about this sandbox re-fetches it; the poll below slows to a
  // safety net while the stream is up.
  const live = useLifecycleEvents(() => setNonce((n) => n + 1), !gone && canFollowEvents(me), id);
  const liveRef = useRef(live);
  liveRef.current = live;

  usePolling(
    async (signal) => {
      try {
        const s = await api.getSandbox(id, signal);
        if (signal.aborted) return false;
        const json = JSON.stringify(s);
        if (json !== lastJson.current) {
          lastJson.current = json;
          setSandbox(s);
        }
        setLoadError(null);
      } catch (e) {
        if (signal.aborted) return false;
        if (e instanceof ApiError && e.status === 404) {
          setGone(true);
          return false;
        }
        setLoadError(e);
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return false;
      }
      return true;
    },
    () => (isTransitional(lastState.current) ? 1500 : liveRef.current ? LIVE_REFRESH_MS : 5000),
    `${id}|${nonce}`,
  );
  const refresh = () => setNonce((n) => n + 1);

  const run = async (name: string, fn: () => Promise<unknown>, done: string) => {
    if (busy) return;
    setBusy(name);
    setActionError(null);
    try {
      await fn();
      announce(done);
      refresh();
    } catch (e) {
      if (e instanceof ApiError && e.status === 501 && (name === 'pause' || name === 'resume')) {
        pauseUnsupported = true;
        setNoPause(true);
        announce('Pause and resume are not supported by this backend.');
      } else if (e instanceof ApiError && e.status === 409 && name === 'renew') {
        setActionError(
          new ApiError(e.status, e.code, `${e.message} (A sandbox without an expiry time cannot be renewed.)`, e.requestId),
        );
      } else {
        setActionError(e);
      }
    } finally {
      setBusy(null);
    }
  };

  const doDelete = async () => {
    setBusy('delete');
    setDeleteError(null);
    try {
      await api.deleteSandbox(id);
      setConfirmDelete(false);
      announce(`Sandbox ${id} deleted.`);
      toast(`Sandbox ${sandboxLabel(sandbox, id)} deleted.`);
      navigate(paths.list());
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        setConfirmDelete(false);
        announce(`Sandbox ${id} was already gone.`);
        navigate(paths.list());
        return;
      }
      setDeleteError(e);
    } finally {
      setBusy(null);
    }
  };

  if (gone) {
    return (
      <section aria-labelledby="detail-title">
        <BackLink />
        <h1 id="detail-title" tabIndex={-1}>
          Sandbox not found
        </h1>
        <p>
          There is no sandbox <code>{id}</code> that you can see. It may have been deleted or may have expired.
        </p>
      </section>
    );
  }

  if (!sandbox) {
    return (
      <section aria-labelledby="detail-title">
        <BackLink />
        <h1 id="detail-title" tabIndex={-1} className="mono-title">
          Sandbox {id}
        </h1>
        {loadError ? <ErrorBanner error={loadError} /> : <Spinner label="Loading sandbox…" />}
      </section>
    );
  }

  const hasExpiry = !!sandbox.expiresAt;
  const renewReason =
    denyReason(me, 'sandbox:renew') ??
    (hasExpiry ? null : 'This sandbox has no expiry time (manual cleanup), so there is nothing to renew.');
  const pauseReason = denyReason(me, 'sandbox:pause') ?? (state === 'Running' ? null : 'Only a running sandbox can be paused.');
  const resumeReason =
    denyReason(me, 'sandbox:resume') ?? (state === 'Paused' ? null : 'Only a paused sandbox can be resumed.');
  const deleteReason = denyReason(me, 'sandbox:delete');
  const readOnly = (['sandbox:renew', 'sandbox:pause', 'sandbox:resume', 'sandbox:delete'] as const).every(
    (p) => denyReason(me, p) !== null,
  );
  const choice = RENEW_CHOICES[renewChoice]!;
  const explained = explainStatus(sandbox.status);
  const proxyBlocked =
    state === 'Paused' || state === 'Pausing'
      ? 'The sandbox is paused: resume it to open its ports.'
      : state === 'Running'
        ? null
        : `The sandbox is ${state.toLowerCase() || 'not running'}: only a running sandbox answers.`;
  const renewPreview = hasExpiry ? renewTarget(sandbox.expiresAt!, choice.ms, now) : null;

  return (
    <section aria-labelledby="detail-title" className="detail">
      <BackLink />
      <div className="page-head">
        <h1 id="detail-title" tabIndex={-1} className="mono-title">
          <span className="sr-only">Sandbox</span>{' '}
          {sandbox.metadata?.name && <span className="sandbox-name">{sandbox.metadata.name}</span>}
          {sandbox.id}
        </h1>
        <StateBadge state={state} />
      </div>

      <ErrorBanner error={loadError} />

      {explained && (
        <div className={`banner ${state === 'Failed' ? 'banner-error' : 'banner-warning'}`} data-testid="status-explained">
          <p className="banner-message">{explained.summary}</p>
          {explained.next && <p className="banner-next">{explained.next}</p>}
        </div>
      )}

      {readOnly && (
        <Notice>
          Your role ({me.role}) can look at this sandbox but not change it. Each disabled button says why.
        </Notice>
      )}

      <div className="toolbar" role="group" aria-label="Sandbox actions">
        <div className="renew-group">
          <label htmlFor={renewSelectId}>Extend by</label>
          <select
            id={renewSelectId}
            value={renewChoice}
            onChange={(e) => setRenewChoice(Number(e.target.value))}
            disabled={!!renewReason}
          >
            {RENEW_CHOICES.map((c, i) => (
              <option key={c.label} value={i}>
                {c.label}
              </option>
            ))}
          </select>
          <ActionButton
            disabledReason={renewReason}
            busy={busy === 'renew'}
            onClick={() =>
              void run(
                'renew',
                () => api.renewExpiration(id, renewTarget(sandbox.expiresAt!, choice.ms, Date.now())),
                `Sandbox renewed by ${choice.label}.`,
              )
            }
          >
            Renew
          </ActionButton>
        </div>
        {noPause ? (
          <p className="muted small" data-testid="pause-unsupported">
            Pause and resume are not supported by this backend.
          </p>
        ) : (
          <>
            <ActionButton
              disabledReason={pauseReason}
              busy={busy === 'pause'}
              onClick={() => void run('pause', () => api.pauseSandbox(id), 'Pause requested.')}
            >
              Pause
            </ActionButton>
            <ActionButton
              disabledReason={resumeReason}
              busy={busy === 'resume'}
              onClick={() => void run('resume', () => api.resumeSandbox(id), 'Resume requested.')}
            >
              Resume
            </ActionButton>
          </>
        )}
        <div className="toolbar-end">
          <ActionButton
            variant="danger"
            disabledReason={deleteReason}
            onClick={() => {
              setDeleteError(null);
              setConfirmDelete(true);
            }}
          >
            Delete
          </ActionButton>
        </div>
      </div>
      {renewPreview && !renewReason && (
        <p className="hint">New expiry after renewing: {formatDateTime(renewPreview)}.</p>
      )}

      <ErrorBanner error={actionError} onDismiss={() => setActionError(null)} />

      <div className="panels">
        <section className="panel" aria-labelledby="status-title">
          <h2 id="status-title">Overview</h2>
          <dl className="facts">
            <dt>State</dt>
            <dd>
              <StateBadge state={state} />
              {sandbox.status.reason && (
                <span className="status-reason">
                  {' '}
                  <code>{sandbox.status.reason}</code>
                </span>
              )}
              {sandbox.status.message && <p className="status-message">{sandbox.status.message}</p>}
              {sandbox.status.lastTransitionAt && (
                <p className="muted small">
                  since <DateTime iso={sandbox.status.lastTransitionAt} now={now} />
                </p>
              )}
            </dd>
            <dt>Image</dt>
            <dd className="mono break">{sandbox.image?.uri ?? (sandbox.snapshotId ? `snapshot ${sandbox.snapshotId}` : '—')}</dd>
            <dt>Entrypoint</dt>
            <dd>
              <code className="break">{joinCommand(sandbox.entrypoint ?? [])}</code>
              <details className="small">
                <summary>As an array</summary>
                <pre className="pre">{JSON.stringify(sandbox.entrypoint ?? [])}</pre>
              </details>
            </dd>
            <dt>Owner</dt>
            <dd>
              <Token value={ownerOf(sandbox.metadata)} />
            </dd>
            <dt>Team</dt>
            <dd>
              <Token value={teamOf(sandbox.metadata)} />
            </dd>
            <dt>Created</dt>
            <dd>
              <DateTime iso={sandbox.createdAt} now={now} />
            </dd>
            <dt>Expires</dt>
            <dd data-testid="expiry">
              {hasExpiry ? (
                <>
                  {formatDateTime(sandbox.expiresAt, true)}{' '}
                  <span className={`countdown${Date.parse(sandbox.expiresAt!) - now < 5 * 60_000 ? ' countdown-soon' : ''}`}>
                    ({expiryText(sandbox.expiresAt, now)})
                  </span>
                </>
              ) : (
                'No expiry (deleted manually)'
              )}
            </dd>
          </dl>
        </section>

        <ResourcesPanel id={id} running={state === 'Running'} pausedReason={state === 'Paused' ? proxyBlocked : null} />
        <PortsPanel id={id} proxyBlocked={proxyBlocked} stopped={state === 'Failed' || state === 'Terminated'} />
        <LogsPanel id={id} live={state === 'Running' || isTransitional(state)} />
        {can(me, 'sandbox:proxy') && <Terminal id={id} blocked={proxyBlocked} />}
        <MetadataPanel sandbox={sandbox} onChanged={(s) => {
          lastJson.current = JSON.stringify(s);
          setSandbox(s);
        }} />
      </div>

      {confirmDelete && (
        <ConfirmDialog
          title="Delete this sandbox?"
          confirmLabel="Delete sandbox"
          busy={busy === 'delete'}
          error={deleteError}
          onCancel={() => setConfirmDelete(false)}
          onConfirm={() => void doDelete()}
        >
          <p>
            Sandbox <code>{id}</code> will be stopped and removed, with everything inside it. This cannot be undone.
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}

function BackLink() {
  return (
    <p className="back">
      <Link to={paths.list()}>← All sandboxes</Link>
    </p>
  );
}

function MetadataPanel({ sandbox, onChanged }: { sandbox: Sandbox; onChanged: (s: Sandbox) => void }) {
  const api = useApi();
  const { me } = useSession();
  const announce = useAnnounce();
  const [key, setKey] = useState('');
  const [value, setValue] = useState('');
  const [errors, setErrors] = useState<{ key?: string | null; value?: string | null }>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const keyId = useId();
  const valueId = useId();
  const reason = denyReason(me, 'sandbox:metadata');
  const entries = userMetadata(sandbox.metadata);

  const patch = async (p: Record<string, string | null>, done: string) => {
    setBusy(true);
    setError(null);
    try {
      const s = await api.patchMetadata(sandbox.id, p);
      if (s && typeof s === 'object' && 'id' in s) onChanged(s);
      announce(done);
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  };

  const add = async (e: FormEvent) => {
    e.preventDefault();
    if (reason || busy) return;
    const k = key.trim();
    const v = value.trim();
    const next = { key: validateMetadataKey(k), value: validateMetadataValue(v) };
    setErrors(next);
    if (next.key || next.value) return;
    if (await patch({ [k]: v }, `Metadata ${k} saved.`)) {
      setKey('');
      setValue('');
    }
  };

  return (
    <section className="panel" aria-labelledby="metadata-title">
      <h2 id="metadata-title">Metadata</h2>
      {entries.length === 0 ? (
        <p className="muted">No metadata.</p>
      ) : (
        <table className="table kv">
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Value</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {entries.map(([k, v]) => (
              <tr key={k}>
                <th scope="row" className="mono break">
                  {k}
                </th>
                <td className="mono break">{v || <span className="muted">(empty)</span>}</td>
                <td className="cell-actions">
                  <ActionButton
                    variant="ghost"
                    className="btn-small"
                    disabledReason={reason}
                    busy={busy}
                    aria-label={`Remove metadata ${k}`}
                    onClick={() => void patch({ [k]: null }, `Metadata ${k} removed.`)}
                  >
                    Remove
                  </ActionButton>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="kv-form" onSubmit={add} noValidate aria-label="Add metadata">
        <div className="field">
          <label htmlFor={keyId}>Key</label>
          <input
            id={keyId}
            type="text"
            value={key}
            autoComplete="off"
            spellCheck={false}
            disabled={!!reason}
            onChange={(e) => setKey(e.target.value)}
            aria-invalid={errors.key ? 'true' : undefined}
            aria-describedby={errors.key ? `${keyId}-err` : undefined}
          />
          {errors.key && (
            <p id={`${keyId}-err`} className="field-error">
              {errors.key}
            </p>
          )}
        </div>
        <div className="field">
          <label htmlFor={valueId}>Value</label>
          <input
            id={valueId}
            type="text"
            value={value}
            autoComplete="off"
            spellCheck={false}
            disabled={!!reason}
            onChange={(e) => setValue(e.target.value)}
            aria-invalid={errors.value ? 'true' : undefined}
            aria-describedby={errors.value ? `${valueId}-err` : undefined}
          />
          {errors.value && (
            <p id={`${valueId}-err`} className="field-error">
              {errors.value}
            </p>
          )}
        </div>
        <div className="field field-submit">
          <ActionButton type="submit" disabledReason={reason} busy={busy}>
            Save metadata
          </ActionButton>
        </div>
      </form>
      <ErrorBanner error={error} />
      {reason === null && (
        <Notice>
          Owner and team come from the gateway and cannot be edited. Keys follow Kubernetes label rules.
        </Notice>
      )}
    </section>
  );
}


/** `name (id)` when the sandbox has a name, else its id. */
function sandboxLabel(s: Sandbox | null, id: string): string {
  const name = s?.metadata?.name;
  return name ? `${name} (${id})` : id;
}
