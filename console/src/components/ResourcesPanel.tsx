import { useState } from 'react';
import { ApiError } from '../api';
import { useApi, useSession } from '../context';
import { usePolling } from '../hooks';
import { denyReason } from '../permissions';
import type { AgentMetrics } from '../types';

/** How often live metrics are fetched while the sandbox runs. */
export const METRICS_MS = 5000;

function pct(used: number, total: number): number {
  return total > 0 ? Math.min(100, Math.max(0, (used / total) * 100)) : 0;
}

/**
 * CPU and memory: the sandbox's limits and live use, from its agent's metrics (read
 * through the proxy route). Explains why when they cannot be shown.
 */
export function ResourcesPanel({ id, running, pausedReason }: { id: string; running: boolean; pausedReason: string | null }) {
  const api = useApi();
  const { me } = useSession();
  const deny = denyReason(me, 'sandbox:proxy');
  const [m, setM] = useState<AgentMetrics | null>(null);
  const [problem, setProblem] = useState<string | null>(null);

  usePolling(
    async (signal) => {
      try {
        const r = await api.metrics(id, signal);
        if (signal.aborted) return false;
        setM(r);
        setProblem(null);
      } catch (e) {
        if (signal.aborted) return false;
        setProblem(
          e instanceof ApiError && (e.status === 502 || e.status === 404)
            ? 'This sandbox has no agent answering, so live use is not available.'
            : 'Live use could not be read right now.',
        );
        if (e instanceof ApiError && e.status === 404) return false;
      }
      return true;
    },
    METRICS_MS,
    id,
    running && deny === null,
  );

  let note: string | null = null;
  if (deny) note = `${deny} Live CPU and memory are read through it.`;
  else if (pausedReason) note = pausedReason;
  else if (!running) note = 'Live use is shown while the sandbox runs.';
  else if (problem) note = problem;

  return (
    <section className="panel" aria-labelledby="resources-title">
      <h2 id="resources-title">Resources</h2>
      {m && running && !deny ? (
        <dl className="facts" data-testid="resources">
          <dt>CPU</dt>
          <dd>
            {m.cpu_used_pct.toFixed(1)}% of {m.cpu_count} CPU{m.cpu_count === 1 ? '' : 's'} (limit)
            <span className="meter" aria-hidden="true">
              <span style={{ width: `${pct(m.cpu_used_pct, 100)}%` }} />
            </span>
          </dd>
          <dt>Memory</dt>
          <dd>
            {m.mem_used_mib.toFixed(0)} MiB used of {m.mem_total_mib.toFixed(0)} MiB (limit)
            <span className="meter" aria-hidden="true">
              <span style={{ width: `${pct(m.mem_used_mib, m.mem_total_mib)}%` }} />
            </span>
          </dd>
        </dl>
      ) : null}
      {note && <p className="muted">{note}</p>}
      {!m && !note && <p className="muted">Reading live use…</p>}
    </section>
  );
}
