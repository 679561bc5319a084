import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CacheTier } from '../../../src/infra/cache/tier.js';
import { createMemoryCache } from '../../../src/infra/cache/memory.js';
import { createLocalInterest, type InterestSet } from '../../../src/infra/coordination/interest.js';
import type { Lease } from '../../../src/infra/coordination/lease.js';
import { createLocalMarks, type Marks } from '../../../src/infra/coordination/marks.js';
import { createOnnxEngine } from '../../../src/infra/inference/onnx.js';
import { createLogger } from '../../../src/infra/logger/logger.js';
import type { Bar, MarketDataProvider } from '../../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../../src/infra/market-data/synthetic.js';
import { createMemoryEventBus } from '../../../src/infra/pubsub/pubsub.js';
import { ModelRegistry } from '../../../src/modules/models/index.js';
import { FEATURE_WINDOW } from '../../../src/domain/features.js';
import { PredictionService, type CachedFeatures, type PredictionRecord } from '../../../src/modules/predictions/index.js';
import { SignalsMonitor, signalsBus, type SignalsBus, type SignalsEvent } from '../../../src/modules/signals/index.js';
import { projectRoot } from '../../helpers/process.js';

/**
 * The monitor's hand-over logic: whoever runs it next publishes every bar after the last one
 * published, exactly once, whether the previous holder died, was partitioned away, or everybody ran
 * alone while Redis was unreachable. Real prediction service and models over a market whose clock the
 * test moves; leases, interest and marks are the in-process engines or stand-ins the test controls.
 */
const STRATEGY = 'direction-1d';
const SYMBOLS = ['AAA', 'BBB'];
const logger = createLogger({ level: 'silent', format: 'json' });

/** A lease the test hands out and takes back. */
class TestLease implements Lease {
  held = false;
  alone = false;
  #listener: (held: boolean) => void = () => undefined;
  start(onChange: (held: boolean) => void): void {
    this.#listener = onChange;
  }
  set(held: boolean, alone = false): void {
    this.alone = alone;
    if (held === this.held) return;
    this.held = held;
    this.#listener(held);
  }
  async stop(): Promise<void> {
    this.set(false);
  }
}

/** Marks in a store that may be unreachable (Redis down): reads and writes then fail. */
function reachable(marks: Marks, up: () => boolean): Marks {
  const check = () => {
    if (!up()) throw new Error('redis unreachable');
  };
  return {
    read: async (members) => (check(), marks.read(members)),
    advance: async (next) => (up() ? marks.advance(next) : false),
    forget: async (members) => (up() ? marks.forget(members) : undefined),
  };
}

