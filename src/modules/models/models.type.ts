import { DateTimeISOResolver } from 'graphql-scalars';
import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';

@ObjectType({ description: 'Share of predictions in one probability range that came true.' })
export class CalibrationBin {
  @Field(() => Float, { description: 'Lower end of the probability range (inclusive); 10 equal-width bins' }) lower!: number;
  @Field(() => Float, { description: 'Upper end of the probability range (exclusive, except 1 in the last bin)' }) upper!: number;
  @Field(() => Int, { description: 'Predictions whose probability fell in the range' }) count!: number;
  @Field(() => Float, { nullable: true, description: 'Mean predicted probability in the range; null when the bin is empty' })
  meanPredicted!: number | null;
  @Field(() => Float, { nullable: true, description: 'Share of those predictions whose event happened; null when the bin is empty' })
  observedRate!: number | null;
}

@ObjectType({ description: 'Coverage of the 95% price interval over one UTC calendar period of asOf.', simpleResolvers: true })
export class PeriodCoverage {
  @Field(() => String, { description: 'The year ("2020") or month ("2020-03")' }) period!: string;
  @Field(() => Float, { description: 'Share of the outcomes inside the 95% interval' }) coverage!: number;
  @Field(() => Int, { description: 'Outcomes behind the share' }) samples!: number;
}

export enum MetricsVerdict {
  BETTER_THAN_BASE_RATE = 'BETTER_THAN_BASE_RATE',
  NO_BETTER_THAN_BASE_RATE = 'NO_BETTER_THAN_BASE_RATE',
  WORSE_THAN_BASE_RATE = 'WORSE_THAN_BASE_RATE',
}
registerEnumType(MetricsVerdict, {
  name: 'MetricsVerdict',
  description:
    'Whether the model beat always predicting the training base rate, from the interval of `brierSkillVsTrainingBaseRate`: BETTER when its low end is above 0, WORSE when its high end is below 0, otherwise NO_BETTER.',
});

@ObjectType({ description: 'A metric with its interval, from a calendar-block bootstrap (see `ModelMetrics.estimation`, `Backtest.estimation`). Always low ≤ value ≤ high.', simpleResolvers: true })
export class MetricEstimate {
  @Field(() => String, {
    description:
      '`accuracy` (share right at threshold 0.5); `accuracyOverBaseline` (accuracy − baselineAccuracy); `brierSkillVsTrainingBaseRate` (1 − brier / trainingBaseRateBrier); `brierSkillVsHindsightBaseRate` (1 − brier / hindsightBaseRateBrier); `auc` (ROC area = Mann-Whitney probability an up outcome got the higher p, ties ½); `ece` (10 equal-width bins); `intervalCoverage` (share inside the 95% interval). On `BacktestMetrics`: the figure of the same name (definitions in `Backtest.definitions`), and `excessAnnualReturn`',
  })
  metric!: string;
  @Field(() => Float, { description: 'The metric on the rows as they are' }) value!: number;
  @Field(() => Float, { description: 'Lower end of the interval' }) low!: number;
  @Field(() => Float, { description: 'Upper end of the interval' }) high!: number;
  @Field(() => Float, { description: 'Two-sided level of [low, high], e.g. 0.95' }) level!: number;
  @Field(() => Boolean, { description: 'True when the percentile interval did not contain `value` and was widened to reach it' }) widened!: boolean;
}

@ObjectType({ description: 'How `estimates` were computed: enough to recompute them.', simpleResolvers: true })
export class EstimationMethod {
  @Field(() => String, { description: 'The resampling method, in words' }) method!: string;
  @Field(() => String, { description: 'Resampling unit: MONTH = UTC calendar month of the prediction’s asOf' }) block!: string;
  @Field(() => Int, { description: 'Blocks in the data (each replicate draws this many, with replacement)' }) blocks!: number;
  @Field(() => Int, { description: 'Bootstrap replicates drawn' }) replicates!: number;
  @Field(() => Int, { description: 'Seed of the PRNG (mulberry32) drawing the blocks: the same rows give the same intervals' }) seed!: number;
  @Field(() => Float, { description: 'Two-sided level of every interval in `estimates`' }) level!: number;
}

