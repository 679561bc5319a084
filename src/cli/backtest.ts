import { writeFile } from 'node:fs/promises';
import { GraphQLError } from 'graphql';
import { cliConfig, type CliIo, parseCli, runAsCommand, USAGE_ERROR } from './args.js';
import { openCliDatabase } from './database-job.js';
import { alignedRows, liveBar } from './terminal.js';
import { migrateToLatest } from '../infra/db/index.js';
import { createOnnxEngine } from '../infra/inference/onnx.js';
import { createLogger } from '../infra/logger/logger.js';
import { BarsRepository } from '../infra/market-data/bars-repository.js';
import { createBarsStoreProvider } from '../infra/market-data/bars-store.js';
import { SYMBOL_PATTERN } from '../infra/market-data/market-data.js';
import { BACKTEST_DEFINITIONS, RULES, createBacktestModule, type BacktestResult, type Rule } from '../modules/backtest/index.js';
import { ModelRegistry } from '../modules/models/index.js';
import { CLIENT_ERROR_CODES } from '../shared/errors.js';

/**
 * `npm run backtest -- --from 2019-01-01 --to 2019-12-31 [--symbols AAPL,MSFT | all] …`: replays a
 * model version over the bars stored in the configured database (backtest module, definitions in
 * backtest.simulate.ts). Progress on stderr, the summary table on stdout, the daily curve to --out.
 * Exit 0 on success, 1 on a configuration or database failure, 2 on a bad argument.
 */
const USAGE = `usage: npm run backtest -- --from YYYY-MM-DD --to YYYY-MM-DD [options]

Replays a model version over stored bars (no look-ahead) and compares it with holding the same
symbols equal-weight, rebalanced daily, without costs.

  --from DATE          first decision day (inclusive)
  --to DATE            last bar used (inclusive)
  --symbols LIST       comma-separated symbols, or "all" stored ones (default: all)
  --strategy NAME      default direction-1d
  --version VERSION    default: the newest version in MODELS_DIR
  --rule RULE          ${RULES.join(' | ')} (default LONG_SHORT)
  --cost-bps N         cost per unit of turnover in basis points (default 0)
  --quantile Q         TOP_BOTTOM_QUANTILE share long and short each (default 0.2)
  --out FILE           write the daily curve and the metrics: FILE.csv (curve) or FILE.json (everything)
  -h, --help           this text
`;

const OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string' },
  symbols: { type: 'string', default: 'all' },
  strategy: { type: 'string', default: 'direction-1d' },
  version: { type: 'string' },
  rule: { type: 'string', default: 'LONG_SHORT' },
  'cost-bps': { type: 'string', default: '0' },
  quantile: { type: 'string', default: '0.2' },
  out: { type: 'string' },
} as const;

const DATE = /^\d{4}-\d{2}-\d{2}$/;

function usageError(io: CliIo, message: string): number {
  io.err(`backtest: ${message}\n\n${USAGE}`);
  return USAGE_ERROR;
}

export async function main(io: CliIo): Promise<number> {
  const parsed = parseCli({ name: 'backtest', usage: USAGE, options: OPTIONS }, io);
  if ('exitCode' in parsed) return parsed.exitCode;
  const v = parsed.values;
  if (!v.from || !DATE.test(v.from) || Number.isNaN(Date.parse(v.from))) return usageError(io, '--from YYYY-MM-DD is required');
  if (!v.to || !DATE.test(v.to) || Number.isNaN(Date.parse(v.to))) return usageError(io, '--to YYYY-MM-DD is required');
  if (!(RULES as readonly string[]).includes(v.rule)) return usageError(io, `--rule must be one of ${RULES.join(', ')}`);
  const costBps = Number(v['cost-bps']);
  const quantile = Number(v.quantile);
  if (!Number.isFinite(costBps)) return usageError(io, '--cost-bps must be a number');
  if (!Number.isFinite(quantile)) return usageError(io, '--quantile must be a number');
  if (v.out !== undefined && !/\.(csv|json)$/.test(v.out)) return usageError(io, '--out must name a .csv or .json file');
  const named = v.symbols === 'all' ? undefined : v.symbols.split(',').map((s) => s.trim().toUpperCase());
  const bad = named?.filter((s) => !SYMBOL_PATTERN.test(s)) ?? [];
  if (bad.length) return usageError(io, `not a symbol: ${bad.join(' ')}`);

  const config = cliConfig(io);
  if (!config) return 1;
  const logger = createLogger({ ...config.log, level: 'warn' });
  const database = await openCliDatabase(config, logger);
  const registry = await ModelRegistry.load({
    directory: config.modelsDir,
    engine: createOnnxEngine(),
    batching: config.inference,
    logger,
  });
  const bar = process.stderr.isTTY ? liveBar<{ stage: string }>('{bar} {percentage}% | {stage} {value}/{total}') : undefined;
  try {
    await migrateToLatest(database.db);
    const repository = new BarsRepository(database.db);
    const symbols = named ?? (await repository.listSymbols());
    if (symbols.length === 0) return usageError(io, 'no bars stored: import some first (npm run import)');
    const { service } = createBacktestModule({ market: createBarsStoreProvider(repository), registry });
    let result: BacktestResult;
    try {
      result = await service.run(
        {
          strategy: v.strategy,
          version: v.version,
          symbols,
          from: new Date(`${v.from}T00:00:00.000Z`),
          to: new Date(`${v.to}T00:00:00.000Z`),
          rule: v.rule as Rule,
          costBps,
          quantile,
        },
        (p) => (bar ? bar.update(p.done, p.total, { stage: p.stage === 'features' ? 'symbols' : 'rows scored' }) : undefined),
      );
    } catch (error) {
      bar?.stop();
      const code = error instanceof GraphQLError ? error.extensions.code : undefined;
      if (typeof code === 'string' && CLIENT_ERROR_CODES.has(code) && code !== 'UNAVAILABLE')
        return usageError(io, (error as Error).message);
      throw error;
    }
    bar?.stop();
    io.out(summary(result));
    if (v.out) {
      await writeFile(
        v.out,
        v.out.endsWith('.csv') ? curveCsv(result) : JSON.stringify({ ...result, definitions: BACKTEST_DEFINITIONS }, null, 2),
      );
      io.out(`wrote ${v.out}\n`);
    }
    return 0;
  } finally {
    await registry.close();
    await database.close();
  }
}

