import 'reflect-metadata';
export { PredictionsResolver, bindSyncPredictionFields, type BindSyncField } from './predictions.resolver.js';
export { Prediction, SignalEnum } from './prediction.type.js';
export {
  PredictionService,
  priceInterval,
  confidenceOf,
  type PredictionKey,
  type PredictionLoaders,
  type PredictionCaches,
  type CachedFeatures,
  type PredictionRecord,
  type PointInTimeNote,
  type VersionChoice,
  predictionRecord,
} from './predictions.service.js';
export {
  PointInTimePredictions,
  scoreOneRun,
  type PointInTimeKey,
  type PointInTimeLoader,
  type PointInTimeOptions,
  type ChosenVersion,
} from './predictions.as-of.js';
export { invalidFeatures, invalidNumbers, invalidProbability, modelOutputInvalid } from './output-guard.js';
export { unavailableBecause } from './unavailable.js';
