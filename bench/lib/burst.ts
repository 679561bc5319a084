import { BENCH_AUTHORIZATION } from './auth.js';
import { burst as burstRaw, type BurstTarget } from '../../test/helpers/burst.js';

/**
 * The bench's bursts: test/helpers/burst.ts (requests that truly arrive together, from a separate
 * process, each timed), with the bench's credentials, and each response judged ok or not.
 */

export interface BurstResponse {
  readonly status: number;
  /** From this request's write to the end of its response, in ms (connection set-up excluded). */
  readonly ms: number;
  /** HTTP 200 with `data` and no `errors` in the JSON body. */
  readonly ok: boolean;
  /** The start of the body when not ok, for the error message. */
  readonly sample?: string;
}

export interface BurstRound {
  readonly responses: readonly BurstResponse[];
  /** From the first write to the last response, in ms. */
  readonly wallMs: number;
}

/** Runs `rounds` bursts against each target, interleaved; resolves with each target's rounds, in target order. */
export async function burst(
  targets: ReadonlyArray<Omit<BurstTarget, 'authorization'>>,
  options: { rounds: number; pauseMs?: number },
): Promise<BurstRound[][]> {
  const rounds = await burstRaw(
    targets.map((target) => ({ ...target, authorization: BENCH_AUTHORIZATION })),
    options,
  );
  return rounds.map((target) =>
    target.map(({ responses, wallMs }) => ({ wallMs, responses: responses.map(({ status, text, ms }) => judged(status, text, ms)) })),
  );
}

function judged(status: number, text: string, ms: number): BurstResponse {
  let ok = false;
  try {
    const body = JSON.parse(text) as { data?: unknown; errors?: unknown[] };
    ok = status === 200 && body.data != null && !body.errors?.length;
  } catch {
    ok = false;
  }
  return ok ? { status, ms, ok } : { status, ms, ok, sample: text.slice(0, 300) };
}
