import DataLoader from 'dataloader';
import type { MarketDataProvider } from '../../infra/market-data/market-data.js';
import { badUserInput, codedError, ErrorCode } from '../../shared/errors.js';
import { DEFAULT_STRATEGY, findStrategy } from '../../domain/strategies.js';
import { autoBucket, bucketCount, parseSpan, SpanError, type Span } from './bucket.js';
import type { ConfidencePointRow, ConfidenceTrendRow, HistoryReadRepository, LastPointsKey } from './history-read.repository.js';

/** Most buckets one confidenceHistory query may return. */
export const MAX_BUCKETS = 10_000;
/** confidenceHistory's `from` default: this long before `to`. */
const DEFAULT_RANGE_MS = 30 * 86_400_000;
const DEFAULT_WINDOW = '7 days';

/** Optional fields may be null: GraphQL passes an explicit `null` argument through as null, meaning absent. */
export interface ConfidenceHistoryQuery {
  readonly symbol: string;
  readonly strategy?: string | null | undefined;
  readonly version?: string | null | undefined;
  readonly from?: Date | null | undefined;
  readonly to?: Date | null | undefined;
  readonly bucket?: string | null | undefined;
  /** The market whose predictions to read; default the serving market. */
  readonly source?: string | null | undefined;
}

export interface ConfidenceTrendsQuery {
  readonly symbols: readonly string[];
  readonly strategy?: string | null | undefined;
  readonly version?: string | null | undefined;
  readonly window?: string | null | undefined;
  /** The market whose predictions to read; default the serving market. */
  readonly source?: string | null | undefined;
}

export type ConfidenceTrend = ConfidenceTrendRow & { readonly strategy: string };

/** Per-request loaders (see context.ts): every `Prediction.history` of one operation is ONE query. */
export interface HistoryLoaders {
  readonly last: DataLoader<LastPointsKey, ConfidencePointRow[], string>;
}

export interface HistoryQueryServiceDeps {
  readonly repository: HistoryReadRepository;
  /** Only to tell an unknown symbol from one with nothing recorded yet. */
  readonly market: Pick<MarketDataProvider, 'listSymbols'>;
  readonly maxSymbolsPerRequest: number;
  /** The market this gateway predicts from (STORED_MARKET or SYNTHETIC_MARKET): every read's default. */
  readonly servingMarket: string;
}

/**
 * Confidence history for GraphQL: validates and defaults arguments, then asks the repository. Errors
 * are coded for clients: BAD_USER_INPUT (bucket, window, range), UNKNOWN_STRATEGY, UNKNOWN_SYMBOL.
 * Every read is of one market's predictions, the serving market's unless a `source` is asked for, so
 * neither the points nor the defaulted `to` ever come from another market (a synthetic run's rows).
 */
export class HistoryQueryService {
  private readonly repository: HistoryReadRepository;
  private readonly market: Pick<MarketDataProvider, 'listSymbols'>;
  readonly maxSymbolsPerRequest: number;
  readonly servingMarket: string;

  constructor({ repository, market, maxSymbolsPerRequest, servingMarket }: HistoryQueryServiceDeps) {
    this.repository = repository;
    this.market = market;
    this.maxSymbolsPerRequest = maxSymbolsPerRequest;
    this.servingMarket = servingMarket;
  }

  createLoaders(): HistoryLoaders {
    return {
      last: new DataLoader((keys) => this.repository.lastPoints(keys), {
        cacheKeyFn: (k) => `${k.symbol}\u0000${k.strategy}\u0000${k.version}\u0000${k.source}\u0000${k.last}`,
        maxBatchSize: 5_000,
      }),
    };
  }

