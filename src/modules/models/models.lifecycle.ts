import { randomUUID } from 'node:crypto';
import type { Logger } from '../../infra/logger/logger.js';
import type { EventBus } from '../../infra/pubsub/pubsub.js';
import { badUserInput, codedError, ErrorCode } from '../../shared/errors.js';
import { findStrategy } from '../../domain/strategies.js';
import type { AuditRow, ModelServingRepository, ServingRecord } from './models.repository.js';
import { ModelRefusedError, type ModelRegistry, type ModelVersionEntry, type Serving } from './registry.js';

/** The event every instance receives when a strategy's serving record changes. */
export const SERVING_CHANGED_TOPIC = 'models.serving-changed';

export interface ServingChangedEvent {
  readonly strategy: string;
  readonly active: string;
  readonly shadow: string | null;
  readonly actor: string;
  /** The instance that made the change (it applied it already). */
  readonly origin: string;
}

export interface ActivateOptions {
  /** Another audit row to commit with the switch (the promotion policy's decision), or with nothing if it fails. */
  readonly why?: AuditRow | undefined;
  /**
   * The version the caller saw serving when it decided: if another is serving by the time this change
   * runs (an operator switched meanwhile), it is refused (a plain Error: only internal callers pass it) and nothing changes.
   */
  readonly expectActive?: string | undefined;
}

export interface ModelLifecycleOptions {
  readonly registry: ModelRegistry;
  readonly repository: ModelServingRepository;
  readonly events: EventBus;
  readonly logger: Logger;
  /** How often to look for new version directories and re-read the database record; 0 = never. */
  readonly rescanIntervalMs: number;
}

/**
 * Which model version serves each strategy, kept the same on every instance.
 *
 * The database record (`model_serving`) is the truth. An instance applies it at start (recording the
 * newest version as the default when a strategy has no record yet), whenever an event says it changed,
 * when Redis reconnects (an event may have been missed) and on every rescan tick. Changes on this
 * instance (activation, shadow) verify the version from disk first, write the record and its audit row
 * in one transaction, switch locally, then tell the other instances. Anything that fails before the
 * write leaves the current version serving.
 *
 * Changes on one instance run one at a time, so two activations cannot interleave their steps.
 */
export class ModelLifecycle {
  readonly #options: ModelLifecycleOptions;
  readonly #instance = randomUUID();
  #queue: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #subscription: AsyncIterator<unknown> | undefined;
  #closed = false;
  /** strategy → why this instance cannot serve what the record says (for health and logs). */
  readonly #problems = new Map<string, string>();

  constructor(options: ModelLifecycleOptions) {
    this.#options = options;
  }

  /** Applies the database record, then listens for changes and starts the rescan timer. */
  async start(): Promise<void> {
    await this.sync('start');
    this.#listen();
    const { rescanIntervalMs } = this.#options;
    if (rescanIntervalMs > 0) {
      this.#timer = setInterval(() => void this.refresh().catch((error: unknown) => this.#options.logger.warn({ err: error }, 'model rescan failed')), rescanIntervalMs);
      this.#timer.unref();
    }
  }

  /** Picks up new version directories (never activating them), then re-reads the database record. */
  async refresh(): Promise<void> {
    await this.#options.registry.rescan();
    await this.sync('rescan');
  }

