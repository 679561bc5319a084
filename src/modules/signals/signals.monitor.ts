import { interestMember, parseInterestMember, type InterestSet } from '../../infra/coordination/interest.js';
import type { Lease } from '../../infra/coordination/lease.js';
import type { Marks } from '../../infra/coordination/marks.js';
import type { Logger } from '../../infra/logger/logger.js';
import { inSpan } from '../../infra/tracing/tracing.js';
import type { Bar } from '../../infra/market-data/market-data.js';
import type { PredictionKey, PredictionRecord, PredictionService } from '../predictions/index.js';
import { toWire, type SignalsBus } from './signals.topics.js';

export interface SignalsMonitorOptions {
  readonly predictions: Pick<PredictionService, 'predictLatest' | 'predictMissed'>;
  /** Strategies the watchlist is computed for (the loaded ones). */
  readonly strategies: () => readonly string[];
  readonly interest: InterestSet;
  /** Whoever holds it runs the monitor; the others only serve their subscribers. */
  readonly lease: Lease;
  /**
   * The last bar published per `strategy|symbol`, kept where the next holder of the lease finds it
   * (Redis, next to the lease): it continues right after, however the lease changed hands.
   */
  readonly marks: Marks;
  /**
   * The newest asOf this instance's own subscribers of (strategy, symbol) received, if any: what a
   * monitor running alone (Redis unreachable, so neither marks nor other instances' events) continues
   * from for them.
   */
  readonly received?: (strategy: string, symbol: string) => number | undefined;
  /**
   * How long a (strategy, symbol) nobody wants any more is remembered before it is forgotten (and, when
   * wanted again, starts from its newest bar instead of catching up). Longer than the interest set
   * takes to refill after Redis restarts empty.
   */
  readonly forgetAfterMs: number;
  /** Most bars one tick catches up per (strategy, symbol) after a gap. Default 256. */
  readonly maxCatchUpBars?: number;
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
  /**
   * Told when a tick finds something wanted, before computing it (sibyl_signals_ticks_total{trigger}):
   * `bars` when the feed announced bars since the last tick (announcements folded into one tick count
   * once), else `interval`. A `bars` tick that publishes nothing means the bars brought nothing new
   * for anything wanted, or every prediction failed: what the "no signal for N ticks" alert watches.
   */
  readonly onTick?: (trigger: 'bars' | 'interval') => void;
}

/**
 * The one place live predictions are made: on every new bar (and on the fallback interval) the
 * instance holding the lease computes every wanted (strategy, symbol) in ONE call to the prediction
 * service, which is one batched inference per model version, records them in history (the service's
 * onServed path, so they are in the history writer before anyone can receive them), and publishes them, one event per strategy. The
 * cost of a tick depends on how many symbols are wanted, never on how many subscribers want them.
 *
 * Every bar is published once, in order, per (strategy, symbol): the monitor remembers the last bar
 * it published for each, and when the newest bar is further on than the one after it (ticks folded
 * into one while a slow one ran, a hand-over of the lease) it first predicts and publishes the bars in
 * between (at most `maxCatchUpBars`). That memory survives a hand-over: each publish raises the marks
 * in Redis, which a new holder reads; an instance running alone continues from what its own
 * subscribers received. An interval tick with no new bar sends nothing. Ticks never overlap: one
 * arriving while another runs is folded into a single follow-up tick.
 *
 * What other instances' subscribers got is what went through Redis, so whenever the shared lease is
 * (re)gained, running alone ends, or a publish could not be marked in Redis, the monitor starts again
 * from the marks (or, if Redis lost them, from the last marks this instance wrote), not from what it
 * published meanwhile to its own subscribers only; those drop the repeats.
 */
export class SignalsMonitor {
  /** What this instance counts as published, per member: where the next tick continues from. */
  readonly #published = new Map<string, Published>();
  /** The last bar per member this instance raised the shared marks to (they may be lost with Redis). */
  readonly #confirmed = new Map<string, number>();
  /** Continue from the shared marks at the next tick, not from #published (see the class comment). */
  #rebuild = true;
  #wasAlone = false;
  #lostAt: number | undefined;
  #marksWarnedAt = 0;
  #running: Promise<void> | undefined;
  #again = false;
  /** Settled when the follow-up tick (the one #again asks for) is done. */
  #followUp: { promise: Promise<void>; resolve: () => void } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** The feed announced bars that no tick has started on yet. */
  #barsPending = false;

  constructor(private readonly options: SignalsMonitorOptions) {}

