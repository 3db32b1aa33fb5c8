// The server's validation rules (lifecycle/src/validate.rs), mirrored so the create form
// can show them before submit. The server stays the authority: whatever it answers is
// shown as it is.

/** Metadata keys under this prefix belong to the system. */
export const RESERVED_PREFIX = 'opensandbox.io/';
/** The gateway's scope keys: set from the signed-in user, never by the client. */
export const SCOPE_KEYS = ['access.owner', 'access.team'] as const;

export function isScopeKey(key: string): boolean {
  return (SCOPE_KEYS as readonly string[]).includes(key);
}

const MAX_LABEL = 63;
const MAX_PREFIX = 253;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters. */
export function isLabelName(s: string): boolean {
  return s.length > 0 && s.length <= MAX_LABEL && LABEL_NAME.test(s);
}

/** A label value: empty, or a label name. */
export function isLabelValue(s: string): boolean {
  return s === '' || isLabelName(s);
}

function isDnsLabel(s: string): boolean {
  return s.length > 0 && s.length <= MAX_LABEL && DNS_LABEL.test(s);
}

/** A lowercase RFC 1123 DNS subdomain of at most 253 characters. */
export function isDnsSubdomain(s: string): boolean {
  return s.length <= MAX_PREFIX && s.split('.').every(isDnsLabel);
}

/** A label key: `name` or `prefix/name` with a DNS-subdomain prefix. */
export function isLabelKey(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash === -1) return isLabelName(key);
  return isDnsSubdomain(key.slice(0, slash)) && isLabelName(key.slice(slash + 1));
}

export const RULES = {
  image: 'Required: a container image, e.g. python:3.11 or registry.example.com/app:1.0.',
  entrypoint:
    'Required: the command the sandbox runs, split like a shell command (quotes group words). The first word must not be empty.',
  timeout:
    'Whole seconds, at least 60. Leave empty for no expiry (you then delete the sandbox yourself). The server may cap the maximum.',
  cpu: 'Cores ("1", "0.5") or millicores ("500m"), at least 1m. Leave empty for no limit.',
  memory:
    'Bytes, or a number with Ki, Mi, Gi, Ti, k, M, G or T (e.g. "512Mi", "1Gi"), at least 6Mi. Leave empty for no limit.',
  name: 'Optional. Shown beside the sandbox id and searchable in the list, e.g. web-demo. Up to 63 letters, digits, dashes, underscores or dots; start and end with a letter or digit.',
  metadataKey:
    'A short word such as project or team.example.com/owner: up to 63 letters, digits, dashes, underscores or dots, starting and ending with a letter or digit. Keys starting with opensandbox.io/, and access.owner and access.team, are set by the system.',
  metadataValue: 'Can be empty. Otherwise up to 63 letters, digits, dashes, underscores or dots, starting and ending with a letter or digit.',
  envName: 'Required; must not contain "=".',
} as const;

// ---- single fields; each returns an error message or null ----

export function validateImage(uri: string): string | null {
  return uri.trim() ? null : "Image is required ('image.uri' must not be empty).";
}

export function validateEntrypoint(tokens: string[] | null, parseError: string | null): string | null {
  if (parseError) return parseError;
  if (!tokens || tokens.length === 0 || !tokens[0]!.trim()) {
    return 'Entrypoint must contain at least one command.';
  }
  return null;
}

/** Largest timeout the server can represent (ten thousand years). */
const MAX_TIMEOUT = 315_576_000_000;
export const MIN_TIMEOUT = 60;

/** Parses the timeout field: `null` means no expiry. */
export function parseTimeout(raw: string): { value: number | null; error: string | null } {
  const s = raw.trim();
  if (!s) return { value: null, error: null };
  if (!/^-?\d+$/.test(s)) return { value: null, error: 'Timeout must be a whole number of seconds.' };
  const t = Number(s);
  if (t < MIN_TIMEOUT) return { value: null, error: `Timeout ${s}s is below the minimum of ${MIN_TIMEOUT}s.` };
  if (t > MAX_TIMEOUT) return { value: null, error: `Timeout ${s}s is too large.` };
  return { value: t, error: null };
}

/** CPU quantity in nano-CPUs, or null if invalid. Mirrors `cpu_nanos`. */
export function cpuNanos(q: string): number | null {
  const s = q.trim();
  const milli = s.endsWith('m');
  const num = milli ? s.slice(0, -1) : s;
  if (!num || !/^[0-9.]+$/.test(num)) return null;
  const v = Number(num);
  if (!Number.isFinite(v)) return null;
  const nanos = v * (milli ? 1e6 : 1e9);
  if (!Number.isFinite(nanos) || nanos < 1e6 || nanos > 1e15) return null;
  return Math.trunc(nanos);
}

