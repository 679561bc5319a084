import type { Bar, FetchBarsOptions, MarketDataProvider } from './market-data.js';

/**
 * Merges market-data fetches from concurrent requests into one provider call.
 *
 * A fetch waits until the end of the current event-loop turn, or up to `maxDelayMs` if set, for others
 * to join it. While a fetch is in flight, symbols asked for meanwhile go out together in the next one,
 * so a busy gateway makes fewer, larger fetches the busier it gets, instead of one query per request
 * piling onto the database. Requests leaving one fetch together also reach the model's micro-batcher
 * together. PGlite merges less than PostgreSQL: its SQL runs on the event loop, so fewer requests
 * overlap a fetch (figures: docs/decisions/hot-path-measurements.md).
 *
 * Calls with different options (lookback, until) are fetched separately.
 */
export function coalescingFetches(provider: MarketDataProvider, settings: { maxDelayMs: number }): MarketDataProvider {
  if (!(settings.maxDelayMs >= 0 && settings.maxDelayMs <= 1))
    throw new Error(`maxDelayMs must be between 0 and 1, got ${settings.maxDelayMs}`);
  const groups = new Map<string, Group>();

  return {
    name: provider.name,
    listSymbols: () => provider.listSymbols(),
    fetchBars(symbols, options) {
      const coalesceOptions = settings;
      const key = `${options.lookback}:${options.until?.getTime() ?? ''}`;
      let group = groups.get(key);
      if (!group) {
        group = new Group(provider, options, coalesceOptions.maxDelayMs, () => groups.delete(key));
        groups.set(key, group);
      }
      return group.request(symbols);
    },
  };
}

interface Waiter {
  readonly symbols: readonly string[];
  readonly resolve: (bars: Map<string, Bar[]>) => void;
  readonly reject: (error: unknown) => void;
}

class Group {
  #waiting: Waiter[] = [];
  #inFlight = false;
  #scheduled = false;

  constructor(
    private readonly provider: MarketDataProvider,
    private readonly options: FetchBarsOptions,
    private readonly maxDelayMs: number,
    private readonly onIdle: () => void,
  ) {}

  request(symbols: readonly string[]): Promise<Map<string, Bar[]>> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ symbols, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#inFlight || this.#scheduled) return;
    this.#scheduled = true;
    const flush = () => {
      this.#scheduled = false;
      void this.#flush();
    };
    if (this.maxDelayMs > 0) setTimeout(flush, this.maxDelayMs);
    else setImmediate(flush);
  }

  async #flush(): Promise<void> {
    const batch = this.#waiting;
    this.#waiting = [];
    if (batch.length === 0) {
      this.onIdle();
      return;
    }
    this.#inFlight = true;
    try {
      const all = [...new Set(batch.flatMap((w) => w.symbols))];
      const bars = await this.provider.fetchBars(all, this.options);
      for (const waiter of batch) {
        const own = new Map<string, Bar[]>();
        for (const symbol of waiter.symbols) {
          const list = bars.get(symbol);
          if (list) own.set(symbol, list);
        }
        waiter.resolve(own);
      }
    } catch (error) {
      for (const waiter of batch) waiter.reject(error);
    } finally {
      this.#inFlight = false;
      if (this.#waiting.length > 0) this.#schedule();
      else this.onIdle();
    }
  }
}
