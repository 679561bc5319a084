/**
 * Paired held-out comparison of two trained model versions of one strategy (e.g. the logistic v1 and a
 * gradient-boosted candidate), from their files: both model.onnx run through onnxruntime on the same
 * held-out rows of the same CSV data, calibrated by their manifests, and the per-row differences in
 * Brier score and log loss resampled in whole calendar months (the manifests' bootstrap, same seed).
 * Each model's own held-out figures are recomputed on the way and checked against its manifest, so the
 * comparison is of the files that would serve.
 *
 *   node --import tsx tools/compare-families.ts <data dir> <model dir A> <model dir B>
 *
 * Offline and on the training data's held-out period only; live, realized-outcome comparison is
 * compareModels' job (issue 22 item 3).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { applyPlatt } from '../src/domain/calibration.js';
import { manifestSchema, type Manifest } from '../src/domain/manifest.js';
import { FEATURE_NAMES } from '../src/domain/features.js';
import { findStrategy } from '../src/domain/strategies.js';
import { monthBlock, resampleBlocks } from '../src/domain/statistics.js';
import { parseBarsCsv } from '../src/infra/market-data/csv.js';
import { findCsvFiles } from '../src/infra/market-data/importer.js';
import type { Bar } from '../src/infra/market-data/market-data.js';
import { buildSamples, selectPeriod } from '../src/training/dataset.js';
import { binaryMetrics } from '../src/training/evaluate.js';

const USAGE = 'usage: node --import tsx tools/compare-families.ts <data dir> <model dir A> <model dir B>\n';
const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const [dataDir, ...modelDirs] = args;
if (!dataDir || modelDirs.length !== 2 || args.some((arg) => arg.startsWith('-'))) {
  process.stderr.write(`compare-families: expected a data directory and two model directories\n\n${USAGE}`);
  process.exit(2);
}

const models = await Promise.all(
  modelDirs.map(async (dir) => ({
    dir,
    manifest: manifestSchema.parse(JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8'))) as Manifest,
    bytes: await readFile(path.join(dir, 'model.onnx')),
  })),
);
const [a, b] = models as [(typeof models)[0], (typeof models)[0]];
if (a.manifest.strategy !== b.manifest.strategy) throw new Error('the two versions must be of one strategy');
if (a.manifest.offlineMetrics.period.from !== b.manifest.offlineMetrics.period.from)
  throw new Error('the two versions have different held-out periods');
for (const m of models) {
  if (m.manifest.features.join() !== FEATURE_NAMES.join()) throw new Error(`${m.dir}: features are not this gateway's, in its order`);
}
const strategy = findStrategy(a.manifest.strategy)!;

const bars = new Map<string, Bar[]>();
for (const file of await findCsvFiles([dataDir])) {
  const parsed = parseBarsCsv(await readFile(file, 'utf8'), { file });
  if (parsed.ok) bars.set(parsed.symbol, parsed.bars);
}
const samples = buildSamples(bars, strategy.horizonBars);
let end = 0;
for (const t of samples.labelTime) end = Math.max(end, t);
const test = selectPeriod(samples, new Date(`${a.manifest.offlineMetrics.period.from}T00:00:00Z`), new Date(end + 1));
const F = samples.featureCount;
const input = new Float32Array(test.length * F);
test.forEach((r, i) => input.set(samples.x.subarray(r * F, (r + 1) * F), i * F));
const y = Float64Array.from(test, (r) => samples.y[r]!);
const block = Array.from(test, (r) => monthBlock(samples.time[r]!));

const predictions: Float64Array[] = [];
for (const m of models) {
  const session = await ort.InferenceSession.create(m.bytes);
  const out = await session.run({ [m.manifest.input.name]: new ort.Tensor('float32', input, [test.length, F]) });
  await session.release();
  const raw = out[m.manifest.output.name]!.data as Float32Array;
  const p = Float64Array.from(raw, (q) => applyPlatt(m.manifest.calibration, q));
  const metrics = binaryMetrics(p, y);
  const recorded = m.manifest.offlineMetrics;
  console.log(
    `${m.dir}: ${m.manifest.family ?? 'logistic'}, ${test.length} held-out rows (manifest ${recorded.sampleSize}); Brier ${metrics.brier.toFixed(6)} (manifest ${recorded.brier.toFixed(6)}), log loss ${metrics.logLoss.toFixed(6)} (manifest ${recorded.logLoss.toFixed(6)})`,
  );
  if (test.length !== recorded.sampleSize || Math.abs(metrics.brier - recorded.brier) > 1e-5) {
    throw new Error(`${m.dir}: the ONNX file on these rows does not reproduce its manifest's held-out figures`);
  }
  predictions.push(p);
}

// Per-block sums of the paired differences A − B (positive: B has the lower loss, i.e. B is better).
const blocks = [...new Set(block)].sort((x, z) => x - z);
const index = new Map(blocks.map((k, i) => [k, i]));
const n = new Float64Array(blocks.length);
const brier = new Float64Array(blocks.length);
const logLoss = new Float64Array(blocks.length);
const sumBrierA = new Float64Array(blocks.length);
const loss = (p: number, label: number) => -Math.log(Math.min(Math.max(label ? p : 1 - p, 1e-15), 1));
for (let i = 0; i < test.length; i++) {
  const k = index.get(block[i]!)!;
  const [pa, pb] = [predictions[0]![i]!, predictions[1]![i]!];
  n[k]! += 1;
  brier[k]! += (pa - y[i]!) ** 2 - (pb - y[i]!) ** 2;
  sumBrierA[k]! += (pa - y[i]!) ** 2;
  logLoss[k]! += loss(pa, y[i]!) - loss(pb, y[i]!);
}
const result = resampleBlocks(blocks.length, ['brierDifference', 'logLossDifference', 'brierSkillOfBOverA'] as const, {}, (drawn) => {
  let rows = 0;
  let db = 0;
  let dl = 0;
  let ba = 0;
  for (const k of drawn) {
    rows += n[k]!;
    db += brier[k]!;
    dl += logLoss[k]!;
    ba += sumBrierA[k]!;
  }
  return { brierDifference: db / rows, logLossDifference: dl / rows, brierSkillOfBOverA: db / ba };
});
console.log(
  `\nA = ${a.dir}, B = ${b.dir}; A − B per row (positive: B better); ${result.blocks} month blocks, ${result.replicates} replicates, seed ${result.seed}, ${result.level * 100}%:`,
);
for (const e of result.estimates)
  console.log(`  ${e.metric.padEnd(20)} ${e.value.toExponential(3)}  [${e.low.toExponential(3)}, ${e.high.toExponential(3)}]`);
