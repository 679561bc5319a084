import { applyPlatt } from '../../domain/calibration.js';
import {
  PSI_DRIFTED,
  PSI_WATCH,
  binProportions,
  driftStatus,
  histogramFromQuantiles,
  histogramOf,
  ksOf,
  psiOf,
} from '../../domain/drift.js';
import { FEATURE_WINDOW, featuresFromSeries } from '../../domain/features.js';
import { excludedFrom } from '../../infra/market-data/bar-quality.js';
import type { ReferenceHistogram } from '../../domain/manifest.js';
import { DEFAULT_STRATEGY, findStrategy } from '../../domain/strategies.js';
import type { Bar, MarketDataProvider } from '../../infra/market-data/market-data.js';
import { badUserInput, codedError, ErrorCode } from '../../shared/errors.js';
import type { ModelMetrics, ModelVersionEntry } from '../models/index.js';
import { DriftStatus, type Drift, type PeriodDrift, type VariableDrift } from './drift.type.js';

export interface DriftLimits {
  /** Longest window, in calendar days (inclusive). */
  readonly maxWindowDays: number;
  /** Most symbols measured in one request. */
  readonly maxSymbols: number;
}

export const DEFAULT_DRIFT_LIMITS: DriftLimits = { maxWindowDays: 400, maxSymbols: 100 };

export interface DriftDependencies {
  /** The version serving a strategy now, and any loaded version by name. */
  readonly models: {
    active(strategy: string): ModelVersionEntry | undefined;
    find(strategy: string, version: string): ModelVersionEntry | undefined;
  };
  /** Stored bars (the bars store, not a vendor): drift reads history, many bars per symbol. */
  readonly market: Pick<MarketDataProvider, 'fetchBars' | 'listSymbols'>;
  /** Realized metrics of recorded predictions (modules/metrics). */
  readonly realized: (query: {
    strategy: string;
    version: string;
    from: Date;
    to: Date;
    quiet?: boolean | undefined;
  }) => Promise<ModelMetrics>;
  /** Called with every answer: the gauges on /metrics show the last computed drift. */
  readonly onComputed?: (drift: Drift) => void;
  readonly limits?: Partial<DriftLimits>;
}

export interface DriftQuery {
  readonly strategy: string;
  readonly version?: string | undefined;
  readonly window: { readonly from: Date; readonly to: Date };
  readonly symbols?: readonly string[] | undefined;
  /**
   * Asked by the promotion evaluator on its own schedule, not by a person: the sibyl_drift_* gauges
   * (and the alert on them) keep describing the last window a person asked for.
   */
  readonly quiet?: boolean | undefined;
}

const DAY_MS = 86_400_000;
/** Fewer reference rows than this from stored bars and the derived probability histogram is not trusted. */
const MIN_REFERENCE_ROWS = 1_000;
/** Derived probability references kept (per version and symbol set). */
const REFERENCE_CACHE_SIZE = 16;

/**
 * `drift`: per model input and for the calibrated probability, PSI and KS of the distribution over a
 * window of stored bars against the training distribution, per month too, beside the realized
 * calibration and coverage of the predictions recorded in the window. Features at each day use bars ≤
 * that day only (the serving function on the same 100-bar window), so nothing looks ahead; vendor
 * error bars are left out as training leaves them out. See docs/decisions/drift.md.
 */
export class DriftService {
  readonly #limits: DriftLimits;
  readonly #storedReferences = new Map<string, Promise<StoredReference | undefined>>();

  constructor(private readonly deps: DriftDependencies) {
    this.#limits = { ...DEFAULT_DRIFT_LIMITS, ...deps.limits };
  }