function summary(r: BacktestResult): string {
  const pct = (x: number | null) => (x === null ? '—' : `${(100 * x).toFixed(2)}%`);
  const num = (x: number | null) => (x === null ? '—' : x.toFixed(3));
  // The figure, then its interval where the bootstrap gave one: "12.34% [3.10%, 20.05%]".
  const withInterval = (side: 'strategy' | 'benchmark', metric: string, value: number | null, format: (x: number | null) => string) => {
    const e = r.estimates[side].find((x) => x.metric === metric);
    return e ? `${format(value)} [${format(e.low)}, ${format(e.high)}]` : format(value);
  };
  const both = (
    label: string,
    metric: 'annualReturn' | 'volatility' | 'sharpe' | 'maxDrawdown' | 'hitRate',
    format: (x: number | null) => string,
  ) => [
    label,
    withInterval('strategy', metric, r.strategy[metric], format),
    withInterval('benchmark', metric, r.benchmark[metric], format),
  ];
  const excess = r.estimates.strategy.find((e) => e.metric === 'excessAnnualReturn');
  const rows = [
    ['', 'strategy', 'benchmark'],
    ['total return', pct(r.strategy.totalReturn), pct(r.benchmark.totalReturn)],
    both('annual return', 'annualReturn', pct),
    ...(excess ? [['excess annual return', `${pct(excess.value)} [${pct(excess.low)}, ${pct(excess.high)}]`, '']] : []),
    both('volatility', 'volatility', pct),
    both('sharpe', 'sharpe', num),
    both('max drawdown', 'maxDrawdown', pct),
    both('hit rate', 'hitRate', pct),
    ['turnover/day', num(r.strategy.turnover), num(r.benchmark.turnover)],
    ['costs paid', pct(r.strategy.costsPaid), pct(r.benchmark.costsPaid)],
    ['exposure', pct(r.strategy.exposure), pct(r.benchmark.exposure)],
    ['days', String(r.strategy.days), String(r.benchmark.days)],
  ];
  const head =
    `${r.strategyName}@${r.version} ${r.rule} cost ${r.costBps} bps, ${r.symbols.length} symbols, ` +
    `${r.from.toISOString().slice(0, 10)}..${r.to.toISOString().slice(0, 10)}: ${r.predictions} predictions in ` +
    `${r.inferenceRuns} inference run(s) (${r.inferenceMs.toFixed(0)} ms), ${(r.elapsedMs / 1000).toFixed(2)} s in all`;
  const { estimation } = r.estimates;
  const method = estimation
    ? `[low, high]: ${estimation.level * 100}% intervals, ${estimation.method}; ${estimation.blocks} months, ${estimation.replicates} replicates, seed ${estimation.seed}`
    : `no intervals: ${r.estimates.note}`;
  const note = estimation && r.estimates.note ? [r.estimates.note] : [];
  return [head, '', ...alignedRows(rows), '', method, ...note, ...r.warnings.map((w) => `warning: ${w}`), ''].join('\n');
}

function curveCsv(r: BacktestResult): string {
  const header = 'time,daily_return,equity,drawdown,benchmark_return,benchmark_equity,benchmark_drawdown,positions,turnover';
  const lines = r.curve.map((p) =>
    [
      p.time.toISOString().slice(0, 10),
      p.dailyReturn,
      p.equity,
      p.drawdown,
      p.benchmarkReturn,
      p.benchmarkEquity,
      p.benchmarkDrawdown,
      p.positions,
      p.turnover,
    ].join(','),
  );
  return `${[header, ...lines].join('\n')}\n`;
}

await runAsCommand(import.meta.url, 'backtest', main);