describe('SignalsMonitor: every bar once across hand-overs', () => {
  let registry: ModelRegistry;
  let all: Map<string, Bar[]>;
  /** Index into each symbol's bars of the newest visible bar. */
  let clock = 0;
  const times = () => all.get(SYMBOLS[0]!)!.map((b) => b.time.getTime());
  const market: MarketDataProvider = {
    name: 'test',
    listSymbols: async () => SYMBOLS,
    fetchBars: async (symbols, { lookback, until }) => {
      const limit = Math.min(until?.getTime() ?? Infinity, times()[clock]!);
      const out = new Map<string, Bar[]>();
      for (const s of symbols)
        out.set(
          s,
          all
            .get(s)!
            .filter((b) => b.time.getTime() <= limit)
            .slice(-lookback),
        );
      return out;
    },
  };

  before(async () => {
    registry = await ModelRegistry.load({
      directory: path.join(projectRoot, 'models'),
      engine: createOnnxEngine(),
      batching: { maxBatchSize: 64, maxQueueDelayMs: 0 },
      logger,
    });
    const synthetic = createSyntheticMarket({ symbols: SYMBOLS, seed: 11, historyBars: 600, startTime: new Date('2023-01-02') });
    all = await synthetic.fetchBars(SYMBOLS, { lookback: 600 });
  });
  after(() => registry.close());

  /** One deployment: a shared bus (what subscribers receive) and what history was handed. */
  function deployment() {
    const bus = signalsBus(createMemoryEventBus({ keyPrefix: 't:' }));
    const recorded: PredictionRecord[] = [];
    const received: SignalsEvent[] = [];
    const iterator = bus.subscribe(STRATEGY)[Symbol.asyncIterator]();
    void (async () => {
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        received.push(next.value);
      }
    })();
    const predictions = () => {
      const cache = createMemoryCache();
      const none = () => undefined;
      return new PredictionService({
        market,
        registry,
        caches: {
          market: new CacheTier<Bar[]>(cache, 'market', 0, none),
          features: new CacheTier<CachedFeatures>(cache, 'features', 0, none),
          predictions: new CacheTier<number>(cache, 'predictions', 0, none),
        },
        maxSymbolsPerRequest: 200,
        logger,
        sink: { served: (records) => recorded.push(...records), shadow: () => undefined },
      });
    };
    /** Bar indexes each symbol received, in order. */
    const sequence = (symbol: string) =>
      received.flatMap((e) => e.predictions.filter((p) => p.symbol === symbol).map((p) => times().indexOf(p.asOf.getTime())));
    const lastReceived = (symbol: string) =>
      received
        .flatMap((e) => e.predictions.filter((p) => p.symbol === symbol))
        .at(-1)
        ?.asOf.getTime();
    const monitor = (options: {
      lease: TestLease;
      marks: Marks;
      interest?: InterestSet;
      received?: (strategy: string, symbol: string) => number | undefined;
      bus?: SignalsBus;
      maxCatchUpBars?: number;
      onTick?: (trigger: 'bars' | 'interval') => void;
      wanted?: readonly string[];
    }) => {
      const interest = options.interest ?? createLocalInterest();
      interest.add((options.wanted ?? SYMBOLS).map((s) => `${STRATEGY}|${s}`));
      const m = new SignalsMonitor({
        predictions: predictions(),
        strategies: () => [],
        interest,
        lease: options.lease,
        marks: options.marks,
        ...(options.received && { received: options.received }),
        forgetAfterMs: 60_000,
        bus: options.bus ?? bus,
        recorded: async () => undefined,
        watchlist: [],
        intervalMs: 0,
        logger,
        ...(options.maxCatchUpBars !== undefined && { maxCatchUpBars: options.maxCatchUpBars }),
        ...(options.onTick && { onTick: options.onTick }),
      });
      m.start();
      return m;
    };
    const settle = () => new Promise((r) => setTimeout(r, 20));
    return { bus, recorded, received, predictions, sequence, lastReceived, monitor, settle, stop: () => iterator.return?.() };
  }

  /** A tick now, and whatever follow-up it queued, done before the test moves the clock. */
  const step = async (m: SignalsMonitor) => {
    await m.idle();
    await m.tick();
    await m.idle();
  };
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  /** History got each (symbol, bar) exactly once across the run (what its dedupe would keep anyway). */
  function assertRecordedOnce(recorded: readonly PredictionRecord[], symbol: string, expected: number[]) {
    const bars = recorded
      .filter((r) => r.symbol === symbol && r.model.manifest.version === registry.active(STRATEGY)!.manifest.version)
      .map((r) => times().indexOf(r.asOf.getTime()));
    assert.deepEqual(
      [...new Set(bars)].sort((a, b) => a - b),
      expected,
      `${symbol}: recorded bars`,
    );
  }

  test('a tick that covers several new bars publishes each of them, oldest first, each once', async () => {
    const d = deployment();
    clock = FEATURE_WINDOW + 10;
    const lease = new TestLease();
    const m = d.monitor({ lease, marks: createLocalMarks() });
    lease.set(true);
    await step(m);
    clock += 5; // five bars arrive while no tick runs (ticks folded, a slow database)
    await step(m);
    await step(m); // nothing new: nothing sent
    await d.settle();
    for (const s of SYMBOLS) assert.deepEqual(d.sequence(s), range(FEATURE_WINDOW + 10, FEATURE_WINDOW + 15), s);
    assertRecordedOnce(d.recorded, 'AAA', range(FEATURE_WINDOW + 10, FEATURE_WINDOW + 15));
    // A caught-up bar is the prediction that bar had when it was the newest.
    clock = FEATURE_WINDOW + 12;
    const [then] = await d.predictions().predictLatest([{ strategy: STRATEGY, symbol: 'AAA' }]);
    const caught = d.recorded.find((r) => r.symbol === 'AAA' && times().indexOf(r.asOf.getTime()) === FEATURE_WINDOW + 12);
    assert.ok(then && !(then instanceof Error) && caught);
    assert.equal(caught.probability, then.probability);
    assert.equal(caught.featuresHash, then.featuresHash);
    await m.stop();
    await d.stop();
  });

  test('onTick (sibyl_signals_ticks_total) counts ticks with something wanted, on the holder only, by trigger; folded bar announcements count once', async () => {
    const d = deployment();
    clock = FEATURE_WINDOW + 10;
    const ticks: string[] = [];
    const lease = new TestLease();
    const m = d.monitor({ lease, marks: createLocalMarks(), onTick: (t) => ticks.push(t) });
    await m.onBars([]); // not the holder: it does not tick
    assert.deepEqual(ticks, []);
    lease.set(true); // gaining the lease ticks at once
    await m.idle();
    assert.deepEqual(ticks, ['interval']);
    clock += 1;
    await m.onBars([]);
    await m.idle();
    assert.deepEqual(ticks, ['interval', 'bars']);
    // Three announcements while a tick runs: one follow-up tick, counted once as `bars`.
    clock += 1;
    const running = m.tick();
    await Promise.all([m.onBars([]), m.onBars([]), m.onBars([]), running]);
    await m.idle();
    assert.deepEqual(ticks, ['interval', 'bars', 'interval', 'bars']);
    // An announcement that brought nothing new still counts: the alert compares these with what was published.
    await m.onBars([]);
    await m.idle();
    assert.deepEqual(ticks.slice(4), ['bars']);
    await m.stop();

    const idle: string[] = [];
    const nobody = new TestLease();
    const unwanted = d.monitor({ lease: nobody, marks: createLocalMarks(), wanted: [], onTick: (t) => idle.push(t) });
    nobody.set(true);
    await unwanted.onBars([]);
    await unwanted.idle();
    assert.deepEqual(idle, [], 'nothing wanted: no tick is counted');
    await unwanted.stop();
    d.stop();
  });

  test('the holder dies: the next holder continues right after the persisted last bar', async () => {
    const d = deployment();
    const marks = createLocalMarks(); // stands for the hash in Redis, shared by both
    const start = FEATURE_WINDOW + 20;
    clock = start;
    const leaseA = new TestLease();
    const a = d.monitor({ lease: leaseA, marks });
    leaseA.set(true);
    for (let i = 0; i < 3; i++, clock++) await step(a);
    // A dies (no stop, no release: it simply ticks no more, and its lease is not renewed); bars go on
    // arriving meanwhile (more than the newest few the monitor looks at first).
    clock += 20;
    const leaseB = new TestLease();
    const b = d.monitor({ lease: leaseB, marks });
    leaseB.set(true);
    await step(b);
    await d.settle();
    for (const s of SYMBOLS) assert.deepEqual(d.sequence(s), range(start, clock), `${s}: no gap, no repeat`);
    assertRecordedOnce(d.recorded, 'BBB', range(start, clock));
    await b.stop();
    await d.stop();
  });

  test('the holder is partitioned away: the successor continues; when it holds again it continues from the marks, not its stale memory', async () => {
    const d = deployment();
    const marks = createLocalMarks();
    const start = FEATURE_WINDOW + 40;
    clock = start;
    const leaseA = new TestLease();
    const leaseB = new TestLease();
    const a = d.monitor({ lease: leaseA, marks });
    const b = d.monitor({ lease: leaseB, marks });
    leaseA.set(true);
    await step(a);
    clock++;
    await step(a);
    // A cannot renew and steps down; its key expires; B acquires. Two bars arrived in between.
    leaseA.set(false);
    clock += 2;
    leaseB.set(true);
    await step(b);
    clock++;
    await step(b);
    // B steps down in turn, A acquires again: its own memory says start + 1, the marks say further.
    leaseB.set(false);
    clock += 3;
    leaseA.set(true);
    await step(a);
    await step(a);
    await d.settle();
    for (const s of SYMBOLS) assert.deepEqual(d.sequence(s), range(start, clock), `${s}: no gap, no repeat`);
    assertRecordedOnce(d.recorded, 'AAA', range(start, clock));
    await a.stop();
    await b.stop();
    await d.stop();
  });

  /**
   * Two instances' subscribers (deployments `a` and `b`), with events crossing between them while
   * Redis is up. `view` is what a subscriber gets: its stream drops any bar not after the last one.
   */
  function twoInstances() {
    let redisUp = true;
    const a = deployment();
    const b = deployment();
    const crossing = (own: ReturnType<typeof deployment>, other: ReturnType<typeof deployment>): SignalsBus => ({
      publish: (event) => {
        own.bus.publish(event);
        if (redisUp) other.bus.publish(event);
      },
      subscribe: (strategy) => own.bus.subscribe(strategy),
    });
    const view = (d: ReturnType<typeof deployment>, symbol: string) => {
      let last = -1;
      return d.sequence(symbol).filter((i) => (i > last ? ((last = i), true) : false));
    };
    return {
      a,
      b,
      busA: crossing(a, b),
      busB: crossing(b, a),
      view,
      setRedis: (up: boolean) => (redisUp = up),
      redisUp: () => redisUp,
      stop: async () => {
        await a.stop();
        await b.stop();
      },
    };
  }

  test('Redis unreachable: an instance running alone continues from what its own subscribers received; back, nothing is missing anywhere', async () => {
    const net = twoInstances();
    const marks = createLocalMarks();
    const start = FEATURE_WINDOW + 60;
    clock = start;
    const leaseA = new TestLease();
    const leaseB = new TestLease();
    const a = net.a.monitor({
      lease: leaseA,
      marks: reachable(marks, net.redisUp),
      bus: net.busA,
      received: (_s, symbol) => net.a.lastReceived(symbol),
    });
    const b = net.b.monitor({
      lease: leaseB,
      marks: reachable(marks, net.redisUp),
      bus: net.busB,
      received: (_s, symbol) => net.b.lastReceived(symbol),
    });
    leaseA.set(true);
    await step(a);
    clock++;
    await step(a);
    await net.a.settle();
    // Redis goes away. Events reach only the publishing instance's subscribers; bars keep arriving.
    // After a lease period both run alone: A from its own memory, B (which never held the monitor and
    // cannot read the marks) from the last bar its subscribers received.
    net.setRedis(false);
    clock++;
    await step(a);
    clock += 2;
    leaseA.set(true, true);
    leaseB.set(true, true);
    await step(a);
    await step(b);
    await net.b.settle();
    for (const s of SYMBOLS) {
      assert.deepEqual(net.view(net.a, s), range(start, clock), `${s} on A while alone`);
      assert.deepEqual(net.view(net.b, s), range(start, clock), `${s} on B while alone`);
      assert.deepEqual(net.b.sequence(s), range(start, clock), `${s} on B: nothing repeated either`);
    }
    // Redis answers again, restarted empty (no marks): B keeps the shared lease, A steps down. B
    // continues from what its subscribers received; A's subscribers hear B from then on.
    net.setRedis(true);
    await marks.forget(SYMBOLS.map((symbol) => `${STRATEGY}|${symbol}`));
    leaseA.set(false);
    leaseB.set(true, false);
    clock += 2;
    await step(b);
    await net.a.settle();
    for (const s of SYMBOLS) {
      assert.deepEqual(net.view(net.a, s), range(start, clock), `${s} on A after Redis is back`);
      assert.deepEqual(net.view(net.b, s), range(start, clock), `${s} on B after Redis is back`);
    }
    assertRecordedOnce([...net.a.recorded, ...net.b.recorded], 'AAA', range(start, clock));
    await a.stop();
    await b.stop();
    await net.stop();
  });

  test('a Redis blip shorter than the lease: the holder keeps it, and re-publishes through Redis what only its own subscribers got', async () => {
    const net = twoInstances();
    const marks = createLocalMarks();
    const start = FEATURE_WINDOW + 70;
    clock = start;
    const leaseA = new TestLease();
    const a = net.a.monitor({
      lease: leaseA,
      marks: reachable(marks, net.redisUp),
      bus: net.busA,
      received: (_s, symbol) => net.a.lastReceived(symbol),
    });
    leaseA.set(true);
    await step(a);
    net.setRedis(false);
    for (let i = 0; i < 3; i++) {
      clock++;
      await step(a);
    }
    await net.b.settle();
    for (const s of SYMBOLS) assert.deepEqual(net.view(net.b, s), [start], `${s}: B's subscribers heard nothing during the blip`);
    net.setRedis(true); // no flip, never alone: the lease was renewed in time
    clock++;
    await step(a);
    await net.b.settle();
    for (const s of SYMBOLS) {
      assert.deepEqual(net.view(net.a, s), range(start, clock), `${s} on A`);
      assert.deepEqual(net.view(net.b, s), range(start, clock), `${s} on B: the blip's bars came after all`);
    }
    await a.stop();
    await net.stop();
  });

  test("Redis restarted empty: the interest of this instance's own subscribers still counts", async () => {
    const d = deployment();
    const local = createLocalInterest();
    // Redis answers, but with nothing: its sorted set came back empty and nobody has refreshed it yet.
    const emptyRedis: InterestSet = { ...local, all: async () => [] };
    clock = FEATURE_WINDOW + 80;
    const lease = new TestLease();
    const m = d.monitor({ lease, marks: createLocalMarks(), interest: emptyRedis });
    lease.set(true);
    await step(m);
    clock++;
    await step(m);
    await d.settle();
    for (const s of SYMBOLS) assert.deepEqual(d.sequence(s), [FEATURE_WINDOW + 80, FEATURE_WINDOW + 81], s);
    await m.stop();
    await d.stop();
  });

  test('a gap longer than one tick catches up publishes only the newest bars', async () => {
    const d = deployment();
    const marks = createLocalMarks();
    const start = FEATURE_WINDOW + 100;
    clock = start;
    const leaseA = new TestLease();
    const a = d.monitor({ lease: leaseA, marks });
    leaseA.set(true);
    await step(a);
    clock += 10;
    const leaseB = new TestLease();
    const b = d.monitor({ lease: leaseB, marks, maxCatchUpBars: 4 });
    leaseB.set(true);
    await step(b);
    await d.settle();
    for (const s of SYMBOLS) assert.deepEqual(d.sequence(s), [start, ...range(clock - 4, clock)], s);
    await b.stop();
    await d.stop();
  });
});
