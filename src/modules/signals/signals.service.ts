import { validateSync } from 'class-validator';
import { ArgumentValidationError } from 'type-graphql';
import { interestMember, type InterestSet } from '../../infra/coordination/interest.js';
import type { Logger } from '../../infra/logger/logger.js';
import type { Bar, MarketDataProvider } from '../../infra/market-data/market-data.js';
import { badUserInput, codedError, ErrorCode } from '../../shared/errors.js';
import type { ModelRegistry, ModelVersionEntry } from '../models/index.js';
import { DEFAULT_STRATEGY } from '../../domain/strategies.js';
import { intervalQuantiles } from '../../domain/intervals.js';
import type { PredictionRecord, PredictionService } from '../predictions/index.js';
import { SignalsArgs } from './signals.args.js';
import type { RecordedPrediction, SignalsRepository } from './signals.repository.js';
import { SignalStream } from './signals.stream.js';
import type { SignalsBus, SignalsEvent, WirePrediction } from './signals.topics.js';

export interface SignalsServiceOptions {
  readonly bus: SignalsBus;
  readonly registry: Pick<ModelRegistry, 'versionsOf'>;
  readonly predictions: Pick<PredictionService, 'activeModel' | 'maxSymbolsPerRequest'>;
  readonly repository: Pick<SignalsRepository, 'recordedSince'>;
  /** Where replayed predictions find their quotes. */
  readonly market: MarketDataProvider;
  /** Told which (strategy, symbol) pairs this instance's subscribers want, for the monitor. */
  readonly interest: InterestSet;
  readonly logger: Logger;
  /** Most recorded predictions one resume may replay; a `since` further back is refused. */
  readonly maxReplay: number;
  /** Live events one subscriber may fall behind by before its stream ends. Default 1,000. */
  readonly maxQueued?: number;
  /** Told +1 / -1 as subscriptions start and end (the sibyl_subscriptions_active gauge). */
  readonly onSubscriptions?: (delta: number) => void;
}

interface StrategyHub {
  readonly bySymbol: Map<string, Set<SignalStream>>;
  readonly events: AsyncIterator<SignalsEvent>;
  /** The last RECENT_EVENTS events received, oldest first: what history may not have committed yet. */
  readonly recent: SignalsEvent[];
  /** Per symbol with subscribers here, the newest asOf received for them. */
  readonly received: Map<string, number>;
}

/**
 * Events each instance remembers per strategy for resuming subscribers. History is written in
 * batches (HISTORY_FLUSH_INTERVAL_MS), so the newest published predictions may not be readable there
 * yet when a client resumes; every instance received them, though, and a resume merges both. 64 ticks
 * is a minute of 1-second bars, far more than a flush takes while the database is healthy.
 */
const RECENT_EVENTS = 64;

/**
 * The subscriber side of live signals, on every instance: validates a subscription, replays what it
 * missed, and hands it every live prediction for its symbols.
 *
 * Each instance reads each strategy's topic once, turns each event back into predictions once, and
 * fans them out in memory through a symbol → subscribers index, so an event costs one decode plus a
 * push per interested subscriber, and nothing per uninterested one.
 */
export class SignalsService {
  readonly #hubs = new Map<string, StrategyHub>();
  readonly #missingVersions = new Set<string>();
  #knownSymbols: { at: number; symbols: Promise<Set<string>> } | undefined;
  #stopped = false;

  constructor(private readonly options: SignalsServiceOptions) {}

