import { useEffect, useId, useMemo, useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../api';
import { useAnnounce, useApi, useSession } from '../context';
import { formatDateTime, formatTime } from '../format';
import {
  NO_FILTERS,
  OUTCOMES,
  auditParams,
  governance,
  readAuditFilters,
  type AuditEvent,
  type AuditFilters,
  type AuditOutcome,
} from '../governance';
import { usePolling } from '../hooks';
import { navigate, useLocation } from '../router';
import { ErrorBanner } from '../components/common';

/** Events per page and per live-tail read. */
export const PAGE_SIZE = 50;
/** How often the live tail asks for new events. */
export const TAIL_MS = 3000;

const OUTCOME_BADGE: Record<AuditOutcome, string> = {
  allowed: 'badge-running',
  denied: 'badge-failed',
  error: 'badge-paused',
};

/** `2026-12-03T10:05:00Z` → the `datetime-local` value in this browser's zone. */
export function toLocalInput(iso: string): string {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return '';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A `datetime-local` value (local time) → RFC 3339 UTC, or '' when empty or invalid. */
export function fromLocalInput(v: string): string {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/**
 * Newer events of `fresh` (the first page, newest first) on top of `current`. When the
 * two pages do not overlap (more new events than a page), the fresh page replaces the
 * list, so paging on from its cursor stays gap-free; `replaced` says so.
 */
export function mergeNewer(current: AuditEvent[], fresh: AuditEvent[]): { events: AuditEvent[]; added: number; replaced: boolean } {
  if (current.length === 0) return { events: fresh, added: fresh.length, replaced: true };
  const known = new Set(current.map((e) => e.id));
  const idx = fresh.findIndex((e) => known.has(e.id));
  if (idx === -1) return { events: fresh, added: fresh.length, replaced: true };
  if (idx === 0) return { events: current, added: 0, replaced: false };
  return { events: [...fresh.slice(0, idx), ...current], added: idx, replaced: false };
}

export function AuditLog() {
  const api = useApi();
  const gov = useMemo(() => governance(api), [api]);
  const { me } = useSession();
  const announce = useAnnounce();
  const { search } = useLocation();
  const filters = useMemo(() => readAuditFilters(search), [search]);
  const key = auditParams(filters).toString();

  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loadedKey, setLoadedKey] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [moreBusy, setMoreBusy] = useState(false);
  const [moreError, setMoreError] = useState<unknown>(null);
  const [live, setLive] = useState(false);
  const [updatedAt, setUpdatedAt] = useState<Date | null>(null);
  const eventsRef = useRef<AuditEvent[]>([]);
  const loadedRef = useRef<string | null>(null);

  useEffect(() => {
    document.title = 'Audit log · Gatehouse';
  }, []);

  usePolling(
    async (signal) => {
      const first = loadedRef.current !== key;
      try {
        const page = await gov.audit(filters, { limit: PAGE_SIZE, signal });
        if (signal.aborted) return false;
        if (first) {
          eventsRef.current = page.items;
          setEvents(page.items);
          setCursor(page.nextCursor);
          loadedRef.current = key;
          setLoadedKey(key);
        } else {
          const m = mergeNewer(eventsRef.current, page.items);
          if (m.added > 0) {
            eventsRef.current = m.events;
            setEvents(m.events);
            if (m.replaced) setCursor(page.nextCursor);
            announce(`${m.added} new audit event${m.added === 1 ? '' : 's'}.`);
          }
        }
        setError(null);
        setUpdatedAt(new Date());
      } catch (e) {
        if (signal.aborted) return false;
        setError(e);
        if (first) {
          loadedRef.current = key;
          setLoadedKey(key);
        }
        if (e instanceof ApiError && (e.status === 400 || e.status === 401 || e.status === 403)) return false;
      }
      return live;
    },
    TAIL_MS,
    `${key}|${live}`,
  );

  const loadMore = async () => {
    if (!cursor || moreBusy) return;
    setMoreBusy(true);
    setMoreError(null);
    try {
      const page = await gov.audit(filters, { limit: PAGE_SIZE, cursor });
      const known = new Set(eventsRef.current.map((e) => e.id));
      const next = [...eventsRef.current, ...page.items.filter((e) => !known.has(e.id))];
      eventsRef.current = next;
      setEvents(next);
      setCursor(page.nextCursor);
      announce(`${page.items.length} older event${page.items.length === 1 ? '' : 's'} loaded.`);
    } catch (e) {
      setMoreError(e);
    } finally {
      setMoreBusy(false);
    }
  };

  const apply = (f: AuditFilters) => {
    const q = auditParams(f).toString();
    navigate(`/console/audit${q ? `?${q}` : ''}`, { replace: true });
  };

  const loading = loadedKey !== key;
  const scoped = me.role !== 'service_admin';

  return (
    <section aria-labelledby="audit-title">
      <div className="page-head">
        <h1 id="audit-title" tabIndex={-1}>
          Audit log
        </h1>
      </div>
      <p className="muted">
        Every change and every refusal through the gateway, newest first.
        {scoped && (me.team ? ` You see the events your role may read (team ${me.team}).` : ' You see the events your role may read.')}
      </p>

      <AuditFilterForm key={key} filters={filters} onApply={apply} />

      <div className="list-status">
        <span aria-live="polite" className="list-count" data-testid="audit-count">
          {loading ? '' : events.length === 0 ? 'No events' : `${events.length} event${events.length === 1 ? '' : 's'}${cursor ? ' (more below)' : ''}`}
        </span>
        <span className="muted list-updated">{updatedAt ? `Updated ${formatTime(updatedAt)}` : ''}</span>
        <label className="inline-check">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.target.checked)} />
          Live tail (new events every {TAIL_MS / 1000} s)
        </label>
      </div>

      <ErrorBanner error={error} />

      {loading ? (
        <p className="muted" aria-busy="true">
          Loading events…
        </p>
      ) : events.length === 0 ? (
        !error && (
          <div className="empty" data-testid="empty-state">
            <p>{key ? 'No event matches these filters.' : 'No events yet.'}</p>
          </div>
        )
      ) : (
        <AuditTable events={events} />
      )}

      {cursor && !loading && (
        <div className="pager">
          <button type="button" className="btn btn-secondary" onClick={() => void loadMore()} aria-busy={moreBusy ? 'true' : undefined}>
            {moreBusy ? 'Loading…' : 'Load more'}
          </button>
        </div>
      )}
      <ErrorBanner error={moreError} />
    </section>
  );
}

