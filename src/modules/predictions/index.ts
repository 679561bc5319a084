import 'reflect-metadata';
export {
  PredictionsResolver,
  bindPredictionQueries,
  bindSyncPredictionFields,
  type BindAuthorizedField,
  type BindSyncField,
} from './predictions.resolver.js';
export { Prediction, SignalEnum } from './prediction.type.js';
export {
  PredictionService,
  type PredictionServiceOptions,
  type PredictionKey,
  type PredictionLoaders,
  type PredictionCaches,
} from './predictions.service.js';
export {
  priceInterval,
  confidenceOf,
  recordOf,
  type CachedFeatures,
  type PredictionRecord,
  type PredictionSink,
  type PointInTimeNote,
  type VersionChoice,
} from './prediction.record.js';
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
export { createPredictionsModule, type PredictionsModule, type PredictionsModuleDeps } from './predictions.module.js';