  /**
   * Starts one subscription. Throws a coded error, before anything is sent, when the arguments are
   * wrong (BAD_USER_INPUT, UNKNOWN_SYMBOL, UNKNOWN_STRATEGY) or the replay cannot be read (UNAVAILABLE).
   */
  async subscribe(raw: Record<string, unknown>, now = new Date()): Promise<AsyncIterableIterator<PredictionRecord>> {
    if (this.#stopped) throw codedError(ErrorCode.UNAVAILABLE, 'this instance is shutting down; reconnect to another');
    const args = Object.assign(new SignalsArgs(), raw);
    // The options type-graphql's own validation uses (src/schema/validate-args.ts), so errors read alike.
    const problems = validateSync(args, { skipMissingProperties: true, forbidUnknownValues: false });
    if (problems.length > 0) throw new ArgumentValidationError(problems);
    const symbols = [...new Set(args.symbols)];
    const limit = this.options.predictions.maxSymbolsPerRequest;
    if (symbols.length > limit) throw badUserInput(`symbols: at most ${limit} per subscription, got ${symbols.length}`, { limit });
    const strategy = args.strategy ?? DEFAULT_STRATEGY;
    this.options.predictions.activeModel(strategy);
    const since = args.since ?? undefined;
    if (since && since.getTime() > now.getTime()) {
      throw badUserInput(`since (${since.toISOString()}) is in the future; give the asOf of the last signal you received`);
    }
    await this.#checkSymbols(symbols);

    const members = symbols.map((s) => interestMember(strategy, s));
    const stream = new SignalStream({
      minConfidence: args.minConfidence ?? 0,
      maxQueued: this.options.maxQueued ?? 1_000,
      onClose: () => {
        this.#detach(strategy, symbols, stream);
        this.options.interest.remove(members);
        this.options.onSubscriptions?.(-1);
      },
    });
    // Live first, then history: whatever is published while history is read waits in the stream.
    this.#attach(strategy, symbols, stream);
    this.options.interest.add(members);
    this.options.onSubscriptions?.(1);
    if (since) {
      try {
        stream.setReplay(await this.#replay(strategy, symbols, since));
      } catch (error) {
        stream.close();
        throw error;
      }
    }
    return stream;
  }

  /**
   * Starts reading the topics of `strategies` now rather than at their first subscriber. With Redis,
   * subscribing to a channel takes a round trip; a topic read from start-up is live long before any
   * client resumes with `since`, so nothing published during that round trip can fall between the
   * replay and the live stream.
   */
  listen(strategies: readonly string[]): void {
    for (const strategy of strategies) this.#hub(strategy);
  }

  /** Ends every subscription and stops reading events; for shutdown. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const hub of this.#hubs.values()) {
      for (const streams of hub.bySymbol.values()) for (const stream of [...streams]) stream.close();
      await hub.events.return?.();
    }
    this.#hubs.clear();
  }

  /**
   * The newest asOf of (strategy, symbol) that reached this instance's subscribers, while it has any:
   * where a monitor running alone on this instance continues from.
   */
  lastReceived(strategy: string, symbol: string): number | undefined {
    return this.#hubs.get(strategy)?.received.get(symbol);
  }

  /** Live subscriptions on this instance (each counted once). */
  get subscriptionCount(): number {
    const all = new Set<SignalStream>();
    for (const hub of this.#hubs.values()) for (const streams of hub.bySymbol.values()) for (const s of streams) all.add(s);
    return all.size;
  }

  #hub(strategy: string): StrategyHub {
    let hub = this.#hubs.get(strategy);
    if (!hub) {
      hub = { bySymbol: new Map(), events: this.options.bus.subscribe(strategy)[Symbol.asyncIterator](), recent: [], received: new Map() };
      this.#hubs.set(strategy, hub);
      void this.#pump(hub);
    }
    return hub;
  }

  #attach(strategy: string, symbols: readonly string[], stream: SignalStream): void {
    const hub = this.#hub(strategy);
    for (const symbol of symbols) {
      let streams = hub.bySymbol.get(symbol);
      if (!streams) hub.bySymbol.set(symbol, (streams = new Set()));
      streams.add(stream);
    }
  }

  #detach(strategy: string, symbols: readonly string[], stream: SignalStream): void {
    const hub = this.#hubs.get(strategy);
    if (!hub) return;
    for (const symbol of symbols) {
      const streams = hub.bySymbol.get(symbol);
      streams?.delete(stream);
      if (streams?.size === 0) {
        hub.bySymbol.delete(symbol);
        hub.received.delete(symbol);
      }
    }
  }

