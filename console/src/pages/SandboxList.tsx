import { useEffect, useId, useMemo, useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../api';
import { useApi, useSession } from '../context';
import { useNow, usePolling } from '../hooks';
import { can, denyReason } from '../permissions';
import { Link, navigate, paths, useLocation } from '../router';
import type { ListSandboxesResponse } from '../types';
import { agoText, expiryText, formatDateTime, formatTime, ownerOf, teamOf } from '../format';
import { isLabelKey, isLabelValue, isScopeKey } from '../validation';
import { ActionButton } from '../components/ActionButton';
import { ErrorBanner, Notice, StateBadge, Token } from '../components/common';

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

  useEffect(() => {
    document.title = 'Sandboxes · Gatehouse';
  }, []);

  const update = (p: Partial<ListParams>) => {
    navigate(`${paths.list()}${writeListParams({ ...params, page: 1, ...p })}`, { replace: true });
  };

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
    REFRESH_MS,
    `${paramsKey}|${auto}|${refreshNonce}`,
    allowed,
  );

  const loading = allowed && dataKey !== paramsKey && !error;
  const items = data?.items ?? [];
  const pg = data?.pagination;

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
              Auto-refresh every 5 s
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
            data && <SandboxTable data={data} busy={loading} />
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
  return (
    <div className="empty">
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
        <p>You have no sandboxes yet. Create one with “New sandbox”.</p>
      )}
    </div>
  );
}

function SandboxTable({ data, busy }: { data: ListSandboxesResponse; busy: boolean }) {
  const now = useNow(1000);
  return (
    <div className="table-wrap">
      <table className="table sandboxes" aria-busy={busy ? 'true' : 'false'} aria-describedby="list-title">
        <thead>
          <tr>
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
              <th scope="row" data-label="Sandbox">
                <Link to={paths.detail(s.id)} className="mono">
                  {s.id}
                </Link>
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
              <td data-label="Created" title={formatDateTime(s.createdAt)}>
                {agoText(s.createdAt, now)}
              </td>
              <td data-label="Expires" title={s.expiresAt ? formatDateTime(s.expiresAt) : undefined}>
                {expiryText(s.expiresAt, now)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Filters({ params, onChange }: { params: ListParams; onChange: (p: Partial<ListParams>) => void }) {
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
    <div className="filters" role="search" aria-label="Filter sandboxes">
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
  );
}
