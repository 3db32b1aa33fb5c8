import { useEffect, useId, useMemo, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { ApiError } from '../api';
import { useAnnounce, useApi, useSession } from '../context';
import { denyReason } from '../permissions';
import { Link, paths } from '../router';
import type { CreateSandboxRequest, Sandbox } from '../types';
import {
  RULES,
  isLabelValue,
  parseTimeout,
  splitCommand,
  validateCpu,
  validateEntrypoint,
  validateEnvName,
  validateEnvValue,
  validateImage,
  validateMemory,
  validateMetadataKey,
  validateMetadataValue,
} from '../validation';
import { ActionButton } from '../components/ActionButton';
import { ErrorBanner, Notice, StateBadge } from '../components/common';
import { explainStatus } from '../friendly';

interface Row {
  id: number;
  key: string;
  value: string;
}

export interface CreateForm {
  /** Shown beside the id; stored as the `name` metadata key. */
  name: string;
  image: string;
  entrypoint: string;
  timeout: string;
  cpu: string;
  memory: string;
  env: Row[];
  metadata: Row[];
}

export type FieldErrors = Record<string, string>;

/** Every error of the form, keyed by the id of the input it belongs to. */
export function validateForm(f: CreateForm): { errors: FieldErrors; request: CreateSandboxRequest | null } {
  const errors: FieldErrors = {};
  const set = (k: string, e: string | null) => {
    if (e) errors[k] = e;
  };
  set('image', validateImage(f.image));
  const split = splitCommand(f.entrypoint);
  set('entrypoint', validateEntrypoint(split.tokens, split.error));
  const timeout = parseTimeout(f.timeout);
  set('timeout', timeout.error);
  set('cpu', validateCpu(f.cpu));
  set('memory', validateMemory(f.memory));

  const env: Record<string, string> = {};
  f.env.forEach((r, i) => {
    if (!r.key && !r.value) return;
    const e = validateEnvName(r.key) ?? (Object.prototype.hasOwnProperty.call(env, r.key) ? `Variable '${r.key}' is set twice.` : null);
    set(`env-${i}-key`, e);
    set(`env-${i}-value`, validateEnvValue(r.value));
    env[r.key] = r.value;
  });

  const metadata: Record<string, string> = {};
  const name = f.name.trim();
  if (name) {
    set('name', isLabelValue(name) ? null : `Name '${name}' is not allowed. ${RULES.name}`);
    metadata.name = name;
  }
  f.metadata.forEach((r, i) => {
    const key = r.key.trim();
    const value = r.value.trim();
    if (!key && !value) return;
    const e =
      validateMetadataKey(key) ?? (Object.prototype.hasOwnProperty.call(metadata, key) ? `Key '${key}' is set twice.` : null);
    set(`meta-${i}-key`, e);
    set(`meta-${i}-value`, validateMetadataValue(value));
    metadata[key] = value;
  });

  if (Object.keys(errors).length > 0) return { errors, request: null };
  const request: CreateSandboxRequest = { image: { uri: f.image.trim() }, entrypoint: split.tokens };
  if (timeout.value !== null) request.timeout = timeout.value;
  const limits: Record<string, string> = {};
  if (f.cpu.trim()) limits.cpu = f.cpu.trim();
  if (f.memory.trim()) limits.memory = f.memory.trim();
  if (Object.keys(limits).length) request.resourceLimits = limits;
  if (Object.keys(env).length) request.env = env;
  if (Object.keys(metadata).length) request.metadata = metadata;
  return { errors, request };
}

let rowIds = 0;
const newRow = (): Row => ({ id: ++rowIds, key: '', value: '' });

export const DEFAULT_FORM: Omit<CreateForm, 'env' | 'metadata'> = {
  name: '',
  image: '',
  entrypoint: '',
  timeout: '3600',
  cpu: '500m',
  memory: '512Mi',
};

const FIELD_LABELS: Record<string, string> = {
  name: 'Name',
  image: 'Image',
  entrypoint: 'Entrypoint',
  timeout: 'Timeout (seconds)',
  cpu: 'CPU',
  memory: 'Memory',
};

function labelFor(key: string): string {
  if (FIELD_LABELS[key]) return FIELD_LABELS[key];
  const m = /^(env|meta)-(\d+)-(key|value)$/.exec(key);
  if (!m) return key;
  const n = Number(m[2]) + 1;
  return m[1] === 'env' ? `Variable ${n} ${m[3] === 'key' ? 'name' : 'value'}` : `Metadata ${n} ${m[3]}`;
}

export const POLL_MS = 1000;
export const START_TIMEOUT_MS = 180_000;

export function CreateSandbox() {
  const api = useApi();
  const { me } = useSession();
  const [form, setForm] = useState<CreateForm>(() => ({ ...DEFAULT_FORM, env: [], metadata: [] }));
  const [touched, setTouched] = useState<Record<string, boolean>>({});
  const [submitted, setSubmitted] = useState(false);
  const [submitError, setSubmitError] = useState<unknown>(null);
  const [submitting, setSubmitting] = useState(false);
  const [created, setCreated] = useState<Sandbox | null>(null);
  const summaryRef = useRef<HTMLDivElement>(null);
  const reason = denyReason(me, 'sandbox:create');

  useEffect(() => {
    document.title = 'New sandbox · Gatehouse';
  }, []);

  const { errors, request } = useMemo(() => validateForm(form), [form]);
  const parsed = useMemo(() => splitCommand(form.entrypoint), [form.entrypoint]);
  const shown = (k: string) => (submitted || touched[k] ? errors[k] : undefined);
  const touch = useDeferredTouch(setTouched);
  const setField = (k: keyof Omit<CreateForm, 'env' | 'metadata'>, v: string) => setForm((f) => ({ ...f, [k]: v }));

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    if (reason || submitting) return;
    setSubmitted(true);
    setSubmitError(null);
    if (!request) {
      // Focus the summary so the errors are read out; each one links to its field.
      window.setTimeout(() => summaryRef.current?.focus(), 0);
      return;
    }
    setSubmitting(true);
    try {
      const sb = await api.createSandbox(request);
      setCreated(sb);
    } catch (err) {
      setSubmitError(err);
      window.setTimeout(() => summaryRef.current?.focus(), 0);
    } finally {
      setSubmitting(false);
    }
  };

  if (created) {
    return <StartProgress initial={created} onAnother={() => { setCreated(null); setSubmitted(false); setTouched({}); }} />;
  }

  const errorList = submitted ? Object.entries(errors) : [];

  return (
    <section aria-labelledby="create-title" className="create">
      <p className="back">
        <Link to={paths.list()}>← All sandboxes</Link>
      </p>
      <h1 id="create-title" tabIndex={-1}>
        New sandbox
      </h1>
      {reason && <Notice tone="warning">{reason}</Notice>}

      <div ref={summaryRef} tabIndex={-1} className="summary-anchor">
        {errorList.length > 0 && (
          <div className="banner banner-error" role="alert" data-testid="error-summary">
            <p className="banner-message">
              {errorList.length === 1 ? 'One field needs attention:' : `${errorList.length} fields need attention:`}
            </p>
            <ul>
              {errorList.map(([k, msg]) => (
                <li key={k}>
                  <a href={`#${k}`} onClick={(ev) => { ev.preventDefault(); document.getElementById(k)?.focus(); }}>
                    {labelFor(k)}: {msg}
                  </a>
                </li>
              ))}
            </ul>
          </div>
        )}
        <ErrorBanner error={submitError} />
        {submitError instanceof ApiError && submitError.status === 403 && (
          <p className="hint">The gateway decides what your role may do; ask an operator if you need more.</p>
        )}
      </div>

      <form className="form" onSubmit={onSubmit} noValidate>
        <Field id="name" label="Name" rule={RULES.name} error={shown('name')}>
          <input
            id="name"
            name="name"
            type="text"
            value={form.name}
            placeholder="web-demo"
            autoComplete="off"
            spellCheck={false}
            onChange={(e) => setField('name', e.target.value)}
            onBlur={() => touch('name')}
            {...aria('name', shown('name'))}
          />
        </Field>

        <Field id="image" label="Image" rule={RULES.image} error={shown('image')} required>
          <input
            id="image"
            name="image"
            type="text"
            value={form.image}
            placeholder="python:3.11"
            autoComplete="off"
            spellCheck={false}
            required
            onChange={(e) => setField('image', e.target.value)}
            onBlur={() => touch('image')}
            {...aria('image', shown('image'))}
          />
        </Field>

        <Field id="entrypoint" label="Entrypoint" rule={RULES.entrypoint} error={shown('entrypoint')} required>
          <input
            id="entrypoint"
            name="entrypoint"
            type="text"
            className="mono"
            value={form.entrypoint}
            placeholder={`sh -c "echo hello; sleep infinity"`}
            autoComplete="off"
            spellCheck={false}
            required
            onChange={(e) => setField('entrypoint', e.target.value)}
            onBlur={() => touch('entrypoint')}
            {...aria('entrypoint', shown('entrypoint'), 'entrypoint-parsed')}
          />
          <p id="entrypoint-parsed" className="parsed" data-testid="entrypoint-parsed">
            <span className="muted">Runs as: </span>
            <code>{parsed.error ? '—' : JSON.stringify(parsed.tokens)}</code>
          </p>
        </Field>

        <div className="grid-3">
          <Field id="timeout" label="Timeout (seconds)" rule={RULES.timeout} error={shown('timeout')}>
            <input
              id="timeout"
              name="timeout"
              type="text"
              inputMode="numeric"
              value={form.timeout}
              placeholder="no expiry"
              onChange={(e) => setField('timeout', e.target.value)}
              onBlur={() => touch('timeout')}
              {...aria('timeout', shown('timeout'))}
            />
          </Field>
          <Field id="cpu" label="CPU" rule={RULES.cpu} error={shown('cpu')}>
            <input
              id="cpu"
              name="cpu"
              type="text"
              value={form.cpu}
              placeholder="500m"
              autoComplete="off"
              onChange={(e) => setField('cpu', e.target.value)}
              onBlur={() => touch('cpu')}
              {...aria('cpu', shown('cpu'))}
            />
          </Field>
          <Field id="memory" label="Memory" rule={RULES.memory} error={shown('memory')}>
            <input
              id="memory"
              name="memory"
              type="text"
              value={form.memory}
              placeholder="512Mi"
              autoComplete="off"
              onChange={(e) => setField('memory', e.target.value)}
              onBlur={() => touch('memory')}
              {...aria('memory', shown('memory'))}
            />
          </Field>
        </div>

        <Rows
          legend="Environment variables"
          hint={`Names: ${RULES.envName} Values are passed as they are and are not stored by the backend.`}
          prefix="env"
          keyLabel="name"
          itemNoun="variable"
          rows={form.env}
          shown={shown}
          touch={touch}
          onChange={(env) => setForm((f) => ({ ...f, env }))}
        />

        <Rows
          legend="Metadata"
          hint={`Keys: ${RULES.metadataKey} Values: ${RULES.metadataValue}`}
          prefix="meta"
          keyLabel="key"
          itemNoun="metadata"
          rows={form.metadata}
          shown={shown}
          touch={touch}
          onChange={(metadata) => setForm((f) => ({ ...f, metadata }))}
        />

        <div className="form-actions">
          <ActionButton type="submit" variant="primary" disabledReason={reason} busy={submitting}>
            Create sandbox
          </ActionButton>
          {submitting && <span className="muted">Submitting…</span>}
          <Link to={paths.list()} className="btn btn-ghost">
            Cancel
          </Link>
        </div>
      </form>
    </section>
  );
}