  async #pump(hub: StrategyHub): Promise<void> {
    try {
      for (;;) {
        const { done, value } = await hub.events.next();
        if (done) return;
        this.#dispatch(hub, value);
      }
    } catch (error) {
      this.options.logger.error({ err: error }, 'signals: the event stream failed; live signals stopped on this instance');
    }
  }

  #dispatch(hub: StrategyHub, event: SignalsEvent): void {
    hub.recent.push(event);
    if (hub.recent.length > RECENT_EVENTS) hub.recent.shift();
    for (const wire of event.predictions) {
      const streams = hub.bySymbol.get(wire.symbol);
      if (!streams?.size) continue;
      const record = this.#fromWire(event.strategy, wire);
      if (!record) continue;
      const time = wire.asOf.getTime();
      if (!(hub.received.get(wire.symbol)! >= time)) hub.received.set(wire.symbol, time);
      for (const stream of streams) stream.push(record);
    }
  }

  #model(strategy: string, version: string): ModelVersionEntry | undefined {
    const model = this.options.registry.versionsOf(strategy).find((v) => v.manifest.version === version);
    if (!model && !this.#missingVersions.has(`${strategy}@${version}`)) {
      this.#missingVersions.add(`${strategy}@${version}`);
      this.options.logger.warn(
        { strategy, version },
        'signals: a prediction names a model version this instance has not loaded; skipping such predictions',
      );
    }
    return model;
  }

  #fromWire(strategy: string, wire: WirePrediction): PredictionRecord | undefined {
    const model = this.#model(strategy, wire.modelVersion);
    if (!model) return undefined;
    const { modelVersion: _version, ...rest } = wire;
    return { ...rest, model };
  }

  /** Symbols the market does not know are refused up front (the list is re-read at most every 30 s). */
  async #checkSymbols(symbols: readonly string[]): Promise<void> {
    const now = Date.now();
    if (!this.#knownSymbols || now - this.#knownSymbols.at > 30_000) {
      const symbols = this.options.market.listSymbols().then((list) => new Set(list));
      symbols.catch(() => (this.#knownSymbols = undefined));
      this.#knownSymbols = { at: now, symbols };
    }
    let known: Set<string>;
    try {
      known = await this.#knownSymbols.symbols;
    } catch (error) {
      this.options.logger.warn({ err: error }, 'signals: cannot list market symbols');
      throw codedError(ErrorCode.UNAVAILABLE, 'market data is unavailable right now; try again shortly');
    }
    const unknown = symbols.filter((s) => !known.has(s));
    if (unknown.length) {
      throw codedError(
        ErrorCode.UNKNOWN_SYMBOL,
        `Unknown symbol${unknown.length > 1 ? 's' : ''} ${unknown.map((s) => `"${s}"`).join(', ')}: no market data`,
        { symbols: unknown },
      );
    }
  }

  /**
   * What was published after `since`, as predictions, oldest first: what history has, merged with the
   * events this instance received recently (which history may not have committed yet). Called after
   * the stream is attached, so anything newer than both arrives live.
   */
  async #replay(strategy: string, symbols: readonly string[], since: Date): Promise<PredictionRecord[]> {
    const wanted = new Set(symbols);
    const recent = (this.#hubs.get(strategy)?.recent ?? []).flatMap((event) =>
      event.predictions.filter((p) => wanted.has(p.symbol) && p.asOf.getTime() > since.getTime()),
    );
    const recorded = await this.#recorded(strategy, symbols, since);
    const byKey = new Map<string, PredictionRecord>();
    const key = (r: { symbol: string; asOf: Date }, version: string) => `${r.symbol}|${r.asOf.getTime()}|${version}`;
    for (const record of recorded) byKey.set(key(record, record.model.manifest.version), record);
    for (const wire of recent) {
      if (byKey.has(key(wire, wire.modelVersion))) continue;
      const record = this.#fromWire(strategy, wire);
      if (record) byKey.set(key(wire, wire.modelVersion), record);
    }
    return [...byKey.values()].sort(
      (a, b) =>
        a.asOf.getTime() - b.asOf.getTime() || compare(a.symbol, b.symbol) || compare(a.model.manifest.version, b.model.manifest.version),
    );
  }

  /** What history holds after `since`, as predictions, oldest first. */
  async #recorded(strategy: string, symbols: readonly string[], since: Date): Promise<PredictionRecord[]> {
    const { maxReplay } = this.options;
    let rows: RecordedPrediction[];
    let bars: Map<string, Bar[]>;
    try {
      rows = await this.options.repository.recordedSince(strategy, symbols, since, maxReplay + 1);
      if (rows.length > maxReplay) {
        throw badUserInput(
          `since is too far back: more than ${maxReplay} recorded predictions to replay; use confidenceHistory for long ranges`,
          {
            limit: maxReplay,
          },
        );
      }
      if (rows.length === 0) return [];
      const perSymbol = new Map<string, number>();
      for (const row of rows) perSymbol.set(row.symbol, (perSymbol.get(row.symbol) ?? 0) + 1);
      // Enough bars to cover every replayed one, plus slack for bars nobody predicted on.
      const lookback = Math.min(5_000, 2 * Math.max(...perSymbol.values()) + 16);
      bars = await this.options.market.fetchBars([...perSymbol.keys()], { lookback });
    } catch (error) {
      if (error instanceof Error && 'extensions' in error) throw error;
      this.options.logger.warn({ err: error }, 'signals: cannot read recorded predictions to replay');
      throw codedError(
        ErrorCode.UNAVAILABLE,
        'recorded predictions cannot be read right now; subscribe without since, or try again shortly',
      );
    }
    const quotes = new Map<string, Bar>();
    for (const [symbol, list] of bars) for (const bar of list) quotes.set(`${symbol}|${bar.time.getTime()}`, bar);
    const out: PredictionRecord[] = [];
    for (const row of rows) {
      const model = this.#model(strategy, row.model_version);
      if (model) out.push(fromRecorded(strategy, row, model, quotes.get(`${row.symbol}|${row.time.getTime()}`)));
    }
    return out;
  }
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * A recorded prediction as the live one was. History keeps the 0.95 interval, not the volatility it
 * was scaled with, so that is recovered from the interval's width (exactly: in log space the interval
 * spans (q⁻ + q⁺) · volatility · √h, q⁺ of it above centre + log close); the quote is the stored bar when the market still has it, otherwise
 * (a synthetic market restarted since) one rebuilt from the interval's centre and marked
 * `source: "history"`, with no range or volume.
 */
