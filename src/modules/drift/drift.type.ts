import { DateTimeISOResolver } from 'graphql-scalars';
import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';
import { ModelMetrics } from '../models/index.js';

export enum DriftStatus {
  STABLE = 'STABLE',
  WATCH = 'WATCH',
  DRIFTED = 'DRIFTED',
}
registerEnumType(DriftStatus, {
  name: 'DriftStatus',
  description: 'From PSI: STABLE ≤ 0.1 < WATCH ≤ 0.25 < DRIFTED (docs/decisions/drift.md)',
});

@ObjectType({ description: 'How far one variable’s recent distribution moved from its reference', simpleResolvers: true })
export class VariableDrift {
  @Field(() => String, { description: 'A feature name, or `probability` for the calibrated predicted probability' }) name!: string;
  @Field(() => Float, { description: 'Population Stability Index over the reference’s bins: Σ (recent − ref) · ln(recent / ref)' })
  psi!: number;
  @Field(() => Float, { description: 'Kolmogorov-Smirnov distance, the largest gap of the two cumulative distributions at the bin edges' })
  ks!: number;
  @Field(() => DriftStatus, { description: 'The PSI read against `Drift.thresholds`' }) status!: DriftStatus;
  @Field(() => Int, { description: 'Recent values measured' }) samples!: number;
  @Field(() => Int, { description: 'Bins of the reference histogram' }) bins!: number;
  @Field(() => Float, { nullable: true, description: 'Mean of the recent values' }) recentMean!: number | null;
  @Field(() => Float, { nullable: true, description: 'Median of the recent values' }) recentMedian!: number | null;
  @Field(() => Float, { nullable: true, description: 'Median of the reference (a cut point of its histogram), when known' })
  referenceMedian!: number | null;
  @Field(() => [Float], { description: 'Share of reference rows per bin' }) referenceProportions!: number[];
  @Field(() => [Float], { description: 'Share of recent values per bin (same bins)' }) recentProportions!: number[];
}

@ObjectType({ description: 'Drift within one calendar month of the window', simpleResolvers: true })
export class PeriodDrift {
  @Field(() => String, { description: 'YYYY-MM' }) month!: string;
  @Field(() => Int, { description: 'Feature vectors measured this month' }) samples!: number;
  @Field(() => [VariableDrift], { description: 'Every model input this month, in the model’s order' }) features!: VariableDrift[];
  @Field(() => VariableDrift, { nullable: true, description: 'The calibrated probability this month; null as `Drift.probability`' })
  probability!: VariableDrift | null;
  @Field(() => [String], { description: 'Features whose status is DRIFTED this month' }) drifted!: string[];
}

@ObjectType({ description: 'What the recent distributions are compared against', simpleResolvers: true })
export class DriftReferenceInfo {
  @Field(() => String, {
    description:
      '`stored-bars` (20 equal-frequency bins over the measured symbols’ own stored bars of the training period), ' +
      'else the manifest’s pooled reference over every training symbol: `manifest` (20 bins training wrote) ' +
      'or `featureStats` (up to 10 bins implied by its training quantiles)',
  })
  features!: string;
  @Field(() => String, { description: 'First day of the training period the feature reference covers' }) featuresFrom!: string;
  @Field(() => String, { description: 'Last day of the training period the feature reference covers' }) featuresTo!: string;
  @Field(() => String, {
    nullable: true,
    description:
      '`stored-bars` (this version scoring the measured symbols’ stored bars of its training period), ' +
      'else `manifest`; null when neither exists',
  })
  probability!: string | null;
  @Field(() => Int, { description: 'Reference rows behind the probability histogram (0 when none)' }) probabilitySamples!: number;
}

@ObjectType({ description: 'The thresholds `status` is read from', simpleResolvers: true })
export class DriftThresholds {
  @Field(() => Float, { description: 'PSI above this: WATCH' }) watch!: number;
  @Field(() => Float, { description: 'PSI above this: DRIFTED' }) drifted!: number;
}

@ObjectType({
  description:
    'Distribution drift of a model version’s inputs and outputs over a window of stored bars against its training distribution, ' +
    'with the realized calibration and coverage of its recorded predictions in the window',
})
export class Drift {
  @Field(() => String, { description: 'The strategy measured' }) strategy!: string;
  @Field(() => String, { description: 'The model version measured' }) version!: string;
  @Field(() => DateTimeISOResolver, { description: 'Start of the window (inclusive)' }) from!: Date;
  @Field(() => DateTimeISOResolver, { description: 'End of the window (inclusive)' }) to!: Date;
  @Field(() => [String], { description: 'Symbols measured (stored, with enough history)' }) symbols!: string[];
  @Field(() => Int, { description: 'Distinct trading days measured' }) days!: number;
  @Field(() => Int, { description: 'Feature vectors measured (symbol × day, features from bars ≤ that day only)' }) samples!: number;
  @Field(() => DriftReferenceInfo, { description: 'What the window’s distributions were compared against' }) reference!: DriftReferenceInfo;
  @Field(() => DriftThresholds, { description: 'The PSI thresholds each `status` is read from' }) thresholds!: DriftThresholds;
  @Field(() => [VariableDrift], { description: 'Every model input, in the model’s order' }) features!: VariableDrift[];
  @Field(() => VariableDrift, {
    nullable: true,
    description: 'The calibrated probability; null when there is no reference (see `probabilityReason`)',
  })
  probability!: VariableDrift | null;
  @Field(() => String, { nullable: true, description: 'Why `probability` is null; null when it is not' }) probabilityReason!: string | null;
  @Field(() => [String], { description: 'Features whose status over the whole window is DRIFTED' }) drifted!: string[];
  @Field(() => [PeriodDrift], { description: 'The same per calendar month of the window' }) months!: PeriodDrift[];
  @Field(() => ModelMetrics, {
    description:
      'Realized calibration, Brier, coverage of the interval, from recorded predictions and their outcomes with asOf in the window',
  })
  realized!: ModelMetrics;
}