  start(): void {
    this.options.lease.start((held) => {
      this.options.logger.info({ held }, held ? 'signals monitor: this instance runs the monitor' : 'signals monitor: stepped down');
      clearInterval(this.#timer);
      this.#timer = undefined;
      if (!held) {
        this.#lostAt = Date.now();
        return;
      }
      // Marks this instance wrote long ago say nothing about what happened since.
      if (this.#lostAt !== undefined && Date.now() - this.#lostAt > this.options.forgetAfterMs) this.#confirmed.clear();
      this.#rebuild = true;
      if (this.options.intervalMs > 0) this.#timer = setInterval(() => void this.tick(), this.options.intervalMs);
      void this.tick();
    });
  }

  get running(): boolean {
    return this.options.lease.held;
  }

  /**
   * From the market feed: bars just became available (a feed announces only bars already served).
   * Resolves once a tick that started after this call is done, so a feed that awaits it (a vendor
   * catching up session by session) announces its next bars only after these are published.
   */
  onBars(_bars: readonly Bar[]): Promise<void> {
    if (!this.#stopped && this.options.lease.held) this.#barsPending = true;
    return this.tickAfterNow();
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
        const followUp = this.#followUp;
        this.#followUp = undefined;
        if (this.#again) {
          this.#again = false;
          const next = this.tick();
          if (followUp) void next.then(followUp.resolve);
        } else followUp?.resolve();
      });
    return this.#running;
  }

  /**
   * Runs a tick that starts after this call: now, or, when one is running (it may have read the
   * market before the newest bars were stored), the follow-up after it. Resolves when that tick is done.
   */
  tickAfterNow(): Promise<void> {
    if (this.#stopped || !this.options.lease.held) return Promise.resolve();
    if (!this.#running) return this.tick();
    this.#again = true;
    this.#followUp ??= withResolvers();
    return this.#followUp.promise;
  }

  /** Resolves once no tick is running or queued behind the running one. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
    await this.options.lease.stop();
  }

  async #tickOnce(): Promise<void> {
    const trigger = this.#barsPending ? 'bars' : 'interval';
    this.#barsPending = false;
    const keys = await this.#wanted();
    if (keys.length === 0) return;
    this.options.onTick?.(trigger);
    // One trace per tick (market fetch, features, inference, SQL inside), the work behind every
    // subscriber's event; the events' own executions are traced by the WebSocket transport.
    await inSpan('signals.tick', { 'sibyl.keys': keys.length }, () => this.#compute(keys));
  }

  async #compute(keys: PredictionKey[]): Promise<void> {
    const [results] = await Promise.all([this.options.predictions.predictLatest(keys), this.#recall(keys)]);
    const fresh: PredictionRecord[] = [];
    const gaps: Array<PredictionKey & { after: Date; before: Date }> = [];
    let failed = 0;
    for (const result of results) {
      if (result instanceof Error) {
        failed++;
        continue;
      }
      const last = this.#published.get(memberOf(result));
      const time = result.asOf.getTime();
      if (last && time < last.time) continue;
      if (last && time === last.time && (!last.versions || last.versions.has(result.model.manifest.version))) continue;
      if (last && time > last.time && !result.stale)
        gaps.push({ strategy: result.strategy, symbol: result.symbol, after: new Date(last.time), before: result.asOf });
      fresh.push(result);
    }
    if (failed > 0) this.options.logger.debug({ failed, wanted: keys.length }, 'signals monitor: some wanted predictions failed');
    const missed = gaps.length > 0 ? await this.#catchUp(gaps) : [];
    if (fresh.length === 0 && missed.length === 0) return;
    await this.options.recorded();
    if (this.#stopped) return;
    // Missed bars first, one event per (bar time, strategy), oldest first; then, as always, one event
    // per strategy with the newest: each subscriber gets its symbols' bars in order.
    const group = (records: readonly PredictionRecord[], key: (r: PredictionRecord) => string) => {
      const groups = new Map<string, PredictionRecord[]>();
      for (const record of records) {
        const k = key(record);
        const list = groups.get(k);
        if (list) list.push(record);
        else groups.set(k, [record]);
      }
      return [...groups.values()];
    };
    const ordered = [
      ...group(missed, (r) => `${r.asOf.getTime()}|${r.strategy}`).sort(
        (a, b) => a[0]!.asOf.getTime() - b[0]!.asOf.getTime() || compare(a[0]!.strategy, b[0]!.strategy),
      ),
      ...group(fresh, (r) => r.strategy),
    ];
    const marks = new Map<string, number>();
    for (const records of ordered) {
      records.sort((a, b) => compare(a.symbol, b.symbol));
      const strategy = records[0]!.strategy;
      this.options.bus.publish({ strategy, predictions: records.map(toWire) });
      this.options.onPublished?.(strategy, records.length);
      for (const record of records) {
        const member = memberOf(record);
        const time = record.asOf.getTime();
        const last = this.#published.get(member);
        if (!last || time > last.time) this.#published.set(member, { time, versions: new Set([record.model.manifest.version]) });
        else if (time === last.time) last.versions?.add(record.model.manifest.version);
        marks.set(member, Math.max(time, marks.get(member) ?? -Infinity));
      }
    }
    // After publishing: a holder that dies in between makes its successor repeat a bar (subscribers
    // drop repeats, history dedupes), never skip one.
    if (await this.options.marks.advance(marks)) {
      for (const [member, time] of marks) this.#confirmed.set(member, Math.max(time, this.#confirmed.get(member) ?? -Infinity));
    } else this.#rebuild = true; // Redis is away: these events reached this instance's subscribers only
  }

  /** The bars between the last published and the newest, predicted now; none if they cannot be. */
  async #catchUp(gaps: Array<PredictionKey & { after: Date; before: Date }>): Promise<PredictionRecord[]> {
    const maxBars = this.options.maxCatchUpBars ?? 256;
    try {
      const { records, truncated } = await this.options.predictions.predictMissed(gaps, maxBars);
      if (truncated.length > 0) {
        this.options.logger.warn(
          { keys: truncated.length, maxBars },
          'signals monitor: more bars were missed than one tick catches up; only the newest are published',
        );
      }
      if (records.length > 0)
        this.options.logger.info({ bars: records.length }, 'signals monitor: published bars missed since the last publish');
      return records;
    } catch (error) {
      this.options.logger.warn(
        { err: error },
        'signals monitor: cannot predict the bars missed since the last publish; publishing the newest only',
      );
      return [];
    }
  }

  /**
   * Brings what counts as published up to date for `keys` (see the class comment), and forgets keys
   * nobody has wanted for `forgetAfterMs`.
   */
  async #recall(keys: readonly PredictionKey[]): Promise<void> {
    const now = Date.now();
    const wanted = new Set(keys.map(memberOf));
    const forgotten: string[] = [];
    for (const [member, last] of this.#published) {
      if (wanted.has(member)) last.unwantedSince = undefined;
      else if (last.unwantedSince === undefined) last.unwantedSince = now;
      else if (now - last.unwantedSince >= this.options.forgetAfterMs) {
        this.#published.delete(member);
        this.#confirmed.delete(member);
        forgotten.push(member);
      }
    }
    if (forgotten.length > 0) await this.options.marks.forget(forgotten);

    const alone = this.options.lease.alone ?? false;
    if (alone !== this.#wasAlone) this.#rebuild = true;
    this.#wasAlone = alone;
    const received = (member: string) => {
      const key = parseInterestMember(member);
      return key && this.options.received?.(key.strategy, key.symbol);
    };

    if (alone) {
      // Only this instance's subscribers hear it: continue from what they have.
      for (const member of wanted) {
        const time = received(member);
        if (time !== undefined) this.#raise(member, time);
      }
      this.#rebuild = false;
      return;
    }
    const members = this.#rebuild ? [...wanted] : [...wanted].filter((m) => !this.#published.has(m));
    if (members.length === 0) return;
    let marks: Map<string, number>;
    try {
      marks = await this.options.marks.read(members);
    } catch (error) {
      // Every tick while Redis is away: once in a while is enough to be seen.
      if (now - this.#marksWarnedAt > 10_000) {
        this.#marksWarnedAt = now;
        this.options.logger.warn(
          { err: error },
          'signals monitor: cannot read the last published bars; continuing from what this instance knows',
        );
      }
      for (const member of members) {
        const time = received(member);
        if (!this.#published.has(member) && time !== undefined) this.#raise(member, time);
      }
      return;
    }
    for (const member of members) {
      const shared = Math.max(marks.get(member) ?? -Infinity, this.#confirmed.get(member) ?? -Infinity);
      // No mark anywhere (Redis restarted empty, and this instance wrote none): what its own
      // subscribers received is the best guess left.
      const time = shared > -Infinity ? shared : received(member);
      const last = this.#published.get(member);
      if (time === undefined) this.#published.delete(member);
      else if (!last || last.time !== time) this.#published.set(member, { time, versions: undefined });
    }
    this.#rebuild = false;
  }

  /** Someone published `member` up to `time`; which versions is unknown, so all count as sent. */
  #raise(member: string, time: number): void {
    const last = this.#published.get(member);
    if (!last || time > last.time) this.#published.set(member, { time, versions: undefined });
    else if (time === last.time) last.versions = undefined;
  }

  /** Every (strategy, symbol) any instance's subscribers want, plus the watchlist. */
  async #wanted(): Promise<PredictionKey[]> {
    // This instance's own interest always counts: Redis may answer without it (restarted empty, until
    // the next refresh), and the ticks in between would otherwise compute nothing for its subscribers.
    const members = [...this.options.interest.local()];
    try {
      members.push(...(await this.options.interest.all()));
    } catch (error) {
      this.options.logger.warn({ err: error }, 'signals monitor: cannot read what other instances want; covering this instance only');
    }
    const keys = new Map<string, PredictionKey>();
    for (const member of members) {
      const key = parseInterestMember(member);
      if (key) keys.set(member, key);
    }
    for (const strategy of this.options.strategies()) {
      for (const symbol of this.options.watchlist) keys.set(interestMember(strategy, symbol), { strategy, symbol });
    }
    return [...keys.values()];
  }
}

interface Published {
  /** The newest bar time published. */
  time: number;
  /** The model versions published at that time; undefined when another instance published it (all count). */
  versions: Set<string> | undefined;
  /** When a tick first found nobody wanting it. */
  unwantedSince?: number | undefined;
}

function withResolvers(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const memberOf = (key: PredictionKey) => interestMember(key.strategy, key.symbol);
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
