import { useCallback, useEffect, useId, useMemo, useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../api';
import { useAnnounce, useApi, useSession } from '../context';
import { formatDateTime } from '../format';
import { governance, keyNameError, keyState, type ApiKey, type CreatedKey } from '../governance';
import { useNow } from '../hooks';
import { ConfirmDialog, ErrorBanner } from '../components/common';
import { copyText } from '../clipboard';

/** The expiries offered, in days (the gateway allows 1 to 365). */
export const EXPIRY_DAYS = [7, 30, 90, 365] as const;
const DEFAULT_DAYS = 90;

const STATE_BADGE = { active: 'badge-running', expired: 'badge-terminated', revoked: 'badge-failed' } as const;

export function ApiKeys() {
  const api = useApi();
  const gov = useMemo(() => governance(api), [api]);
  const { me } = useSession();
  const announce = useAnnounce();
  const isAdmin = me.role === 'service_admin';
  const [all, setAll] = useState(false);
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<CreatedKey | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [revokeBusy, setRevokeBusy] = useState(false);
  const [revokeError, setRevokeError] = useState<unknown>(null);

  useEffect(() => {
    document.title = 'API keys · Gatehouse';
  }, []);

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        const res = await gov.listKeys(all, signal);
        if (signal?.aborted) return;
        setKeys(res.items);
        setError(null);
      } catch (e) {
        if (signal?.aborted) return;
        setError(e);
      }
    },
    [gov, all],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    return () => ctrl.abort();
  }, [load]);

  const onCreated = (k: CreatedKey) => {
    setCreated(k);
    announce(`Key ${k.name} created. Copy it now: it is shown only once.`);
    void load();
  };

  const revoke = async () => {
    if (!revoking || revokeBusy) return;
    setRevokeBusy(true);
    setRevokeError(null);
    try {
      await gov.revokeKey(revoking.id);
      announce(`Key ${revoking.name} revoked.`);
      setRevoking(null);
      await load();
    } catch (e) {
      setRevokeError(e);
    } finally {
      setRevokeBusy(false);
    }
  };

  return (
    <section aria-labelledby="keys-title">
      <div className="page-head">
        <h1 id="keys-title" tabIndex={-1}>
          API keys
        </h1>
      </div>
      <p className="muted">
        A personal key acts as you ({me.subject}
        {me.team ? `, team ${me.team}` : ''}) with the role you give it, for the OpenSandbox SDK, CLI and scripts. The
        gateway keeps only a hash: a key is shown once, when it is created.
      </p>

      {created ? <NewKey created={created} onDone={() => setCreated(null)} /> : <CreateKeyForm onCreated={onCreated} />}

      <div className="list-status">
        <h2 className="list-count">{all ? 'Every key' : 'Your keys'}</h2>
        {isAdmin && (
          <label className="inline-check">
            <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} />
            Show every user's keys
          </label>
        )}
      </div>
      <ErrorBanner error={error} />
      {keys === null ? (
        !error && (
          <p className="muted" aria-busy="true">
            Loading keys…
          </p>
        )
      ) : keys.length === 0 ? (
        <div className="empty" data-testid="empty-state">
          <p>{all ? 'There are no keys yet.' : 'You have no API keys yet.'}</p>
        </div>
      ) : (
        <KeyTable keys={keys} showOwner={all} onRevoke={(k) => {
          setRevokeError(null);
          setRevoking(k);
        }} />
      )}

      {revoking && (
        <ConfirmDialog
          title="Revoke this key?"
          confirmLabel="Revoke key"
          onConfirm={() => void revoke()}
          onCancel={() => setRevoking(null)}
          busy={revokeBusy}
          error={revokeError}
        >
          <p>
            <strong>{revoking.name}</strong> (<span className="mono">{revoking.prefix}…</span>) stops working at once.
            Anything that uses it will be refused. This cannot be undone.
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}

function KeyTable({ keys, showOwner, onRevoke }: { keys: ApiKey[]; showOwner: boolean; onRevoke: (k: ApiKey) => void }) {
  const now = useNow(30_000);
  return (
    <div className="table-wrap">
      <table className="table keys" aria-label="API keys">
        <thead>
          <tr>
            <th scope="col">Name</th>
            {showOwner && <th scope="col">Owner</th>}
            <th scope="col">Role</th>
            <th scope="col">Team</th>
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
            <th scope="col">Last used</th>
            <th scope="col">State</th>
            <th scope="col">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => {
            const state = keyState(k, now);
            return (
              <tr key={k.id} data-testid="key-row" data-key-id={k.id} data-state={state}>
                <th scope="row" data-label="Name">
                  <span>
                    <span className="block">{k.name}</span>
                    <span className="muted small mono block">{k.prefix}…</span>
                  </span>
                </th>
                {showOwner && <td data-label="Owner">{k.subject}</td>}
                <td data-label="Role">{k.role}</td>
                <td data-label="Team">{k.team ?? <span className="muted">—</span>}</td>
                <td data-label="Created">{formatDateTime(k.createdAt)}</td>
                <td data-label="Expires">{k.expiresAt ? formatDateTime(k.expiresAt) : 'never'}</td>
                <td data-label="Last used" data-testid="last-used">
                  {k.lastUsedAt ? formatDateTime(k.lastUsedAt) : <span className="muted">never</span>}
                </td>
                <td data-label="State">
                  <span className={`badge ${STATE_BADGE[state]}`}>{state}</span>
                </td>
                <td className="cell-actions" data-label="Actions">
                  {state !== 'revoked' && (
                    <button type="button" className="btn btn-danger btn-small" onClick={() => onRevoke(k)} aria-label={`Revoke ${k.name}`}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function CreateKeyForm({ onCreated }: { onCreated: (k: CreatedKey) => void }) {
  const api = useApi();
  const gov = useMemo(() => governance(api), [api]);
  const { me } = useSession();
  const isAdmin = me.role === 'service_admin';
  const roles = me.assignableRoles?.length ? me.assignableRoles : [me.role];
  const [name, setName] = useState('');
  const [role, setRole] = useState(me.role);
  const [days, setDays] = useState<number>(DEFAULT_DAYS);
  const [team, setTeam] = useState('');
  const [nameError, setNameError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const ids = { name: useId(), role: useId(), days: useId(), team: useId(), nameErr: useId(), nameHint: useId() };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    const err = keyNameError(name);
    setNameError(err);
    if (err) {
      document.getElementById(ids.name)?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const t = team.trim();
      const k = await gov.createKey({ name: name.trim(), role, expiresInDays: days, ...(isAdmin && t ? { team: t } : {}) });
      setName('');
      setTeam('');
      onCreated(k);
    } catch (e2) {
      setError(e2);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="form panel" onSubmit={submit} noValidate aria-labelledby="create-key-title">
      <h2 id="create-key-title">Create a key</h2>
      <div className="grid-3">
        <div className={`field${nameError ? ' field-invalid' : ''}`}>
          <label htmlFor={ids.name}>Key name</label>
          <input
            id={ids.name}
            type="text"
            value={name}
            placeholder="ci-pipeline"
            autoComplete="off"
            spellCheck={false}
            maxLength={64}
            aria-invalid={nameError ? 'true' : undefined}
            aria-describedby={nameError ? `${ids.nameErr} ${ids.nameHint}` : ids.nameHint}
            onChange={(e) => {
              setName(e.target.value);
              setNameError(null);
            }}
          />
          <p id={ids.nameHint} className="hint">
            Where it is used, so you recognise it later.
          </p>
          {nameError && (
            <p id={ids.nameErr} className="field-error" data-testid="key-name-error">
              {nameError}
            </p>
          )}
        </div>
        <div className="field">
          <label htmlFor={ids.role}>Role</label>
          <select id={ids.role} value={role} onChange={(e) => setRole(e.target.value)}>
            {roles.map((r) => (
              <option key={r} value={r}>
                {r}
                {r === me.role ? ' (yours)' : ''}
              </option>
            ))}
          </select>
          <p className="hint">At most what your own role ({me.role}) allows.</p>
        </div>
        <div className="field">
          <label htmlFor={ids.days}>Expires after</label>
          <select id={ids.days} value={days} onChange={(e) => setDays(Number(e.target.value))}>
            {EXPIRY_DAYS.map((d) => (
              <option key={d} value={d}>
                {d} days
              </option>
            ))}
          </select>
        </div>
        {isAdmin && (
          <div className="field">
            <label htmlFor={ids.team}>Team (a team key)</label>
            <input
              id={ids.team}
              type="text"
              value={team}
              placeholder={me.team ?? 'your team'}
              autoComplete="off"
              spellCheck={false}
              onChange={(e) => setTeam(e.target.value)}
            />
            <p className="hint">Empty: your own team.</p>
          </div>
        )}
      </div>
      <ErrorBanner error={error} />
      {error instanceof ApiError && error.status === 403 && (
        <p className="hint">A key can never do more than its creator: pick a role within yours.</p>
      )}
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" aria-busy={busy ? 'true' : undefined}>
          {busy ? 'Creating…' : 'Create key'}
        </button>
      </div>
    </form>
  );
}

/** The new key, shown once: copy it, then it is gone from the page. */
function NewKey({ created, onDone }: { created: CreatedKey; onDone: () => void }) {
  const inputRef = useRef<HTMLInputElement>(null);
  const announce = useAnnounce();
  const [copied, setCopied] = useState<boolean | null>(null);
  const inputId = useId();
  const headingRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => headingRef.current?.focus(), []);

  const copy = async () => {
    const ok = await copyText(created.key, inputRef.current);
    setCopied(ok);
    announce(ok ? 'Copied to the clipboard.' : 'Copy failed: select the key and copy it yourself.');
  };

  return (
    <section className="panel banner banner-success" aria-labelledby="new-key-title" data-testid="new-key">
      <h2 id="new-key-title" ref={headingRef} tabIndex={-1}>
        Copy your new key now
      </h2>
      <p className="banner-message">
        <strong>You will not see it again.</strong> Gatehouse keeps only a hash of it. Store it in your secret store or
        give it to the OpenSandbox SDK or CLI as its API key.
      </p>
      <div className="input-row">
        <label htmlFor={inputId} className="sr-only">
          New API key {created.name}
        </label>
        <input
          ref={inputRef}
          id={inputId}
          type="text"
          className="mono"
          readOnly
          value={created.key}
          data-testid="new-key-value"
          onFocus={(e) => e.target.select()}
        />
        <button type="button" className="btn btn-secondary" onClick={() => void copy()}>
          Copy
        </button>
      </div>
      {copied !== null && (
        <p className="hint" role="status">
          {copied ? 'Copied to the clipboard.' : 'Copy failed: select the key and copy it yourself.'}
        </p>
      )}
      <p className="muted small">
        {created.name} · role {created.role}
        {created.team ? ` · team ${created.team}` : ''}
        {created.expiresAt ? ` · expires ${formatDateTime(created.expiresAt, true)}` : ''}
      </p>
      <div className="form-actions">
        <button type="button" className="btn btn-primary" onClick={onDone}>
          I have copied it
        </button>
      </div>
    </section>
  );
}
