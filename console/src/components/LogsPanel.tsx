import { useEffect, useRef, useState } from 'react';
import { useApi, useSession } from '../context';
import { usePolling } from '../hooks';
import { denyReason } from '../permissions';
import { ErrorBanner, Notice } from './common';

/** How often "Follow" fetches the logs again. */
export const FOLLOW_MS = 2000;

/**
 * The sandbox's own output (its entrypoint's stdout and stderr, last lines) from the
 * diagnostics API, with "Follow" to keep it current and scrolled to the end.
 */
export function LogsPanel({ id, live }: { id: string; live: boolean }) {
  const api = useApi();
  const { me } = useSession();
  const reason = denyReason(me, 'sandbox:diagnostics');
  const [text, setText] = useState<string | null>(null);
  const [truncated, setTruncated] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [follow, setFollow] = useState(live);
  const [nonce, setNonce] = useState(0);
  const view = useRef<HTMLPreElement>(null);

  usePolling(
    async (signal) => {
      try {
        const r = await api.logs(id, signal);
        if (signal.aborted) return false;
        setText(r.content);
        setTruncated(!!r.truncated);
        setError(null);
      } catch (e) {
        if (signal.aborted) return false;
        setError(e);
      }
      return follow;
    },
    FOLLOW_MS,
    `${id}|${follow}|${nonce}`,
    reason === null,
  );

  useEffect(() => {
    if (follow && view.current) view.current.scrollTop = view.current.scrollHeight;
  }, [text, follow]);

  return (
    <section className="panel panel-wide" aria-labelledby="logs-title">
      <h2 id="logs-title">Logs</h2>
      {reason ? (
        <Notice>{reason}</Notice>
      ) : (
        <>
          <div className="row-inline">
            <label className="inline-check">
              <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} />
              Follow (refresh every {FOLLOW_MS / 1000} s)
            </label>
            <button type="button" className="btn btn-ghost btn-small" onClick={() => setNonce((n) => n + 1)}>
              Reload logs
            </button>
          </div>
          <ErrorBanner error={error} />
          {text === null && !error ? (
            <p className="muted">Loading logs…</p>
          ) : text !== null && text.trim() === '' ? (
            <p className="muted" data-testid="sandbox-logs-empty">
              The sandbox has printed nothing yet.
            </p>
          ) : (
            text !== null && (
              <>
                {truncated && <p className="muted small">Showing the last lines only.</p>}
                <pre ref={view} className="log-view" data-testid="sandbox-logs" tabIndex={0} aria-label="Sandbox output">
                  {text}
                </pre>
              </>
            )
          )}
        </>
      )}
    </section>
  );
}
