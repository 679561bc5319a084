import 'reflect-metadata';
export { PredictionsResolver, bindSyncPredictionFields, type BindSyncField } from './predictions.resolver.js';
export { Prediction, SignalEnum } from './prediction.type.js';
export {
  PredictionService,
  type PredictionServiceOptions,
  type PredictionKey,
  type PredictionLoaders,
  type PredictionCaches,
} from './predictions.service.js';
export { priceInterval, confidenceOf, type CachedFeatures, type PredictionRecord, type PredictionSink } from './prediction.record.js';
export { invalidFeatures, invalidNumbers, invalidProbability, modelOutputInvalid } from './output-guard.js';
export { unavailableBecause } from './unavailable.js';
