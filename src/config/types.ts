/**
 * The validated configuration every other module receives. Its fields are filled from the variable
 * table (variables.ts, each variable's `at`) and by the rules in config.ts; the type check at the end
 * of config.ts fails when a field is filled by neither.
 */

export type AuthMode = 'off' | 'apikey' | 'jwt' | 'apikey+jwt';

export type Config = Readonly<{
  env: 'development' | 'production' | 'test';
  isProduction: boolean;
  host: string;
  port: number;
  log: { level: string; format: 'pretty' | 'json' };
  dataDir: string;
  database: { kind: 'postgres'; url: string; poolMax: number } | { kind: 'pglite'; dataDir: string };
  /** Days per `market_bars` chunk on TimescaleDB (chunk-interval.ts). */
  barsChunkDays: number;
  redis: { url: string; keyPrefix: string } | undefined;
  /** Key prefix used by the in-process engines too, so names look the same in logs either way. */
  keyPrefix: string;
  graphql: {
    introspection: boolean;
    /** Compile operations with graphql-jit (server/compiled-execution.ts); off: graphql-js runs every operation. */
    jit: boolean;
    /** Compiled operations kept, least recently used dropped first. */
    jitCacheSize: number;
  };
  /** GET /graphql in a browser and the built-in explorer (`dir`: the web build it is part of). */
  explorer: { page: 'sandbox' | 'graphiql' | 'off'; sandboxTelemetry: boolean; dir: string };
  /** Ceiling of GET answers' Cache-Control max-age, in seconds (server/cache-control.ts). */
  httpCacheMaxAgeSeconds: number;
  shutdownTimeoutMs: number;
  modelsDir: string;
  /** How often new model versions are looked for and the serving record re-read; 0 = never. */
  modelsRescanIntervalMs: number;
  /**
   * Scheduled retraining (src/modules/retraining): off when `schedule` is undefined. `strategies`
   * undefined means every strategy served; `timeoutMs` bounds one run; `maxMemoryMb` is the child's heap.
   */
  retrain: {
    schedule: string | undefined;
    timezone: string;
    strategies: readonly string[] | undefined;
    family: 'logistic' | 'gbt';
    timeoutMs: number;
    maxMemoryMb: number;
  };
  predictions: { maxSymbolsPerRequest: number };
  inference: { maxBatchSize: number; maxQueueDelayMs: number };
  marketFetch: { maxDelayMs: number; timeoutMs: number; retries: number; breakerResetMs: number };
  /** Time to live per cache tier, in ms; 0 turns the tier off. */
  cacheTtlMs: { market: number; features: number; predictions: number };
  /** RESPONSE_CACHE, RESPONSE_CACHE_MAX_MB (in bytes): whole answers kept until an input changes (infra/response-cache/). */
  responseCache: { enabled: boolean; maxBytes: number };
  synthetic: { tickMs: number; seed: number };
  /** Stored bars replayed as a live stream, when set. */
  replay: { from: Date; tickMs: number } | undefined;
  /** Where bars come from: the bars store (stored bars, or the synthetic market when none), or a vendor feeding it. */
  marketProvider: { kind: 'store' } | AlpacaSettings | PolygonSettings;
  signals: { intervalMs: number; watchlist: readonly string[]; leaseMs: number; maxReplay: number; recordWaitMs: number };
  ws: {
    maxSubscriptionsPerConnection: number;
    /** How often open connections' API keys are re-checked (revocations announced on the bus act at once). */
    credentialRecheckMs: number;
    /** Ping interval; a connection that has not answered within the same time is dropped. */
    keepAliveMs: number;
  };
  /**
   * Which proxies' `X-Forwarded-For` to believe for the client address (fastify's `trustProxy`): false
   * (the socket's peer is the client), or the addresses/CIDRs of the proxies.
   */
  trustProxy: false | readonly string[];
  /**
   * History storage: `chunkDays` is HISTORY_CHUNK_DAYS when set; unset, the history module sizes chunks
   * for the market it serves (history-chunks.ts).
   */
  history: { flushIntervalMs: number; maxBufferRows: number; spillDir: string; retentionDays: number; chunkDays: number | undefined };
  /** How often realized outcomes are filled in; 0 turns the periodic pass off. */
  outcomes: { intervalMs: number };
  /** `modelMetrics` estimates: bootstrap replicates, and the most resolved rows one answer reads for them. */
  metricsEstimates: { replicates: number; maxRows: number };
  /** The promotion evaluator (modules/models/promotion.*.ts): policy and thresholds, see docs/decisions/promotion.md. */
  promotion: {
    policy: 'manual' | 'auto';
    /** How often it runs; 0 = never. */
    intervalMs: number;
    minDays: number;
    loss: 'brier' | 'logLoss';
    healthWindowDays: number;
    minOutcomes: number;
    coverageFloor: number;
    maxEce: number;
    /** 0 = drift not checked. */
    maxDriftPsi: number;
    degradationAction: 'rollback' | 'alert';
  };
  auth: {
    mode: AuthMode;
    /** Set when the mode accepts JWTs; exactly one way to verify them. */
    jwt:
      | {
          key: { kind: 'secret'; secret: string } | { kind: 'publicKey'; pem: string } | { kind: 'jwks'; url: string };
          issuer: string | undefined;
          audience: string | undefined;
          roleClaim: string;
          /** Seconds of clock skew allowed on `exp`/`nbf`; also how long past `exp` a WebSocket stays open. */
          clockToleranceSeconds: number;
          /** Longest lifetime a token may have (exp − iat, and exp − now); `exp` is required. */
          maxTtlSeconds: number;
        }
      | undefined;
    /** API keys verified recently, accepted while the database cannot answer: for `ttlMs` after their last check, at most `max` keys. */
    keyMemory: { ttlMs: number; max: number };
  };
  limits: {
    maxDepth: number;
    maxAliases: number;
    maxTokens: number;
    maxCost: number;
    /** Fields after fragment expansion, aliases counted each. */
    maxNodes: number;
    /** List items in one query/mutation response. */
    maxResponseItems: number;
    /** Nesting of request variables, checked without recursion. */
    maxVariablesDepth: number;
    /** Sum of the costs of the operations executing at once on this instance. */
    inflightCostBudget: number;
    /** How long an operation may wait for room in that budget before RATE_LIMITED. */
    inflightQueueMs: number;
    maxBodyBytes: number;
    /** Cost points per key (or IP) per window; 0 turns rate limiting off. */
    ratePoints: number;
    rateWindowSeconds: number;
  };
  /**
   * The component report is computed at most once per `cacheMs`; `/health/*` answers at most
   * `rateLimitPerSecond` requests per second per client address (429 beyond).
   */
  health: { cacheMs: number; rateLimitPerSecond: number };
  /** Origins allowed to call from a browser on another origin; empty: none. */
  corsOrigins: readonly string[];
  metricsToken: string | undefined;
  tracing: { otlpEndpoint: string } | undefined;
  /** The built web app served at `/`; undefined: not served. */
  webApp: { dir: string } | undefined;
  /** TRUSTED_DOCUMENTS_ONLY: where the registered documents are; undefined: every operation may run. */
  trustedDocuments: { file: string } | undefined;
}>;