/**
 * Marks a field as touched when it loses focus, so its error shows. If the focus moved
 * because a pointer is pressed (a click on "Create sandbox" or "Add metadata"), the error
 * waits until that click is over: an error appearing between mousedown and mouseup would
 * move the button away from under the pointer and swallow the click.
 */
function useDeferredTouch(setTouched: (f: (t: Record<string, boolean>) => Record<string, boolean>) => void) {
  const pressed = useRef(false);
  const pending = useRef<string[]>([]);
  useEffect(() => {
    const flush = () => {
      const keys = pending.current;
      pending.current = [];
      if (keys.length) setTouched((t) => (keys.every((k) => t[k]) ? t : { ...t, ...Object.fromEntries(keys.map((k) => [k, true])) }));
    };
    const down = () => {
      pressed.current = true;
    };
    const up = () => {
      // After the click that follows this pointerup.
      window.setTimeout(() => {
        pressed.current = false;
        flush();
      }, 0);
    };
    document.addEventListener('pointerdown', down, true);
    document.addEventListener('pointerup', up, true);
    document.addEventListener('pointercancel', up, true);
    return () => {
      document.removeEventListener('pointerdown', down, true);
      document.removeEventListener('pointerup', up, true);
      document.removeEventListener('pointercancel', up, true);
    };
  }, [setTouched]);
  return (k: string) => {
    if (pressed.current) pending.current.push(k);
    else setTouched((t) => (t[k] ? t : { ...t, [k]: true }));
  };
}

