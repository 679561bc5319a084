/**
 * Bounded waits. The timer is cleared as soon as the promise settles, so a finished wait keeps
 * nothing alive; the promise itself is not cancelled (JavaScript cannot), only no longer awaited.
 */

/** The promise's value, or 'timeout' if it takes longer than `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, ms)))),
  ]).finally(() => clearTimeout(timer));
}

/** The promise's value; rejects with "no answer within <ms> ms" if it takes longer. */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  const outcome = await withDeadline(promise, ms);
  if (outcome === 'timeout') throw new Error(`no answer within ${ms} ms`);
  return outcome;
}
