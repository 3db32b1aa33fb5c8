import { useCallback, useEffect, useId, useMemo, useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../api';
import { useAnnounce, useApi, useSession } from '../context';
import { formatDateTime } from '../format';
import { bindingNameError, governance, type Binding, type BindingKind } from '../governance';
import { ActionButton } from '../components/ActionButton';
import { ConfirmDialog, ErrorBanner, Notice } from '../components/common';

/** Why a change is not possible, or null (the role table's `binding:write`). */
function writeDenied(permissions: string[], role: string): string | null {
  return permissions.includes('binding:write') ? null : `Your role (${role}) does not allow changing bindings.`;
}

export function Bindings() {
  const api = useApi();
  const gov = useMemo(() => governance(api), [api]);
  const { me } = useSession();
  const announce = useAnnounce();
  const [items, setItems] = useState<Binding[] | null>(null);
  const [fresh, setFresh] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [editing, setEditing] = useState<Binding | null>(null);
  const [deleting, setDeleting] = useState<Binding | null>(null);
  const [deleteBusy, setDeleteBusy] = useState(false);
  const [deleteError, setDeleteError] = useState<unknown>(null);
  const denied = writeDenied(me.permissions, me.role);

  useEffect(() => {
    document.title = 'Bindings · Gatehouse';
  }, []);

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        const res = await gov.listBindings(signal);
        if (signal?.aborted) return;
        setItems(res.items);
        setFresh(res.fresh);
        setError(null);
      } catch (e) {
        if (signal?.aborted) return;
        setError(e);
      }
    },
    [gov],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    return () => ctrl.abort();
  }, [load]);

  const remove = async () => {
    if (!deleting || deleteBusy) return;
    setDeleteBusy(true);
    setDeleteError(null);
    try {
      await gov.deleteBinding(deleting.kind, deleting.name);
      announce(`Binding of ${deleting.kind} ${deleting.name} deleted.`);
      setDeleting(null);
      await load();
    } catch (e) {
      setDeleteError(e);
    } finally {
      setDeleteBusy(false);
    }
  };

  return (
    <section aria-labelledby="bindings-title">
      <div className="page-head">
        <h1 id="bindings-title" tabIndex={-1}>
          Bindings
        </h1>
      </div>
      <p className="muted">
        Who gets which role (and team): a binding names a subject (a user, as the identity provider names them) or a
        group. A subject's binding wins over its groups'; among groups the most privileged role wins. Without a binding the
        gateway's static role table decides. Changes apply within a second.
      </p>
      {!fresh && (
        <Notice tone="warning">
          <span data-testid="bindings-stale">
            The gateway cannot read the governance store right now: the last bindings it read still apply.
          </span>
        </Notice>
      )}

      <BindingForm
        key={editing ? `${editing.kind}/${editing.name}` : 'new'}
        existing={items ?? []}
        initial={editing}
        denied={denied}
        onSaved={(b) => {
          announce(`${b.kind} ${b.name} is bound to ${b.role}.`);
          setEditing(null);
          void load();
        }}
        onCancel={editing ? () => setEditing(null) : undefined}
      />

      <h2>Current bindings</h2>
      <ErrorBanner error={error} />
      {items === null ? (
        !error && (
          <p className="muted" aria-busy="true">
            Loading bindings…
          </p>
        )
      ) : items.length === 0 ? (
        <div className="empty" data-testid="empty-state">
          <p>No bindings yet: the static role table decides every role.</p>
        </div>
      ) : (
        <div className="table-wrap">
          <table className="table bindings" aria-label="Bindings">
            <thead>
              <tr>
                <th scope="col">Kind</th>
                <th scope="col">Name</th>
                <th scope="col">Role</th>
                <th scope="col">Team</th>
                <th scope="col">Changed by</th>
                <th scope="col">Changed</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((b) => (
                <tr key={`${b.kind}/${b.name}`} data-testid="binding-row" data-binding={`${b.kind}/${b.name}`}>
                  <td data-label="Kind">{b.kind}</td>
                  <th scope="row" data-label="Name" className="mono">
                    {b.name}
                  </th>
                  <td data-label="Role">{b.role}</td>
                  <td data-label="Team">{b.team ?? <span className="muted">—</span>}</td>
                  <td data-label="Changed by">{b.createdBy}</td>
                  <td data-label="Changed">{formatDateTime(b.createdAt)}</td>
                  <td className="cell-actions" data-label="Actions">
                    <ActionButton
                      className="btn-small"
                      disabledReason={denied}
                      onClick={() => setEditing(b)}
                      aria-label={`Edit ${b.kind} ${b.name}`}
                    >
                      Edit
                    </ActionButton>{' '}
                    <ActionButton
                      className="btn-small"
                      variant="danger"
                      disabledReason={denied}
                      onClick={() => {
                        setDeleteError(null);
                        setDeleting(b);
                      }}
                      aria-label={`Delete ${b.kind} ${b.name}`}
                    >
                      Delete
                    </ActionButton>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      {deleting && (
        <ConfirmDialog
          title="Delete this binding?"
          confirmLabel="Delete binding"
          onConfirm={() => void remove()}
          onCancel={() => setDeleting(null)}
          busy={deleteBusy}
          error={deleteError}
        >
          <p>
            {deleting.kind} <strong className="mono">{deleting.name}</strong> loses the role{' '}
            <strong>{deleting.role}</strong> within a second; the static role table decides again.
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}

interface FormProps {
  existing: Binding[];
  initial: Binding | null;
  denied: string | null;
  onSaved: (b: Binding) => void;
  onCancel?: () => void;
}

/** Add or replace one binding. An unknown role or a bad name is shown at its field. */
function BindingForm({ existing, initial, denied, onSaved, onCancel }: FormProps) {
  const api = useApi();
  const gov = useMemo(() => governance(api), [api]);
  const { me } = useSession();
  const [kind, setKind] = useState<BindingKind>(initial?.kind ?? 'subject');
  const [name, setName] = useState(initial?.name ?? '');
  const [role, setRole] = useState(initial?.role ?? '');
  const [team, setTeam] = useState(initial?.team ?? '');
  const [nameError, setNameError] = useState<string | null>(null);
  const [roleError, setRoleError] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const ids = { kind: useId(), name: useId(), role: useId(), team: useId(), nameErr: useId(), roleErr: useId(), roles: useId() };
  const nameRef = useRef<HTMLInputElement>(null);
  const roleRef = useRef<HTMLInputElement>(null);
  const roles = me.assignableRoles ?? [];
  const replaces = existing.find((b) => b.kind === kind && b.name === name.trim());

  useEffect(() => {
    if (initial) nameRef.current?.focus();
  }, [initial]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy || denied) return;
    const n = name.trim();
    const ne = bindingNameError(n);
    const re = role.trim() ? null : 'Choose a role.';
    setNameError(ne);
    setRoleError(re);
    if (ne) return nameRef.current?.focus();
    if (re) return roleRef.current?.focus();
    setBusy(true);
    setError(null);
    try {
      const t = team.trim();
      const saved = await gov.putBinding({ kind, name: n, role: role.trim(), ...(t ? { team: t } : {}) });
      setName('');
      setRole('');
      setTeam('');
      onSaved(saved);
    } catch (e2) {
      // The gateway names the bad field in its message: put it where the user looks.
      if (e2 instanceof ApiError && e2.status === 400 && /role/i.test(e2.message)) {
        setRoleError(e2.message);
        roleRef.current?.focus();
      } else if (e2 instanceof ApiError && e2.status === 400 && /name/i.test(e2.message)) {
        setNameError(e2.message);
        nameRef.current?.focus();
      } else {
        setError(e2);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="form panel" onSubmit={submit} noValidate aria-labelledby="binding-form-title">
      <h2 id="binding-form-title">{initial ? `Edit the binding of ${initial.kind} ${initial.name}` : 'Add a binding'}</h2>
      <div className="grid-3">
        <div className="field">
          <label htmlFor={ids.kind}>Kind</label>
          <select id={ids.kind} value={kind} disabled={!!denied} onChange={(e) => setKind(e.target.value as BindingKind)}>
            <option value="subject">subject (a user)</option>
            <option value="group">group</option>
          </select>
        </div>
        <div className={`field${nameError ? ' field-invalid' : ''}`}>
          <label htmlFor={ids.name}>Name</label>
          <input
            ref={nameRef}
            id={ids.name}
            type="text"
            value={name}
            placeholder={kind === 'subject' ? 'dave' : 'sandbox-operators'}
            autoComplete="off"
            spellCheck={false}
            disabled={!!denied}
            aria-invalid={nameError ? 'true' : undefined}
            aria-describedby={nameError ? ids.nameErr : undefined}
            onChange={(e) => {
              setName(e.target.value);
              setNameError(null);
            }}
          />
          {nameError && (
            <p id={ids.nameErr} className="field-error" data-testid="binding-name-error">
              {nameError}
            </p>
          )}
        </div>
        <div className={`field${roleError ? ' field-invalid' : ''}`}>
          <label htmlFor={ids.role}>Role</label>
          <input
            ref={roleRef}
            id={ids.role}
            type="text"
            list={ids.roles}
            value={role}
            placeholder="operator"
            autoComplete="off"
            spellCheck={false}
            disabled={!!denied}
            aria-invalid={roleError ? 'true' : undefined}
            aria-describedby={roleError ? ids.roleErr : undefined}
            onChange={(e) => {
              setRole(e.target.value);
              setRoleError(null);
            }}
          />
          <datalist id={ids.roles}>
            {roles.map((r) => (
              <option key={r} value={r} />
            ))}
          </datalist>
          {roleError && (
            <p id={ids.roleErr} className="field-error" data-testid="binding-role-error">
              {roleError}
            </p>
          )}
        </div>
        <div className="field">
          <label htmlFor={ids.team}>Team (optional)</label>
          <input
            id={ids.team}
            type="text"
            value={team}
            placeholder="team-a"
            autoComplete="off"
            spellCheck={false}
            disabled={!!denied}
            onChange={(e) => setTeam(e.target.value)}
          />
          <p className="hint">Empty: the team the identity provider gives.</p>
        </div>
      </div>
      {replaces && !initial && (
        <p className="hint" data-testid="binding-replaces">
          This replaces the binding of {replaces.kind} {replaces.name} (now {replaces.role}).
        </p>
      )}
      <ErrorBanner error={error} />
      <div className="form-actions">
        <ActionButton type="submit" variant="primary" disabledReason={denied} busy={busy}>
          {replaces ? 'Replace binding' : 'Add binding'}
        </ActionButton>
        {onCancel && (
          <button type="button" className="btn btn-ghost" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}
