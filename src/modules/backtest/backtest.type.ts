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
  @Field(() => Float, { description: 'Equity after the last day, starting from 1' }) finalEquity!: number;
  @Field(() => Float, { description: 'finalEquity − 1' }) totalReturn!: number;
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
  @Field(() => DateTimeISOResolver, { description: 'The decision day (its bar’s time): positions are taken at its close' }) time!: Date;
  @Field(() => Float, { description: 'Return of the positions to the next trading day, after costs' }) dailyReturn!: number;
  @Field(() => Float, { description: 'Equity after this day, starting from 1' }) equity!: number;
  @Field(() => Float, { description: '1 − equity / running max of equity' }) drawdown!: number;
  @Field(() => Float, { description: 'The benchmark’s return the same day' }) benchmarkReturn!: number;
  @Field(() => Float, { description: 'The benchmark’s equity after this day, starting from 1' }) benchmarkEquity!: number;
  @Field(() => Float, { description: 'The benchmark’s drawdown after this day' }) benchmarkDrawdown!: number;
  @Field(() => Int, { description: 'Symbols held long or short this day' }) positions!: number;
  @Field(() => Float, { description: 'Σ|Δweight| this day (the first day from cash)' }) turnover!: number;
}

@ObjectType({ description: 'A model version replayed over stored bars, against holding the same symbols equal-weight.' })
export class Backtest {
  @Field(() => String, { description: 'The strategy replayed' }) strategy!: string;
  @Field(() => String, { description: 'The model version replayed' }) version!: string;
  @Field(() => RuleEnum, { description: 'How predictions became positions' }) rule!: Rule;
  @Field(() => Float, { description: 'Cost per unit of turnover, in basis points' }) costBps!: number;
  @Field(() => Float, { description: 'Share held long and short each under TOP_BOTTOM_QUANTILE (unused by the other rules)' })
  quantile!: number;
  @Field(() => DateTimeISOResolver, { description: 'First decision day asked (inclusive)' }) from!: Date;
  @Field(() => DateTimeISOResolver, { description: 'Last bar used (inclusive)' }) to!: Date;
  @Field(() => [String], { description: 'The universe traded' }) symbols!: string[];
  @Field(() => Int, { description: 'Symbol-days predicted' }) predictions!: number;
  @Field(() => BacktestMetrics, { description: 'Performance of the rule’s positions' }) metrics!: BacktestMetrics;
  @Field(() => BacktestMetrics, { description: 'The same symbols held equal-weight, rebalanced daily, no costs' })
  benchmark!: BacktestMetrics;
  @Field(() => [BacktestPoint], { description: 'Every decision day, oldest first' }) curve!: BacktestPoint[];
  @Field(() => [String], { description: 'E.g. the version was fitted on part of [from, to]' }) warnings!: string[];
  @Field(() => EstimationMethod, {
    nullable: true,
    description: 'How the `estimates` of `metrics` and `benchmark` were made; null when there are none',
  })
  estimation!: EstimationMethod | null;
  @Field(() => String, { nullable: true, description: 'Why `estimates` are empty or lack a figure; null when nothing is missing' })
  estimatesNote!: string | null;
  @Field(() => String, { description: 'How every metric and point is computed, in words and formulas' }) definitions!: string;
}