  async confidenceHistory(query: ConfidenceHistoryQuery): Promise<ConfidencePointRow[]> {
    const strategy = knownStrategy(query.strategy);
    const source = query.source ?? this.servingMarket;
    const requested = query.bucket == null ? undefined : span(query.bucket, 'bucket');
    if (query.from && query.to && query.from > query.to) {
      throw badUserInput(`from (${query.from.toISOString()}) is after to (${query.to.toISOString()})`);
    }
    let to = query.to;
    if (!to) {
      const latest = await this.repository.latestTime(query.symbol, strategy, source, query.version ?? undefined);
      if (!latest) {
        await this.#assertKnown([query.symbol]);
        return [];
      }
      // A `from` after everything recorded is an empty range, not an error.
      to = query.from && query.from > latest ? query.from : latest;
    }
    const from = query.from ?? new Date(to.getTime() - DEFAULT_RANGE_MS);
    const bucket = requested ?? autoBucket(to.getTime() - from.getTime());
    const buckets = bucketCount(from.getTime(), to.getTime(), bucket.ms);
    if (buckets > MAX_BUCKETS) {
      throw badUserInput(
        `the range ${from.toISOString()} .. ${to.toISOString()} holds ${buckets} buckets of ${bucket.text}; at most ${MAX_BUCKETS} per query: use a larger bucket or a shorter range`,
        { limit: MAX_BUCKETS, buckets },
      );
    }
    const points = await this.repository.confidenceHistory({
      symbol: query.symbol,
      strategy,
      version: query.version ?? undefined,
      source,
      from,
      to,
      bucketMs: bucket.ms,
    });
    if (points.length === 0) await this.#assertKnown([query.symbol]);
    return points;
  }

  async confidenceTrends(query: ConfidenceTrendsQuery): Promise<ConfidenceTrend[]> {
    const strategy = knownStrategy(query.strategy);
    const window = span(query.window ?? DEFAULT_WINDOW, 'window');
    if (query.symbols.length > this.maxSymbolsPerRequest) {
      throw badUserInput(`symbols: at most ${this.maxSymbolsPerRequest} per request, got ${query.symbols.length}`, {
        limit: this.maxSymbolsPerRequest,
      });
    }
    const symbols = [...new Set(query.symbols)];
    const rows = new Map(
      (await this.repository.trends(symbols, strategy, window.ms, query.source ?? this.servingMarket, query.version ?? undefined)).map(
        (r) => [r.symbol, r],
      ),
    );
    const missing = symbols.filter((s) => !rows.has(s));
    if (missing.length > 0) await this.#assertKnown(missing);
    return query.symbols.map(
      (symbol) =>
        ({
          ...(rows.get(symbol) ?? { symbol, current: null, mean: null, min: null, max: null, slope: null, volatility: null, samples: 0 }),
          strategy,
        }) satisfies ConfidenceTrend,
    );
  }

  /** UNKNOWN_SYMBOL for symbols neither the market nor the history knows. */
  async #assertKnown(symbols: readonly string[]): Promise<void> {
    const listed = new Set(await this.market.listSymbols());
    const unlisted = symbols.filter((s) => !listed.has(s));
    if (unlisted.length === 0) return;
    const recorded = await this.repository.recordedSymbols(unlisted);
    const unknown = unlisted.filter((s) => !recorded.has(s));
    if (unknown.length > 0) {
      throw codedError(
        ErrorCode.UNKNOWN_SYMBOL,
        `Unknown symbol${unknown.length > 1 ? 's' : ''} ${unknown.map((s) => `"${s}"`).join(', ')}: no market data and nothing recorded`,
        {
          symbols: unknown,
        },
      );
    }
  }
}

/** The strategy to query, defaulted; UNKNOWN_STRATEGY if this build does not define it. */
export function knownStrategy(name: string | null | undefined): string {
  const strategy = name ?? DEFAULT_STRATEGY;
  if (!findStrategy(strategy)) throw codedError(ErrorCode.UNKNOWN_STRATEGY, `Unknown strategy "${strategy}"`, { strategy });
  return strategy;
}

function span(text: string, what: string): Span {
  try {
    return parseSpan(text, what);
  } catch (error) {
    if (error instanceof SpanError) throw badUserInput(error.message);
    throw error;
  }
}
