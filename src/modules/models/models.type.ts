import { DateTimeISOResolver } from 'graphql-scalars';
import { Field, Float, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: 'Share of predictions in one probability range that came true.' })
export class CalibrationBin {
  @Field(() => Float) lower!: number;
  @Field(() => Float) upper!: number;
  @Field(() => Int) count!: number;
  @Field(() => Float, { nullable: true }) meanPredicted!: number | null;
  @Field(() => Float, { nullable: true }) observedRate!: number | null;
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
  @Field(() => Float, { nullable: true, description: 'Brier score of always predicting the base rate: the bar to beat' })
  baselineBrier!: number | null;
  @Field(() => Float, { nullable: true }) logLoss!: number | null;
  @Field(() => Float, { nullable: true, description: 'Expected calibration error' }) ece!: number | null;
  @Field(() => Float, { nullable: true, description: 'Share of outcomes inside the 95% interval' }) intervalCoverage!: number | null;
  @Field(() => [CalibrationBin]) calibration!: CalibrationBin[];
  @Field(() => DateTimeISOResolver, { nullable: true }) from!: Date | null;
  @Field(() => DateTimeISOResolver, { nullable: true }) to!: Date | null;
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