function AuditTable({ events }: { events: AuditEvent[] }) {
  return (
    <div className="table-wrap">
      <table className="table audit" aria-label="Audit events">
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Actor</th>
            <th scope="col">Team</th>
            <th scope="col">Action</th>
            <th scope="col">Sandbox / target</th>
            <th scope="col">Request</th>
            <th scope="col">Outcome</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.id} data-testid="audit-row" data-action={e.action ?? ''} data-outcome={e.outcome}>
              <td data-label="Time">
                <time dateTime={e.time}>{formatDateTime(e.time, true)}</time>
              </td>
              <th scope="row" data-label="Actor">
                <span>
                  <span className="block">{e.principal.subject}</span>
                  <span className="muted small block">
                    {[e.principal.role, e.principal.auth_method, e.principal.key_name && `key ${e.principal.key_name}`]
                      .filter(Boolean)
                      .join(' · ')}
                  </span>
                </span>
              </th>
              <td data-label="Team">{e.principal.team ?? <span className="muted">—</span>}</td>
              <td data-label="Action" className="mono">
                {e.action ?? <span className="muted">—</span>}
              </td>
              <td data-label="Sandbox / target" className="mono truncate" title={e.sandbox_id ?? undefined}>
                {e.sandbox_id ?? <span className="muted">—</span>}
              </td>
              <td data-label="Request" className="mono truncate" title={`${e.method} ${e.path}`}>
                {e.method} {e.path}
              </td>
              <td data-label="Outcome">
                <span>
                  <span className={`badge ${OUTCOME_BADGE[e.outcome] ?? 'badge-unknown'}`}>{e.outcome}</span>{' '}
                  <span className="muted small">{e.status || ''}</span>
                  {e.reason && <span className="muted small block mono">{e.reason}</span>}
                </span>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function AuditFilterForm({ filters, onApply }: { filters: AuditFilters; onApply: (f: AuditFilters) => void }) {
  const [draft, setDraft] = useState<AuditFilters>(filters);
  const [since, setSince] = useState(() => toLocalInput(filters.since));
  const [until, setUntil] = useState(() => toLocalInput(filters.until));
  const [rangeError, setRangeError] = useState<string | null>(null);
  const ids = {
    actor: useId(),
    team: useId(),
    sandbox: useId(),
    action: useId(),
    outcome: useId(),
    since: useId(),
    until: useId(),
    err: useId(),
  };
  const set = (k: keyof AuditFilters, v: string) => setDraft((d) => ({ ...d, [k]: v }));

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const s = fromLocalInput(since);
    const u = fromLocalInput(until);
    if (s && u && Date.parse(s) > Date.parse(u)) {
      setRangeError('"From" must be before "To".');
      return;
    }
    setRangeError(null);
    onApply({ ...draft, since: s, until: u });
  };

  const text = (k: 'actor' | 'team' | 'sandbox' | 'action', label: string, placeholder: string) => (
    <div className="field field-inline">
      <label htmlFor={ids[k]}>{label}</label>
      <input
        id={ids[k]}
        type="text"
        value={draft[k]}
        placeholder={placeholder}
        autoComplete="off"
        spellCheck={false}
        onChange={(e) => set(k, e.target.value)}
      />
    </div>
  );

  return (
    <form className="filters audit-filters" role="search" aria-label="Filter audit events" onSubmit={submit} noValidate>
      <div className="grid-3">
        {text('actor', 'Actor', 'alice, key:ci-admin')}
        {text('team', 'Team', 'team-a')}
        {text('sandbox', 'Sandbox', 'sandbox id')}
        {text('action', 'Action', 'sandbox:delete')}
        <div className="field field-inline">
          <label htmlFor={ids.outcome}>Outcome</label>
          <select id={ids.outcome} value={draft.outcome} onChange={(e) => set('outcome', e.target.value)}>
            <option value="">Any</option>
            {OUTCOMES.map((o) => (
              <option key={o} value={o}>
                {o}
              </option>
            ))}
          </select>
        </div>
        <div className="field field-inline">
          <label htmlFor={ids.since}>From</label>
          <input
            id={ids.since}
            type="datetime-local"
            value={since}
            onChange={(e) => setSince(e.target.value)}
            aria-invalid={rangeError ? 'true' : undefined}
            aria-describedby={rangeError ? ids.err : undefined}
          />
        </div>
        <div className="field field-inline">
          <label htmlFor={ids.until}>To</label>
          <input
            id={ids.until}
            type="datetime-local"
            value={until}
            onChange={(e) => setUntil(e.target.value)}
            aria-invalid={rangeError ? 'true' : undefined}
            aria-describedby={rangeError ? ids.err : undefined}
          />
        </div>
      </div>
      {rangeError && (
        <p id={ids.err} className="field-error" role="alert">
          {rangeError}
        </p>
      )}
      <div className="form-actions">
        <button type="submit" className="btn btn-primary">
          Apply filters
        </button>
        <button type="button" className="btn btn-ghost" onClick={() => onApply(NO_FILTERS)}>
          Clear
        </button>
      </div>
    </form>
  );
}
