/**
 * What the promotion policy's degradation checks read for a HEALTHY model on real data: the committed
 * versions' realized 95% interval coverage, ECE (10 equal-width bins, as modelMetrics computes it) and
 * largest input-feature PSI (20 equal-frequency bins of the same symbols' training-period rows, as
 * `drift` computes it), over every trailing window of the held-out period, so the documented defaults
 * (docs/decisions/promotion.md) can be checked against how often they would have fired on a model that
 * did nothing wrong.
 *
 *   node --import tsx tools/promotion-thresholds.ts <data dir> <models dir> [--days 90] [--symbols AAPL,MSFT,…]
 *
 * Offline, from the CSVs and the ONNX files (no database): the held-out period of each manifest, one
 * window per trading day stepped by 5 trading days, a window holding the rows whose asOf lies in the
 * `days` calendar days up to and including its end.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { applyPlatt } from '../src/domain/calibration.js';
import { histogramOf, psi } from '../src/domain/drift.js';
import { FEATURE_NAMES } from '../src/domain/features.js';
import { intervalQuantiles, intervalScale, scaleOfInterval, signedIntervalScore } from '../src/domain/intervals.js';
import { manifestSchema, type Manifest } from '../src/domain/manifest.js';
import { parseBarsCsv } from '../src/infra/market-data/csv.js';
import { findCsvFiles } from '../src/infra/market-data/importer.js';
import type { Bar } from '../src/infra/market-data/market-data.js';
import { buildSamples } from '../src/training/dataset.js';

const USAGE = 'usage: node --import tsx tools/promotion-thresholds.ts <data dir> <models dir> [--days 90] [--symbols A,B,…]\n';
const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const option = (name: string) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const value = args[i + 1];
  args.splice(i, 2);
  return value;
};
const days = Number(option('--days') ?? '90');
const symbolList = option('--symbols')?.split(',');
const [dataDir, modelsDir] = args;
if (!dataDir || !modelsDir || args.length !== 2 || !Number.isInteger(days) || days < 5 || args.some((a) => a.startsWith('-'))) {
  process.stderr.write(`promotion-thresholds: expected a data directory and a models directory\n\n${USAGE}`);
  process.exit(2);
}

const DAY = 86_400_000;
const bars = new Map<string, Bar[]>();
for (const file of await findCsvFiles([dataDir])) {
  const parsed = parseBarsCsv(await readFile(file, 'utf8'), { file });
  if (parsed.ok && (!symbolList || symbolList.includes(parsed.symbol))) bars.set(parsed.symbol, parsed.bars);
}

for (const strategy of ['direction-1d', 'direction-5d']) {
  const dir = path.join(modelsDir, strategy, 'v1');
  const manifest: Manifest = manifestSchema.parse(JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')));
  const samples = buildSamples(bars, manifest.horizonBars);
  const F = samples.featureCount;
  const heldOutFrom = Date.parse(`${manifest.offlineMetrics.period.from}T00:00:00Z`);
  const trainFrom = Date.parse(`${manifest.training.train.from}T00:00:00Z`);
  const trainTo = Date.parse(`${manifest.training.train.to}T00:00:00Z`);
  const rows: number[] = [];
  const reference: number[] = [];
  for (let r = 0; r < samples.length; r++) {
    const t = samples.time[r]!;
    if (t >= heldOutFrom) rows.push(r);
    else if (t >= trainFrom && t <= trainTo) reference.push(r);
  }
  rows.sort((a, b) => samples.time[a]! - samples.time[b]!);

  const session = await ort.InferenceSession.create(await readFile(path.join(dir, 'model.onnx')));
  const input = new Float32Array(rows.length * F);
  rows.forEach((r, i) => input.set(samples.x.subarray(r * F, (r + 1) * F), i * F));
  const out = await session.run({ [manifest.input.name]: new ort.Tensor('float32', input, [rows.length, F]) });
  await session.release();
  const p = Float64Array.from(out[manifest.output.name]!.data as Float32Array, (q) => applyPlatt(manifest.calibration, q));

  const [qLow, qHigh] = intervalQuantiles(manifest.interval, 0.95)!;
  const scale = scaleOfInterval(manifest.interval);
  const covered = rows.map((r) => {
    const s = signedIntervalScore(
      samples.forwardReturn[r]!,
      intervalScale(scale, samples.x.subarray(r * F, (r + 1) * F)),
      manifest.interval.center,
      manifest.horizonBars,
    );
    return s >= -qLow && s <= qHigh ? 1 : 0;
  });
  const column = (list: readonly number[], j: number) => Float64Array.from(list, (r) => samples.x[r * F + j]!);
  const histograms = FEATURE_NAMES.map((_, j) => histogramOf(column(reference, j)));
  // The probability's reference: the training-period rows scored by the same version, as `drift` derives it.
  const referenceInput = new Float32Array(reference.length * F);
  reference.forEach((r, i) => referenceInput.set(samples.x.subarray(r * F, (r + 1) * F), i * F));
  const referenceSession = await ort.InferenceSession.create(await readFile(path.join(dir, 'model.onnx')));
  const referenceOut = await referenceSession.run({
    [manifest.input.name]: new ort.Tensor('float32', referenceInput, [reference.length, F]),
  });
  await referenceSession.release();
  const probabilityHistogram = histogramOf(
    Float64Array.from(referenceOut[manifest.output.name]!.data as Float32Array, (q) => applyPlatt(manifest.calibration, q)),
  );

  const ends = [...new Set(rows.map((r) => samples.time[r]!))].sort((a, b) => a - b);
  const windows: Array<{ end: number; n: number; coverage: number; ece: number; psi: number; feature: string; probabilityPsi: number }> =
    [];
  for (let e = 0; e < ends.length; e += 5) {
    const end = ends[e]!;
    if (end - heldOutFrom < (days - 1) * DAY) continue;
    const inWindow: number[] = [];
    rows.forEach((r, i) => {
      const t = samples.time[r]!;
      if (t <= end && t > end - days * DAY) inWindow.push(i);
    });
    const bins = Array.from({ length: 10 }, () => ({ n: 0, p: 0, y: 0 }));
    for (const i of inWindow) {
      const b = bins[Math.min(9, Math.floor(p[i]! * 10))]!;
      b.n++;
      b.p += p[i]!;
      b.y += samples.y[rows[i]!]!;
    }
    const ece = bins.reduce((s, b) => s + (b.n ? (b.n / inWindow.length) * Math.abs(b.p / b.n - b.y / b.n) : 0), 0);
    const coverage = inWindow.reduce((s, i) => s + covered[i]!, 0) / inWindow.length;
    const windowRows = inWindow.map((i) => rows[i]!);
    const psis = FEATURE_NAMES.map((_, j) => psi(histograms[j]!, column(windowRows, j)));
    const worst = psis.indexOf(Math.max(...psis));
    windows.push({
      end,
      n: inWindow.length,
      coverage,
      ece,
      psi: psis[worst]!,
      feature: FEATURE_NAMES[worst]!,
      probabilityPsi: psi(
        probabilityHistogram,
        Float64Array.from(inWindow, (i) => p[i]!),
      ),
    });
  }

  const quantile = (values: number[], q: number) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  };
  const share = (test: (w: (typeof windows)[0]) => boolean) => `${((100 * windows.filter(test).length) / windows.length).toFixed(1)}%`;
  const worst = <K extends 'coverage' | 'ece' | 'psi' | 'probabilityPsi'>(key: K, low: boolean) =>
    windows.reduce((a, b) => ((low ? b[key] < a[key] : b[key] > a[key]) ? b : a));
  const date = (t: number) => new Date(t).toISOString().slice(0, 10);
  console.log(
    `\n${strategy}@v1: ${bars.size} symbols, ${windows.length} windows of ${days} calendar days ending ${date(windows[0]!.end)}..${date(windows.at(-1)!.end)}, ` +
      `${Math.min(...windows.map((w) => w.n))}-${Math.max(...windows.map((w) => w.n))} rows each`,
  );
  const c = windows.map((w) => w.coverage);
  const e = windows.map((w) => w.ece);
  const s = windows.map((w) => w.psi);
  const lowCov = worst('coverage', true);
  const highEce = worst('ece', false);
  const highPsi = worst('psi', false);
  const highProbability = worst('probabilityPsi', false);
  const ps = windows.map((w) => w.probabilityPsi);
  console.log(
    `coverage: min ${lowCov.coverage.toFixed(3)} (ending ${date(lowCov.end)}), 5% ${quantile(c, 0.05).toFixed(3)}, median ${quantile(c, 0.5).toFixed(3)}; below 0.90: ${share((w) => w.coverage < 0.9)}, below 0.85: ${share((w) => w.coverage < 0.85)}`,
  );
  console.log(
    `ECE: median ${quantile(e, 0.5).toFixed(3)}, 95% ${quantile(e, 0.95).toFixed(3)}, max ${highEce.ece.toFixed(3)} (ending ${date(highEce.end)}); ` +
      `above 0.05: ${share((w) => w.ece > 0.05)}, 0.10: ${share((w) => w.ece > 0.1)}, 0.15: ${share((w) => w.ece > 0.15)}, 0.20: ${share((w) => w.ece > 0.2)}`,
  );
  console.log(
    `largest feature PSI: median ${quantile(s, 0.5).toFixed(2)}, 95% ${quantile(s, 0.95).toFixed(2)}, max ${highPsi.psi.toFixed(2)} (${highPsi.feature}, ending ${date(highPsi.end)}); ` +
      `above 0.25: ${share((w) => w.psi > 0.25)}, 0.5: ${share((w) => w.psi > 0.5)}, 1: ${share((w) => w.psi > 1)}, 2: ${share((w) => w.psi > 2)}, 2.5: ${share((w) => w.psi > 2.5)}, 3: ${share((w) => w.psi > 3)}`,
  );
  console.log(
    `probability PSI: median ${quantile(ps, 0.5).toFixed(2)}, 95% ${quantile(ps, 0.95).toFixed(2)}, max ${highProbability.probabilityPsi.toFixed(2)} (ending ${date(highProbability.end)}); ` +
      `above 0.25: ${share((w) => w.probabilityPsi > 0.25)}, 0.5: ${share((w) => w.probabilityPsi > 0.5)}, 1: ${share((w) => w.probabilityPsi > 1)}, 2: ${share((w) => w.probabilityPsi > 2)}`,
  );
}