function aria(id: string, error: string | undefined, extra?: string) {
  const described = [error ? `${id}-error` : null, `${id}-rule`, extra].filter(Boolean).join(' ');
  return {
    'aria-invalid': error ? ('true' as const) : undefined,
    'aria-describedby': described,
  };
}

function Field({
  id,
  label,
  rule,
  error,
  required,
  children,
}: {
  id: string;
  label: string;
  rule: string;
  error: string | undefined;
  required?: boolean;
  children: ReactNode;
}) {
  return (
    <div className={`field${error ? ' field-invalid' : ''}`}>
      <div className="label-row">
        <label htmlFor={id}>{label}</label>
        {required && (
          <span className="req-tag" aria-hidden="true">
            required
          </span>
        )}
      </div>
      {children}
      <p id={`${id}-rule`} className="hint">
        {rule}
      </p>
      {error && (
        <p id={`${id}-error`} className="field-error" data-testid={`${id}-error`}>
          {error}
        </p>
      )}
    </div>
  );
}

function Rows({
  legend,
  hint,
  prefix,
  keyLabel,
  itemNoun,
  rows,
  shown,
  touch,
  onChange,
}: {
  legend: string;
  hint: string;
  prefix: string;
  keyLabel: string;
  itemNoun: string;
  rows: Row[];
  shown: (k: string) => string | undefined;
  touch: (k: string) => void;
  onChange: (rows: Row[]) => void;
}) {
  const hintId = useId();
  const Noun = itemNoun[0]!.toUpperCase() + itemNoun.slice(1);
  const update = (i: number, patch: Partial<Row>) => onChange(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <fieldset className="rows" aria-describedby={hintId}>
      <legend>{legend}</legend>
      <p id={hintId} className="hint">
        {hint}
      </p>
      {rows.map((r, i) => {
        const kId = `${prefix}-${i}-key`;
        const vId = `${prefix}-${i}-value`;
        const kErr = shown(kId);
        const vErr = shown(vId);
        return (
          <div className="row" key={r.id}>
            <div className={`field${kErr ? ' field-invalid' : ''}`}>
              <label htmlFor={kId}>
                {Noun} {i + 1} {keyLabel}
              </label>
              <input
                id={kId}
                type="text"
                className="mono"
                value={r.key}
                autoComplete="off"
                spellCheck={false}
                onChange={(e) => update(i, { key: e.target.value })}
                onBlur={() => touch(kId)}
                aria-invalid={kErr ? 'true' : undefined}
                aria-describedby={kErr ? `${kId}-error` : undefined}
              />
              {kErr && (
                <p id={`${kId}-error`} className="field-error">
                  {kErr}
                </p>
              )}
            </div>
            <div className={`field${vErr ? ' field-invalid' : ''}`}>
              <label htmlFor={vId}>
                {Noun} {i + 1} value
              </label>
              <input
                id={vId}
                type="text"
                className="mono"
                value={r.value}
                autoComplete="off"
                spellCheck={false}
                onChange={(e) => update(i, { value: e.target.value })}
                onBlur={() => touch(vId)}
                aria-invalid={vErr ? 'true' : undefined}
                aria-describedby={vErr ? `${vId}-error` : undefined}
              />
              {vErr && (
                <p id={`${vId}-error`} className="field-error">
                  {vErr}
                </p>
              )}
            </div>
            <button
              type="button"
              className="btn btn-ghost btn-small row-remove"
              aria-label={`Remove ${itemNoun} ${i + 1}`}
              onClick={() => onChange(rows.filter((_, j) => j !== i))}
            >
              Remove
            </button>
          </div>
        );
      })}
      <button type="button" className="btn btn-secondary btn-small" onClick={() => onChange([...rows, newRow()])}>
        Add {itemNoun}
      </button>
    </fieldset>
  );
}