export function validateCpu(raw: string): string | null {
  if (!raw.trim()) return null;
  return cpuNanos(raw) === null
    ? `CPU '${raw.trim()}' is invalid: use cores ("1", "0.5") or millicores ("500m").`
    : null;
}

const MEMORY_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;

/** Memory quantity in bytes, or null if invalid. Mirrors `memory_bytes`. */
export function memoryBytes(q: string): number | null {
  const s = q.trim();
  const m = /^([0-9.]*)([\s\S]*)$/.exec(s)!;
  const num = m[1]!;
  const unit = m[2]!;
  const mult = Object.prototype.hasOwnProperty.call(MEMORY_UNITS, unit) ? MEMORY_UNITS[unit]! : undefined;
  if (mult === undefined || !num) return null;
  const v = Number(num);
  if (!Number.isFinite(v)) return null;
  const bytes = v * mult;
  if (!Number.isFinite(bytes) || bytes < MIN_MEMORY_BYTES || bytes > 9e18) return null;
  return Math.trunc(bytes);
}

export function validateMemory(raw: string): string | null {
  if (!raw.trim()) return null;
  return memoryBytes(raw) === null
    ? `Memory '${raw.trim()}' is invalid: use bytes or a suffix Ki, Mi, Gi, Ti, k, M, G, T (e.g. "512Mi"), at least 6Mi.`
    : null;
}

export function validateMetadataKey(key: string): string | null {
  if (!key) return 'Metadata key is required.';
  if (key.startsWith(RESERVED_PREFIX)) {
    return `Metadata key '${key}' uses the reserved prefix '${RESERVED_PREFIX}'.`;
  }
  if (isScopeKey(key)) {
    return `Metadata key '${key}' is reserved: the gateway sets it from your identity.`;
  }
  if (!isLabelKey(key)) {
    return `Metadata key '${key}' is invalid. ${RULES.metadataKey}`;
  }
  return null;
}

export function validateMetadataValue(value: string): string | null {
  return isLabelValue(value) ? null : `Metadata value '${value}' is invalid. ${RULES.metadataValue}`;
}

export function validateEnvName(name: string): string | null {
  if (!name) return 'Environment variable name is required.';
  if (name.includes('=')) return `Environment variable name '${name}' must not contain '='.`;
  if (name.includes('\0')) return `Environment variable name '${name}' must not contain NUL.`;
  return null;
}

export function validateEnvValue(value: string): string | null {
  return value.includes('\0') ? 'Environment variable values must not contain NUL.' : null;
}

// ---- shell-like splitting of the entrypoint field ----

export interface SplitResult {
  tokens: string[];
  error: string | null;
}

/**
 * Splits a command line the way a POSIX shell splits words, without expansions:
 * whitespace separates words; single quotes keep everything literally; double quotes
 * keep everything but `\"`, `\\`, `\$` and `` \` `` escapes; outside quotes a backslash
 * keeps the next character. `''` gives an empty word.
 */
export function splitCommand(input: string): SplitResult {
  const tokens: string[] = [];
  let cur = '';
  let inWord = false;
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (c === "'") {
      const end = input.indexOf("'", i + 1);
      if (end === -1) return { tokens, error: 'Entrypoint has an unclosed single quote.' };
      cur += input.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      let closed = false;
      while (i < input.length) {
        const d = input[i]!;
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        if (d === '\\' && i + 1 < input.length && '"\\$`\n'.includes(input[i + 1]!)) {
          if (input[i + 1] !== '\n') cur += input[i + 1];
          i += 2;
          continue;
        }
        cur += d;
        i++;
      }
      if (!closed) return { tokens, error: 'Entrypoint has an unclosed double quote.' };
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 >= input.length) return { tokens, error: 'Entrypoint ends with a lone backslash.' };
      if (input[i + 1] !== '\n') {
        cur += input[i + 1];
        inWord = true;
      }
      i += 2;
    } else if (/\s/.test(c)) {
      if (inWord) tokens.push(cur);
      cur = '';
      inWord = false;
      i++;
    } else {
      cur += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) tokens.push(cur);
  return { tokens, error: null };
}

/** Shows an argv array as a command line that `splitCommand` reads back. */
export function joinCommand(argv: string[]): string {
  return argv
    .map((a) => (a !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}
