import 'reflect-metadata';
export { ExplanationsResolver, bindExplanationField } from './explanations.resolver.js';
export { ExplanationService, MAX_ROWS_PER_RUN, type ExplanationLoaders, type ExplanationOptions } from './explanations.service.js';
export { ExplanationsRepository, type AccuracySource, type BandEvidence, type ConfidenceBand } from './explanations.repository.js';
export { AccuracyEvidence, Explanation, Factor } from './explanation.type.js';
export { choosePlan, exactPlan, permutationPlan, type ShapleyPlan } from './shapley.js';
export { createExplanationsModule, type ExplanationsModule, type ExplanationsModuleDeps } from './explanations.module.js';
