import { readdirSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseCli, processIo } from '../src/cli/args.js';
import { FEATURE_WINDOW } from '../src/domain/features.js';
import { createOnnxEngine } from '../src/infra/inference/onnx.js';
import { createLogger } from '../src/infra/logger/logger.js';
import { readBarsCsvFile } from '../src/infra/market-data/csv.js';
import type { Bar, MarketDataProvider } from '../src/infra/market-data/market-data.js';
import { BacktestService } from '../src/modules/backtest/index.js';
import { ModelRegistry } from '../src/modules/models/index.js';
import { scoreOneRun } from '../src/modules/predictions/index.js';

/**
 * `npm run bench:backtest`: a 3-year backtest of all 61 real symbols (target ≤ 10 s) beside the raw
 * inference time of the same rows (one run over the same number of feature vectors).
 *
 * Bars are served from memory (the CSVs, parsed once before timing), so the figure is the backtest's
 * own work (feature windows, inference, simulation) without the database read; the database read of
 * 61 × ~850 bars is one query (bars-repository.ts) and is not what this measures.
 */
const parsed = parseCli(
  {
    name: 'bench:backtest',
    usage:
      'usage: npm run bench:backtest\n\nTimes a 3-year backtest of every stored model over the real daily bars (SIBYL_MARKET_DATA) beside raw inference.\nTakes no arguments.\n',
  },
  processIo(),
);
if ('exitCode' in parsed) process.exit(parsed.exitCode);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dailyAdjusted = path.join(process.env.SIBYL_MARKET_DATA ?? path.resolve(root, '../shared/data/market'), 'daily_adjusted');
const FROM = new Date('2018-04-23T00:00:00.000Z');
const TO = new Date('2021-04-21T00:00:00.000Z');

const bars = new Map<string, Bar[]>();
for (const file of readdirSync(dailyAdjusted).filter((f) => f.endsWith('.csv'))) {
  const parsed = await readBarsCsvFile(path.join(dailyAdjusted, file));
  if (parsed.ok)
    bars.set(
      parsed.symbol,
      [...parsed.bars].sort((a, b) => a.time.getTime() - b.time.getTime()),
    );
}
const market: MarketDataProvider = {
  name: 'memory',
  async fetchBars(symbols, { lookback, until }) {
    const out = new Map<string, Bar[]>();
    for (const s of symbols) {
      const list = (bars.get(s) ?? []).filter((b) => !until || b.time <= until);
      if (list.length) out.set(s, list.slice(-lookback));
    }
    return out;
  },
  listSymbols: async () => [...bars.keys()].sort(),
};

const logger = createLogger({ level: 'silent', format: 'json' });
const registry = await ModelRegistry.load({
  directory: path.join(root, 'models'),
  engine: createOnnxEngine(),
  batching: { maxBatchSize: 256, maxQueueDelayMs: 0 },
  logger,
});
try {
  const service = new BacktestService({ market, registry });
  const symbols = [...bars.keys()].sort();
  const request = { strategy: 'direction-1d', symbols, from: FROM, to: TO, rule: 'LONG_SHORT' as const, costBps: 5 };
  await service.run({ ...request, to: new Date('2018-06-01T00:00:00.000Z') }); // warm-up: JIT and the ONNX session
  const times: number[] = [];
  let result = await service.run(request);
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    result = await service.run(request);
    times.push(performance.now() - started);
  }
  // The raw inference of the same number of rows: one run over random-but-finite vectors of the same width.
  const model = registry.active('direction-1d')!;
  const vectors = Array.from({ length: result.predictions }, (_, i) => Array.from({ length: 13 }, (_, j) => Math.sin(i + j) * 0.01));
  const raw: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    for (let start = 0; start < vectors.length; start += 16_384) await scoreOneRun(model, vectors.slice(start, start + 16_384));
    raw.push(performance.now() - started);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const rows = [
    ['what', 'median of 3', 'rows'],
    [
      `backtest ${symbols.length} symbols ${FROM.toISOString().slice(0, 10)}..${TO.toISOString().slice(0, 10)}`,
      `${(median(times) / 1000).toFixed(2)} s`,
      String(result.predictions),
    ],
    ['  of which inference (inside the backtest)', `${(result.inferenceMs / 1000).toFixed(3)} s`, `${result.inferenceRuns} runs`],
    ['raw inference of the same number of rows', `${(median(raw) / 1000).toFixed(3)} s`, String(result.predictions)],
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows)
    process.stdout.write(`${r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')}\n`);
  process.stdout.write(
    `target: ≤ 10 s → ${median(times) <= 10_000 ? 'met' : 'short'} (features need ${FEATURE_WINDOW} bars before from)\n`,
  );
} finally {
  await registry.close();
}