  async drift(query: DriftQuery): Promise<Drift> {
    const strategy = query.strategy || DEFAULT_STRATEGY;
    if (!findStrategy(strategy)) throw codedError(ErrorCode.UNKNOWN_STRATEGY, `Unknown strategy "${strategy}"`, { strategy });
    const entry = query.version ? this.deps.models.find(strategy, query.version) : this.deps.models.active(strategy);
    if (!entry) {
      if (query.version)
        throw badUserInput(`version "${query.version}" of ${strategy} is not loaded`, { strategy, version: query.version });
      throw codedError(ErrorCode.UNAVAILABLE, `no version of ${strategy} is loaded on this instance`);
    }
    const { from, to } = this.#window(query.window);
    const symbols = await this.#symbols(query.symbols);
    const manifest = entry.manifest;

    const days = Math.floor((to.getTime() - from.getTime()) / DAY_MS) + 1;
    const recent = await this.#rows(entry, symbols, from, to, days + FEATURE_WINDOW);
    const stored = await this.#storedReference(entry, recent.symbols);
    const references = stored ? storedFeatureReferences(entry, stored) : manifestFeatureReferences(entry);
    const probabilityReference = stored
      ? { histogram: stored.probability, samples: stored.samples, source: 'stored-bars' }
      : manifest.driftReference
        ? { histogram: manifest.driftReference.probability, samples: manifest.driftReference.samples, source: 'manifest' }
        : undefined;

    const columns = manifest.features.map((_, column) => columnOf(recent, column));
    const features = manifest.features.map((name, column) =>
      variableDrift(name, references.histograms[column]!, columns[column]!, references.medians[column] ?? null),
    );
    const probability = probabilityReference
      ? variableDrift('probability', probabilityReference.histogram, recent.probabilities, medianCut(probabilityReference.histogram))
      : null;
    const months = byMonth(recent).map(({ month, rows }): PeriodDrift => {
      const monthFeatures = manifest.features.map((name, column) =>
        variableDrift(
          name,
          references.histograms[column]!,
          rows.map((r) => columns[column]![r]!),
          references.medians[column] ?? null,
        ),
      );
      return {
        month,
        samples: rows.length,
        features: monthFeatures,
        probability: probabilityReference
          ? variableDrift(
              'probability',
              probabilityReference.histogram,
              rows.map((r) => recent.probabilities[r]!),
              null,
            )
          : null,
        drifted: monthFeatures.filter((f) => f.status === DriftStatus.DRIFTED).map((f) => f.name),
      };
    });
    const drift: Drift = {
      strategy,
      version: manifest.version,
      from,
      to,
      symbols: recent.symbols,
      days: new Set(recent.time).size,
      samples: recent.length,
      reference: {
        features: references.source,
        featuresFrom: references.period.from,
        featuresTo: references.period.to,
        probability: probabilityReference?.source ?? null,
        probabilitySamples: probabilityReference?.samples ?? 0,
      },
      thresholds: { watch: PSI_WATCH, drifted: PSI_DRIFTED },
      features,
      probability,
      probabilityReason: probabilityReference
        ? null
        : `the stored bars of the training period (${manifest.training.train.from}..${manifest.training.train.to}) give fewer ` +
          `than ${MIN_REFERENCE_ROWS} rows for these symbols, and the manifest records no probability reference`,
      drifted: features.filter((f) => f.status === DriftStatus.DRIFTED).map((f) => f.name),
      months,
      realized: await this.deps.realized({ strategy, version: manifest.version, from, to, quiet: query.quiet }),
    };
    if (!query.quiet) this.deps.onComputed?.(drift);
    return drift;
  }

