import type { EventBus } from '../../infra/pubsub/pubsub.js';
import type { PredictionRecord } from '../predictions/index.js';

/**
 * The events live signals travel as, typed. One topic per strategy; one event per monitor tick holds
 * every new prediction of that strategy, so an instance receives (and, with Redis, deserializes) each
 * tick once, however many of its clients subscribe, and fans it out in memory.
 *
 * A prediction travels without its model (a live inference session is not data): the receiving
 * instance looks the version up in its own registry.
 */
export type WirePrediction = Omit<PredictionRecord, 'model'> & { readonly modelVersion: string };

export interface SignalsEvent {
  readonly strategy: string;
  /** Ordered by symbol; all from the same tick. */
  readonly predictions: readonly WirePrediction[];
}

/** Topic name → payload: the only topics this module publishes or reads. */
export interface SignalTopics {
  [topic: `signals:${string}`]: SignalsEvent;
}

export const signalsTopic = (strategy: string): keyof SignalTopics => `signals:${strategy}`;

/** The typed face of the untyped bus, for this module's topics only. */
export interface SignalsBus {
  publish(event: SignalsEvent): void;
  subscribe(strategy: string): AsyncIterable<SignalsEvent>;
}

export function signalsBus(events: EventBus): SignalsBus {
  return {
    publish: (event) => events.publish(signalsTopic(event.strategy), event),
    subscribe: (strategy) => events.subscribe(signalsTopic(strategy)) as AsyncIterable<SignalsEvent>,
  };
}

export function toWire(record: PredictionRecord): WirePrediction {
  const { model, ...rest } = record;
  return { ...rest, modelVersion: model.manifest.version };
}
