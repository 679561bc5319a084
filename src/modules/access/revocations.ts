import type { EventBus } from '../../infra/pubsub/pubsub.js';

const TOPIC = 'access:credential-revoked';

/**
 * "This credential was just revoked", told to every instance sharing the event bus (Redis pub/sub with
 * REDIS_URL, this process without), so WebSocket connections authenticated with it are closed at once
 * rather than living on until they next start an operation, and each instance forgets the key it
 * remembered for database outages (ApiKeysService). Requests need no other news: every HTTP request and
 * every WebSocket operation checks its key in the database whenever the database answers.
 *
 * Best effort by nature (pub/sub keeps nothing for an instance that is not listening at that moment),
 * so the WebSocket transport also re-checks its keys on a timer (WS_CREDENTIAL_RECHECK_MS); this
 * channel only makes the common case prompt.
 */
export interface Revocations {
  /** Publishes the revocation of `principalId` (e.g. `key:<uuid>`). Never throws. */
  announce(principalId: string): void;
  /** Calls `listener` with each revoked principal id, from any instance; returns a function that stops. */
  listen(listener: (principalId: string) => void): () => void;
}

export function revocationsOver(events: EventBus, onError: (error: unknown) => void = () => undefined): Revocations {
  return {
    announce(principalId) {
      try {
        events.publish(TOPIC, { principalId });
      } catch (error) {
        onError(error); // the re-check timer still catches it
      }
    },
    listen(listener) {
      const subscription = events.subscribe(TOPIC)[Symbol.asyncIterator]();
      let stopped = false;
      void (async () => {
        for (;;) {
          const { value, done } = await subscription.next();
          if (done || stopped) return;
          const principalId = (value as { principalId?: unknown } | null)?.principalId;
          if (typeof principalId === 'string') listener(principalId);
        }
      })().catch(onError);
      return () => {
        stopped = true;
        void subscription.return?.().catch(onError);
      };
    },
  };
}
