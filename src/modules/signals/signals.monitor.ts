import type { InterestSet } from '../../infra/coordination/interest.js';
import type { Lease } from '../../infra/coordination/lease.js';
import type { Logger } from '../../infra/logger/logger.js';
import { inSpan } from '../../infra/tracing/tracing.js';
import type { Bar } from '../../infra/market-data/market-data.js';
import type { PredictionKey, PredictionRecord, PredictionService } from '../predictions/index.js';
import { toWire, type SignalsBus } from './signals.topics.js';

export interface SignalsMonitorOptions {
  readonly predictions: Pick<PredictionService, 'predictLatest'>;
  /** Strategies the watchlist is computed for (the loaded ones). */
  readonly strategies: () => readonly string[];
  readonly interest: InterestSet;
  /** Whoever holds it runs the monitor; the others only serve their subscribers. */
  readonly lease: Lease;
  readonly bus: SignalsBus;
  /**
   * Awaited between recording and publishing: resolves once the predictions just recorded are
   * committed to history (or gives up, bounded), or at once when not configured. Resume does not need
   * it (each instance also remembers recent events, see SignalsService); waiting narrows the one
   * window that memory cannot cover, an instance started after an event that history has not yet
   * committed, at the price of a database write in every signal's latency.
   */
  readonly recorded: () => Promise<unknown>;
  /** Symbols computed on every tick even with no subscriber, for every strategy. */
  readonly watchlist: readonly string[];
  /** Also tick on this interval, for providers without bar events; 0 = only on bars. */
  readonly intervalMs: number;
  readonly logger: Logger;
  /** Told after each publish (sibyl_signals_published_total{strategy}). */
  readonly onPublished?: (strategy: string, count: number) => void;
}

/**
 * The one place live predictions are made: on every new bar (and on the fallback interval) the
 * instance holding the lease computes every wanted (strategy, symbol) in ONE call to the prediction
 * service, which is one batched inference per model version, records them in history (the service's
 * onServed path, so they are in the history writer before anyone can receive them), and publishes them, one event per strategy. The
 * cost of a tick depends on how many symbols are wanted, never on how many subscribers want them.
 *
 * Only predictions newer than the last one published for their (strategy, symbol, version) are
 * published, so an interval tick with no new bar sends nothing. Ticks never overlap: one arriving
 * while another runs is folded into a single follow-up tick.
 */
export class SignalsMonitor {
  readonly #published = new Map<string, number>();
  #running: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(private readonly options: SignalsMonitorOptions) {}

  start(): void {
    this.options.lease.start((held) => {
      this.options.logger.info({ held }, held ? 'signals monitor: this instance runs the monitor' : 'signals monitor: stepped down');
      clearInterval(this.#timer);
      this.#timer = undefined;
      if (!held) return;
      // A new holder does not know what its predecessor published: subscribers drop the repeats.
      this.#published.clear();
      if (this.options.intervalMs > 0) this.#timer = setInterval(() => void this.tick(), this.options.intervalMs);
      void this.tick();
    });
  }

  get running(): boolean {
    return this.options.lease.held;
  }

  /** From the market feed: bars just became available. */
  onBars(_bars: readonly Bar[]): void {
    if (this.options.lease.held) void this.tick();
  }

  /** Runs one tick now, or right after the running one. Resolves when the tick it joined is done. */
  tick(): Promise<void> {
    if (this.#stopped || !this.options.lease.held) return Promise.resolve();
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#tickOnce()
      .catch((error: unknown) => this.options.logger.error({ err: error }, 'signals monitor: tick failed'))
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          void this.tick();
        }
      });
    return this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
    await this.options.lease.stop();
  }

  async #tickOnce(): Promise<void> {
    const keys = await this.#wanted();
    if (keys.length === 0) return;
    // One trace per tick (market fetch, features, inference, SQL inside), the work behind every
    // subscriber's event; the events' own executions are traced by the WebSocket transport.
    await inSpan('signals.tick', { 'sibyl.keys': keys.length }, () => this.#compute(keys));
  }

  async #compute(keys: PredictionKey[]): Promise<void> {
    const results = await this.options.predictions.predictLatest(keys);
    const fresh: PredictionRecord[] = [];
    let failed = 0;
    for (const result of results) {
      if (result instanceof Error) {
        failed++;
        continue;
      }
      const key = `${result.strategy}|${result.symbol}|${result.model.manifest.version}`;
      const time = result.asOf.getTime();
      if ((this.#published.get(key) ?? -Infinity) >= time) continue;
      this.#published.set(key, time);
      fresh.push(result);
    }
    if (failed > 0) this.options.logger.debug({ failed, wanted: keys.length }, 'signals monitor: some wanted predictions failed');
    if (fresh.length === 0) return;
    await this.options.recorded();
    if (this.#stopped) return;
    const byStrategy = new Map<string, PredictionRecord[]>();
    for (const record of fresh) {
      const list = byStrategy.get(record.strategy);
      if (list) list.push(record);
      else byStrategy.set(record.strategy, [record]);
    }
    for (const [strategy, records] of byStrategy) {
      records.sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
      this.options.bus.publish({ strategy, predictions: records.map(toWire) });
      this.options.onPublished?.(strategy, records.length);
    }
  }

  /** Every (strategy, symbol) any instance's subscribers want, plus the watchlist. */
  async #wanted(): Promise<PredictionKey[]> {
    let members: string[];
    try {
      members = await this.options.interest.all();
    } catch (error) {
      this.options.logger.warn({ err: error }, 'signals monitor: cannot read what other instances want; covering this instance only');
      members = this.options.interest.local();
    }
    const keys = new Map<string, PredictionKey>();
    for (const member of members) {
      const bar = member.indexOf('|');
      if (bar > 0) keys.set(member, { strategy: member.slice(0, bar), symbol: member.slice(bar + 1) });
    }
    for (const strategy of this.options.strategies()) {
      for (const symbol of this.options.watchlist) keys.set(`${strategy}|${symbol}`, { strategy, symbol });
    }
    return [...keys.values()];
  }
}
