import type { BarsRepository } from './bars-repository.js';
import type { MarketFeed } from './feed.js';
import type { MarketDataProvider } from './market-data.js';

/**
 * Stored bars replayed as a live stream, for demos and backtests: a clock starts at `from` and every
 * `tickMs` moves to the next stored bar time (one trading day per tick for daily bars). The provider
 * answers as if the clock were "now": nothing after it is visible, so queries, features and the
 * signals monitor all see the market as it stood at that moment. Nothing is written: the stored bars
 * are read, never changed. When the stored bars run out, the replay stops at the last one.
 *
 * The clock is this process's: several instances replaying the same store each keep their own (the
 * monitor's instance decides what subscribers see). Replay is meant for one instance.
 *
 * ```ts
 * const replay = createReplay({ repository, from: new Date('2020-01-02'), tickMs: 1_000 });
 * replay.feed.start((bars) => …);   // bars of 2020-01-03, then 2020-01-06, …
 * replay.provider.fetchBars(['AAPL'], { lookback: 60 });  // ends at the clock
 * ```
 */
export interface Replay {
  readonly provider: MarketDataProvider;
  readonly feed: MarketFeed;
  /** The replay's "now": the time of the newest visible bar. */
  readonly clock: Date;
}

export interface ReplayOptions {
  readonly repository: Pick<BarsRepository, 'fetchBars' | 'listSymbols' | 'nextBars'>;
  /** Where the clock starts; bars after it appear one moment per tick. */
  readonly from: Date;
  readonly tickMs: number;
  /** Told once, when the stored bars run out. */
  readonly onFinished?: (clock: Date) => void;
  /** Told when a step fails (the database is unreachable); the next tick tries again. */
  readonly onError?: (error: unknown) => void;
}

export function createReplay(options: ReplayOptions): Replay {
  const { repository } = options;
  let clock = options.from;
  let timer: NodeJS.Timeout | undefined;
  let stepping = false;
  let lastTick: number | undefined;
  let symbols: string[] | undefined;

  const provider: MarketDataProvider = {
    name: 'replay',
    fetchBars: (wanted, { lookback, until }) =>
      repository.fetchBars(wanted, { lookback, until: until !== undefined && until < clock ? until : clock }),
    listSymbols: () => repository.listSymbols(),
  };

  return {
    provider,
    get clock() {
      return clock;
    },
    feed: {
      name: 'replay',
      start(listener) {
        if (timer) throw new Error('replay feed: start() was called twice');
        lastTick = Date.now();
        timer = setInterval(() => {
          // A slow database must not stack steps up: a tick that finds the previous one running skips.
          if (stepping) return;
          stepping = true;
          lastTick = Date.now();
          void (async () => {
            try {
              symbols ??= await repository.listSymbols();
              const bars = await repository.nextBars(symbols, clock);
              if (bars.length === 0) {
                clearInterval(timer);
                options.onFinished?.(clock);
                return;
              }
              clock = bars[0]!.time;
              listener(bars);
            } catch (error) {
              options.onError?.(error);
            } finally {
              stepping = false;
            }
          })();
        }, options.tickMs);
      },
      async stop() {
        clearInterval(timer);
      },
      // The clock moves only inside a step: while one runs, its bar may appear at any moment; otherwise
      // the next step starts no sooner than tickMs after the last one did.
      nextBarAt: () => (lastTick === undefined || stepping ? undefined : lastTick + options.tickMs),
    },
  };
}
