import { z } from 'zod';
import {
  booleanString,
  commaList,
  cronExpression,
  decimal,
  integer,
  strategyNames,
  tickers,
  timeZone,
  token,
  trustedProxies,
  urlWithProtocols,
  utcDate,
} from './schema-kit.js';
import type { Variable, ValueOf } from './schema-kit.js';
import type { ConfigAt, ConfigPath } from './types.js';

/**
 * Every environment variable Sibyl reads: one entry each, the only place its name, schema, default and
 * meaning are written. The zod schema and the README's configuration table are derived from it
 * (config.ts, and the README test in test/unit/config/config.test.ts, which prints the rows to paste).
 *
 * To add a variable, add one entry here:
 *   - `schema` reads the text (helpers in schema-kit.ts); `default` is the text used when it is unset,
 *     read by the schema like a given value; without one the value may be undefined;
 *   - `doc` (and `shown`, when the README's default column should say something else) for the README;
 *   - `at`: the Config field it fills (add the field to the Config type in types.ts, with a doc comment if
 *     its name does not say it all). The compiler checks the path and that the value fits the field.
 *     Leave `at` out only when the value depends on other variables: then a rule in config.ts reads it.
 * Then paste the row the README test prints into README.md's configuration table.
 *
 * Entries are in the README's order. Over 400 lines because it is one table; splitting it would put the
 * variables of one concern in several files.
 */
