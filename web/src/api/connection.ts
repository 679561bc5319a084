import { useEffect, useState } from 'preact/hooks';

/**
 * What the live (WebSocket) connection is doing, for the banner and the resume logic:
 * - `idle`: no subscription needs it (graphql-ws connects lazily and closes when unused)
 * - `connecting` / `connected`
 * - `lost`: closed unexpectedly; graphql-ws is waiting to retry
 * - `reconnecting`: a retry is under way after a loss
 * - `refused`: the gateway refused the connection (its reason in `detail`); no retry until the key changes
 */
export type LinkState = 'idle' | 'connecting' | 'connected' | 'lost' | 'reconnecting' | 'refused';

export interface LinkStatus {
  state: LinkState;
  detail?: string | undefined;
  /** Increments on every successful connection after a loss, so pages can resume what they missed. */
  reconnects: number;
}

/** A tiny observable value; pages read it with {@link useLinkStatus}. */
export class LinkStatusStore {
  #status: LinkStatus = { state: 'idle', reconnects: 0 };
  readonly #listeners = new Set<(status: LinkStatus) => void>();

  get(): LinkStatus {
    return this.#status;
  }

  set(change: Partial<LinkStatus>): void {
    this.#status = { ...this.#status, ...change };
    for (const listener of this.#listeners) listener(this.#status);
  }

  subscribe(listener: (status: LinkStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

export function useLinkStatus(store: LinkStatusStore): LinkStatus {
  const [status, setStatus] = useState(store.get());
  useEffect(() => {
    setStatus(store.get());
    return store.subscribe(setStatus);
  }, [store]);
  return status;
}
