export { createRetrainingModule, type RetrainingModule, type RetrainingModuleDeps } from './retraining.module.js';
export {
  RetrainingService,
  STAGING_DIRECTORY,
  versionName,
  type CurrentRun,
  type StrategyOutcome,
  type RetrainResult,
} from './retraining.service.js';
export { RetrainRunsRepository, RetrainAuditAction, SCHEDULER_ACTOR, type Claim, type RetrainRun } from './retraining.repository.js';
export { startSchedule, type Schedule } from './retraining.schedule.js';
export { trainInChild, TrainingCancelled, TrainingFailed } from './retraining.child.js';