type Phase = 'starting' | 'running' | 'failed' | 'slow' | 'lost';

const STEPS = [
  { key: 'accepted', label: 'Request accepted' },
  { key: 'pending', label: 'Provisioning (Pending)' },
  { key: 'running', label: 'Running' },
] as const;

function StartProgress({ initial, onAnother }: { initial: Sandbox; onAnother: () => void }) {
  const api = useApi();
  const announce = useAnnounce();
  const [sb, setSb] = useState<Sandbox>(initial);
  const [phase, setPhase] = useState<Phase>(() => phaseOf(initial.status.state));
  const [error, setError] = useState<unknown>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);
  const viewRef = useRef<HTMLAnchorElement>(null);
  const started = useRef(Date.now());

  useEffect(() => {
    headingRef.current?.focus();
    announce(`Sandbox ${initial.id} accepted; state ${initial.status.state}.`);
    // Once, when the progress view appears.
  }, []);

  useEffect(() => {
    if (phase !== 'starting') return;
    let stop = false;
    let timer: number | undefined;
    const ctrl = new AbortController();
    const tick = async () => {
      try {
        const s = await api.getSandbox(initial.id, ctrl.signal);
        if (stop) return;
        setSb(s);
        setError(null);
        const p = phaseOf(s.status.state);
        if (p !== 'starting') {
          setPhase(p);
          return;
        }
      } catch (e) {
        if (stop) return;
        if (e instanceof ApiError && e.status === 404) {
          setPhase('lost');
          return;
        }
        setError(e);
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return;
      }
      if (Date.now() - started.current > START_TIMEOUT_MS) {
        setPhase('slow');
        return;
      }
      timer = window.setTimeout(tick, POLL_MS);
    };
    timer = window.setTimeout(tick, initial.status.state === 'Pending' ? POLL_MS : 0);
    return () => {
      stop = true;
      ctrl.abort();
      window.clearTimeout(timer);
    };
  }, [api, initial.id, initial.status.state, phase]);

  useEffect(() => {
    if (phase === 'running') {
      announce(`Sandbox ${initial.id} is running.`);
      viewRef.current?.focus();
    } else if (phase === 'failed') {
      announce(`Sandbox ${initial.id} did not start: ${sb.status.state}.`);
    }
    // Only on a phase change.
  }, [phase]);

  const state = sb.status.state;
  // Step 0 (accepted) is done as soon as we are here; step 1 runs until the sandbox is Running.
  const stepIndex = phase === 'running' ? STEPS.length : 1;

  return (
    <section aria-labelledby="progress-title" className="progress-page">
      <p className="back">
        <Link to={paths.list()}>← All sandboxes</Link>
      </p>
      <h1 id="progress-title" ref={headingRef} tabIndex={-1}>
        {phase === 'running' ? 'Sandbox running' : phase === 'failed' ? 'Sandbox failed to start' : 'Starting sandbox'}
      </h1>
      <div className="panel">
        <p>
          Sandbox <code data-testid="created-id">{sb.id}</code> <StateBadge state={state} />
        </p>
        <ol className="steps" aria-label="Progress">
          {STEPS.map((s, i) => {
            const status =
              phase === 'failed' && i >= 1 ? (i === 1 ? 'failed' : 'todo') : i < stepIndex ? 'done' : i === stepIndex ? 'current' : 'todo';
            return (
              <li key={s.key} className={`step step-${status}`} aria-current={status === 'current' ? 'step' : undefined}>
                <span className="step-mark" aria-hidden="true" />
                <span>{s.label}</span>
                <span className="sr-only">
                  {status === 'done' ? ' (done)' : status === 'current' ? ' (in progress)' : status === 'failed' ? ' (failed)' : ''}
                </span>
              </li>
            );
          })}
        </ol>
        {(sb.status.reason || sb.status.message) && (
          <p className="status-message">
            {sb.status.reason && <code>{sb.status.reason}</code>} {sb.status.message}
          </p>
        )}
        {phase === 'failed' && explainStatus(sb.status) && (
          <div className="banner banner-error" data-testid="status-explained">
            <p className="banner-message">{explainStatus(sb.status)!.summary}</p>
            {explainStatus(sb.status)!.next && (
              <p className="banner-next">
                {explainStatus(sb.status)!.next!.replace('below', 'on the sandbox page (View sandbox)')}
              </p>
            )}
          </div>
        )}
        {phase === 'slow' && (
          <Notice tone="warning">
            The sandbox is still {state} after {Math.round(START_TIMEOUT_MS / 60000)} minutes. Open it to keep watching.
          </Notice>
        )}
        {phase === 'lost' && <Notice tone="warning">The sandbox disappeared while starting (deleted or expired).</Notice>}
        <ErrorBanner error={error} />
        <div className="form-actions">
          {phase !== 'lost' && (
            <Link to={paths.detail(sb.id)} className="btn btn-primary" ref={viewRef}>
              View sandbox
            </Link>
          )}
          <button type="button" className="btn btn-secondary" onClick={onAnother}>
            Create another
          </button>
        </div>
      </div>
    </section>
  );
}

function phaseOf(state: string): Phase {
  if (state === 'Running') return 'running';
  if (state === 'Failed' || state === 'Terminated' || state === 'Stopping') return 'failed';
  return 'starting';
}
