import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { useApi, useSession } from '../context';
import { denyReason } from '../permissions';
import type { CommandEvent } from '../types';
import { ActionButton } from './ActionButton';
import { ErrorBanner } from './common';

interface Line {
  kind: 'cmd' | 'stdout' | 'stderr' | 'info';
  text: string;
}

/** Most lines kept on screen; older ones are dropped. */
export const MAX_LINES = 2000;

/** The lines one agent event adds to the terminal. */
export function eventLines(e: CommandEvent): Line[] {
  switch (e.type) {
    case 'stdout':
    case 'stderr':
      return e.text !== undefined ? [{ kind: e.type, text: e.text.replace(/\n$/, '') }] : [];
    case 'error':
      return [{ kind: 'info', text: `exit code ${e.error?.evalue ?? '?'}` }];
    case 'execution_complete':
      return [{ kind: 'info', text: 'exit code 0' }];
    default:
      return [];
  }
}

/**
 * A command runner for operators: each line typed runs in the sandbox (`sh -c`) through
 * its agent, and the output streams in as it is printed. The gateway audits each run.
 */
export function Terminal({ id, blocked }: { id: string; blocked: string | null }) {
  const api = useApi();
  const { me } = useSession();
  const [command, setCommand] = useState('');
  const [lines, setLines] = useState<Line[]>([]);
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const ctrl = useRef<AbortController | null>(null);
  const out = useRef<HTMLPreElement>(null);
  const inputId = useId();
  const reason = denyReason(me, 'sandbox:proxy') ?? blocked;

  useEffect(() => () => ctrl.current?.abort(), []);
  useEffect(() => {
    if (out.current) out.current.scrollTop = out.current.scrollHeight;
  }, [lines]);

  const append = (add: Line[]) => {
    if (add.length) setLines((ls) => [...ls, ...add].slice(-MAX_LINES));
  };

  const run = async (e: FormEvent) => {
    e.preventDefault();
    const cmd = command.trim();
    if (!cmd || running || reason) return;
    setRunning(true);
    setError(null);
    setCommand('');
    append([{ kind: 'cmd', text: `$ ${cmd}` }]);
    const c = new AbortController();
    ctrl.current = c;
    try {
      await api.runCommand(id, cmd, (ev) => append(eventLines(ev)), c.signal);
    } catch (err) {
      if (!c.signal.aborted) setError(err);
    } finally {
      setRunning(false);
    }
  };

  const stop = () => {
    ctrl.current?.abort();
    append([{ kind: 'info', text: 'stopped watching (the command may still run)' }]);
  };

  return (
    <section className="panel panel-wide" aria-labelledby="terminal-title">
      <h2 id="terminal-title">Terminal</h2>
      <p className="hint">
        Runs one command at a time in the sandbox with <code>sh -c</code>; output streams in as it is printed. Every
        command is recorded in the audit log.
      </p>
      <pre ref={out} className="term-output" data-testid="terminal-output" aria-live="polite" tabIndex={0} aria-label="Terminal output">
        {lines.length === 0 ? <span className="term-info">No commands run yet.</span> : null}
        {lines.map((l, i) => (
          <span key={i} className={`term-${l.kind}`}>
            {l.text}
            {'\n'}
          </span>
        ))}
      </pre>
      <form className="row-inline" onSubmit={(e) => void run(e)} noValidate>
        <label htmlFor={inputId}>Command</label>
        <input
          id={inputId}
          type="text"
          className="mono"
          value={command}
          autoComplete="off"
          spellCheck={false}
          disabled={!!reason}
          onChange={(e) => setCommand(e.target.value)}
        />
        <ActionButton type="submit" variant="primary" disabledReason={reason} busy={running}>
          Run
        </ActionButton>
        {running && (
          <button type="button" className="btn btn-ghost btn-small" onClick={stop}>
            Stop watching
          </button>
        )}
      </form>
      <ErrorBanner error={error} />
    </section>
  );
}