export const VARIABLES = {
  NODE_ENV: {
    schema: z.enum(['development', 'production', 'test']),
    default: 'development',
    doc: '`development`, `test` or `production` (JSON logs, introspection off, errors masked, `EXPLORER=graphiql`)',
  },
  HOST: {
    schema: z.string().min(1),
    default: '127.0.0.1',
    at: 'host',
    doc: 'interface to listen on (`0.0.0.0` in containers)',
  },
  PORT: {
    schema: integer(0, 65535),
    default: '4000',
    at: 'port',
    doc: 'HTTP and WebSocket port (`0` picks a free one)',
  },
  LOG_LEVEL: {
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    default: 'info',
    at: 'log.level',
    doc: 'pino level: fatal, error, warn, info, debug, trace, silent',
  },
  LOG_FORMAT: {
    schema: z.enum(['pretty', 'json']),
    shown: 'pretty (json in production)',
    doc: '`pretty` or `json`',
  },
  DATA_DIR: {
    schema: z.string().min(1),
    default: './data',
    doc:
      'local state: the embedded PostgreSQL (PGlite) in `DATA_DIR/pglite`, history rows waiting for the database in ' +
      '`DATA_DIR/history-spill` (one instance per DATA_DIR)',
  },
  DATABASE_URL: {
    schema: urlWithProtocols(['postgres:', 'postgresql:']),
    shown: '(unset: embedded PGlite)',
    doc: '`postgres://user:pass@host:port/db` to use PostgreSQL (TimescaleDB features when the extension exists)',
  },
  DATABASE_POOL_MAX: {
    schema: integer(1, 200),
    default: '10',
    doc: 'PostgreSQL pool size',
  },
  BARS_CHUNK_DAYS: {
    schema: integer(1, 3_650),
    default: '365',
    at: 'barsChunkDays',
    doc:
      'with TimescaleDB only: days of stored bars per `market_bars` chunk, applied at start-up to chunks created from then on ' +
      '(docs/decisions/timescaledb-chunks.md); ignored on plain PostgreSQL and PGlite',
  },
  REDIS_URL: {
    schema: urlWithProtocols(['redis:', 'rediss:']),
    shown: '(unset: in-process)',
    doc: '`redis://host:port/db` for cache, pub/sub and limits shared between instances',
  },
  REDIS_KEY_PREFIX: {
    schema: z.string().regex(/^[A-Za-z0-9:_.-]{1,64}$/, { message: 'expected 1-64 of A-Z a-z 0-9 : _ . -' }),
    default: 'sibyl:',
    at: 'keyPrefix',
    doc: 'prefix of every Redis key and channel (lets several deployments share one Redis)',
  },
  INTROSPECTION: {
    schema: booleanString,
    shown: 'true (false in production)',
    doc: 'allow GraphQL introspection',
  },
  GRAPHQL_JIT: {
    schema: z.enum(['on', 'off'], { message: 'expected on or off' }).transform((v) => v === 'on'),
    default: 'on',
    at: 'graphql.jit',
    doc:
      '`on`: queries and mutations run compiled by graphql-jit, once per document and operation (one that cannot be ' +
      'compiled runs with graphql-js); `off`: graphql-js runs every operation. Subscriptions always run with graphql-js',
  },
  GRAPHQL_JIT_CACHE_SIZE: {
    schema: integer(1, 100_000),
    default: '500',
    at: 'graphql.jitCacheSize',
    doc:
      'compiled operations kept in memory, least recently used dropped first (a dropped one is compiled again when next sent); ' +
      'the web app’s `predictions` query compiled is ~35 KiB',
  },
  TRUSTED_DOCUMENTS_ONLY: {
    schema: booleanString,
    default: 'false',
    doc:
      'callers below the analyst role (viewers, anonymous) may run only the registered trusted documents (the web ' +
      "app's operations), others are refused 403 `FORBIDDEN_OPERATION`; analysts and admins run anything (see Trusted documents)",
  },
  TRUSTED_DOCUMENTS_FILE: {
    schema: z.string().min(1),
    default: './web/src/generated/persisted-documents.json',
    doc: 'the registered documents, `sha256 → document` JSON (written by `npm run codegen`), read at start-up when TRUSTED_DOCUMENTS_ONLY=true',
  },
  SHUTDOWN_TIMEOUT_MS: {
    schema: integer(100, 60_000),
    default: '8000',
    at: 'shutdownTimeoutMs',
    doc: 'how long a SIGTERM drain may take before the process gives up and exits 1',
  },
  MODELS_DIR: {
    schema: z.string().min(1),
    default: './models',
    doc: 'model versions: `<strategy>/<version>/model.onnx` + `manifest.json`',
  },
  MODELS_RESCAN_INTERVAL_MS: {
    schema: integer(0, 3_600_000),
    default: '10000',
    at: 'modelsRescanIntervalMs',
    doc:
      'how often the models directory is rescanned for new versions (loaded, never activated) and the active-version record ' +
      're-read from the database (0 = never)',
  },
  RETRAIN_SCHEDULE: {
    schema: cronExpression,
    shown: '(unset: off)',
    at: 'retrain.schedule',
    doc:
      'cron expression (`30 18 * * 1-5`: 5 fields, or 6 with seconds first; `@daily`) on which one instance retrains each ' +
      'of `RETRAIN_STRATEGIES` on the stored bars, in a child process, and registers the new version as its shadow (see ' +
      'Scheduled retraining); checked at start-up; unset or empty = off',
  },
  RETRAIN_TIMEZONE: {
    schema: timeZone,
    default: 'America/New_York',
    at: 'retrain.timezone',
    doc: "IANA time zone `RETRAIN_SCHEDULE` is read in (the exchange's by default; `UTC`, `Europe/London`, …)",
  },
  RETRAIN_STRATEGIES: {
    schema: strategyNames,
    shown: '(unset: every strategy served)',
    at: 'retrain.strategies',
    doc: 'comma-separated strategies the schedule retrains, one after another (an unknown name fails start-up)',
  },
  RETRAIN_FAMILY: {
    schema: z.enum(['logistic', 'gbt']),
    default: 'logistic',
    at: 'retrain.family',
    doc: 'model family the schedule trains: `logistic` or `gbt` (as `npm run train -- --family`)',
  },
  RETRAIN_TIMEOUT_MS: {
    schema: integer(1_000, 86_400_000),
    default: '3600000',
    at: 'retrain.timeoutMs',
    doc:
      'longest one scheduled training may take, reading the bars included; past it the child process is killed and the run ' +
      'recorded as failed. A run still unfinished this long plus a minute after its claim (its instance died) is recorded as ' +
      'failed by the next claim, which takes over',
  },
  RETRAIN_MAX_MEMORY_MB: {
    schema: integer(128, 65_536),
    default: '2048',
    at: 'retrain.maxMemoryMb',
    doc: "V8 heap limit of the training child process (`--max-old-space-size`): a training that outgrows it fails alone, the gateway's memory is its own",
  },
  MAX_SYMBOLS_PER_REQUEST: {
    schema: integer(1, 5_000),
    default: '200',
    at: 'predictions.maxSymbolsPerRequest',
    doc: 'most symbols one `predictions` call may ask for',
  },
  INFERENCE_MAX_BATCH: {
    schema: integer(1, 65_536),
    default: '1024',
    at: 'inference.maxBatchSize',
    doc: 'most rows per inference run of predictions; larger batches are split (an explanation batch is one run: see Explanations)',
  },
  INFERENCE_MAX_QUEUE_DELAY_US: {
    schema: integer(0, 1_000).transform((us) => us / 1000),
    default: '0',
    at: 'inference.maxQueueDelayMs',
    doc:
      'how long (µs, ≤ 1000) a request may wait for others to share its inference run; 0 still merges everything asked in the ' +
      'same event-loop turn',
  },
  MARKET_FETCH_MAX_DELAY_US: {
    schema: integer(0, 1_000).transform((us) => us / 1000),
    default: '0',
    at: 'marketFetch.maxDelayMs',
    doc:
      'how long (µs, ≤ 1000) a market-data fetch may wait for concurrent requests to join it; 0 merges only what is asked in ' +
      'the same event-loop turn',
  },
  MARKET_FETCH_TIMEOUT_MS: {
    schema: integer(10, 60_000),
    default: '2000',
    at: 'marketFetch.timeoutMs',
    doc: 'per attempt: a market-data fetch slower than this counts as failed',
  },
  MARKET_FETCH_RETRIES: {
    schema: integer(0, 5),
    default: '1',
    at: 'marketFetch.retries',
    doc: 'extra attempts (jittered exponential backoff) before a market-data fetch counts as failed',
  },
  MARKET_BREAKER_RESET_MS: {
    schema: integer(100, 600_000),
    default: '10000',
    at: 'marketFetch.breakerResetMs',
    doc:
      'after the market-data circuit opens, how long predictions are served from the last good bars (`stale: true`) before ' +
      'one trial fetch',
  },
  MARKET_CACHE_TTL_MS: {
    schema: integer(0, 86_400_000),
    default: '1000',
    at: 'cacheTtlMs.market',
    doc: 'market-data cache lifetime (0 = off)',
  },
  FEATURES_CACHE_TTL_MS: {
    schema: integer(0, 86_400_000),
    default: '300000',
    at: 'cacheTtlMs.features',
    doc: 'feature-vector cache lifetime (0 = off)',
  },
  PREDICTIONS_CACHE_TTL_MS: {
    schema: integer(0, 86_400_000),
    default: '300000',
    at: 'cacheTtlMs.predictions',
    doc: 'prediction cache lifetime, keyed by model version + featuresHash (0 = off)',
  },
  RESPONSE_CACHE: {
    schema: z.enum(['on', 'off']).transform((value) => value === 'on'),
    default: 'off',
    at: 'responseCache.enabled',
    doc:
      '`on`: whole answers of POST queries are kept per role until something they read changes (a new bar of one of their ' +
      'symbols, a model activation, a history write; no time to live), and served without parsing or executing them; ' +
      'with Redis, every instance hears every change, and the cache serves nothing while it cannot (see Response cache)',
  },
  RESPONSE_CACHE_MAX_MB: {
    schema: integer(1, 65_536).transform((mb) => mb * 1024 * 1024),
    default: '64',
    at: 'responseCache.maxBytes',
    doc: 'memory the response cache may hold, in MiB (least recently used answers go first; one answer at most an eighth of it)',
  },
  HISTORY_FLUSH_INTERVAL_MS: {
    schema: integer(10, 60_000),
    default: '1000',
    at: 'history.flushIntervalMs',
    doc: 'how often recorded predictions are written to the database, in batches',
  },
  HISTORY_MAX_BUFFER_ROWS: {
    schema: integer(100, 10_000_000),
    default: '20000',
    at: 'history.maxBufferRows',
    doc:
      'rows kept in memory while the database is unreachable; beyond it they spill to `DATA_DIR/history-spill` and are ' +
      'written on recovery',
  },
  HISTORY_RETENTION_DAYS: {
    schema: integer(0, 36_500),
    default: '0',
    at: 'history.retentionDays',
    doc:
      'with TimescaleDB only: drop history chunks older than this many days (0 = keep everything); ignored on plain ' +
      'PostgreSQL and PGlite',
  },
  HISTORY_CHUNK_DAYS: {
    schema: integer(1, 3_650),
    shown: '365 (1 on the synthetic market)',
    at: 'history.chunkDays',
    doc:
      'with TimescaleDB only: days of prediction time per `prediction_history` chunk, applied at start-up to chunks created ' +
      'from then on (docs/decisions/timescaledb-chunks.md); ignored on plain PostgreSQL and PGlite',
  },
  OUTCOMES_INTERVAL_MS: {
    schema: integer(0, 86_400_000),
    default: '60000',
    at: 'outcomes.intervalMs',
    doc:
      'how often the gateway fills in realized outcomes of recorded predictions whose horizon has passed (0 = never; `npm run ' +
      'outcomes` does it on demand)',
  },
  METRICS_BOOTSTRAP_REPLICATES: {
    schema: integer(100, 20_000),
    default: '1000',
    at: 'metricsEstimates.replicates',
    doc:
      'bootstrap replicates behind every `modelMetrics` interval (`estimates`) and `compareModels` interval (100-20000): more gives steadier interval ends ' +
      'at proportional CPU cost',
  },
  METRICS_ESTIMATES_MAX_ROWS: {
    schema: integer(1_000, 5_000_000),
    default: '1000000',
    at: 'metricsEstimates.maxRows',
    doc:
      'most resolved predictions one `modelMetrics` answer reads to compute `estimates`; beyond it `estimates` is empty and ' +
      '`estimatesNote` says why (narrow the query with `from`/`to`/`symbol`)',
  },
  PROMOTION_POLICY: {
    schema: z.enum(['manual', 'auto']),
    default: 'manual',
    at: 'promotion.policy',
    doc:
      '`manual`: the promotion evaluator only records what it would do (recommendations, alerts) in the audit log and ' +
      '`strategies { promotions }`; `auto`: it also promotes a shadow proven better and rolls back a degraded active version ' +
      '(see Model lifecycle: the promotion loop)',
  },
  PROMOTION_INTERVAL_MS: {
    schema: integer(0, 86_400_000),
    default: '3600000',
    at: 'promotion.intervalMs',
    doc:
      'how often the promotion evaluator runs (on one instance: a lease); it also runs after every outcome pass that stored ' +
      'outcomes. 0 = never (no decisions are made or recorded)',
  },
  PROMOTION_MIN_DAYS: {
    schema: integer(20, 5_000),
    default: '120',
    at: 'promotion.minDays',
    doc:
      'fewest UTC days of paired realized outcomes (active and shadow on the same rows) before a shadow may be promoted; the ' +
      'comparison also needs 6 calendar months for its interval',
  },
  PROMOTION_LOSS: {
    schema: z.enum(['brier', 'logLoss']),
    default: 'brier',
    at: 'promotion.loss',
    doc: 'the loss a shadow must beat the active version on (`brier` or `logLoss`, as `compareModels` computes them)',
  },
  PROMOTION_HEALTH_WINDOW_DAYS: {
    schema: integer(7, 400),
    default: '90',
    at: 'promotion.healthWindowDays',
    doc:
      "calendar days of asOf, ending at a version's latest realized outcome, over which its coverage, calibration and feature " +
      'drift are checked',
  },
  PROMOTION_MIN_OUTCOMES: {
    schema: integer(1, 10_000_000),
    default: '200',
    at: 'promotion.minOutcomes',
    doc: 'fewest realized outcomes in that window before coverage and calibration are judged (fewer: not judged)',
  },
  PROMOTION_COVERAGE_FLOOR: {
    schema: decimal(0, 1),
    default: '0.9',
    at: 'promotion.coverageFloor',
    doc: 'realized coverage of the 95% interval below this over the window breaks the version (0 = never)',
  },
  PROMOTION_MAX_ECE: {
    schema: decimal(0, 1),
    default: '0.2',
    at: 'promotion.maxEce',
    doc: 'realized expected calibration error (10 equal-width bins) above this over the window breaks the version (1 = never)',
  },
  PROMOTION_MAX_DRIFT_PSI: {
    schema: decimal(0, 1_000),
    default: '3',
    at: 'promotion.maxDriftPsi',
    doc: "PSI of any model input over the window, against the version's training distribution, above this breaks the version (0 = not checked)",
  },
  DEGRADATION_ACTION: {
    schema: z.enum(['rollback', 'alert']),
    default: 'rollback',
    at: 'promotion.degradationAction',
    doc:
      'when the active version breaks a check: `rollback` to the version it replaced (with PROMOTION_POLICY=auto; not to a ' +
      'version the policy rolled back from, nor when that version breaks every check the active one breaks), or only `alert` ' +
      '(recorded and counted, never switched)',
  },
  SYNTHETIC_TICK_MS: {
    schema: integer(0, 3_600_000),
    default: '5000',
    at: 'synthetic.tickMs',
    doc: 'when no bars are stored, how often the synthetic market adds a bar per symbol (0 = never)',
  },
  SYNTHETIC_SEED: {
    schema: integer(0, 2_147_483_647),
    default: '1',
    at: 'synthetic.seed',
    doc: 'seed of the synthetic market',
  },
  MARKET_REPLAY_FROM: {
    schema: utcDate,
    shown: '(unset: no replay)',
    doc:
      'replay the stored bars as a live stream from this date (`2020-01-02`): queries and signals see the market as of the ' +
      'replay clock; stored bars are never changed (for demos and backtests, one instance)',
  },
  MARKET_REPLAY_TICK_MS: {
    schema: integer(10, 3_600_000),
    default: '1000',
    doc:
      'with `MARKET_REPLAY_FROM`, how often the replay clock moves to the next stored bar time (one trading day per tick for ' +
      'daily bars)',
  },
  MARKET_PROVIDER: {
    schema: z.enum(['store', 'alpaca', 'polygon']),
    default: 'store',
    doc:
      '`store`: stored bars (the synthetic market when none are stored); `alpaca` / `polygon`: backfill from the vendor into ' +
      'the bars store, then stream or poll new daily bars (see Market data providers)',
  },
  ALPACA_KEY_ID: {
    schema: token('key id'),
    shown: '(unset)',
    secret: true,
    doc: 'Alpaca API key id (header `APCA-API-KEY-ID`); required with MARKET_PROVIDER=alpaca; never logged',
  },
  ALPACA_SECRET_KEY: {
    schema: token('secret key'),
    shown: '(unset)',
    secret: true,
    doc: 'Alpaca API secret key (header `APCA-API-SECRET-KEY`); required with MARKET_PROVIDER=alpaca; never logged',
  },
  ALPACA_FEED: {
    schema: z.enum(['iex', 'sip']),
    default: 'iex',
    doc: '`iex` (free plan) or `sip` (paid plan): the feed of both REST bars and the stream',
  },
  ALPACA_DATA_URL: {
    schema: urlWithProtocols(['https:', 'http:']),
    default: 'https://data.alpaca.markets',
    doc: 'base URL of the REST API (`/v2/stocks/bars` is appended); point it at a proxy or a test server',
  },
  ALPACA_STREAM_URL: {
    schema: urlWithProtocols(['wss:', 'ws:']),
    default: 'wss://stream.data.alpaca.markets',
    shown: 'wss://stream.data.alpaca.markets/v2/{ALPACA_FEED}',
    doc: 'real-time stream URL; a URL with no path gets `/v2/{ALPACA_FEED}` appended',
  },
  ALPACA_SYMBOLS: {
    schema: tickers,
    shown: '(unset: SIGNALS_WATCHLIST + the 20 default symbols)',
    doc: 'symbols backfilled and subscribed, comma-separated',
  },
  ALPACA_BACKFILL_DAYS: {
    schema: integer(30, 3_650),
    default: '200',
    doc: 'calendar days of daily bars fetched at start and after a dropped stream at most (features need about 100 trading days)',
  },
  POLYGON_API_KEY: {
    schema: token('API key'),
    shown: '(unset)',
    secret: true,
    doc: 'Polygon.io API key (sent as `Authorization: Bearer`, never in a URL); required with MARKET_PROVIDER=polygon; never logged',
  },
  POLYGON_REST_URL: {
    schema: urlWithProtocols(['https:', 'http:']),
    default: 'https://api.polygon.io',
    doc: 'base URL of the REST API (`/v2/aggs/ticker/...` is appended); point it at a proxy or a test server',
  },
  POLYGON_STREAM_URL: {
    schema: z.literal('off').or(urlWithProtocols(['wss:', 'ws:'])),
    default: 'wss://socket.polygon.io/stocks',
    doc:
      'stocks WebSocket (`wss://delayed.polygon.io/stocks` on delayed plans); `off` for plans without WebSockets: ' +
      'REST polling after each session',
  },
  POLYGON_SYMBOLS: {
    schema: tickers,
    shown: '(unset: SIGNALS_WATCHLIST + the 20 default symbols)',
    doc: 'symbols backfilled and subscribed, comma-separated',
  },
  POLYGON_BACKFILL_DAYS: {
    schema: integer(30, 3_650),
    default: '200',
    doc: 'calendar days of daily bars fetched at start and after a dropped stream at most (two requests per symbol)',
  },
  POLYGON_MAX_SYMBOLS: {
    schema: integer(1, 100_000),
    shown: '(unset: no bound)',
    doc:
      'most symbols followed at once (configured plus what subscribers ask for); past it, extra symbols are refused ' +
      'and readiness says so',
  },
  SIGNALS_INTERVAL_MS: {
    schema: integer(0, 86_400_000),
    default: '300000',
    at: 'signals.intervalMs',
    doc: 'live signals are computed on every new bar and also on this interval, for providers without bar events (0 = only on bars)',
  },
  SIGNALS_WATCHLIST: {
    schema: tickers,
    shown: '(none)',
    doc: 'comma-separated symbols the signals monitor computes on every tick for every strategy, subscribed or not',
  },
  SIGNALS_LEASE_MS: {
    schema: integer(300, 60_000),
    default: '10000',
    at: 'signals.leaseMs',
    doc:
      'with `REDIS_URL`, lifetime of the lease that lets one instance run the signals monitor; another takes over within 4/3 ' +
      'of it when the holder dies',
  },
  SIGNALS_MAX_REPLAY: {
    schema: integer(1, 100_000),
    default: '1000',
    at: 'signals.maxReplay',
    doc: 'most recorded predictions one `signals(since:)` resume replays; a `since` further back is refused',
  },
  SIGNALS_RECORD_WAIT_MS: {
    schema: integer(0, 30_000),
    default: '0',
    at: 'signals.recordWaitMs',
    doc:
      'how long the monitor may wait for new predictions to be committed to history before publishing them (0 = publish at ' +
      'once: each instance also remembers recent signals for resuming clients)',
  },
  WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: {
    schema: integer(1, 10_000),
    default: '20',
    at: 'ws.maxSubscriptionsPerConnection',
    doc: 'most subscriptions one WebSocket connection may have open at once',
  },
  AUTH_MODE: {
    schema: z.enum(['off', 'apikey', 'jwt', 'apikey+jwt']),
    shown: 'off (apikey in production)',
    doc: '`off`, `apikey`, `jwt` or `apikey+jwt`; `off` logs a warning and is refused in production (see Access control)',
  },
  JWT_SECRET: {
    schema: z.string().min(32, { message: 'must be at least 32 characters (an HS256 key)' }),
    shown: '(unset)',
    secret: true,
    doc: 'HS256 key (≥ 32 characters) for JWTs; give one of JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL when AUTH_MODE accepts JWTs',
  },
  JWT_PUBLIC_KEY: {
    schema: z.string().includes('BEGIN PUBLIC KEY', { message: 'expected a PEM public key (SPKI, RS256)' }),
    shown: '(unset)',
    secret: true,
    doc: 'PEM (SPKI) public key for RS256 JWTs',
  },
  JWT_JWKS_URL: {
    schema: urlWithProtocols(['https:', 'http:']),
    shown: '(unset)',
    doc: 'JWKS URL of the identity provider (keys fetched and cached by `jose`)',
  },
  JWT_ISSUER: {
    schema: z.string().min(1),
    shown: '(unset: not checked)',
    doc: 'required `iss` of JWTs',
  },
  JWT_AUDIENCE: {
    schema: z.string().min(1),
    shown: '(unset: not checked)',
    doc: 'required `aud` of JWTs',
  },
  JWT_ROLE_CLAIM: {
    schema: z.string().min(1),
    default: 'role',
    doc:
      'claim holding the role (`viewer`, `analyst`, `admin`): a dotted path such as `realm_access.role` is followed through ' +
      'nested objects (a top-level claim literally named so is ignored); a URL (`https://sibyl.example/role`) is one ' +
      'namespaced claim',
  },
  JWT_CLOCK_TOLERANCE_S: {
    schema: integer(0, 300),
    default: '30',
    doc:
      "seconds of clock skew allowed on a JWT's `exp` and `nbf`; a WebSocket connection authenticated with a JWT is closed " +
      '(4403) this long after its `exp`',
  },
  JWT_MAX_TTL_S: {
    schema: integer(60, 31_536_000),
    default: '86400',
    doc:
      'longest lifetime a JWT may have: `exp` is required, and a token whose `exp` is further than this from its `iat` or ' +
      'from now is refused',
  },
  API_KEY_REMEMBER_S: {
    schema: integer(0, 86_400).transform((s) => s * 1000),
    default: '300',
    at: 'auth.keyMemory.ttlMs',
    doc:
      'while PostgreSQL cannot answer, API keys it confirmed within this many seconds are still accepted (others get ' +
      '`UNAVAILABLE`, HTTP 503); 0 = never (see Operating it)',
  },
  API_KEY_REMEMBER_MAX: {
    schema: integer(1, 1_000_000),
    default: '10000',
    at: 'auth.keyMemory.max',
    doc: 'most API keys remembered for that (least recently used are forgotten first)',
  },
  WS_KEEPALIVE_MS: {
    schema: integer(500, 300_000),
    default: '12000',
    at: 'ws.keepAliveMs',
    doc:
      'WebSocket ping interval; a client that has not answered a ping within the same time is disconnected (frees sockets of ' +
      'vanished clients behind NAT or load balancers)',
  },
  WS_CREDENTIAL_RECHECK_MS: {
    schema: integer(1_000, 3_600_000),
    default: '30000',
    at: 'ws.credentialRecheckMs',
    doc:
      'how often open WebSocket connections re-check their API key; a revoked one is closed with 4403 (a revocation made ' +
      'through this deployment closes them at once; this bounds the rest, e.g. `npm run keys` without REDIS_URL)',
  },
  TRUST_PROXY: {
    schema: trustedProxies,
    default: 'false',
    shown: '(unset: off)',
    at: 'trustProxy',
    doc:
      'believe `X-Forwarded-For` (the client address of logs and of per-IP rate limits) only when the connection comes from ' +
      'one of these proxies: comma-separated addresses or CIDRs (`10.0.0.0/8,127.0.0.1`; also `loopback`, `linklocal`, ' +
      '`uniquelocal`). `true` and hop counts are refused: either would let a client that reaches the gateway directly pick ' +
      'its own address',
  },
  MAX_QUERY_DEPTH: {
    schema: integer(2, 100),
    default: '10',
    at: 'limits.maxDepth',
    doc: 'deepest selection nesting an operation may have',
  },
  MAX_ALIASES: {
    schema: integer(0, 1_000),
    default: '30',
    at: 'limits.maxAliases',
    doc: 'most aliases in one operation',
  },
  MAX_TOKENS: {
    schema: integer(100, 100_000),
    default: '2000',
    at: 'limits.maxTokens',
    doc: 'most lexical tokens in one document (parsing stops beyond it)',
  },
  MAX_QUERY_COST: {
    schema: integer(10, 10_000_000),
    default: '5000',
    at: 'limits.maxCost',
    doc:
      'most cost points one operation may cost (1 per field once fragments are expanded, times the number of symbols for ' +
      '`predictions`/list arguments, times `last`/`first`/`limit`)',
  },
  MAX_EXPANDED_NODES: {
    schema: integer(10, 1_000_000),
    default: '2000',
    at: 'limits.maxNodes',
    doc:
      'most fields one operation may have once its fragments are expanded (each alias counted); a fragment spread counts what ' +
      'it expands to',
  },
  MAX_RESPONSE_ITEMS: {
    schema: integer(100, 10_000_000),
    default: '20000',
    at: 'limits.maxResponseItems',
    doc:
      'most list items one query or mutation response may hold, counted as it is built; past it the whole operation is ' +
      'refused (`QUERY_TOO_COMPLEX`, `limit: "responseItems"`)',
  },
  MAX_VARIABLES_DEPTH: {
    schema: integer(2, 1_000),
    default: '32',
    at: 'limits.maxVariablesDepth',
    doc: "deepest nesting of an operation's variables (`BAD_USER_INPUT`, checked before anything walks them)",
  },
  INFLIGHT_COST_BUDGET: {
    schema: integer(10, 1_000_000_000),
    default: '250000',
    at: 'limits.inflightCostBudget',
    doc:
      'most cost points of operations executing at once on one instance (bounds their memory); when full an operation waits ' +
      'up to `INFLIGHT_QUEUE_MS`, then `RATE_LIMITED`. Must be at least `MAX_QUERY_COST` to be useful: a costlier operation ' +
      'takes the whole budget',
  },
  INFLIGHT_QUEUE_MS: {
    schema: integer(0, 60_000),
    default: '1000',
    at: 'limits.inflightQueueMs',
    doc: 'how long an operation may wait for room in `INFLIGHT_COST_BUDGET` before it is refused with `RATE_LIMITED` (`retryAfterSeconds`)',
  },
  MAX_BODY_BYTES: {
    schema: integer(1_024, 16 * 1024 * 1024),
    default: '65536',
    at: 'limits.maxBodyBytes',
    doc: 'largest HTTP request body and WebSocket message',
  },
  RATE_LIMIT_POINTS: {
    schema: integer(0, 1_000_000_000),
    shown: '0 = off (60000 in production)',
    doc: 'cost points each API key / JWT subject (or IP, when anonymous) may spend per window',
  },
  RATE_LIMIT_WINDOW_S: {
    schema: integer(1, 86_400),
    default: '60',
    at: 'limits.rateWindowSeconds',
    doc: 'rate-limit window in seconds',
  },
  HEALTH_CACHE_MS: {
    schema: integer(0, 60_000),
    default: '1000',
    at: 'health.cacheMs',
    doc:
      'the component report (`/health/ready`, the `health` field) is computed at most once per this many ms, however many ' +
      'ask; 0 = every request probes (concurrent ones still share one probe)',
  },
  HEALTH_RATE_LIMIT: {
    schema: integer(1, 1_000_000),
    default: '30',
    at: 'health.rateLimitPerSecond',
    doc: 'requests per second each client address may make to `/health/*`, per instance; beyond: 429 with `Retry-After`',
  },
  CORS_ORIGINS: {
    schema: commaList,
    default: '',
    shown: '(unset: no cross-origin calls)',
    at: 'corsOrigins',
    doc: 'comma-separated origins allowed to call from browsers, e.g. `https://app.example.com`',
  },
  HTTP_CACHE_MAX_AGE_S: {
    schema: integer(0, 86_400),
    default: '60',
    at: 'httpCacheMaxAgeSeconds',
    doc:
      'longest `max-age` a GET answer may carry; the actual one is also bounded by when the next bar could arrive (0 with a ' +
      'vendor stream; see HTTP conventions). 0 = every GET answer `no-cache`',
  },
  METRICS_TOKEN: {
    schema: z.string().min(16, { message: 'must be at least 16 characters' }),
    shown: '(unset: /metrics open)',
    at: 'metricsToken',
    secret: true,
    doc: 'when set, `GET /metrics` needs `Authorization: Bearer <token>`',
  },
  WEB_APP: {
    schema: booleanString,
    default: 'true',
    doc: 'serve the reference web app (built into `WEB_APP_DIR` by `npm install` / `npm start`) at `/`',
  },
  WEB_APP_DIR: {
    schema: z.string().min(1),
    default: './web/dist',
    doc: 'where the built web app and explorer are; when they are missing, `/` and `/explorer/` say how to build them',
  },
  EXPLORER: {
    schema: z.enum(['sandbox', 'graphiql', 'off']),
    shown: 'sandbox (graphiql in production)',
    doc: '`GET /graphql` in a browser: `sandbox` (Apollo Sandbox from its CDN; offline it opens the built-in explorer), `graphiql` (the built-in explorer, no internet needed), `off`; unless `off`, the built-in explorer is also at `/explorer/`',
  },
  SANDBOX_TELEMETRY: {
    schema: booleanString,
    default: 'false',
    at: 'explorer.sandboxTelemetry',
    doc: "let Apollo Sandbox send usage telemetry to Apollo (Apollo's default is on; ours is off)",
  },
  OTEL_EXPORTER_OTLP_ENDPOINT: {
    schema: urlWithProtocols(['https:', 'http:']),
    shown: '(unset: no tracing)',
    doc: 'OTLP/HTTP collector base URL (e.g. `http://127.0.0.1:4318`); traces go to `<url>/v1/traces`',
  },
} as const satisfies Record<string, Variable & { readonly at?: ConfigPath }>;

export type VariableName = keyof typeof VARIABLES;

/** The parsed environment: each variable's value (undefined only for one with no default). */
export type Environment = { [K in VariableName]: ValueOf<(typeof VARIABLES)[K]> };

/** Variables whose value does not fit the Config field their `at` names (must be none). */
type Misplaced = {
  [K in VariableName]: (typeof VARIABLES)[K] extends { at: infer P extends string }
    ? Environment[K] extends ConfigAt<P>
      ? never
      : K
    : never;
}[VariableName];
const everyValueFitsItsField: [Misplaced] extends [never] ? true : { misplaced: Misplaced } = true;
void everyValueFitsItsField;
