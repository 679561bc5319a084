import { DateTimeISOResolver } from 'graphql-scalars';
import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';
import { EstimationMethod, MetricEstimate } from '../models/index.js';
import { RULES, type Rule } from './backtest.simulate.js';

export const RuleEnum = Object.fromEntries(RULES.map((rule) => [rule, rule])) as { readonly [R in Rule]: R };
registerEnumType(RuleEnum, {
  name: 'BacktestRule',
  description: 'How predictions become positions each day (equal weight over the positions held)',
  valuesConfig: {
    LONG_SHORT: { description: 'Long every BUY, short every SELL' },
    LONG_ONLY: { description: 'Long every BUY' },
    TOP_BOTTOM_QUANTILE: { description: 'Long the top `quantile` of symbols by probability, short the bottom `quantile`' },
  },
});

@ObjectType({ description: 'Performance over N daily returns; definitions in `Backtest.definitions`.', simpleResolvers: true })
export class BacktestMetrics {
  @Field(() => Int, { description: 'N: daily returns' }) days!: number;
  @Field(() => Float) finalEquity!: number;
  @Field(() => Float) totalReturn!: number;
  @Field(() => Float, { nullable: true, description: 'finalEquity^(252/N) − 1' }) annualReturn!: number | null;
  @Field(() => Float, { nullable: true, description: 'Sample sd of daily returns × √252' }) volatility!: number | null;
  @Field(() => Float, { nullable: true, description: 'Mean / sample sd of daily returns × √252' }) sharpe!: number | null;
  @Field(() => Float, { description: 'Max of 1 − equity_t / running max' }) maxDrawdown!: number;
  @Field(() => Float, { nullable: true, description: 'Share of symbol-days held with position × return > 0' }) hitRate!: number | null;
  @Field(() => Float, { description: 'Mean daily Σ|Δweight|' }) turnover!: number;
  @Field(() => Float, { description: 'Σ costBps/10 000 × daily turnover' }) costsPaid!: number;
  @Field(() => Float, { description: 'Mean share of eligible symbols held' }) exposure!: number;
  @Field(() => [MetricEstimate], {
    description:
      'annualReturn, volatility, sharpe, maxDrawdown, hitRate (and on `metrics`, excessAnnualReturn = annualReturn − benchmark annualReturn on the same resampled days) with intervals, by the calendar-block bootstrap in `Backtest.estimation`; empty (see `Backtest.estimatesNote`) when they cannot be made',
  })
  estimates!: MetricEstimate[];
}

@ObjectType({ description: 'One decision day: the return realized to the next trading day.', simpleResolvers: true })
export class BacktestPoint {
  @Field(() => DateTimeISOResolver) time!: Date;
  @Field(() => Float) dailyReturn!: number;
  @Field(() => Float) equity!: number;
  @Field(() => Float) drawdown!: number;
  @Field(() => Float) benchmarkReturn!: number;
  @Field(() => Float) benchmarkEquity!: number;
  @Field(() => Float) benchmarkDrawdown!: number;
  @Field(() => Int) positions!: number;
  @Field(() => Float) turnover!: number;
}

@ObjectType({ description: 'A model version replayed over stored bars, against holding the same symbols equal-weight.' })
export class Backtest {
  @Field(() => String) strategy!: string;
  @Field(() => String) version!: string;
  @Field(() => RuleEnum) rule!: Rule;
  @Field(() => Float) costBps!: number;
  @Field(() => Float) quantile!: number;
  @Field(() => DateTimeISOResolver) from!: Date;
  @Field(() => DateTimeISOResolver) to!: Date;
  @Field(() => [String]) symbols!: string[];
  @Field(() => Int, { description: 'Symbol-days predicted' }) predictions!: number;
  @Field(() => BacktestMetrics) metrics!: BacktestMetrics;
  @Field(() => BacktestMetrics, { description: 'The same symbols held equal-weight, rebalanced daily, no costs' })
  benchmark!: BacktestMetrics;
  @Field(() => [BacktestPoint]) curve!: BacktestPoint[];
  @Field(() => [String], { description: 'E.g. the version was fitted on part of [from, to]' }) warnings!: string[];
  @Field(() => EstimationMethod, {
    nullable: true,
    description: 'How the `estimates` of `metrics` and `benchmark` were made; null when there are none',
  })
  estimation!: EstimationMethod | null;
  @Field(() => String, { nullable: true, description: 'Why `estimates` are empty or lack a figure; null when nothing is missing' })
  estimatesNote!: string | null;
  @Field(() => String) definitions!: string;
}
