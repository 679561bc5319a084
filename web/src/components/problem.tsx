import type { CombinedError } from '@urql/core';
import { describeError, type Problem } from '../api/errors.js';

/** An error box with the readable message; `data-code` carries the gateway's code. */
export function ProblemBox({ problem, error }: { problem?: Problem; error?: CombinedError }) {
  const shown = problem ?? (error ? describeError(error) : undefined);
  if (!shown) return null;
  return (
    <div class={`problem ${shown.aboutKey ? 'about-key' : ''}`} role="alert" data-code={shown.code}>
      <strong>{shown.aboutKey ? 'Access' : shown.code === 'NETWORK' ? 'Connection' : 'Error'}</strong>
      <span>{shown.message}</span>
    </div>
  );
}
