import type { GraphQLFormattedError } from 'graphql';
import type { Client } from 'graphql-ws';

export interface SignalMessage {
  symbol: string;
  asOf: string;
  confidence: number;
  [field: string]: unknown;
}

/**
 * One `signals` subscription over a graphql-ws client, recording what arrives: messages in order, the
 * protocol-level error (graphql-ws `error` message) if the server refused it, and whether it completed.
 */
export class SignalRecorder {
  readonly messages: SignalMessage[] = [];
  errors: readonly GraphQLFormattedError[] | undefined;
  completed = false;
  readonly #dispose: () => void;
  #waiters: Array<() => void> = [];

  constructor(client: Client, variables: Record<string, unknown>, selection = 'symbol asOf confidence') {
    const query = `subscription Signals($symbols: [String!]!, $strategy: String, $minConfidence: Float, $since: DateTimeISO) {
      signals(symbols: $symbols, strategy: $strategy, minConfidence: $minConfidence, since: $since) { ${selection} }
    }`;
    this.#dispose = client.subscribe<{ signals: SignalMessage }>(
      { query, variables },
      {
        next: (value) => {
          if (value.errors) this.errors = value.errors;
          if (value.data?.signals) this.messages.push(value.data.signals);
          this.#notify();
        },
        error: (error) => {
          this.errors = Array.isArray(error)
            ? (error as GraphQLFormattedError[])
            : [{ message: String((error as Error)?.message ?? error) }];
          this.#notify();
        },
        complete: () => {
          this.completed = true;
          this.#notify();
        },
      },
    );
  }

  /** Resolves once `done()` holds (checked on every message), rejects after `timeoutMs`. */
  async until(done: (recorder: this) => boolean, timeoutMs = 20_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this)) {
      if (this.errors && !this.messages.length) throw new Error(`subscription refused: ${JSON.stringify(this.errors)}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; have ${this.messages.length} messages, errors ${JSON.stringify(this.errors)}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for the server's answer to a subscription expected to be refused. */
  async refusal(timeoutMs = 10_000): Promise<readonly GraphQLFormattedError[]> {
    await this.until((r) => r.errors !== undefined || r.completed, timeoutMs, 'a refusal');
    if (!this.errors) throw new Error(`expected an error, but the subscription completed with ${this.messages.length} messages`);
    return this.errors;
  }

  /** Distinct asOf times received, in arrival order. */
  ticks(): string[] {
    return [...new Set(this.messages.map((m) => m.asOf))];
  }

  dispose(): void {
    this.#dispose();
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