  /**
   * Makes what serves each strategy on this instance match the database record; records the newest
   * version as the default for a strategy that has no record.
   */
  sync(reason: string): Promise<void> {
    return this.#serialize(async () => {
      const { registry, repository } = this.#options;
      const records = await repository.all();
      for (const strategy of registry.strategies()) {
        let record = records.get(strategy);
        if (!record) {
          const newest = registry.newest(strategy)!;
          record = await repository.ensure(strategy, newest.manifest.version, 'system');
          this.#options.logger.info({ strategy, version: record.activeVersion }, `no recorded version for ${strategy}: recorded ${record.activeVersion} (the newest) as active`);
        }
        await this.#apply(record, reason);
      }
    });
  }

  /**
   * Verifies `version` from disk and makes it serve `strategy` on every instance. Rejects with
   * UNKNOWN_STRATEGY, BAD_USER_INPUT (the version is missing or broken: the reason is in the message
   * and in `extensions.reason`) or UNAVAILABLE (the database could not record it); in each case
   * nothing switched.
   */
  activate(strategy: string, version: string, actor: string, options: ActivateOptions = {}): Promise<Serving> {
    return this.#serialize(async () => {
      this.#knownStrategy(strategy);
      if (options.expectActive !== undefined) {
        const current = this.#options.registry.active(strategy)?.manifest.version;
        if (current !== options.expectActive)
          throw new Error(`${strategy} is served by ${current ?? 'nothing'}, not ${options.expectActive}: the decision is stale; nothing changed`);
      }
      const entry = await this.#verified(strategy, version, 'activate');
      const { previous, record } = await this.#write(() => this.#options.repository.activate({ strategy, version, actor, why: options.why }));
      const shadow = record.shadowVersion ? await this.#resolve(strategy, record.shadowVersion) : undefined;
      const serving: Serving = { active: entry, shadow: shadow instanceof Error ? undefined : shadow };
      this.#options.registry.setServing(strategy, serving);
      this.#problems.delete(strategy);
      this.#publish(record, actor);
      this.#options.logger.info({ strategy, version, previous, actor }, `model activated: ${strategy}@${version} (was ${previous ?? 'none'}) by ${actor}`);
      return serving;
    });
  }

  /**
   * Activates the version the latest activation replaced. BAD_USER_INPUT when the audit log holds no
   * earlier version, or when that version no longer passes verification.
   */
  async rollback(strategy: string, actor: string): Promise<Serving> {
    this.#knownStrategy(strategy);
    const current = this.#options.registry.active(strategy)?.manifest.version;
    const previous = current && (await this.#write(() => this.#options.repository.previousActive(strategy, current)));
    if (!previous) throw badUserInput(`nothing to roll back to: no earlier activation of ${strategy} is recorded`, { strategy });
    return this.activate(strategy, previous, actor);
  }

  /**
   * Names the version scored in shadow beside the active one (null: none). Its predictions are recorded
   * in history under its own version and never served.
   */
  setShadow(strategy: string, version: string | null, actor: string): Promise<Serving> {
    return this.#serialize(async () => {
      this.#knownStrategy(strategy);
      const { registry, repository } = this.#options;
      const active = registry.active(strategy);
      if (!active) throw codedError(ErrorCode.UNAVAILABLE, `no version of ${strategy} is loaded on this instance`);
      const record = await this.#write(() => repository.ensure(strategy, active.manifest.version, 'system'));
      if (version !== null && version === record.activeVersion) {
        throw badUserInput(`${strategy}@${version} is the active version; a shadow must be another version`, { strategy, version });
      }
      const entry = version === null ? undefined : await this.#verified(strategy, version, 'shadow');
      const { record: updated } = await this.#write(() => repository.setShadow({ strategy, version, actor }));
      const current = registry.find(strategy, updated.activeVersion) ?? active;
      const serving: Serving = { active: current, shadow: entry };
      registry.setServing(strategy, serving);
      this.#publish(updated, actor);
      this.#options.logger.info({ strategy, shadow: version, actor }, version ? `shadow set: ${strategy}@${version} by ${actor}` : `shadow cleared for ${strategy} by ${actor}`);
      return serving;
    });
  }

  /** Why this instance serves something other than the record says, per strategy (empty when in step). */
  problems(): ReadonlyMap<string, string> {
    return this.#problems;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#subscription?.return?.();
    await this.#queue.catch(() => undefined);
  }

  async #apply(record: ServingRecord, reason: string): Promise<void> {
    const { registry, logger } = this.#options;
    const { strategy } = record;
    const current = registry.serving(strategy);
    const active = await this.#resolve(strategy, record.activeVersion);
    if (active instanceof Error) {
      const problem = `recorded active version ${record.activeVersion} cannot be served here (${active.message}); serving ${current?.active.manifest.version ?? 'nothing'}`;
      if (this.#problems.get(strategy) !== problem) logger.error({ strategy, version: record.activeVersion, reason: active.message }, `${strategy}: ${problem}`);
      this.#problems.set(strategy, problem);
      return;
    }
    this.#problems.delete(strategy);
    let shadow: ModelVersionEntry | undefined;
    if (record.shadowVersion) {
      const resolved = await this.#resolve(strategy, record.shadowVersion);
      if (resolved instanceof Error) logger.warn({ strategy, version: record.shadowVersion, reason: resolved.message }, `${strategy}: shadow ${record.shadowVersion} cannot run here: ${resolved.message}`);
      else shadow = resolved;
    }
    // Set even when unchanged: until a choice is set, the registry serves the newest version, and a
    // version dropped in later must not take over by being newer.
    registry.setServing(strategy, { active, shadow });
    if (current?.active !== active || current?.shadow !== shadow) {
      logger.info(
        { strategy, version: active.manifest.version, shadow: shadow?.manifest.version ?? null, reason },
        `${strategy} now served by ${active.manifest.version}${shadow ? ` (shadow ${shadow.manifest.version})` : ''} (${reason})`,
      );
    }
  }

  /** A loaded version, or one loaded now from disk (another instance may have activated a newer drop). */
  async #resolve(strategy: string, version: string): Promise<ModelVersionEntry | ModelRefusedError> {
    const { registry } = this.#options;
    const loaded = registry.find(strategy, version);
    if (loaded) return loaded;
    try {
      return registry.adopt(await registry.verify(strategy, version));
    } catch (error) {
      if (error instanceof ModelRefusedError) return error;
      throw error;
    }
  }

  async #verified(strategy: string, version: string, action: 'activate' | 'shadow'): Promise<ModelVersionEntry> {
    const { registry, logger } = this.#options;
    try {
      return registry.adopt(await registry.verify(strategy, version));
    } catch (error) {
      if (!(error instanceof ModelRefusedError)) throw error;
      const serving = registry.active(strategy)?.manifest.version;
      logger.warn({ strategy, version, reason: error.reason }, `refused to ${action} ${strategy}@${version}: ${error.reason}`);
      throw badUserInput(
        `cannot ${action === 'activate' ? 'activate' : 'shadow'} ${strategy}@${version}: ${error.reason}${serving ? `; ${strategy}@${serving} keeps serving` : ''}`,
        { strategy, version, reason: error.reason },
      );
    }
  }

  #knownStrategy(strategy: string): void {
    if (!findStrategy(strategy)) {
      throw codedError(ErrorCode.UNKNOWN_STRATEGY, `Unknown strategy "${strategy}"; known: ${this.#options.registry.strategies().join(', ') || '(none loaded)'}`);
    }
  }

  /** A database step of a change: a failure is UNAVAILABLE to the client, logged with its cause. */
  async #write<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (error) {
      this.#options.logger.error({ err: error }, 'model serving record: database step failed');
      throw codedError(ErrorCode.UNAVAILABLE, 'the model serving record could not be read or written; nothing changed, try again shortly');
    }
  }

  #publish(record: ServingRecord, actor: string): void {
    const event: ServingChangedEvent = { strategy: record.strategy, active: record.activeVersion, shadow: record.shadowVersion, actor, origin: this.#instance };
    try {
      this.#options.events.publish(SERVING_CHANGED_TOPIC, event);
    } catch (error) {
      // The record is written; other instances catch up on their next rescan tick.
      this.#options.logger.warn({ err: error }, 'could not publish the model change; other instances will pick it up on their next rescan');
    }
  }

  #listen(): void {
    const subscription = this.#options.events.subscribe(SERVING_CHANGED_TOPIC)[Symbol.asyncIterator]();
    this.#subscription = subscription;
    void (async () => {
      for (;;) {
        const { value, done } = await subscription.next();
        if (done || this.#closed) return;
        const event = value as Partial<ServingChangedEvent>;
        if (event.origin === this.#instance) continue;
        // The event says something changed; the record says what. Re-reading it makes an out-of-order
        // or duplicated event harmless.
        await this.sync(`event from ${event.actor ?? 'another instance'}`).catch((error: unknown) =>
          this.#options.logger.warn({ err: error }, 'could not apply a model change event; retrying on the next rescan'),
        );
      }
    })().catch((error: unknown) => this.#options.logger.error({ err: error }, 'model change listener stopped'));
  }

  #serialize<T>(step: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(step, step);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