export function fromRecorded(strategy: string, row: RecordedPrediction, model: ModelVersionEntry, bar: Bar | undefined): PredictionRecord {
  const { interval, horizonBars } = model.manifest;
  const [qLow, qHigh] = intervalQuantiles(interval, row.interval_level) ?? [0, 0];
  const logWidth = Math.log(row.interval_high) - Math.log(row.interval_low);
  const volatility = qLow + qHigh ? logWidth / ((qLow + qHigh) * Math.sqrt(horizonBars)) : 0;
  const close =
    qLow !== qHigh
      ? Math.exp(Math.log(row.interval_high) - interval.center - (qHigh * logWidth) / (qLow + qHigh))
      : Math.sqrt(row.interval_low * row.interval_high) / Math.exp(interval.center);
  const quote: Bar = bar ?? {
    symbol: row.symbol,
    time: row.time,
    open: close,
    high: close,
    low: close,
    close,
    adjClose: close,
    volume: 0,
    source: 'history',
  };
  return {
    symbol: row.symbol,
    strategy,
    horizon: row.horizon,
    asOf: row.time,
    signal: row.signal,
    probability: row.probability,
    confidence: row.confidence,
    // History keeps the features' hash, not their values: a replayed signal cannot be explained.
    features: [],
    expectedReturn: row.expected_return,
    featuresHash: row.features_hash,
    stale: false,
    quote,
    model,
    volatility,
  };
}