  #window(window: DriftQuery['window']): { from: Date; to: Date } {
    const { from, to } = window;
    if (!(from instanceof Date) || !(to instanceof Date) || Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) {
      throw badUserInput('window needs a valid from and to');
    }
    if (from > to) throw badUserInput(`window.from (${from.toISOString()}) is after window.to (${to.toISOString()})`);
    const days = Math.floor((to.getTime() - from.getTime()) / DAY_MS) + 1;
    if (days > this.#limits.maxWindowDays) {
      throw badUserInput(`window spans ${days} days; at most ${this.#limits.maxWindowDays} per request`, {
        maxWindowDays: this.#limits.maxWindowDays,
      });
    }
    return { from, to };
  }

  async #symbols(asked: readonly string[] | undefined): Promise<string[]> {
    const stored = await this.deps.market.listSymbols();
    const symbols = asked ? [...new Set(asked)].sort() : stored;
    if (symbols.length === 0) throw badUserInput('no symbols to measure: the bars store is empty');
    if (symbols.length > this.#limits.maxSymbols) {
      throw badUserInput(
        `${symbols.length} symbols${asked ? '' : ' are stored'}; ` +
          `drift measures at most ${this.#limits.maxSymbols} per request (name them with symbols)`,
        { maxSymbols: this.#limits.maxSymbols },
      );
    }
    const known = new Set(stored);
    const unknown = symbols.filter((s) => !known.has(s));
    if (unknown.length) throw codedError(ErrorCode.UNKNOWN_SYMBOL, `no stored bars for ${unknown.join(', ')}`, { symbols: unknown });
    return symbols;
  }

  /** Feature vectors (model order) and calibrated probabilities of every symbol × day in [from, to]. */
  async #rows(entry: ModelVersionEntry, symbols: readonly string[], from: Date, to: Date, lookback: number): Promise<Rows> {
    const bars = await this.deps.market.fetchBars(symbols, { lookback, until: to });
    const width = entry.featureOrder.length;
    const values: number[] = [];
    const time: number[] = [];
    const measured: string[] = [];
    for (const symbol of symbols) {
      const list = bars.get(symbol) ?? [];
      const before = time.length;
      forEachFeatureVector(list, from, (features, bar) => {
        for (const index of entry.featureOrder) values.push(features[index]!);
        time.push(bar.time.getTime());
      });
      if (time.length > before) measured.push(symbol);
    }
    const rows = time.length;
    if (rows === 0) {
      throw badUserInput(`no stored bars with ${FEATURE_WINDOW} bars of history in the window for ${symbols.length} symbol(s)`);
    }
    const x = Float64Array.from(values);
    return { x, width, time, length: rows, symbols: measured, probabilities: await score(entry, x, rows) };
  }

  /**
   * The training distribution of the measured symbols themselves, from the stored bars of the
   * version's training period scored by the version: the manifest's reference pools every training
   * symbol, and a subset (ten low-volatility large caps) differs from that pool in calm times too.
   * Derived once per (version, symbols); undefined when the store holds too little of that period.
   */
  #storedReference(entry: ModelVersionEntry, symbols: readonly string[]): Promise<StoredReference | undefined> {
    const { manifest } = entry;
    const key = `${manifest.strategy}\u0000${manifest.version}\u0000${manifest.sha256}\u0000${symbols.join(',')}`;
    let found = this.#storedReferences.get(key);
    if (!found) {
      found = this.#deriveStoredReference(entry, symbols);
      // A failed derivation is not remembered: the store may be back next time.
      found.catch(() => this.#storedReferences.delete(key));
      this.#storedReferences.set(key, found);
      while (this.#storedReferences.size > REFERENCE_CACHE_SIZE) this.#storedReferences.delete(this.#storedReferences.keys().next().value!);
    }
    return found;
  }

  async #deriveStoredReference(entry: ModelVersionEntry, symbols: readonly string[]): Promise<StoredReference | undefined> {
    const period = entry.manifest.training.train;
    const start = new Date(`${period.from}T00:00:00Z`);
    const end = new Date(`${period.to}T00:00:00Z`);
    if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || symbols.length === 0) return undefined;
    const days = Math.floor((end.getTime() - start.getTime()) / DAY_MS) + 1;
    const rows = await this.#rows(entry, symbols, start, end, days + FEATURE_WINDOW).catch((error: unknown) => {
      if (isBadUserInput(error)) return undefined;
      throw error;
    });
    if (!rows || rows.length < MIN_REFERENCE_ROWS) return undefined;
    return {
      period: { from: period.from, to: period.to },
      samples: rows.length,
      features: entry.manifest.features.map((_, column) => histogramOf(columnOf(rows, column))),
      probability: histogramOf(rows.probabilities),
    };
  }
}

interface StoredReference {
  readonly period: { from: string; to: string };
  readonly samples: number;
  /** In the model's input order. */
  readonly features: ReferenceHistogram[];
  readonly probability: ReferenceHistogram;
}

function storedFeatureReferences(entry: ModelVersionEntry, stored: StoredReference): FeatureReferences {
  return { source: 'stored-bars', period: stored.period, histograms: stored.features, medians: stored.features.map(medianCut) };
}

