import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { endpointUrl, proxyPath } from '../api';
import { useAnnounce, useApi, useSession } from '../context';
import { denyReason } from '../permissions';
import { ActionButton } from './ActionButton';
import { ErrorBanner } from './common';
import { copyText } from '../clipboard';

/** The ports listed without asking: the usual HTTP port of sandbox images. */
export const DEFAULT_PORTS = [8080];

export function parsePort(raw: string): number | null {
  if (!/^\d{1,5}$/.test(raw.trim())) return null;
  const n = Number(raw.trim());
  return n >= 1 && n <= 65535 ? n : null;
}

/**
 * The sandbox's ports with their endpoints listed up front (fetched on load, no button
 * to press), copy and "Open via proxy" for each, and a field to add another port. Proxy
 * actions are disabled, with the reason, while the sandbox cannot answer (paused).
 */
export function PortsPanel({ id, proxyBlocked, stopped }: { id: string; proxyBlocked: string | null; stopped: boolean }) {
  const { me } = useSession();
  const [ports, setPorts] = useState<number[]>(DEFAULT_PORTS);
  const [draft, setDraft] = useState('');
  const [draftError, setDraftError] = useState<string | null>(null);
  const inputId = useId();
  const errId = useId();
  const deny = denyReason(me, 'sandbox:endpoint');

  const add = (e: FormEvent) => {
    e.preventDefault();
    const p = parsePort(draft);
    if (p === null) {
      setDraftError('Port must be a whole number from 1 to 65535.');
      return;
    }
    setDraftError(null);
    setDraft('');
    setPorts((ps) => (ps.includes(p) ? ps : [...ps, p]));
  };

  return (
    <section className="panel" aria-labelledby="ports-title">
      <h2 id="ports-title">Ports</h2>
      {deny ? (
        <p className="muted">{deny}</p>
      ) : stopped ? (
        <p className="muted" data-testid="ports-stopped">
          The sandbox has stopped, so none of its ports answer.
        </p>
      ) : (
        <ul className="ports-list">
          {ports.map((p) => (
            <PortRow key={p} id={id} port={p} proxyBlocked={proxyBlocked} />
          ))}
        </ul>
      )}
      <form className="endpoint-form" onSubmit={add} noValidate>
        <div className="field field-inline">
          <label htmlFor={inputId}>Another port</label>
          <input
            id={inputId}
            type="text"
            inputMode="numeric"
            className="input-port"
            value={draft}
            disabled={!!deny}
            onChange={(e) => {
              setDraft(e.target.value);
              setDraftError(null);
            }}
            aria-invalid={draftError ? 'true' : undefined}
            aria-describedby={draftError ? errId : undefined}
          />
          <ActionButton type="submit" disabledReason={deny}>
            Add port
          </ActionButton>
        </div>
        {draftError && (
          <p id={errId} className="field-error" role="alert">
            {draftError}
          </p>
        )}
      </form>
    </section>
  );
}

function PortRow({ id, port, proxyBlocked }: { id: string; port: number; proxyBlocked: string | null }) {
  const api = useApi();
  const { me, config } = useSession();
  const announce = useAnnounce();
  const [url, setUrl] = useState<string | null>(null);
  const [openError, setOpenError] = useState<unknown>(null);
  const [error, setError] = useState<unknown>(null);
  const [copied, setCopied] = useState<string | null>(null);
  const urlRef = useRef<HTMLInputElement>(null);
  const urlId = useId();

  useEffect(() => {
    const ctrl = new AbortController();
    api
      .getEndpoint(id, port, ctrl.signal)
      .then((r) => {
        setUrl(endpointUrl(r.endpoint));
        setError(null);
      })
      .catch((e: unknown) => {
        if (!ctrl.signal.aborted) setError(e);
      });
    return () => ctrl.abort();
  }, [api, id, port]);

  // With sandbox origins, the page opens on `{id}-{port}.{domain}` through a single-use
  // hand-off, so sandbox content never runs on the console's origin. The tab is opened
  // now (a popup blocker allows it only inside the click) and sent on once the URL is known.
  const openOnOwnOrigin = () => {
    const tab = window.open('about:blank', '_blank');
    if (tab) tab.opener = null;
    api.sandboxHandoff(id, port).then(
      (handoff) => {
        if (tab) tab.location.href = handoff;
      },
      (e: unknown) => {
        tab?.close();
        setOpenError(e);
      },
    );
  };

  const copy = async () => {
    if (!url) return;
    const ok = await copyText(url, urlRef.current);
    const msg = ok ? 'Copied to the clipboard.' : 'Copy failed: select the address and copy it yourself.';
    setCopied(msg);
    announce(msg);
  };

  return (
    <li data-testid="port-row" data-port={port}>
      <strong>Port {port}</strong>
      {url ? (
        <>
          <label htmlFor={urlId} className="sr-only">
            Endpoint URL (port {port})
          </label>
          <input id={urlId} ref={urlRef} type="text" readOnly value={url} className="mono" onFocus={(e) => e.target.select()} />
          <button type="button" className="btn btn-secondary btn-small" onClick={() => void copy()}>
            Copy
          </button>
          <ActionButton
            variant="primary"
            className="btn-small"
            disabledReason={denyReason(me, 'sandbox:proxy') ?? proxyBlocked}
            onClick={() => (config.sandboxOrigins ? openOnOwnOrigin() : window.open(proxyPath(id, port), '_blank', 'noopener,noreferrer'))}
          >
            Open via proxy
          </ActionButton>
          {copied && (
            <span className="small" role="status">
              {copied}
            </span>
          )}
          {openError !== null && <ErrorBanner error={openError} onDismiss={() => setOpenError(null)} />}
        </>
      ) : error ? (
        <ErrorBanner error={error} />
      ) : (
        <span className="muted">Looking up the endpoint…</span>
      )}
    </li>
  );
}
