import { useEffect, useRef, useState } from 'react';

/** The current time, updated every `intervalMs`. */
export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), intervalMs);
    return () => window.clearInterval(t);
  }, [intervalMs]);
  return now;
}

/**
 * Calls `tick` now and then again `intervalMs` after each call settles (never two at a
 * time), skipping ticks while the tab is hidden. `tick` returns false to stop polling.
 * Changing `key` restarts the loop; the previous tick's signal is aborted.
 */
export function usePolling(
  tick: (signal: AbortSignal) => Promise<boolean | void>,
  intervalMs: number | (() => number),
  key: unknown,
  enabled = true,
): void {
  const tickRef = useRef(tick);
  tickRef.current = tick;
  const intervalRef = useRef(intervalMs);
  intervalRef.current = intervalMs;

  useEffect(() => {
    if (!enabled) return;
    const ctrl = new AbortController();
    let timer: number | undefined;
    let stopped = false;
    let waitingForVisible = false;

    const schedule = () => {
      if (stopped) return;
      const iv = intervalRef.current;
      const ms = typeof iv === 'function' ? iv() : iv;
      timer = window.setTimeout(run, ms);
    };
    const run = async () => {
      if (stopped) return;
      if (document.visibilityState === 'hidden') {
        waitingForVisible = true;
        return;
      }
      let keepGoing: boolean | void = true;
      try {
        keepGoing = await tickRef.current(ctrl.signal);
      } catch {
        // The tick reports its own errors; polling goes on.
      }
      if (keepGoing === false) stopped = true;
      else schedule();
    };
    const onVisible = () => {
      if (document.visibilityState === 'visible' && waitingForVisible && !stopped) {
        waitingForVisible = false;
        void run();
      }
    };
    document.addEventListener('visibilitychange', onVisible);
    void run();
    return () => {
      stopped = true;
      ctrl.abort();
      window.clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisible);
    };
    // Restarts only when `key` or `enabled` changes: tick and interval are read through refs.
  }, [key, enabled]);
}
