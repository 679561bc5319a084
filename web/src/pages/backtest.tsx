import { useQuery } from '@urql/preact';
import type { ChartConfiguration } from 'chart.js';
import { useMemo, useState } from 'preact/hooks';
import { ChartCanvas } from '../components/chart.js';
import { ProblemBox } from '../components/problem.js';
import { fmt } from '../format.js';
import {
  BacktestChoicesDocument,
  BacktestRunDocument,
  type BacktestFiguresFragment,
  type BacktestRule,
  type BacktestRunQuery,
  type BacktestRunQueryVariables,
} from '../generated/graphql.js';

const STRATEGY = '#3b5bdb';
const BENCHMARK = '#868e96';
const RULES: BacktestRule[] = ['LONG_SHORT', 'LONG_ONLY', 'TOP_BOTTOM_QUANTILE'];
const DATE = /^\d{4}-\d{2}-\d{2}$/;

interface Form {
  strategy: string;
  version: string;
  symbols: string;
  from: string;
  to: string;
  rule: BacktestRule;
  costBps: string;
}

/** The form's starting point: a year the committed models did not see, five liquid names, no costs (the API's default). */
const INITIAL: Form = {
  strategy: 'direction-1d',
  version: '',
  symbols: 'AAPL, MSFT, JPM, XOM, JNJ',
  from: '2019-01-01',
  to: '2019-12-31',
  rule: 'LONG_SHORT',
  costBps: '0',
};

/** The form as query variables, or what is wrong with it (the gateway checks the rest and says so). */
function variablesOf(form: Form): BacktestRunQueryVariables | string {
  const symbols = form.symbols
    .split(/[\s,]+/)
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean);
  if (symbols.length === 0) return 'Name at least one symbol.';
  if (!DATE.test(form.from) || !DATE.test(form.to)) return 'From and to are dates (YYYY-MM-DD).';
  const costBps = Number(form.costBps);
  if (form.costBps.trim() === '' || !Number.isFinite(costBps)) return 'Cost is a number of basis points.';
  return {
    strategy: form.strategy,
    ...(form.version ? { version: form.version } : {}),
    symbols,
    from: `${form.from}T00:00:00.000Z`,
    to: `${form.to}T00:00:00.000Z`,
    rule: form.rule,
    costBps,
  };
}

