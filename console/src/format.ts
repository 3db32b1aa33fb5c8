// Display helpers: scope tokens, times and durations.

import { SCOPE_KEYS } from './validation';

/** `alice.4kq0...` → `alice`: the readable part of a scope token. */
export function tokenLabel(token: string): string {
  const dot = token.indexOf('.');
  return dot === -1 ? token : token.slice(0, dot);
}

export function ownerOf(metadata: Record<string, string> | undefined): string | null {
  return metadata?.['access.owner'] ?? null;
}

export function teamOf(metadata: Record<string, string> | undefined): string | null {
  return metadata?.['access.team'] ?? null;
}

/** The user-visible metadata: everything except the gateway's scope keys, sorted by key. */
export function userMetadata(metadata: Record<string, string> | undefined): Array<[string, string]> {
  return Object.entries(metadata ?? {})
    .filter(([k]) => !(SCOPE_KEYS as readonly string[]).includes(k))
    .sort(([a], [b]) => a.localeCompare(b));
}

/** `1h 2m 3s`; at most two units for long spans (`3d 4h`). */
export function formatDuration(ms: number): string {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return h > 0 ? `${d}d ${h}h` : `${d}d`;
  if (h > 0) return m > 0 ? `${h}h ${m}m` : `${h}h`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

/** `in 4m 12s` / `expired 3s ago` / `no expiry`. */
export function expiryText(expiresAt: string | null | undefined, now: number): string {
  if (!expiresAt) return 'no expiry';
  const t = Date.parse(expiresAt);
  if (Number.isNaN(t)) return expiresAt;
  const diff = t - now;
  return diff > 0 ? `in ${formatDuration(diff)}` : `expired ${formatDuration(-diff)} ago`;
}

/** The local time zone's short name (`UTC`, `CET`, `GMT+2`). */
export function zoneName(d: Date): string {
  try {
    const part = new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' })
      .formatToParts(d)
      .find((p) => p.type === 'timeZoneName');
    if (part?.value) return part.value;
  } catch {
    // Fall through.
  }
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  return `UTC${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

/** A compact local date-time: `2026-11-23 14:05:09`, with the zone when `zone` is set. */
export function formatDateTime(iso: string | null | undefined, zone = false): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  const text = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  return zone ? `${text} ${zoneName(d)}` : text;
}

/** `5m ago` style, for creation times. */
export function agoText(iso: string | null | undefined, now: number): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const diff = now - t;
  return diff < 1000 ? 'just now' : `${formatDuration(diff)} ago`;
}

export function formatTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
