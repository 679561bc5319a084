import type { z } from 'zod';

/** Open, high, low, close and volume under the one-letter names vendors use on the wire. */
export interface WireOhlcv {
  readonly o: number;
  readonly h: number;
  readonly l: number;
  readonly c: number;
  readonly v: number;
}

/**
 * What every vendor's WebSocket frames share: a text frame is a JSON array of messages, each tagged by
 * one string field (`T` for Alpaca, `ev` for Polygon). A frame or entry that is not that shape becomes
 * a `malformed` message with a reason, never an exception: a vendor's bad frame must not stop the stream.
 */
export function parseJsonArrayFrame<M>(text: string, malformed: (reason: string) => M, parseEntry: (entry: unknown) => M): M[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return [malformed('frame is not JSON')];
  }
  if (!Array.isArray(value)) return [malformed('frame is not a JSON array')];
  return value.map(parseEntry);
}

/** The entry's tag (`entry[field]`) when the entry is an object with a string there. */
export function entryTag(entry: unknown, field: string): string | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const tag = (entry as Record<string, unknown>)[field];
  return typeof tag === 'string' ? tag : undefined;
}

/** The first problem zod found, as `path: message`, for log lines and readiness. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid';
}
