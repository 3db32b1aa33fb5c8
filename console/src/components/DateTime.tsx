import { agoText, formatDateTime } from '../format';

/** An absolute time with its zone, then the relative time: `2026-12-02 10:00:00 UTC (5m ago)`. */
export function DateTime({ iso, now }: { iso: string | null | undefined; now: number }) {
  if (!iso) return <span className="muted">—</span>;
  return (
    <time dateTime={iso}>
      {formatDateTime(iso, true)} <span className="muted">({agoText(iso, now)})</span>
    </time>
  );
}
