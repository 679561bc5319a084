import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { cliConfig, type CliIo, parseCli, runAsCommand } from './args.js';
import { openCliDatabase } from './database-job.js';
import { migrateToLatest } from '../infra/db/index.js';
import { BarsRepository } from '../infra/market-data/bars-repository.js';
import { parseBarsCsv } from '../infra/market-data/csv.js';
import { findCsvFiles } from '../infra/market-data/importer.js';
import type { Bar } from '../infra/market-data/market-data.js';
import { VERSION_PATTERN } from '../domain/names.js';
import { STRATEGIES, findStrategy } from '../domain/strategies.js';
import { MODEL_FAMILIES, type ModelFamily } from '../training/train.js';
import { trainVersion, writeVersion } from '../training/version.js';

const USAGE = `usage: npm run train -- --strategy <${STRATEGIES.map((s) => s.name).join('|')}> --data <csv files or dirs…|db> [--family ${MODEL_FAMILIES.join('|')}] [--out models] [--version v1] [--created-at <ISO time>]

  --data db   trains on the bars stored in the configured database (DATABASE_URL, or PGlite in DATA_DIR)
  --family    logistic (default): L2 logistic regression; gbt: gradient-boosted trees (ai.onnx.ml TreeEnsembleRegressor)
  --out       models directory to write <strategy>/<version>/{model.onnx,manifest.json} into (default: models)
  --version   version name (default: v<yyyymmdd>)
  --created-at  the manifest's createdAt (default: now); give the committed one to regenerate a model bit for bit`;

/**
 * `npm run train`: walk-forward training of a strategy's model from CSV files or the bars store, written
 * as ONNX + manifest (offline metrics beside the base rate, calibration, intervals, provenance).
 */
export async function main(io: CliIo): Promise<number> {
  const parsed = parseCli(
    {
      name: 'train',
      usage: USAGE,
      options: {
        strategy: { type: 'string' },
        data: { type: 'string', multiple: true },
        out: { type: 'string' },
        version: { type: 'string' },
        family: { type: 'string' },
        'created-at': { type: 'string' },
      },
      allowPositionals: true,
    },
    io,
  );
  if ('exitCode' in parsed) return parsed.exitCode;
  const { values, positionals } = parsed;
  const strategy = values.strategy ? findStrategy(values.strategy) : undefined;
  const dataArgs = [...(values.data ?? []), ...positionals];
  if (!strategy || dataArgs.length === 0) {
    io.err(`${values.strategy && !strategy ? `unknown strategy "${values.strategy}"\n` : ''}${USAGE}\n`);
    return 1;
  }
  const family = (values.family ?? 'logistic') as ModelFamily;
  if (!MODEL_FAMILIES.includes(family)) {
    io.err(`--family must be one of ${MODEL_FAMILIES.join(', ')} (got "${values.family}")\n`);
    return 1;
  }
  const version = values.version ?? `v${new Date().toISOString().slice(0, 10).replaceAll('-', '')}`;
  if (!VERSION_PATTERN.test(version)) {
    io.err(`--version must be 1-64 of A-Z a-z 0-9 . _ - (got "${version}")\n`);
    return 1;
  }
  const createdAt = values['created-at'] === undefined ? new Date() : new Date(values['created-at']);
  if (Number.isNaN(createdAt.getTime())) {
    io.err(`--created-at must be an ISO date-time, e.g. 2026-11-21T01:01:27.270Z (got "${values['created-at']}")\n`);
    return 1;
  }
  const started = performance.now();

  const data = dataArgs.length === 1 && dataArgs[0] === 'db' ? await loadFromDatabase(io) : await loadFromCsv(io, dataArgs);
  if (!data) return 1;
  const barCount = [...data.bars.values()].reduce((n, list) => n + list.length, 0);
  io.err(`loaded ${barCount.toLocaleString('en-US')} bars of ${data.bars.size} symbols from ${data.source}\n`);

  const trained = trainVersion({
    strategy,
    version,
    family,
    createdAt,
    bars: data.bars,
    source: data.source,
    dataSha256: data.sha256,
    onStep: (step) => io.err(`${strategy.name}: ${step}\n`),
  });
  const { result } = trained;
  const directory = path.resolve(values.out ?? 'models', strategy.name, version);
  await writeVersion(directory, trained);

  const m = result.offlineMetrics;
  const pct = (x: number | null) => (x === null ? '—' : `${(x * 100).toFixed(2)}%`);
  io.out(
    [
      '',
      `${strategy.name} ${version} → ${path.relative(process.cwd(), directory)}`,
      `  training    ${result.training.train.from} … ${result.training.train.to}   ${result.training.train.samples.toLocaleString('en-US')} samples (${
        result.family === 'logistic'
          ? `L2 ${result.l2}`
          : `${result.model.trees.length} trees of depth ≤ ${result.model.options.maxDepth}, learning rate ${result.model.options.learningRate}`
      })`,
      `  validation  ${result.training.validation.from} … ${result.training.validation.to}   ${result.training.validation.samples.toLocaleString('en-US')} samples`,
      `  held-out    ${m.period.from} … ${m.period.to}   ${m.sampleSize.toLocaleString('en-US')} samples, base rate ${pct(m.baseRate)}`,
      '',
      `  metric        model      base rate`,
      `  accuracy      ${pct(m.accuracy).padEnd(10)} ${pct(m.baselineAccuracy)}`,
      `  Brier         ${m.brier.toFixed(5).padEnd(10)} ${m.baselineBrier.toFixed(5)}`,
      `  log loss      ${m.logLoss.toFixed(5).padEnd(10)} ${m.baselineLogLoss.toFixed(5)}`,
      `  ECE           ${m.ece.toFixed(4)} (before calibration ${m.eceBeforeCalibration.toFixed(4)})`,
      `  95% interval  covers ${pct(m.intervalCoverage['0.95'] ?? null)} of held-out outcomes (${result.interval.method}, scale ${JSON.stringify(result.interval.scale.weights)})`,
      ...(m.intervalCoverageByYear ?? []).map((c) => `    ${c.period}        ${pct(c.coverage)} of ${c.samples}`),
      `    worst month ${[...(m.intervalCoverageByMonth ?? [])]
        .sort((a, b) => a.coverage - b.coverage)
        .slice(0, 3)
        .map((c) => `${c.period} ${pct(c.coverage)}`)
        .join(', ')}`,
      ...(m.intervalWidth
        ? [
            `    mean width  ${pct(m.intervalWidth.mean)} of the close (split-conformal on vol_20d: ${pct(m.intervalWidth.splitConformalMean)})`,
          ]
        : []),
      `  verdict       ${m.verdict}`,
      ...(m.estimation
        ? [
            '',
            `  ${Math.round(m.estimation.level * 100)}% intervals (${m.estimation.replicates} replicates, ${m.estimation.blocks} month blocks, seed ${m.estimation.seed}): ${m.estimation.verdict ?? 'no verdict'}`,
            ...(m.estimates ?? []).map(
              (e) =>
                `  ${e.metric.padEnd(30)} ${e.value.toFixed(5)}  [${e.low.toFixed(5)}, ${e.high.toFixed(5)}]${e.widened ? ' (widened to the value)' : ''}`,
            ),
            '',
          ]
        : []),
      `  signal        BUY above ${result.signal.buyAbove.toFixed(4)}, SELL below ${result.signal.sellBelow.toFixed(4)}`,
      `  took ${((performance.now() - started) / 1000).toFixed(1)} s`,
      '',
    ].join('\n'),
  );
  return 0;
}

