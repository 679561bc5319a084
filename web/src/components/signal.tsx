import type { Signal } from '../generated/graphql.js';

export function SignalBadge({ signal }: { signal: Signal | null | undefined }) {
  if (!signal) return <span class="muted">—</span>;
  return <span class={`signal ${signal.toLowerCase()}`}>{signal}</span>;
}