/** Alpaca Market Data v2: REST backfill and the real-time stream. The keys are secrets: never log them. */
export interface AlpacaSettings {
  kind: 'alpaca';
  keyId: string;
  secretKey: string;
  feed: 'iex' | 'sip';
  /** Base of the REST API (`/v2/stocks/bars` is appended). */
  dataUrl: string;
  /** The stream's full URL, feed included. */
  streamUrl: string;
  /** Symbols backfilled and subscribed; undefined: the watchlist plus the default universe. */
  symbols: readonly string[] | undefined;
  /** Calendar days of daily bars fetched at start (features need about 100 trading days). */
  backfillDays: number;
}

/** Polygon.io: per-ticker REST aggregates and the stocks WebSocket. The key is a secret: never log it. */
export interface PolygonSettings {
  kind: 'polygon';
  apiKey: string;
  /** Base of the REST API (`/v2/aggs/...` is appended). */
  restUrl: string;
  /** The stocks cluster's URL; undefined: no stream (plans without WebSockets), polled after each session. */
  streamUrl: string | undefined;
  symbols: readonly string[] | undefined;
  backfillDays: number;
  /** Most symbols followed at once; undefined: no bound but the vendor's. */
  maxSymbols: number | undefined;
}

type Leaf = string | number | boolean | Date | readonly unknown[] | undefined | null;
type IsUnion<T, U = T> = T extends unknown ? ([U] extends [T] ? false : true) : never;

/** Dotted paths to Config's fields: through plain nested objects, stopping at values and at unions. */
export type ConfigPath<T = Config> = {
  [K in keyof T & string]: T[K] extends Leaf ? K : true extends IsUnion<T[K]> ? K : `${K}.${ConfigPath<T[K]>}`;
}[keyof T & string];

/** The type of the Config field at a dotted path. */
export type ConfigAt<P extends string, T = Config> = P extends `${infer Head}.${infer Rest}`
  ? Head extends keyof T
    ? ConfigAt<Rest, T[Head]>
    : never
  : P extends keyof T
    ? T[P]
    : never;
