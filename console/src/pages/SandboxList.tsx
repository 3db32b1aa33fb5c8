import { useEffect, useId, useMemo, useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../api';
import { useApi, useSession } from '../context';
import { useNow, usePolling } from '../hooks';
import { can, denyReason } from '../permissions';
import { Link, navigate, paths, useLocation } from '../router';
import type { ListSandboxesResponse, Sandbox } from '../types';
import { BulkActions } from '../components/BulkActions';
import { agoText, expiryText, formatDateTime, formatTime, ownerOf, teamOf } from '../format';
import { isLabelKey, isLabelValue, isScopeKey } from '../validation';
import { ActionButton } from '../components/ActionButton';
import { ErrorBanner, Notice, StateBadge, Token } from '../components/common';
import { LIVE_REFRESH_MS, canFollowEvents, useLifecycleEvents } from '../events';

export const STATES = ['Pending', 'Running', 'Pausing', 'Paused', 'Resuming', 'Stopping', 'Terminated', 'Failed'] as const;
const PAGE_SIZES = [10, 20, 50, 100];
export const REFRESH_MS = 5000;

export interface ListParams {
  states: string[];
  metadata: Array<[string, string]>;
  page: number;
  pageSize: number;
}

/** Reads the list's filters from the page URL (`?state=Running&meta=k%3Dv&page=2`). */
export function readListParams(search: string): ListParams {
  const q = new URLSearchParams(search);
  const states = q.getAll('state').filter((s) => (STATES as readonly string[]).includes(s));
  const metadata: Array<[string, string]> = [];
  for (const m of q.getAll('meta')) {
    const eq = m.indexOf('=');
    if (eq > 0) metadata.push([m.slice(0, eq), m.slice(eq + 1)]);
  }
  const page = Math.max(1, Number.parseInt(q.get('page') ?? '1', 10) || 1);
  const sizeRaw = Number.parseInt(q.get('pageSize') ?? '20', 10);
  const pageSize = PAGE_SIZES.includes(sizeRaw) ? sizeRaw : 20;
  return { states, metadata, page, pageSize };
}

export function writeListParams(p: ListParams): string {
  const q = new URLSearchParams();
  for (const s of p.states) q.append('state', s);
  for (const [k, v] of p.metadata) q.append('meta', `${k}=${v}`);
  if (p.page !== 1) q.set('page', String(p.page));
  if (p.pageSize !== 20) q.set('pageSize', String(p.pageSize));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export function SandboxList() {
  const api = useApi();
  const { me } = useSession();
  const { search } = useLocation();
  const params = useMemo(() => readListParams(search), [search]);
  const paramsKey = writeListParams(params);

  const [data, setData] = useState<ListSandboxesResponse | null>(null);
  const [dataKey, setDataKey] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [updatedAt, setUpdatedAt] = useState<Date | null>(null);
  const [auto, setAuto] = useState(true);
  const [refreshNonce, setRefreshNonce] = useState(0);
  const lastJson = useRef('');
  const allowed = can(me, 'sandbox:list');
  const [selected, setSelected] = useState<Map<string, Sandbox>>(new Map());
  const [selectingAll, setSelectingAll] = useState(false);
  const [selectAllError, setSelectAllError] = useState<unknown>(null);
  const canBulk = can(me, 'sandbox:delete') || can(me, 'sandbox:renew');
  // A new filter starts a new selection: nothing selected stays hidden from view.
  useEffect(() => setSelected(new Map()), [paramsKey]);

  useEffect(() => {
    document.title = 'Sandboxes · Gatehouse';
  }, []);

  const update = (p: Partial<ListParams>) => {
    navigate(`${paths.list()}${writeListParams({ ...params, page: 1, ...p })}`, { replace: true });
  };

  // Live updates: each lifecycle event (scoped to the user by the gateway) re-fetches the
  // page, batched over 300 ms; the poll below slows to a safety net while the stream is up.
  const refetchTimer = useRef<number | undefined>(undefined);
  const live = useLifecycleEvents(
    () => {
      window.clearTimeout(refetchTimer.current);
      refetchTimer.current = window.setTimeout(() => setRefreshNonce((n) => n + 1), 300);
    },
    allowed && auto && canFollowEvents(me),
  );
  useEffect(() => () => window.clearTimeout(refetchTimer.current), []);
  const liveRef = useRef(live);
  liveRef.current = live;

  usePolling(
    async (signal) => {
      try {
        const res = await api.listSandboxes(params, signal);
        if (signal.aborted) return false;
        const json = JSON.stringify(res);
        // Unchanged data keeps the same object: nothing re-renders, nothing flickers.
        if (json !== lastJson.current) {
          lastJson.current = json;
          setData(res);
        }
        setDataKey(paramsKey);
        setError(null);
        setUpdatedAt(new Date());
      } catch (e) {
        if (signal.aborted) return false;
        setError(e);
        // Signed out (401) or not allowed (403): asking again would not help.
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return false;
      }
      return auto;
    },
    () => (liveRef.current ? LIVE_REFRESH_MS : REFRESH_MS),
    `${paramsKey}|${auto}|${refreshNonce}`,
    allowed,
  );

  const loading = allowed && dataKey !== paramsKey && !error;
  const items = data?.items ?? [];
  const pg = data?.pagination;

  const toggle = (s: Sandbox, on: boolean) =>
    setSelected((m) => {
      const next = new Map(m);
      if (on) next.set(s.id, s);
      else next.delete(s.id);
      return next;
    });
  const togglePage = (on: boolean) =>
    setSelected((m) => {
      const next = new Map(m);
      for (const s of items) {
        if (on) next.set(s.id, s);
        else next.delete(s.id);
      }
      return next;
    });
  /** Every sandbox matching the current filters (the gateway scopes each page). */
  const selectAllMatching = async () => {
    setSelectingAll(true);
    setSelectAllError(null);
    try {
      const next = new Map<string, Sandbox>();
      for (let page = 1; page <= 50; page++) {
        const res = await api.listSandboxes({ ...params, page, pageSize: 100 });
        for (const s of res.items) next.set(s.id, s);
        if (!res.pagination.hasNextPage) break;
      }
      setSelected(next);
    } catch (e) {
      setSelectAllError(e);
    } finally {
      setSelectingAll(false);
    }
  };
  const pageAllSelected = items.length > 0 && items.every((s) => selected.has(s.id));

  return (
    <section aria-labelledby="list-title">
      <div className="page-head">
        <h1 id="list-title" tabIndex={-1}>
          Sandboxes
        </h1>
        <ActionButton
          variant="primary"
          disabledReason={denyReason(me, 'sandbox:create')}
          onClick={() => navigate(paths.create())}
        >
          New sandbox
        </ActionButton>
      </div>

      {!allowed ? (
        <Notice tone="warning">{denyReason(me, 'sandbox:list')}</Notice>
      ) : (
        <>
          <Filters params={params} onChange={update} />

          {canBulk && (
            <>
              <BulkActions
                selected={[...selected.values()]}
                onClear={() => setSelected(new Map())}
                onDone={() => setRefreshNonce((n) => n + 1)}
              />
              {pageAllSelected && pg && pg.totalItems > selected.size && (
                <p className="row-inline">
                  All {items.length} on this page are selected.
                  <button type="button" className="btn btn-ghost btn-small" onClick={() => void selectAllMatching()} aria-busy={selectingAll ? 'true' : undefined}>
                    Select all {pg.totalItems} matching these filters
                  </button>
                </p>
              )}
              <ErrorBanner error={selectAllError} />
            </>
          )}

          <div className="list-status">
            <span aria-live="polite" className="list-count">
              {pg
                ? pg.totalItems === 0
                  ? 'No sandboxes'
                  : `${(pg.page - 1) * pg.pageSize + 1}–${Math.min(pg.page * pg.pageSize, pg.totalItems)} of ${pg.totalItems} sandbox${pg.totalItems === 1 ? '' : 'es'}`
                : ''}
            </span>
            <span className="muted list-updated">{updatedAt ? `Updated ${formatTime(updatedAt)}` : ''}</span>
            <label className="inline-check">
              <input type="checkbox" checked={auto} onChange={(e) => setAuto(e.target.checked)} />
              {live ? 'Live updates' : 'Auto-refresh every 5 s'}
            </label>
            <button type="button" className="btn btn-ghost btn-small" onClick={() => setRefreshNonce((n) => n + 1)}>
              Refresh
            </button>
          </div>

          <ErrorBanner error={error} />

          {data === null && loading ? (
            <p className="muted" aria-busy="true">
              Loading sandboxes…
            </p>
          ) : items.length === 0 && data ? (
            <EmptyState filtered={params.states.length > 0 || params.metadata.length > 0} page={params.page} onFirstPage={() => update({})} />
          ) : (
            data && (
              <SandboxTable
                data={data}
                busy={loading}
                selection={canBulk ? { selected, toggle, togglePage, pageAllSelected } : null}
              />
            )
          )}

          {pg && pg.totalPages > 0 && (
            <nav className="pager" aria-label="Pagination">
              <button
                type="button"
                className="btn btn-secondary btn-small"
                disabled={pg.page <= 1}
                onClick={() => update({ page: pg.page - 1 })}
              >
                Previous
              </button>
              <span className="pager-info">
                Page {pg.page} of {Math.max(pg.totalPages, 1)}
              </span>
              <button
                type="button"
                className="btn btn-secondary btn-small"
                disabled={!pg.hasNextPage}
                onClick={() => update({ page: pg.page + 1 })}
              >
                Next
              </button>
              <label className="pager-size">
                Per page
                <select value={params.pageSize} onChange={(e) => update({ pageSize: Number(e.target.value) })}>
                  {PAGE_SIZES.map((n) => (
                    <option key={n} value={n}>
                      {n}
                    </option>
                  ))}
                </select>
              </label>
            </nav>
          )}
        </>
      )}
    </section>
  );
}

function EmptyState({ filtered, page, onFirstPage }: { filtered: boolean; page: number; onFirstPage: () => void }) {
  const { me } = useSession();
  const createReason = denyReason(me, 'sandbox:create');
  return (
    <div className="empty" data-testid="empty-state">
      {page > 1 ? (
        <>
          <p>There is nothing on page {page}.</p>
          <button type="button" className="btn btn-secondary" onClick={onFirstPage}>
            Go to the first page
          </button>
        </>
      ) : filtered ? (
        <p>No sandbox matches these filters.</p>
      ) : (
        <>
          <p>{me.team ? `Team ${me.team} has no sandboxes yet.` : 'You have no sandboxes yet.'}</p>
          <ActionButton variant="primary" disabledReason={createReason} onClick={() => navigate(paths.create())}>
            Create a sandbox
          </ActionButton>
        </>
      )}
    </div>
  );
}

interface Selection {
  selected: Map<string, Sandbox>;
  toggle: (s: Sandbox, on: boolean) => void;
  togglePage: (on: boolean) => void;
  pageAllSelected: boolean;
}

function SandboxTable({ data, busy, selection }: { data: ListSandboxesResponse; busy: boolean; selection: Selection | null }) {
  const now = useNow(1000);
  return (
    <div className="table-wrap">
      <table className="table sandboxes" aria-busy={busy ? 'true' : 'false'} aria-describedby="list-title">
        <thead>
          <tr>
            {selection && (
              <th scope="col" className="cell-select">
                <input
                  type="checkbox"
                  aria-label="Select all on this page"
                  checked={selection.pageAllSelected}
                  onChange={(e) => selection.togglePage(e.target.checked)}
                />
              </th>
            )}
            <th scope="col">Sandbox</th>
            <th scope="col">State</th>
            <th scope="col">Owner</th>
            <th scope="col">Team</th>
            <th scope="col">Image</th>
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
          </tr>
        </thead>
        <tbody>
          {data.items.map((s) => (
            <tr key={s.id} data-testid="sandbox-row" data-sandbox-id={s.id}>
              {selection && (
                <td className="cell-select" data-label="Select">
                  <input
                    type="checkbox"
                    aria-label={`Select ${s.metadata?.name ? `${s.metadata.name} ` : ''}${s.id}`}
                    checked={selection.selected.has(s.id)}
                    onChange={(e) => selection.toggle(s, e.target.checked)}
                  />
                </td>
              )}
              <th scope="row" data-label="Sandbox">
                <span>
                  {s.metadata?.name && (
                    <span className="sandbox-name block" data-testid="sandbox-name">
                      {s.metadata.name}
                    </span>
                  )}
                  <Link to={paths.detail(s.id)} className="mono">
                    {s.id}
                  </Link>
                </span>
              </th>
              <td data-label="State">
                <StateBadge state={s.status.state} />
              </td>
              <td data-label="Owner" data-testid="owner">
                <Token value={ownerOf(s.metadata)} />
              </td>
              <td data-label="Team" data-testid="team">
                <Token value={teamOf(s.metadata)} />
              </td>
              <td data-label="Image" className="mono truncate" title={s.image?.uri ?? s.snapshotId ?? undefined}>
                {s.image?.uri ?? s.snapshotId ?? '—'}
              </td>
              <td data-label="Created">
                <span>
                  <time dateTime={s.createdAt}>{agoText(s.createdAt, now)}</time>
                  <span className="muted small block">{formatDateTime(s.createdAt, true)}</span>
                </span>
              </td>
              <td data-label="Expires">
                <span>
                  {expiryText(s.expiresAt, now)}
                  {s.expiresAt && <span className="muted small block">{formatDateTime(s.expiresAt, true)}</span>}
                </span>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Filters({ params, onChange }: { params: ListParams; onChange: (p: Partial<ListParams>) => void }) {
  const active = params.states.length + params.metadata.length;
  const [open, setOpen] = useState(false);
  const [name, setName] = useState(() => params.metadata.find(([k]) => k === 'name')?.[1] ?? '');
  const [nameError, setNameError] = useState<string | null>(null);
  const nameId = useId();
  const panelId = useId();
  const searchName = (e: FormEvent) => {
    e.preventDefault();
    const v = name.trim();
    const rest = params.metadata.filter(([k]) => k !== 'name');
    if (v && !isLabelValue(v)) {
      setNameError('Names use letters, digits, dashes, underscores and dots only.');
      return;
    }
    setNameError(null);
    onChange({ metadata: v ? [...rest, ['name', v]] : rest });
  };
  const [draft, setDraft] = useState('');
  const [draftError, setDraftError] = useState<string | null>(null);
  const inputId = useId();
  const errId = useId();
  const hintId = useId();

  const toggleState = (s: string, on: boolean) => {
    const states = on ? [...params.states, s] : params.states.filter((x) => x !== s);
    onChange({ states: STATES.filter((x) => states.includes(x)) });
  };

  const addFilter = (e: FormEvent) => {
    e.preventDefault();
    const text = draft.trim();
    const eq = text.indexOf('=');
    if (eq <= 0) {
      setDraftError('Write a filter as key=value, e.g. project=apollo.');
      return;
    }
    const key = text.slice(0, eq).trim();
    const value = text.slice(eq + 1).trim();
    if (isScopeKey(key)) {
      setDraftError(`'${key}' is set by the gateway from your identity; you cannot filter on it.`);
      return;
    }
    if (!isLabelKey(key)) {
      setDraftError(`'${key}' is not a valid metadata key.`);
      return;
    }
    if (!isLabelValue(value)) {
      setDraftError(`'${value}' is not a valid metadata value (up to 63 letters, digits, - _ .).`);
      return;
    }
    const metadata = params.metadata.filter(([k]) => k !== key);
    metadata.push([key, value]);
    onChange({ metadata });
    setDraft('');
    setDraftError(null);
  };

  return (
    <>
    <form className="row-inline name-search" role="search" aria-label="Search by name" onSubmit={searchName} noValidate>
      <label htmlFor={nameId}>Name</label>
      <input
        id={nameId}
        type="search"
        value={name}
        placeholder="exact name, e.g. web-demo"
        autoComplete="off"
        spellCheck={false}
        onChange={(e) => {
          setName(e.target.value);
          setNameError(null);
        }}
      />
      <button type="submit" className="btn btn-secondary btn-small">
        Search
      </button>
      <button
        type="button"
        className="btn btn-ghost btn-small filters-toggle"
        aria-expanded={open}
        aria-controls={panelId}
        onClick={() => setOpen((o) => !o)}
      >
        {open ? 'Hide filters' : `Filters${active ? ` (${active})` : ''}`}
      </button>
      {nameError && (
        <p className="field-error" role="alert">
          {nameError}
        </p>
      )}
    </form>
    <div id={panelId} className={`filters${open ? '' : ' filters-collapsed'}`} role="search" aria-label="Filter sandboxes">
      <fieldset className="state-filter">
        <legend>State</legend>
        <div className="checks">
          {STATES.map((s) => (
            <label key={s} className="check-chip">
              <input type="checkbox" checked={params.states.includes(s)} onChange={(e) => toggleState(s, e.target.checked)} />
              <span>{s}</span>
            </label>
          ))}
        </div>
        {params.states.length > 0 && (
          <button type="button" className="btn btn-ghost btn-small" onClick={() => onChange({ states: [] })}>
            All states
          </button>
        )}
      </fieldset>

      <form className="meta-filter" onSubmit={addFilter} noValidate>
        <label htmlFor={inputId}>Metadata filter</label>
        <div className="input-row">
          <input
            id={inputId}
            type="text"
            value={draft}
            placeholder="key=value"
            autoComplete="off"
            spellCheck={false}
            aria-invalid={draftError ? 'true' : undefined}
            aria-describedby={draftError ? `${errId} ${hintId}` : hintId}
            onChange={(e) => {
              setDraft(e.target.value);
              setDraftError(null);
            }}
          />
          <button type="submit" className="btn btn-secondary">
            Add filter
          </button>
        </div>
        <p id={hintId} className="hint">
          Sandboxes must match every filter.
        </p>
        {draftError && (
          <p id={errId} className="field-error" role="alert">
            {draftError}
          </p>
        )}
        {params.metadata.length > 0 && (
          <ul className="chips" aria-label="Active metadata filters">
            {params.metadata.map(([k, v]) => (
              <li key={k} className="chip">
                <span className="mono">
                  {k}={v}
                </span>
                <button
                  type="button"
                  className="chip-remove"
                  aria-label={`Remove filter ${k}=${v}`}
                  onClick={() => onChange({ metadata: params.metadata.filter(([x]) => x !== k) })}
                >
                  ×
                </button>
              </li>
            ))}
          </ul>
        )}
      </form>
    </div>
    </>
  );
}
