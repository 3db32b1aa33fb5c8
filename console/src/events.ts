// Live updates from the gateway's lifecycle event stream (GET /gatehouse/v1/events,
// Server-Sent Events). The browser's EventSource sends the session cookie (same origin)
// and resumes with Last-Event-ID by itself after a break; the gateway scopes the events
// to the user. Pages re-fetch what an event touched and keep a slow poll as a fallback.

import { useEffect, useRef, useState } from 'react';
import type { Me } from './types';

/** The event types the gateway sends. */
export const EVENT_TYPES = [
  'created',
  'running',
  'failed',
  'paused',
  'resumed',
  'renewed',
  'stopped',
  'expired',
  'deleted',
] as const;

/** One lifecycle event (the `data:` JSON). */
export interface LifecycleEvent {
  id: string;
  type: (typeof EVENT_TYPES)[number];
  sandboxId: string;
  state?: string;
  reason?: string;
  message?: string;
  time: string;
  expiresAt?: string;
  actor?: { subject: string; team?: string; role?: string; authMethod: string; keyName?: string } | null;
  source: string;
}

/** Poll interval while the stream is live (a safety net only). */
export const LIVE_REFRESH_MS = 30000;

/** Whether the signed-in user may follow the stream (`events:read`). */
export function canFollowEvents(me: Me | null | undefined): boolean {
  return !!me && (me.permissions as readonly string[]).includes('events:read');
}

/**
 * Follows the stream while `enabled`; calls `onEvent` for each event, and with `null`
 * when events may have been lost (a `reset`: re-fetch everything). Returns whether the
 * stream is connected. Without EventSource (old browsers, tests) it never connects and
 * the caller's polling goes on as before.
 */
export function useLifecycleEvents(
  onEvent: (e: LifecycleEvent | null) => void,
  enabled: boolean,
  sandbox?: string,
): boolean {
  const [live, setLive] = useState(false);
  const cb = useRef(onEvent);
  cb.current = onEvent;
  useEffect(() => {
    if (!enabled || typeof EventSource === 'undefined') {
      setLive(false);
      return;
    }
    const url = `/gatehouse/v1/events${sandbox ? `?sandbox=${encodeURIComponent(sandbox)}` : ''}`;
    const es = new EventSource(url);
    es.onopen = () => {
      setLive(true);
      // Anything may have changed while the stream was down.
      cb.current(null);
    };
    // The browser retries by itself (with Last-Event-ID) unless the gateway refused the
    // stream (401, 403, 404): then it stays closed and the page polls.
    es.onerror = () => setLive(false);
    const handler = (m: MessageEvent) => {
      try {
        cb.current(JSON.parse(String(m.data)) as LifecycleEvent);
      } catch {
        // Not JSON: ignore.
      }
    };
    for (const t of EVENT_TYPES) es.addEventListener(t, handler);
    es.addEventListener('reset', () => cb.current(null));
    es.addEventListener('end', () => {
      es.close();
      setLive(false);
    });
    return () => {
      es.close();
      setLive(false);
    };
  }, [enabled, sandbox]);
  return live;
}
