import { useId, useState } from 'react';
import { ApiError } from '../api';
import { useApi, useSession, useToast } from '../context';
import { denyReason } from '../permissions';
import type { Sandbox } from '../types';
import { ActionButton } from './ActionButton';
import { Dialog } from './Dialog';
import { friendlyError } from '../friendly';

/** Deletes of this many sandboxes or more need the count typed to confirm. */
export const TYPE_TO_CONFIRM_FROM = 3;

/** How much a bulk renew adds to each sandbox's expiry. */
export const BULK_RENEW_MS = 3_600_000;

export interface BulkResult {
  id: string;
  ok: boolean;
  text: string;
}

type Kind = 'delete' | 'renew';

/**
 * The bar shown while sandboxes are selected: renew or delete them all, with a
 * confirmation that states the count (and asks for it to be typed for large deletes),
 * then one result line per sandbox.
 */
export function BulkActions({
  selected,
  onClear,
  onDone,
}: {
  selected: Sandbox[];
  onClear: () => void;
  onDone: () => void;
}) {
  const api = useApi();
  const { me } = useSession();
  const toast = useToast();
  const [confirm, setConfirm] = useState<Kind | null>(null);
  const [typed, setTyped] = useState('');
  const [busy, setBusy] = useState(false);
  const [results, setResults] = useState<BulkResult[] | null>(null);
  const typedId = useId();
  const n = selected.length;
  const needsTyping = confirm === 'delete' && n >= TYPE_TO_CONFIRM_FROM;
  const confirmed = !needsTyping || typed.trim() === String(n);

  const runAll = async (kind: Kind) => {
    setBusy(true);
    const out: BulkResult[] = [];
    for (const s of selected) {
      try {
        if (kind === 'delete') {
          await api.deleteSandbox(s.id);
          out.push({ id: s.id, ok: true, text: 'deleted' });
        } else if (!s.expiresAt) {
          out.push({ id: s.id, ok: false, text: 'has no expiry time; nothing to renew' });
        } else {
          const from = Math.max(Date.now(), Date.parse(s.expiresAt));
          await api.renewExpiration(s.id, new Date(from + BULK_RENEW_MS).toISOString());
          out.push({ id: s.id, ok: true, text: 'renewed by 1 hour' });
        }
      } catch (e) {
        const gone = kind === 'delete' && e instanceof ApiError && e.status === 404;
        out.push({ id: s.id, ok: gone, text: gone ? 'was already gone' : friendlyError(e).summary });
      }
    }
    setBusy(false);
    setConfirm(null);
    setTyped('');
    setResults(out);
    const good = out.filter((r) => r.ok).length;
    toast(`${kind === 'delete' ? 'Deleted' : 'Renewed'} ${good} of ${out.length} sandbox${out.length === 1 ? '' : 'es'}.`);
    onClear();
    onDone();
  };

  return (
    <>
      {n > 0 && (
        <div className="bulk-bar" role="region" aria-label="Bulk actions">
          <strong data-testid="selected-count">{n} selected</strong>
          <ActionButton className="btn-small" disabledReason={denyReason(me, 'sandbox:renew')} onClick={() => setConfirm('renew')}>
            Renew selected
          </ActionButton>
          <ActionButton
            variant="danger"
            className="btn-small"
            disabledReason={denyReason(me, 'sandbox:delete')}
            onClick={() => setConfirm('delete')}
          >
            Delete selected
          </ActionButton>
          <button type="button" className="btn btn-ghost btn-small" onClick={onClear}>
            Clear selection
          </button>
        </div>
      )}
      {results && (
        <section className="panel" aria-labelledby="bulk-results-title" data-testid="bulk-results">
          <h2 id="bulk-results-title">Results</h2>
          <ul className="bulk-results">
            {results.map((r) => (
              <li key={r.id} data-ok={r.ok ? 'true' : 'false'}>
                <code>{r.id}</code>: {r.text}
              </li>
            ))}
          </ul>
          <button type="button" className="btn btn-ghost btn-small" onClick={() => setResults(null)}>
            Dismiss results
          </button>
        </section>
      )}
      {confirm && (
        <Dialog
          title={confirm === 'delete' ? `Delete ${n} sandbox${n === 1 ? '' : 'es'}?` : `Renew ${n} sandbox${n === 1 ? '' : 'es'}?`}
          onClose={() => !busy && setConfirm(null)}
        >
          <div className="dialog-body">
            {confirm === 'delete' ? (
              <p>
                {n} sandbox{n === 1 ? '' : 'es'} will be stopped and removed, with everything inside. This cannot be undone.
              </p>
            ) : (
              <p>
                Each of the {n} sandbox{n === 1 ? '' : 'es'} gets one more hour before it expires.
              </p>
            )}
            <ul className="bulk-results">
              {selected.slice(0, 10).map((s) => (
                <li key={s.id}>
                  {s.metadata?.name && <strong>{s.metadata.name} </strong>}
                  <code>{s.id}</code>
                </li>
              ))}
              {n > 10 && <li>and {n - 10} more</li>}
            </ul>
            {needsTyping && (
              <div className="field">
                <label htmlFor={typedId}>Type {n} to confirm</label>
                <input
                  id={typedId}
                  type="text"
                  inputMode="numeric"
                  autoComplete="off"
                  value={typed}
                  onChange={(e) => setTyped(e.target.value)}
                />
              </div>
            )}
          </div>
          <div className="dialog-actions">
            <button type="button" className="btn btn-secondary" onClick={() => setConfirm(null)} disabled={busy}>
              Cancel
            </button>
            <ActionButton
              variant={confirm === 'delete' ? 'danger' : 'primary'}
              busy={busy}
              disabledReason={confirmed ? null : `Type ${n} above to confirm.`}
              onClick={() => void runAll(confirm)}
            >
              {confirm === 'delete' ? `Delete ${n}` : `Renew ${n}`}
            </ActionButton>
          </div>
        </Dialog>
      )}
    </>
  );
}