/** The manifest's own reference: driftReference (training since issue 19), else its featureStats quantiles. */
function manifestFeatureReferences(entry: ModelVersionEntry): FeatureReferences {
  const { manifest } = entry;
  if (manifest.driftReference && manifest.features.every((f) => manifest.driftReference!.features[f])) {
    const reference = manifest.driftReference;
    return {
      source: 'manifest',
      period: reference.period,
      histograms: manifest.features.map((f) => reference.features[f]!),
      medians: manifest.features.map((f) => manifest.featureStats?.features[f]?.quantiles['0.5'] ?? medianCut(reference.features[f]!)),
    };
  }
  const stats = manifest.featureStats;
  const histograms = manifest.features.map((f) => (stats?.features[f] ? histogramFromQuantiles(stats.features[f]) : undefined));
  const missing = manifest.features.filter((_, i) => !histograms[i]);
  if (!stats || missing.length) {
    throw codedError(
      ErrorCode.UNAVAILABLE,
      `${manifest.strategy}@${manifest.version}: neither the stored bars of its training period nor its manifest ` +
        `give a training distribution for ${missing.join(', ') || 'its features'}`,
    );
  }
  return {
    source: 'featureStats',
    period: stats.period,
    histograms: histograms as ReferenceHistogram[],
    medians: manifest.features.map((f) => stats.features[f]!.quantiles['0.5']!),
  };
}

interface Rows {
  /** Row-major [length][width], in the model's input order. */
  readonly x: Float64Array;
  readonly width: number;
  readonly time: number[];
  readonly length: number;
  readonly symbols: string[];
  readonly probabilities: Float64Array;
}

interface FeatureReferences {
  readonly source: 'stored-bars' | 'manifest' | 'featureStats';
  readonly period: { from: string; to: string };
  readonly histograms: ReferenceHistogram[];
  readonly medians: (number | null)[];
}

/** Features at every bar of `bars` dated ≥ from (bars are ascending and end at the window's end). */
function forEachFeatureVector(bars: readonly Bar[], from: Date, visit: (features: Float64Array, bar: Bar) => void): void {
  const adj = Float64Array.from(bars, (b) => b.adjClose);
  const ldv = Float64Array.from(bars, (b) => Math.log(b.close * b.volume + 1));
  for (let t = FEATURE_WINDOW - 1; t < bars.length; t++) {
    const bar = bars[t]!;
    if (bar.time < from || excludedFrom('training', bar)) continue;
    const start = t - FEATURE_WINDOW + 1;
    const features = featuresFromSeries(adj.subarray(start, t + 1), ldv.subarray(start, t + 1), bar);
    if (features.every(Number.isFinite)) visit(features, bar);
  }
}

/** One inference run over every row, then the manifest's calibration (as serving does). */
async function score(entry: ModelVersionEntry, x: Float64Array, rows: number): Promise<Float64Array> {
  const raw = await entry.batcher.scoreAsOneRun(Float32Array.from(x), rows);
  return Float64Array.from(raw, (p) => applyPlatt(entry.manifest.calibration, p));
}

function columnOf(rows: Rows, column: number): Float64Array {
  const out = new Float64Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = rows.x[i * rows.width + column]!;
  return out;
}

function byMonth(rows: Rows): { month: string; rows: number[] }[] {
  const months = new Map<string, number[]>();
  rows.time.forEach((t, i) => {
    const month = new Date(t).toISOString().slice(0, 7);
    const list = months.get(month) ?? [];
    list.push(i);
    months.set(month, list);
  });
  return [...months].sort(([a], [b]) => a.localeCompare(b)).map(([month, list]) => ({ month, rows: list }));
}

function variableDrift(
  name: string,
  reference: ReferenceHistogram,
  values: ArrayLike<number>,
  referenceMedian: number | null,
): VariableDrift {
  const { proportions, count } = binProportions(reference.edges, values);
  const psi = psiOf(reference.proportions, proportions);
  return {
    name,
    psi,
    ks: ksOf(reference.proportions, proportions),
    status: DriftStatus[driftStatus(psi)],
    samples: count,
    bins: reference.proportions.length,
    recentMean: count ? meanOf(values) : null,
    recentMedian: count ? medianOf(values) : null,
    referenceMedian,
    referenceProportions: reference.proportions,
    recentProportions: proportions,
  };
}

/** The cut point where the reference's cumulative share first reaches one half. */
function medianCut(reference: ReferenceHistogram): number | null {
  let cumulative = 0;
  for (let i = 0; i < reference.edges.length; i++) {
    cumulative += reference.proportions[i]!;
    if (cumulative >= 0.5 - 1e-9) return reference.edges[i]!;
  }
  return null;
}

function meanOf(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return sum / values.length;
}

function medianOf(values: ArrayLike<number>): number {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
}

function isBadUserInput(error: unknown): boolean {
  return (error as { extensions?: { code?: unknown } }).extensions?.code === ErrorCode.BAD_USER_INPUT;
}