@ObjectType({ description: 'How good a model is: `offline` (held-out data at training time, from the manifest) or `realized` (outcomes of the predictions served).' })
export class ModelMetrics {
  @Field(() => String, { description: '`offline` (held-out data at training time) or `realized` (outcomes of served predictions)' })
  source!: string;
  @Field(() => Int, { description: 'Predictions with an outcome behind these figures' }) sampleSize!: number;
  @Field(() => Float, { nullable: true, description: 'Share of outcomes on the side of 0.5 the probability was (up when probability ≥ 0.5); null without outcomes' })
  accuracy!: number | null;
  @Field(() => Float, { nullable: true, description: 'Of the predictions of up (probability ≥ 0.5), the share that went up; null when there were none' })
  precision!: number | null;
  @Field(() => Float, { nullable: true, description: 'Of the outcomes that went up, the share predicted up (probability ≥ 0.5); null when none went up' })
  recall!: number | null;
  @Field(() => Float, { nullable: true, description: 'Harmonic mean of precision and recall; null when either is' }) f1!: number | null;
  @Field(() => Float, { nullable: true, description: 'Brier score: mean of (probability − outcome)² with outcome 1 for up, 0 otherwise; 0 is perfect, lower is better' })
  brier!: number | null;
  @Field(() => Float, {
    nullable: true,
    description:
      'offline: Brier score of always predicting the training base rate (= trainingBaseRateBrier); realized: of always predicting the hindsight base rate of the same rows, b(1 − b) (= hindsightBaseRateBrier)',
    deprecationReason: 'Meant a different baseline offline and realized; use trainingBaseRateBrier or hindsightBaseRateBrier',
  })
  baselineBrier!: number | null;
  @Field(() => Float, { nullable: true, description: 'Hindsight base rate: the share of these rows whose outcome was up' }) baseRate!: number | null;
  @Field(() => Float, {
    nullable: true,
    description:
      'The up-rate known when the model was trained: the validation period’s (the one calibration was fitted on), from the version’s manifest; null when unknown (older manifest, or several versions measured together)',
  })
  trainingBaseRate!: number | null;
  @Field(() => Float, { nullable: true, description: 'Accuracy of always predicting the side of 0.5 the training base rate is on' }) baselineAccuracy!: number | null;
  @Field(() => Float, { nullable: true, description: 'Brier score of always predicting the training base rate: the bar a model must beat' })
  trainingBaseRateBrier!: number | null;
  @Field(() => Float, { nullable: true, description: 'Brier score of always predicting the hindsight base rate, b(1 − b): a stricter bar no model could know in advance' })
  hindsightBaseRateBrier!: number | null;
  @Field(() => Float, { nullable: true, description: '1 − brier / trainingBaseRateBrier: above 0 beats the base rate known at training time' })
  brierSkillVsTrainingBaseRate!: number | null;
  @Field(() => Float, { nullable: true, description: '1 − brier / hindsightBaseRateBrier' }) brierSkillVsHindsightBaseRate!: number | null;
  @Field(() => Float, { nullable: true, description: 'Mean negative log-likelihood of the outcomes (natural log, probability clamped to [1e-15, 1 − 1e-15]); lower is better' })
  logLoss!: number | null;
  @Field(() => Float, { nullable: true, description: 'Expected calibration error' }) ece!: number | null;
  @Field(() => Float, { nullable: true, description: 'Share of outcomes inside the 95% interval' }) intervalCoverage!: number | null;
  @Field(() => [PeriodCoverage], {
    description: 'intervalCoverage per UTC calendar year of asOf, oldest first (offline: empty for manifests written before issue 19)',
  })
  coverageByYear!: PeriodCoverage[];
  @Field(() => [PeriodCoverage], { description: 'intervalCoverage per UTC calendar month of asOf, oldest first' })
  coverageByMonth!: PeriodCoverage[];
  @Field(() => [CalibrationBin], { description: 'Reliability diagram: predicted probability against observed rate, per probability range' })
  calibration!: CalibrationBin[];
  @Field(() => DateTimeISOResolver, { nullable: true, description: 'Start of the period measured: the `from` asked, else the asOf of the earliest prediction; null when none' })
  from!: Date | null;
  @Field(() => DateTimeISOResolver, { nullable: true, description: 'End of the period measured: the `to` asked, else the asOf of the latest prediction; null when none' })
  to!: Date | null;
  @Field(() => [MetricEstimate], {
    description: 'accuracy, accuracyOverBaseline, Brier skill (vs training and hindsight base rates), auc, ece and intervalCoverage with intervals; empty (see estimatesNote) when they cannot be made',
  })
  estimates!: MetricEstimate[];
  @Field(() => EstimationMethod, { nullable: true, description: 'How `estimates` were made; null when there are none' }) estimation!: EstimationMethod | null;
  @Field(() => String, { nullable: true, description: 'Why `estimates` are empty or lack a metric; null when nothing is missing' }) estimatesNote!: string | null;
  @Field(() => MetricsVerdict, { nullable: true, description: 'From the interval of brierSkillVsTrainingBaseRate; null without it' }) verdict!: MetricsVerdict | null;
}

// simpleResolvers: one per item of a `predictions` answer (Prediction.model); plain properties, no field auth.
@ObjectType({ description: 'One trained model of a strategy.', simpleResolvers: true })
export class ModelVersion {
  @Field(() => ID, { description: 'Opaque, stable id (strategy, version) for client caches' }) id!: string;
  @Field(() => String, { description: 'The strategy (`Strategy.name`) this version belongs to' }) strategy!: string;
  @Field(() => String, { description: 'The version’s name, its directory under the strategy in the models directory' }) version!: string;
  @Field(() => DateTimeISOResolver, { description: 'When it was trained (from its manifest)' }) createdAt!: Date;
  @Field(() => Boolean, { description: 'Whether this version serves the strategy now' }) active!: boolean;
  @Field(() => Boolean, { description: 'Whether this version runs in shadow: scored beside the active one and recorded in history, never served' })
  shadow!: boolean;
  @Field(() => [String], { description: 'Input features, in the model’s order' }) features!: string[];
  @Field(() => ModelMetrics, { nullable: true, description: 'Held-out metrics from training (source: offline)' })
  offlineMetrics!: ModelMetrics | null;
}

@ObjectType({ description: 'Something Sibyl predicts, served by one active model version.' })
export class Strategy {
  @Field(() => ID, { description: 'Opaque, stable id (the name) for client caches' }) id!: string;
  @Field(() => String, { description: 'The strategy’s name, e.g. `direction-1d`: the `strategy` argument elsewhere' }) name!: string;
  @Field(() => String, { description: 'How far ahead it predicts, e.g. `1d`' }) horizon!: string;
  @Field(() => String, { description: 'What it predicts, in words' }) description!: string;
  @Field(() => ModelVersion, { description: 'The version serving its predictions now' }) activeVersion!: ModelVersion;
  @Field(() => ModelVersion, { nullable: true, description: 'The version running in shadow, if any' })
  shadowVersion!: ModelVersion | null;
  @Field(() => [ModelVersion], { description: 'Every loaded version, the active and shadow ones included' }) versions!: ModelVersion[];
}
