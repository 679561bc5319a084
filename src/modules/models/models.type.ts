import { DateTimeISOResolver } from 'graphql-scalars';
import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';

@ObjectType({ description: 'Share of predictions in one probability range that came true.' })
export class CalibrationBin {
  @Field(() => Float) lower!: number;
  @Field(() => Float) upper!: number;
  @Field(() => Int) count!: number;
  @Field(() => Float, { nullable: true }) meanPredicted!: number | null;
  @Field(() => Float, { nullable: true }) observedRate!: number | null;
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
  @Field(() => Float) low!: number;
  @Field(() => Float) high!: number;
  @Field(() => Float, { description: 'Two-sided level of [low, high], e.g. 0.95' }) level!: number;
  @Field(() => Boolean, { description: 'True when the percentile interval did not contain `value` and was widened to reach it' }) widened!: boolean;
}

@ObjectType({ description: 'How `estimates` were computed: enough to recompute them.', simpleResolvers: true })
export class EstimationMethod {
  @Field(() => String) method!: string;
  @Field(() => String, { description: 'Resampling unit: MONTH = UTC calendar month of the prediction’s asOf' }) block!: string;
  @Field(() => Int, { description: 'Blocks in the data (each replicate draws this many, with replacement)' }) blocks!: number;
  @Field(() => Int) replicates!: number;
  @Field(() => Int, { description: 'Seed of the PRNG (mulberry32) drawing the blocks: the same rows give the same intervals' }) seed!: number;
  @Field(() => Float) level!: number;
}

@ObjectType({ description: 'How good a model is: `offline` (held-out data at training time, from the manifest) or `realized` (outcomes of the predictions served).' })
export class ModelMetrics {
  @Field(() => String) source!: string;
  @Field(() => Int) sampleSize!: number;
  @Field(() => Float, { nullable: true }) accuracy!: number | null;
  @Field(() => Float, { nullable: true }) precision!: number | null;
  @Field(() => Float, { nullable: true }) recall!: number | null;
  @Field(() => Float, { nullable: true }) f1!: number | null;
  @Field(() => Float, { nullable: true }) brier!: number | null;
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
  @Field(() => Float, { nullable: true }) logLoss!: number | null;
  @Field(() => Float, { nullable: true, description: 'Expected calibration error' }) ece!: number | null;
  @Field(() => Float, { nullable: true, description: 'Share of outcomes inside the 95% interval' }) intervalCoverage!: number | null;
  @Field(() => [PeriodCoverage], {
    description: 'intervalCoverage per UTC calendar year of asOf, oldest first (offline: empty for manifests written before issue 19)',
  })
  coverageByYear!: PeriodCoverage[];
  @Field(() => [PeriodCoverage], { description: 'intervalCoverage per UTC calendar month of asOf, oldest first' })
  coverageByMonth!: PeriodCoverage[];
  @Field(() => [CalibrationBin]) calibration!: CalibrationBin[];
  @Field(() => DateTimeISOResolver, { nullable: true }) from!: Date | null;
  @Field(() => DateTimeISOResolver, { nullable: true }) to!: Date | null;
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
  @Field(() => String) strategy!: string;
  @Field(() => String) version!: string;
  @Field(() => DateTimeISOResolver) createdAt!: Date;
  @Field(() => Boolean, { description: 'Whether this version serves the strategy now' }) active!: boolean;
  @Field(() => Boolean, { description: 'Whether this version runs in shadow: scored beside the active one and recorded in history, never served' })
  shadow!: boolean;
  @Field(() => [String], { description: 'Input features, in the model’s order' }) features!: string[];
  @Field(() => ModelMetrics, { nullable: true, description: 'Held-out metrics from training (source: offline)' })
  offlineMetrics!: ModelMetrics | null;
}

@ObjectType({ description: 'Something Sibyl predicts, served by one active model version.' })
export class Strategy {
  @Field(() => String) name!: string;
  @Field(() => String) horizon!: string;
  @Field(() => String) description!: string;
  @Field(() => ModelVersion) activeVersion!: ModelVersion;
  @Field(() => ModelVersion, { nullable: true, description: 'The version running in shadow, if any' })
  shadowVersion!: ModelVersion | null;
  @Field(() => [ModelVersion]) versions!: ModelVersion[];
}