interface TrainingData {
  bars: Map<string, Bar[]>;
  source: string;
  sha256?: string;
}

async function loadFromCsv(io: CliIo, paths: string[]): Promise<TrainingData | undefined> {
  const files = await findCsvFiles(paths);
  const bars = new Map<string, Bar[]>();
  const hash = createHash('sha256');
  let rejected = 0;
  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar({ format: 'reading {bar} {value}/{total} files {file}' }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(files.length, 0, { file: '' });
  for (const [i, file] of files.entries()) {
    const text = await readFile(file, 'utf8');
    hash.update(path.basename(file)).update(text);
    const parsed = parseBarsCsv(text, { file });
    if (!parsed.ok) {
      io.err(`skipping ${file}: ${parsed.reason}\n`);
    } else {
      rejected += parsed.rejected.length;
      bars.set(parsed.symbol, parsed.bars);
    }
    if (bar) bar.update(i + 1, { file: path.basename(file) });
    else if ((i + 1) % 10 === 0 || i + 1 === files.length) io.err(`read ${i + 1}/${files.length} files\n`);
  }
  bar?.stop();
  if (rejected) io.err(`${rejected} rows rejected by validation and left out (run \`npm run import\` on the same files to see them)\n`);
  if (bars.size === 0) {
    io.err('no usable bars in the given files\n');
    return undefined;
  }
  return { bars, source: `CSV: ${paths.join(', ')} (${files.length} files)`, sha256: hash.digest('hex') };
}

async function loadFromDatabase(io: CliIo): Promise<TrainingData | undefined> {
  const config = cliConfig(io);
  if (!config) return undefined;
  const database = await openCliDatabase(config);
  try {
    await migrateToLatest(database.db);
    const repository = new BarsRepository(database.db);
    const symbols = await repository.listSymbols();
    if (symbols.length === 0) {
      io.err('the database holds no bars: import some first (npm run import -- <csv files>)\n');
      return undefined;
    }
    const bars = await repository.fetchBars(symbols, { lookback: 1_000_000 });
    return { bars, source: `bars store (${database.engine})` };
  } finally {
    await database.close();
  }
}

await runAsCommand(import.meta.url, 'train', main);