/** Backtest: replay a model version over stored bars and compare it with holding the same symbols equal-weight. */
export function BacktestPage() {
  const [form, setForm] = useState<Form>(INITIAL);
  const [submitted, setSubmitted] = useState<BacktestRunQueryVariables | null>(null);
  const [invalid, setInvalid] = useState<string | null>(null);
  const [choices] = useQuery({ query: BacktestChoicesDocument });
  // network-only: a backtest over stored bars is cheap to ask again and the bars may have been re-imported.
  const [result] = useQuery({
    query: BacktestRunDocument,
    variables: submitted ?? INITIAL_VARIABLES,
    pause: !submitted,
    requestPolicy: 'network-only',
  });
  const strategies = choices.data?.strategies ?? [];
  const versions = strategies.find((s) => s.name === form.strategy)?.versions ?? [];
  const set = (patch: Partial<Form>) => setForm((f) => ({ ...f, ...patch }));
  const backtest = submitted ? result.data?.backtest : undefined;

  return (
    <section class="page">
      <header class="page-head">
        <div>
          <h1>Backtest</h1>
          <p class="lede">
            A model version replayed over stored bars, each day from the bars up to that day only, against the same symbols held
            equal-weight (rebalanced daily, no costs).
          </p>
        </div>
      </header>
      <form
        class="card backtest-form"
        data-testid="backtest-form"
        onSubmit={(e) => {
          e.preventDefault();
          const v = variablesOf(form);
          if (typeof v === 'string') {
            setInvalid(v);
            return;
          }
          setInvalid(null);
          setSubmitted(v);
        }}
      >
        <label>
          Strategy
          <select name="strategy" value={form.strategy} onChange={(e) => set({ strategy: e.currentTarget.value, version: '' })}>
            {(strategies.length ? strategies.map((s) => s.name) : [form.strategy]).map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Version
          <select name="version" value={form.version} onChange={(e) => set({ version: e.currentTarget.value })}>
            <option value="">active</option>
            {versions.map((v) => (
              <option key={v.version} value={v.version}>
                {v.version}
              </option>
            ))}
          </select>
        </label>
        <label class="wide">
          Symbols
          <input name="symbols" value={form.symbols} onInput={(e) => set({ symbols: e.currentTarget.value })} />
        </label>
        <label>
          From
          <input name="from" type="date" value={form.from} onInput={(e) => set({ from: e.currentTarget.value })} />
        </label>
        <label>
          To
          <input name="to" type="date" value={form.to} onInput={(e) => set({ to: e.currentTarget.value })} />
        </label>
        <label>
          Rule
          <select name="rule" value={form.rule} onChange={(e) => set({ rule: e.currentTarget.value as BacktestRule })}>
            {RULES.map((rule) => (
              <option key={rule} value={rule}>
                {rule}
              </option>
            ))}
          </select>
        </label>
        <label>
          Cost (bps)
          <input
            name="costBps"
            type="number"
            min="0"
            max="1000"
            step="any"
            value={form.costBps}
            onInput={(e) => set({ costBps: e.currentTarget.value })}
          />
        </label>
        <button type="submit" disabled={result.fetching}>
          {result.fetching ? 'Running…' : 'Run backtest'}
        </button>
      </form>
      {invalid && <ProblemBox problem={{ code: 'BAD_USER_INPUT', message: invalid, aboutKey: false }} />}
      {submitted && result.error && <ProblemBox error={result.error} />}
      {result.fetching && <p class="loading">Running the backtest…</p>}
      {backtest && !result.fetching && <BacktestResult backtest={backtest} />}
    </section>
  );
}

/** Never sent: `useQuery` needs variables while paused. */
const INITIAL_VARIABLES = variablesOf(INITIAL) as BacktestRunQueryVariables;

function BacktestResult({ backtest }: { backtest: BacktestRunQuery['backtest'] }) {
  const { estimation } = backtest;
  return (
    <div data-testid="backtest-result" data-version={backtest.version}>
      {backtest.warnings.map((w) => (
        <div key={w} class="banner warn" role="status" data-testid="backtest-warning">
          {w}
        </div>
      ))}
      <p class="muted">
        {backtest.strategy}@{backtest.version} · {backtest.rule} · cost {backtest.costBps} bps · {backtest.symbols.length} symbols ·{' '}
        {backtest.from.slice(0, 10)}..{backtest.to.slice(0, 10)} · {backtest.metrics.days} days · {fmt.compact(backtest.predictions)}{' '}
        predictions
      </p>
      <div class="grid two">
        <div class="card">
          <div class="card-head">
            <h3>Equity</h3>
            <span class="muted small">starts at 1</span>
          </div>
          <CurveChart curve={backtest.curve} which="equity" />
        </div>
        <div class="card">
          <div class="card-head">
            <h3>Drawdown</h3>
            <span class="muted small">1 − equity / running max</span>
          </div>
          <CurveChart curve={backtest.curve} which="drawdown" />
        </div>
      </div>
      <div class="card">
        <div class="card-head">
          <h3>Figures</h3>
          <span class="muted small" data-testid="estimation">
            {estimation
              ? `[low, high]: ${fmt.percent(estimation.level)} intervals, month-block bootstrap (${estimation.blocks} months, ${estimation.replicates} replicates, seed ${estimation.seed})`
              : `no intervals: ${backtest.estimatesNote ?? 'none given'}`}
          </span>
        </div>
        <FiguresTable strategy={backtest.metrics} benchmark={backtest.benchmark} />
        {estimation && backtest.estimatesNote && <p class="muted small">{backtest.estimatesNote}</p>}
        <details class="muted small">
          <summary>Definitions</summary>
          <p>{backtest.definitions}</p>
          {estimation && <p>{estimation.method}</p>}
        </details>
      </div>
    </div>
  );
}

type Figure = Exclude<keyof BacktestFiguresFragment, 'estimates' | '__typename'> | 'excessAnnualReturn';

const FIGURES: Array<{ key: Figure; label: string; format: (v: number | null | undefined) => string; strategyOnly?: boolean }> = [
  { key: 'annualReturn', label: 'Annual return', format: fmt.signedPercent },
  { key: 'excessAnnualReturn', label: 'Excess annual return', format: fmt.signedPercent, strategyOnly: true },
  { key: 'totalReturn', label: 'Total return', format: fmt.signedPercent },
  { key: 'volatility', label: 'Volatility', format: fmt.percent },
  { key: 'sharpe', label: 'Sharpe', format: fmt.signedDecimal },
  { key: 'maxDrawdown', label: 'Max drawdown', format: fmt.percent },
  { key: 'hitRate', label: 'Hit rate', format: fmt.percent },
  { key: 'turnover', label: 'Turnover / day', format: fmt.decimal },
  { key: 'costsPaid', label: 'Costs paid', format: fmt.percent },
  { key: 'exposure', label: 'Exposure', format: fmt.percent },
  { key: 'days', label: 'Days', format: (v) => (v === null || v === undefined ? '—' : String(v)) },
];

function FiguresTable({ strategy, benchmark }: { strategy: BacktestFiguresFragment; benchmark: BacktestFiguresFragment }) {
  const cell = (side: 'strategy' | 'benchmark', m: BacktestFiguresFragment, row: (typeof FIGURES)[number]) => {
    const estimate = m.estimates.find((e) => e.metric === row.key);
    const value = row.key === 'excessAnnualReturn' ? (estimate?.value ?? null) : (m[row.key] as number | null);
    return (
      <td
        class="num"
        data-side={side}
        data-metric={row.key}
        data-value={value === null ? '' : String(value)}
        data-low={estimate ? String(estimate.low) : undefined}
        data-high={estimate ? String(estimate.high) : undefined}
      >
        <span class="value">{row.format(value)}</span>
        {estimate && (
          <span
            class="interval muted small"
            title={estimate.widened ? 'the percentile interval missed the value and was widened to it' : undefined}
          >
            {' '}
            [{row.format(estimate.low)}, {row.format(estimate.high)}]{estimate.widened ? '*' : ''}
          </span>
        )}
      </td>
    );
  };
  return (
    <table class="metrics" data-testid="backtest-figures">
      <thead>
        <tr>
          <th />
          <th class="num">Strategy</th>
          <th class="num">Benchmark</th>
        </tr>
      </thead>
      <tbody>
        {FIGURES.map((row) => (
          <tr key={row.key}>
            <th scope="row">{row.label}</th>
            {cell('strategy', strategy, row)}
            {row.strategyOnly ? <td class="num muted">—</td> : cell('benchmark', benchmark, row)}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function CurveChart({ curve, which }: { curve: BacktestRunQuery['backtest']['curve']; which: 'equity' | 'drawdown' }) {
  const config = useMemo<ChartConfiguration>(() => {
    const labels = curve.map((p) => p.time.slice(0, 10));
    const strategy = curve.map((p) => (which === 'equity' ? p.equity : -p.drawdown));
    const benchmark = curve.map((p) => (which === 'equity' ? p.benchmarkEquity : -p.benchmarkDrawdown));
    const line = (label: string, data: number[], color: string) => ({
      label,
      data,
      borderColor: color,
      // Translucent fill, so the benchmark's drawdown shows through the strategy's.
      backgroundColor: which === 'drawdown' ? `${color}40` : color,
      borderWidth: 1.5,
      pointRadius: 0,
      fill: which === 'drawdown' ? ('origin' as const) : false,
    });
    return {
      type: 'line',
      data: { labels, datasets: [line('Strategy', strategy, STRATEGY), line('Benchmark (equal weight)', benchmark, BENCHMARK)] },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: 'index', intersect: false },
        scales: {
          x: { ticks: { maxTicksLimit: 8 } },
          y: { ticks: { callback: (v) => (which === 'equity' ? fmt.decimal(Number(v)) : fmt.percent(Number(v))) } },
        },
        plugins: { legend: { labels: { boxWidth: 12 } } },
      },
    };
  }, [curve, which]);
  return <ChartCanvas config={config} label={`backtest ${which}`} height={260} />;
}
