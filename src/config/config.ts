import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';

/**
 * Every environment variable Sibyl reads, with its default. This file is the only place that knows
 * variable names; the rest of the code receives a typed, validated {@link Config}.
 *
 * The README's configuration table mirrors {@link CONFIG_DOCS}; a unit test keeps them in step.
 */

const booleanString = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, { message: `expected an integer between ${min} and ${max}` })
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(min, { message: `must be at least ${min}` })
        .max(max, { message: `must be at most ${max}` }),
    );

const urlWithProtocols = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { message: `expected a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  );

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: integer(0, 65535).default(4000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['pretty', 'json']).optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: urlWithProtocols(['postgres:', 'postgresql:']).optional(),
  DATABASE_POOL_MAX: integer(1, 200).default(10),
  REDIS_URL: urlWithProtocols(['redis:', 'rediss:']).optional(),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_.-]{1,64}$/, { message: 'expected 1-64 of A-Z a-z 0-9 : _ . -' })
    .default('sibyl:'),
  INTROSPECTION: booleanString.optional(),
  SHUTDOWN_TIMEOUT_MS: integer(100, 60_000).default(8_000),
  MODELS_DIR: z.string().min(1).default('./models'),
  MODELS_RESCAN_INTERVAL_MS: integer(0, 3_600_000).default(10_000),
  MAX_SYMBOLS_PER_REQUEST: integer(1, 5_000).default(200),
  INFERENCE_MAX_BATCH: integer(1, 65_536).default(1_024),
  INFERENCE_MAX_QUEUE_DELAY_US: integer(0, 1_000).default(0),
  MARKET_FETCH_MAX_DELAY_US: integer(0, 1_000).default(0),
  MARKET_FETCH_TIMEOUT_MS: integer(10, 60_000).default(2_000),
  MARKET_FETCH_RETRIES: integer(0, 5).default(1),
  MARKET_BREAKER_RESET_MS: integer(100, 600_000).default(10_000),
  MARKET_CACHE_TTL_MS: integer(0, 86_400_000).default(1_000),
  FEATURES_CACHE_TTL_MS: integer(0, 86_400_000).default(300_000),
  PREDICTIONS_CACHE_TTL_MS: integer(0, 86_400_000).default(300_000),
  HISTORY_FLUSH_INTERVAL_MS: integer(10, 60_000).default(1_000),
  HISTORY_MAX_BUFFER_ROWS: integer(100, 10_000_000).default(20_000),
  HISTORY_RETENTION_DAYS: integer(0, 36_500).default(0),
  OUTCOMES_INTERVAL_MS: integer(0, 86_400_000).default(60_000),
  METRICS_BOOTSTRAP_REPLICATES: integer(100, 20_000).default(1_000),
  METRICS_ESTIMATES_MAX_ROWS: integer(1_000, 5_000_000).default(1_000_000),
  SYNTHETIC_TICK_MS: integer(0, 3_600_000).default(5_000),
  SYNTHETIC_SEED: integer(0, 2_147_483_647).default(1),
  MARKET_REPLAY_FROM: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}(T[\d:.]+Z)?$/, { message: 'expected a date such as 2020-01-02 (or an ISO time in UTC)' })
    .transform((v) => new Date(v.length === 10 ? `${v}T00:00:00Z` : v))
    .refine((d) => Number.isFinite(d.getTime()), { message: 'not a real date' })
    .optional(),
  MARKET_REPLAY_TICK_MS: integer(10, 3_600_000).default(1_000),
  MARKET_PROVIDER: z.enum(['store', 'alpaca', 'polygon']).default('store'),
  ALPACA_KEY_ID: z
    .string()
    .regex(/^\S{1,256}$/, { message: 'expected the key id, no spaces' })
    .optional(),
  ALPACA_SECRET_KEY: z
    .string()
    .regex(/^\S{1,256}$/, { message: 'expected the secret key, no spaces' })
    .optional(),
  ALPACA_FEED: z.enum(['iex', 'sip']).default('iex'),
  ALPACA_DATA_URL: urlWithProtocols(['https:', 'http:']).default('https://data.alpaca.markets'),
  ALPACA_STREAM_URL: urlWithProtocols(['wss:', 'ws:']).optional(),
  ALPACA_SYMBOLS: z
    .string()
    .regex(/^\s*[A-Z][A-Z0-9.-]{0,9}\s*(,\s*[A-Z][A-Z0-9.-]{0,9}\s*)*$/, {
      message: 'expected comma-separated upper-case tickers such as AAPL,MSFT',
    })
    .transform((v) => [...new Set(v.split(',').map((s) => s.trim()))])
    .optional(),
  ALPACA_BACKFILL_DAYS: integer(30, 3_650).default(200),
  POLYGON_API_KEY: z
    .string()
    .regex(/^\S{1,256}$/, { message: 'expected the API key, no spaces' })
    .optional(),
  POLYGON_REST_URL: urlWithProtocols(['https:', 'http:']).default('https://api.polygon.io'),
  POLYGON_STREAM_URL: z
    .literal('off')
    .or(urlWithProtocols(['wss:', 'ws:']))
    .default('wss://socket.polygon.io/stocks'),
  POLYGON_SYMBOLS: z
    .string()
    .regex(/^\s*[A-Z][A-Z0-9.-]{0,9}\s*(,\s*[A-Z][A-Z0-9.-]{0,9}\s*)*$/, {
      message: 'expected comma-separated upper-case tickers such as AAPL,MSFT',
    })
    .transform((v) => [...new Set(v.split(',').map((s) => s.trim()))])
    .optional(),
  POLYGON_BACKFILL_DAYS: integer(30, 3_650).default(200),
  POLYGON_MAX_SYMBOLS: integer(1, 100_000).optional(),
  SIGNALS_INTERVAL_MS: integer(0, 86_400_000).default(300_000),
  // The ticker rule of SYMBOL_PATTERN (src/infra/market-data/market-data.ts); config imports nothing.
  SIGNALS_WATCHLIST: z
    .string()
    .regex(/^\s*[A-Z][A-Z0-9.-]{0,9}\s*(,\s*[A-Z][A-Z0-9.-]{0,9}\s*)*$/, {
      message: 'expected comma-separated upper-case tickers such as AAPL,MSFT',
    })
    .transform((v) => [...new Set(v.split(',').map((s) => s.trim()))])
    .optional(),
  SIGNALS_LEASE_MS: integer(300, 60_000).default(10_000),
  SIGNALS_MAX_REPLAY: integer(1, 100_000).default(1_000),
  SIGNALS_RECORD_WAIT_MS: integer(0, 30_000).default(0),
  WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: integer(1, 10_000).default(20),
  AUTH_MODE: z.enum(['off', 'apikey', 'jwt', 'apikey+jwt']).optional(),
  JWT_SECRET: z.string().min(32, { message: 'must be at least 32 characters (an HS256 key)' }).optional(),
  JWT_PUBLIC_KEY: z.string().includes('BEGIN PUBLIC KEY', { message: 'expected a PEM public key (SPKI, RS256)' }).optional(),
  JWT_JWKS_URL: urlWithProtocols(['https:', 'http:']).optional(),
  JWT_ISSUER: z.string().min(1).optional(),
  JWT_AUDIENCE: z.string().min(1).optional(),
  JWT_ROLE_CLAIM: z.string().min(1).default('role'),
  JWT_CLOCK_TOLERANCE_S: integer(0, 300).default(30),
  JWT_MAX_TTL_S: integer(60, 31_536_000).default(86_400),
  API_KEY_REMEMBER_S: integer(0, 86_400).default(300),
  API_KEY_REMEMBER_MAX: integer(1, 1_000_000).default(10_000),
  WS_CREDENTIAL_RECHECK_MS: integer(1_000, 3_600_000).default(30_000),
  WS_KEEPALIVE_MS: integer(500, 300_000).default(12_000),
  TRUST_PROXY: z
    .string()
    .transform((value, ctx) => {
      const parsed = parseTrustProxy(value);
      if (typeof parsed === 'string') {
        ctx.addIssue({ code: 'custom', message: parsed });
        return z.NEVER;
      }
      return parsed;
    })
    .optional(),
  MAX_QUERY_DEPTH: integer(2, 100).default(10),
  MAX_ALIASES: integer(0, 1_000).default(30),
  MAX_TOKENS: integer(100, 100_000).default(2_000),
  MAX_QUERY_COST: integer(10, 10_000_000).default(5_000),
  MAX_EXPANDED_NODES: integer(10, 1_000_000).default(2_000),
  MAX_RESPONSE_ITEMS: integer(100, 10_000_000).default(20_000),
  MAX_VARIABLES_DEPTH: integer(2, 1_000).default(32),
  INFLIGHT_COST_BUDGET: integer(10, 1_000_000_000).default(250_000),
  INFLIGHT_QUEUE_MS: integer(0, 60_000).default(1_000),
  MAX_BODY_BYTES: integer(1_024, 16 * 1024 * 1024).default(65_536),
  RATE_LIMIT_POINTS: integer(0, 1_000_000_000).optional(),
  RATE_LIMIT_WINDOW_S: integer(1, 86_400).default(60),
  HEALTH_CACHE_MS: integer(0, 60_000).default(1_000),
  HEALTH_RATE_LIMIT: integer(1, 1_000_000).default(30),
  CORS_ORIGINS: z.string().optional(),
  METRICS_TOKEN: z.string().min(16, { message: 'must be at least 16 characters' }).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: urlWithProtocols(['https:', 'http:']).optional(),
  WEB_APP: booleanString.default(true),
  WEB_APP_DIR: z.string().min(1).default('./web/dist'),
});

/** Variables whose values must never be echoed in a configuration error. */
const SECRET_VARIABLES: ReadonlySet<string> = new Set([
  'JWT_SECRET',
  'JWT_PUBLIC_KEY',
  'METRICS_TOKEN',
  'ALPACA_KEY_ID',
  'ALPACA_SECRET_KEY',
  'POLYGON_API_KEY',
]);

export type AuthMode = 'off' | 'apikey' | 'jwt' | 'apikey+jwt';

export type Config = Readonly<{
  env: 'development' | 'production' | 'test';
  isProduction: boolean;
  host: string;
  port: number;
  log: { level: string; format: 'pretty' | 'json' };
  dataDir: string;
  database: { kind: 'postgres'; url: string; poolMax: number } | { kind: 'pglite'; dataDir: string };
  redis: { url: string; keyPrefix: string } | undefined;
  /** Key prefix used by the in-process engines too, so names look the same in logs either way. */
  keyPrefix: string;
  graphql: { introspection: boolean; landingPage: 'sandbox' | 'production' };
  shutdownTimeoutMs: number;
  modelsDir: string;
  /** How often new model versions are looked for and the serving record re-read; 0 = never. */
  modelsRescanIntervalMs: number;
  predictions: { maxSymbolsPerRequest: number };
  inference: { maxBatchSize: number; maxQueueDelayMs: number };
  marketFetch: { maxDelayMs: number; timeoutMs: number; retries: number; breakerResetMs: number };
  /** Time to live per cache tier, in ms; 0 turns the tier off. */
  cacheTtlMs: { market: number; features: number; predictions: number };
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
  history: { flushIntervalMs: number; maxBufferRows: number; spillDir: string; retentionDays: number };
  /** How often realized outcomes are filled in; 0 turns the periodic pass off. */
  outcomes: { intervalMs: number };
  /** `modelMetrics` estimates: bootstrap replicates, and the most resolved rows one answer reads for them. */
  metricsEstimates: { replicates: number; maxRows: number };
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

/** One line of the README's configuration table. */
export const CONFIG_DOCS: ReadonlyArray<{ name: keyof z.input<typeof envSchema>; default: string; description: string }> = [
  {
    name: 'NODE_ENV',
    default: 'development',
    description: '`development`, `test` or `production` (JSON logs, production landing page, introspection off, errors masked)',
  },
  { name: 'HOST', default: '127.0.0.1', description: 'interface to listen on (`0.0.0.0` in containers)' },
  { name: 'PORT', default: '4000', description: 'HTTP and WebSocket port (`0` picks a free one)' },
  { name: 'LOG_LEVEL', default: 'info', description: 'pino level: fatal, error, warn, info, debug, trace, silent' },
  { name: 'LOG_FORMAT', default: 'pretty (json in production)', description: '`pretty` or `json`' },
  {
    name: 'DATA_DIR',
    default: './data',
    description:
      'local state: the embedded PostgreSQL (PGlite) in `DATA_DIR/pglite`, history rows waiting for the database in `DATA_DIR/history-spill` (one instance per DATA_DIR)',
  },
  {
    name: 'DATABASE_URL',
    default: '(unset: embedded PGlite)',
    description: '`postgres://user:pass@host:port/db` to use PostgreSQL (TimescaleDB features when the extension exists)',
  },
  { name: 'DATABASE_POOL_MAX', default: '10', description: 'PostgreSQL pool size' },
  {
    name: 'REDIS_URL',
    default: '(unset: in-process)',
    description: '`redis://host:port/db` for cache, pub/sub and limits shared between instances',
  },
  {
    name: 'REDIS_KEY_PREFIX',
    default: 'sibyl:',
    description: 'prefix of every Redis key and channel (lets several deployments share one Redis)',
  },
  { name: 'INTROSPECTION', default: 'true (false in production)', description: 'allow GraphQL introspection' },
  {
    name: 'SHUTDOWN_TIMEOUT_MS',
    default: '8000',
    description: 'how long a SIGTERM drain may take before the process gives up and exits 1',
  },
  { name: 'MODELS_DIR', default: './models', description: 'model versions: `<strategy>/<version>/model.onnx` + `manifest.json`' },
  {
    name: 'MODELS_RESCAN_INTERVAL_MS',
    default: '10000',
    description:
      'how often the models directory is rescanned for new versions (loaded, never activated) and the active-version record re-read from the database (0 = never)',
  },
  { name: 'MAX_SYMBOLS_PER_REQUEST', default: '200', description: 'most symbols one `predictions` call may ask for' },
  {
    name: 'INFERENCE_MAX_BATCH',
    default: '1024',
    description: 'most rows per inference run of predictions; larger batches are split (an explanation batch is one run: see Explanations)',
  },
  {
    name: 'INFERENCE_MAX_QUEUE_DELAY_US',
    default: '0',
    description:
      'how long (µs, ≤ 1000) a request may wait for others to share its inference run; 0 still merges everything asked in the same event-loop turn',
  },
  {
    name: 'MARKET_FETCH_MAX_DELAY_US',
    default: '0',
    description:
      'how long (µs, ≤ 1000) a market-data fetch may wait for concurrent requests to join it; 0 merges only what is asked in the same event-loop turn',
  },
  { name: 'MARKET_FETCH_TIMEOUT_MS', default: '2000', description: 'per attempt: a market-data fetch slower than this counts as failed' },
  {
    name: 'MARKET_FETCH_RETRIES',
    default: '1',
    description: 'extra attempts (jittered exponential backoff) before a market-data fetch counts as failed',
  },
  {
    name: 'MARKET_BREAKER_RESET_MS',
    default: '10000',
    description:
      'after the market-data circuit opens, how long predictions are served from the last good bars (`stale: true`) before one trial fetch',
  },
  { name: 'MARKET_CACHE_TTL_MS', default: '1000', description: 'market-data cache lifetime (0 = off)' },
  { name: 'FEATURES_CACHE_TTL_MS', default: '300000', description: 'feature-vector cache lifetime (0 = off)' },
  {
    name: 'PREDICTIONS_CACHE_TTL_MS',
    default: '300000',
    description: 'prediction cache lifetime, keyed by model version + featuresHash (0 = off)',
  },
  {
    name: 'HISTORY_FLUSH_INTERVAL_MS',
    default: '1000',
    description: 'how often recorded predictions are written to the database, in batches',
  },
  {
    name: 'HISTORY_MAX_BUFFER_ROWS',
    default: '20000',
    description:
      'rows kept in memory while the database is unreachable; beyond it they spill to `DATA_DIR/history-spill` and are written on recovery',
  },
  {
    name: 'HISTORY_RETENTION_DAYS',
    default: '0',
    description:
      'with TimescaleDB only: drop history chunks older than this many days (0 = keep everything); ignored on plain PostgreSQL and PGlite',
  },
  {
    name: 'OUTCOMES_INTERVAL_MS',
    default: '60000',
    description:
      'how often the gateway fills in realized outcomes of recorded predictions whose horizon has passed (0 = never; `npm run outcomes` does it on demand)',
  },
  {
    name: 'METRICS_BOOTSTRAP_REPLICATES',
    default: '1000',
    description:
      'bootstrap replicates behind every `modelMetrics` interval (`estimates`; 100-20000): more gives steadier interval ends at proportional CPU cost',
  },
  {
    name: 'METRICS_ESTIMATES_MAX_ROWS',
    default: '1000000',
    description:
      'most resolved predictions one `modelMetrics` answer reads to compute `estimates`; beyond it `estimates` is empty and `estimatesNote` says why (narrow the query with `from`/`to`/`symbol`)',
  },
  {
    name: 'SYNTHETIC_TICK_MS',
    default: '5000',
    description: 'when no bars are stored, how often the synthetic market adds a bar per symbol (0 = never)',
  },
  { name: 'SYNTHETIC_SEED', default: '1', description: 'seed of the synthetic market' },
  {
    name: 'MARKET_REPLAY_FROM',
    default: '(unset: no replay)',
    description:
      'replay the stored bars as a live stream from this date (`2020-01-02`): queries and signals see the market as of the replay clock; stored bars are never changed (for demos and backtests, one instance)',
  },
  {
    name: 'MARKET_REPLAY_TICK_MS',
    default: '1000',
    description:
      'with MARKET_REPLAY_FROM, how often the replay clock moves to the next stored bar time (one trading day per tick for daily bars)',
  },
  {
    name: 'MARKET_PROVIDER',
    default: 'store',
    description:
      '`store`: stored bars (the synthetic market when none are stored); `alpaca` / `polygon`: backfill from the vendor into the bars store, then stream or poll new daily bars (see Market data providers)',
  },
  {
    name: 'ALPACA_KEY_ID',
    default: '(unset)',
    description: 'Alpaca API key id (header `APCA-API-KEY-ID`); required with MARKET_PROVIDER=alpaca; never logged',
  },
  {
    name: 'ALPACA_SECRET_KEY',
    default: '(unset)',
    description: 'Alpaca API secret key (header `APCA-API-SECRET-KEY`); required with MARKET_PROVIDER=alpaca; never logged',
  },
  { name: 'ALPACA_FEED', default: 'iex', description: '`iex` (free plan) or `sip` (paid plan): the feed of both REST bars and the stream' },
  {
    name: 'ALPACA_DATA_URL',
    default: 'https://data.alpaca.markets',
    description: 'base URL of the REST API (`/v2/stocks/bars` is appended); point it at a proxy or a test server',
  },
  {
    name: 'ALPACA_STREAM_URL',
    default: 'wss://stream.data.alpaca.markets/v2/{ALPACA_FEED}',
    description: 'real-time stream URL; a URL with no path gets `/v2/{ALPACA_FEED}` appended',
  },
  {
    name: 'ALPACA_SYMBOLS',
    default: '(unset: SIGNALS_WATCHLIST + the 20 default symbols)',
    description: 'symbols backfilled and subscribed, comma-separated',
  },
  {
    name: 'ALPACA_BACKFILL_DAYS',
    default: '200',
    description: 'calendar days of daily bars fetched at start and after a dropped stream at most (features need about 100 trading days)',
  },
  {
    name: 'POLYGON_API_KEY',
    default: '(unset)',
    description:
      'Polygon.io API key (sent as `Authorization: Bearer`, never in a URL); required with MARKET_PROVIDER=polygon; never logged',
  },
  {
    name: 'POLYGON_REST_URL',
    default: 'https://api.polygon.io',
    description: 'base URL of the REST API (`/v2/aggs/ticker/...` is appended); point it at a proxy or a test server',
  },
  {
    name: 'POLYGON_STREAM_URL',
    default: 'wss://socket.polygon.io/stocks',
    description:
      'stocks WebSocket (`wss://delayed.polygon.io/stocks` on delayed plans); `off` for plans without WebSockets: REST polling after each session',
  },
  {
    name: 'POLYGON_SYMBOLS',
    default: '(unset: SIGNALS_WATCHLIST + the 20 default symbols)',
    description: 'symbols backfilled and subscribed, comma-separated',
  },
  {
    name: 'POLYGON_BACKFILL_DAYS',
    default: '200',
    description: 'calendar days of daily bars fetched at start and after a dropped stream at most (two requests per symbol)',
  },
  {
    name: 'POLYGON_MAX_SYMBOLS',
    default: '(unset: no bound)',
    description:
      'most symbols followed at once (configured plus what subscribers ask for); past it, extra symbols are refused and readiness says so',
  },
  {
    name: 'SIGNALS_INTERVAL_MS',
    default: '300000',
    description:
      'live signals are computed on every new bar and also on this interval, for providers without bar events (0 = only on bars)',
  },
  {
    name: 'SIGNALS_WATCHLIST',
    default: '(none)',
    description: 'comma-separated symbols the signals monitor computes on every tick for every strategy, subscribed or not',
  },
  {
    name: 'SIGNALS_LEASE_MS',
    default: '10000',
    description:
      'with REDIS_URL, lifetime of the lease that lets one instance run the signals monitor; another takes over within 4/3 of it when the holder dies',
  },
  {
    name: 'SIGNALS_MAX_REPLAY',
    default: '1000',
    description: 'most recorded predictions one `signals(since:)` resume replays; a `since` further back is refused',
  },
  {
    name: 'SIGNALS_RECORD_WAIT_MS',
    default: '0',
    description:
      'how long the monitor may wait for new predictions to be committed to history before publishing them (0 = publish at once: each instance also remembers recent signals for resuming clients)',
  },
  {
    name: 'WS_MAX_SUBSCRIPTIONS_PER_CONNECTION',
    default: '20',
    description: 'most subscriptions one WebSocket connection may have open at once',
  },
  {
    name: 'AUTH_MODE',
    default: 'off (apikey in production)',
    description: '`off`, `apikey`, `jwt` or `apikey+jwt`; `off` logs a warning and is refused in production (see Access control)',
  },
  {
    name: 'JWT_SECRET',
    default: '(unset)',
    description: 'HS256 key (≥ 32 characters) for JWTs; give one of JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL when AUTH_MODE accepts JWTs',
  },
  { name: 'JWT_PUBLIC_KEY', default: '(unset)', description: 'PEM (SPKI) public key for RS256 JWTs' },
  { name: 'JWT_JWKS_URL', default: '(unset)', description: 'JWKS URL of the identity provider (keys fetched and cached by `jose`)' },
  { name: 'JWT_ISSUER', default: '(unset: not checked)', description: 'required `iss` of JWTs' },
  { name: 'JWT_AUDIENCE', default: '(unset: not checked)', description: 'required `aud` of JWTs' },
  {
    name: 'JWT_ROLE_CLAIM',
    default: 'role',
    description:
      'claim holding the role (`viewer`, `analyst`, `admin`): a dotted path such as `realm_access.role` is followed through nested objects (a top-level claim literally named so is ignored); a URL (`https://sibyl.example/role`) is one namespaced claim',
  },
  {
    name: 'JWT_CLOCK_TOLERANCE_S',
    default: '30',
    description:
      "seconds of clock skew allowed on a JWT's `exp` and `nbf`; a WebSocket connection authenticated with a JWT is closed (4403) this long after its `exp`",
  },
  {
    name: 'JWT_MAX_TTL_S',
    default: '86400',
    description:
      'longest lifetime a JWT may have: `exp` is required, and a token whose `exp` is further than this from its `iat` or from now is refused',
  },
  {
    name: 'API_KEY_REMEMBER_S',
    default: '300',
    description:
      'while PostgreSQL cannot answer, API keys it confirmed within this many seconds are still accepted (others get `UNAVAILABLE`, HTTP 503); 0 = never (see Operating it)',
  },
  {
    name: 'API_KEY_REMEMBER_MAX',
    default: '10000',
    description: 'most API keys remembered for that (least recently used are forgotten first)',
  },
  {
    name: 'WS_KEEPALIVE_MS',
    default: '12000',
    description:
      'WebSocket ping interval; a client that has not answered a ping within the same time is disconnected (frees sockets of vanished clients behind NAT or load balancers)',
  },
  {
    name: 'WS_CREDENTIAL_RECHECK_MS',
    default: '30000',
    description:
      'how often open WebSocket connections re-check their API key; a revoked one is closed with 4403 (a revocation made through this deployment closes them at once; this bounds the rest, e.g. `npm run keys` without REDIS_URL)',
  },
  {
    name: 'TRUST_PROXY',
    default: '(unset: off)',
    description:
      'believe `X-Forwarded-For` (the client address of logs and of per-IP rate limits) only when the connection comes from one of these proxies: comma-separated addresses or CIDRs (`10.0.0.0/8,127.0.0.1`; also `loopback`, `linklocal`, `uniquelocal`). `true` and hop counts are refused: either would let a client that reaches the gateway directly pick its own address',
  },
  { name: 'MAX_QUERY_DEPTH', default: '10', description: 'deepest selection nesting an operation may have' },
  { name: 'MAX_ALIASES', default: '30', description: 'most aliases in one operation' },
  { name: 'MAX_TOKENS', default: '2000', description: 'most lexical tokens in one document (parsing stops beyond it)' },
  {
    name: 'MAX_QUERY_COST',
    default: '5000',
    description:
      'most cost points one operation may cost (1 per field once fragments are expanded, times the number of symbols for `predictions`/list arguments, times `last`/`first`/`limit`)',
  },
  {
    name: 'MAX_EXPANDED_NODES',
    default: '2000',
    description:
      'most fields one operation may have once its fragments are expanded (each alias counted); a fragment spread counts what it expands to',
  },
  {
    name: 'MAX_RESPONSE_ITEMS',
    default: '20000',
    description:
      'most list items one query or mutation response may hold, counted as it is built; past it the whole operation is refused (`QUERY_TOO_COMPLEX`, `limit: "responseItems"`)',
  },
  {
    name: 'MAX_VARIABLES_DEPTH',
    default: '32',
    description: "deepest nesting of an operation's variables (`BAD_USER_INPUT`, checked before anything walks them)",
  },
  {
    name: 'INFLIGHT_COST_BUDGET',
    default: '250000',
    description:
      'most cost points of operations executing at once on one instance (bounds their memory); when full an operation waits up to `INFLIGHT_QUEUE_MS`, then `RATE_LIMITED`. Must be at least `MAX_QUERY_COST` to be useful: a costlier operation takes the whole budget',
  },
  {
    name: 'INFLIGHT_QUEUE_MS',
    default: '1000',
    description:
      'how long an operation may wait for room in `INFLIGHT_COST_BUDGET` before it is refused with `RATE_LIMITED` (`retryAfterSeconds`)',
  },
  { name: 'MAX_BODY_BYTES', default: '65536', description: 'largest HTTP request body and WebSocket message' },
  {
    name: 'RATE_LIMIT_POINTS',
    default: '0 = off (60000 in production)',
    description: 'cost points each API key / JWT subject (or IP, when anonymous) may spend per window',
  },
  { name: 'RATE_LIMIT_WINDOW_S', default: '60', description: 'rate-limit window in seconds' },
  {
    name: 'HEALTH_CACHE_MS',
    default: '1000',
    description:
      'the component report (`/health/ready`, the `health` field) is computed at most once per this many ms, however many ask; 0 = every request probes (concurrent ones still share one probe)',
  },
  {
    name: 'HEALTH_RATE_LIMIT',
    default: '30',
    description: 'requests per second each client address may make to `/health/*`, per instance; beyond: 429 with `Retry-After`',
  },
  {
    name: 'CORS_ORIGINS',
    default: '(unset: no cross-origin calls)',
    description: 'comma-separated origins allowed to call from browsers, e.g. `https://app.example.com`',
  },
  {
    name: 'METRICS_TOKEN',
    default: '(unset: /metrics open)',
    description: 'when set, `GET /metrics` needs `Authorization: Bearer <token>`',
  },
  {
    name: 'WEB_APP',
    default: 'true',
    description: 'serve the reference web app (built into `WEB_APP_DIR` by `npm install` / `npm start`) at `/`',
  },
  { name: 'WEB_APP_DIR', default: './web/dist', description: 'where the built web app is; when it is missing, `/` says how to build it' },
  {
    name: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    default: '(unset: no tracing)',
    description: 'OTLP/HTTP collector base URL (e.g. `http://127.0.0.1:4318`); traces go to `<url>/v1/traces`',
  },
];

/** Thrown by {@link loadConfig}; its message names every bad variable, one per line. */
export class ConfigError extends Error {
  constructor(readonly problems: ReadonlyArray<{ variable: string; problem: string }>) {
    super(`Invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function marketProviderSettings(env: z.output<typeof envSchema>): Config['marketProvider'] {
  if (env.MARKET_PROVIDER === 'store') return { kind: 'store' };
  if (env.MARKET_PROVIDER === 'polygon') return polygonSettings(env);
  const missing = (['ALPACA_KEY_ID', 'ALPACA_SECRET_KEY'] as const).filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new ConfigError(
      missing.map((variable) => ({ variable, problem: 'required with MARKET_PROVIDER=alpaca (the keys from the Alpaca dashboard)' })),
    );
  }
  if (env.MARKET_REPLAY_FROM) {
    throw new ConfigError([
      { variable: 'MARKET_REPLAY_FROM', problem: 'replays stored bars; it cannot be combined with MARKET_PROVIDER=alpaca' },
    ]);
  }
  return {
    kind: 'alpaca',
    keyId: env.ALPACA_KEY_ID!,
    secretKey: env.ALPACA_SECRET_KEY!,
    feed: env.ALPACA_FEED,
    dataUrl: env.ALPACA_DATA_URL.replace(/\/+$/, '').replace(/\/v2$/, ''),
    streamUrl: alpacaStreamUrl(env.ALPACA_STREAM_URL, env.ALPACA_FEED),
    symbols: env.ALPACA_SYMBOLS,
    backfillDays: env.ALPACA_BACKFILL_DAYS,
  };
}

function polygonSettings(env: z.output<typeof envSchema>): PolygonSettings {
  const problems = [
    ...(env.POLYGON_API_KEY
      ? []
      : [{ variable: 'POLYGON_API_KEY', problem: 'required with MARKET_PROVIDER=polygon (the key from the Polygon dashboard)' }]),
    ...(env.MARKET_REPLAY_FROM
      ? [{ variable: 'MARKET_REPLAY_FROM', problem: 'replays stored bars; it cannot be combined with MARKET_PROVIDER=polygon' }]
      : []),
  ];
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    kind: 'polygon',
    apiKey: env.POLYGON_API_KEY!,
    restUrl: env.POLYGON_REST_URL.replace(/\/+$/, ''),
    streamUrl: env.POLYGON_STREAM_URL === 'off' ? undefined : env.POLYGON_STREAM_URL,
    symbols: env.POLYGON_SYMBOLS,
    backfillDays: env.POLYGON_BACKFILL_DAYS,
    maxSymbols: env.POLYGON_MAX_SYMBOLS,
  };
}

/** A stream URL with no path (a proxy or a test server's root) gets the documented `/v2/{feed}`. */
function alpacaStreamUrl(configured: string | undefined, feed: 'iex' | 'sip'): string {
  const url = new URL(configured ?? 'wss://stream.data.alpaca.markets');
  if (url.pathname === '' || url.pathname === '/') url.pathname = `/v2/${feed}`;
  return url.toString();
}

/**
 * Validates the environment once. Empty strings count as unset, so `PORT=` falls back to the default
 * instead of failing, which is what shells and `.env` files usually mean by it.
 */
export function loadConfig(environment: Readonly<Record<string, string | undefined>>, cwd = process.cwd()): Config {
  const known = Object.fromEntries(
    Object.keys(envSchema.shape)
      .map((name) => [name, environment[name]])
      .filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = envSchema.safeParse(known);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => ({
        variable: String(issue.path[0] ?? '(environment)'),
        problem: `${issue.message}${SECRET_VARIABLES.has(String(issue.path[0])) ? '' : describeReceived(known[String(issue.path[0])])}`,
      })),
    );
  }
  const env = parsed.data;
  const isProduction = env.NODE_ENV === 'production';
  const auth = authSettings(env, isProduction);
  const dataDir = path.resolve(cwd, env.DATA_DIR);
  return Object.freeze({
    env: env.NODE_ENV,
    isProduction,
    host: env.HOST,
    port: env.PORT,
    log: { level: env.LOG_LEVEL, format: env.LOG_FORMAT ?? (isProduction ? 'json' : 'pretty') },
    dataDir,
    database: env.DATABASE_URL
      ? { kind: 'postgres', url: env.DATABASE_URL, poolMax: env.DATABASE_POOL_MAX }
      : { kind: 'pglite', dataDir: path.join(dataDir, 'pglite') },
    redis: env.REDIS_URL ? { url: env.REDIS_URL, keyPrefix: env.REDIS_KEY_PREFIX } : undefined,
    keyPrefix: env.REDIS_KEY_PREFIX,
    graphql: {
      introspection: env.INTROSPECTION ?? !isProduction,
      landingPage: isProduction ? 'production' : 'sandbox',
    },
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    modelsDir: path.resolve(cwd, env.MODELS_DIR),
    modelsRescanIntervalMs: env.MODELS_RESCAN_INTERVAL_MS,
    predictions: { maxSymbolsPerRequest: env.MAX_SYMBOLS_PER_REQUEST },
    inference: { maxBatchSize: env.INFERENCE_MAX_BATCH, maxQueueDelayMs: env.INFERENCE_MAX_QUEUE_DELAY_US / 1000 },
    marketFetch: {
      maxDelayMs: env.MARKET_FETCH_MAX_DELAY_US / 1000,
      timeoutMs: env.MARKET_FETCH_TIMEOUT_MS,
      retries: env.MARKET_FETCH_RETRIES,
      breakerResetMs: env.MARKET_BREAKER_RESET_MS,
    },
    cacheTtlMs: { market: env.MARKET_CACHE_TTL_MS, features: env.FEATURES_CACHE_TTL_MS, predictions: env.PREDICTIONS_CACHE_TTL_MS },
    synthetic: { tickMs: env.SYNTHETIC_TICK_MS, seed: env.SYNTHETIC_SEED },
    replay: env.MARKET_REPLAY_FROM ? { from: env.MARKET_REPLAY_FROM, tickMs: env.MARKET_REPLAY_TICK_MS } : undefined,
    marketProvider: marketProviderSettings(env),
    signals: {
      intervalMs: env.SIGNALS_INTERVAL_MS,
      watchlist: env.SIGNALS_WATCHLIST ?? [],
      leaseMs: env.SIGNALS_LEASE_MS,
      maxReplay: env.SIGNALS_MAX_REPLAY,
      recordWaitMs: env.SIGNALS_RECORD_WAIT_MS,
    },
    ws: {
      maxSubscriptionsPerConnection: env.WS_MAX_SUBSCRIPTIONS_PER_CONNECTION,
      credentialRecheckMs: env.WS_CREDENTIAL_RECHECK_MS,
      keepAliveMs: env.WS_KEEPALIVE_MS,
    },
    trustProxy: env.TRUST_PROXY ?? false,
    history: {
      flushIntervalMs: env.HISTORY_FLUSH_INTERVAL_MS,
      maxBufferRows: env.HISTORY_MAX_BUFFER_ROWS,
      spillDir: path.join(dataDir, 'history-spill'),
      retentionDays: env.HISTORY_RETENTION_DAYS,
    },
    outcomes: { intervalMs: env.OUTCOMES_INTERVAL_MS },
    metricsEstimates: { replicates: env.METRICS_BOOTSTRAP_REPLICATES, maxRows: env.METRICS_ESTIMATES_MAX_ROWS },
    auth,
    limits: {
      maxDepth: env.MAX_QUERY_DEPTH,
      maxAliases: env.MAX_ALIASES,
      maxTokens: env.MAX_TOKENS,
      maxCost: env.MAX_QUERY_COST,
      maxNodes: env.MAX_EXPANDED_NODES,
      maxResponseItems: env.MAX_RESPONSE_ITEMS,
      maxVariablesDepth: env.MAX_VARIABLES_DEPTH,
      inflightCostBudget: env.INFLIGHT_COST_BUDGET,
      inflightQueueMs: env.INFLIGHT_QUEUE_MS,
      maxBodyBytes: env.MAX_BODY_BYTES,
      ratePoints: env.RATE_LIMIT_POINTS ?? (isProduction ? 60_000 : 0),
      rateWindowSeconds: env.RATE_LIMIT_WINDOW_S,
    },
    health: { cacheMs: env.HEALTH_CACHE_MS, rateLimitPerSecond: env.HEALTH_RATE_LIMIT },
    corsOrigins: (env.CORS_ORIGINS ?? '')
      .split(',')
      .map((o) => o.trim())
      .filter((o) => o.length > 0),
    metricsToken: env.METRICS_TOKEN,
    tracing: env.OTEL_EXPORTER_OTLP_ENDPOINT ? { otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT } : undefined,
    webApp: env.WEB_APP ? { dir: path.resolve(cwd, env.WEB_APP_DIR) } : undefined,
  } satisfies Config);
}

/**
 * Access control settings. Production fails closed: with no AUTH_MODE it requires API keys, and `off`
 * is refused, so a deployment cannot be opened by forgetting a variable. A mode that accepts JWTs needs
 * exactly one way to verify them.
 */
function authSettings(env: z.output<typeof envSchema>, isProduction: boolean): Config['auth'] {
  const mode = env.AUTH_MODE ?? (isProduction ? 'apikey' : 'off');
  const problems: Array<{ variable: string; problem: string }> = [];
  if (mode === 'off' && isProduction) {
    problems.push({ variable: 'AUTH_MODE', problem: 'off is not allowed in production: use apikey, jwt or apikey+jwt' });
  }
  const keys = [
    env.JWT_SECRET !== undefined && ({ kind: 'secret', secret: env.JWT_SECRET } as const),
    env.JWT_PUBLIC_KEY !== undefined && ({ kind: 'publicKey', pem: env.JWT_PUBLIC_KEY } as const),
    env.JWT_JWKS_URL !== undefined && ({ kind: 'jwks', url: env.JWT_JWKS_URL } as const),
  ].filter((k) => k !== false);
  const acceptsJwt = mode === 'jwt' || mode === 'apikey+jwt';
  if (acceptsJwt && keys.length !== 1) {
    problems.push({
      variable: 'AUTH_MODE',
      problem: `${mode} needs exactly one of JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL (got ${keys.length})`,
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    mode,
    jwt:
      acceptsJwt && keys[0]
        ? {
            key: keys[0],
            issuer: env.JWT_ISSUER,
            audience: env.JWT_AUDIENCE,
            roleClaim: env.JWT_ROLE_CLAIM,
            clockToleranceSeconds: env.JWT_CLOCK_TOLERANCE_S,
            maxTtlSeconds: env.JWT_MAX_TTL_S,
          }
        : undefined,
    keyMemory: { ttlMs: env.API_KEY_REMEMBER_S * 1000, max: env.API_KEY_REMEMBER_MAX },
  };
}

/** Names proxy-addr (fastify's trustProxy) knows for address ranges. */
const PROXY_RANGE_NAMES: ReadonlySet<string> = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * TRUST_PROXY → the proxies' addresses for fastify's `trustProxy`, or a message saying what is wrong.
 * No hop count: it trusts whoever connects, whoever that is (fastify ignores one for that reason).
 */
function parseTrustProxy(value: string): false | string[] | string {
  const text = value.trim().toLowerCase();
  if (text === 'false') return false;
  if (text === 'true')
    return "true would let any client choose its own address (and rate-limit bucket): give the proxies' addresses or CIDRs";
  if (/^\d+$/.test(text))
    return "a hop count cannot tell a proxy from a client that sends the header itself: give the proxies' addresses or CIDRs";
  const entries = text
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
  if (entries.length === 0) return 'expected comma-separated addresses/CIDRs';
  for (const entry of entries) {
    if (PROXY_RANGE_NAMES.has(entry)) continue;
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    const maxPrefix = family === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= maxPrefix);
    if (family === 0 || !prefixOk || extra !== undefined) {
      // Never echo a URL: a misplaced connection string may carry a password.
      const shown = /:\/\//.test(entry) ? 'a URL' : JSON.stringify(entry.length > 40 ? `${entry.slice(0, 40)}…` : entry);
      return `${shown} is not an IP address, a CIDR (10.0.0.0/8) or one of loopback, linklocal, uniquelocal`;
    }
  }
  return entries;
}

function describeReceived(value: unknown): string {
  if (typeof value !== 'string') return '';
  // URLs may carry passwords: show only that something was given, never its text.
  if (/:\/\//.test(value)) return ' (got an unparseable or unsupported URL)';
  return ` (got ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)})`;
}

/** Replaces the password in a connection URL so it can be logged. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * For entry points (the server and the CLIs): the validated config, or `undefined` after printing
 * every bad variable to stderr, so the caller can exit 1 without a stack trace.
 */
export function configFromEnvironment(environment: Readonly<Record<string, string | undefined>> = process.env): Config | undefined {
  try {
    return loadConfig(environment);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return undefined;
  }
}

/**
 * Only the log settings, for tools that must run where the gateway's own settings may be incomplete
 * (the web build inside `npm install`). Invalid values fall back to the defaults instead of failing:
 * a log format is never a reason to fail an install.
 */
export function logSettingsFromEnvironment(environment: Readonly<Record<string, string | undefined>> = process.env): Config['log'] {
  const parsed = envSchema.pick({ NODE_ENV: true, LOG_LEVEL: true, LOG_FORMAT: true }).safeParse(environment);
  const env = parsed.success ? parsed.data : { NODE_ENV: 'development', LOG_LEVEL: 'info', LOG_FORMAT: undefined };
  return { level: env.LOG_LEVEL, format: env.LOG_FORMAT ?? (env.NODE_ENV === 'production' ? 'json' : 'pretty') };
}
