import path from 'node:path';
import { z } from 'zod';
import type { Variable } from './schema-kit.js';
import type { Config, PolygonSettings } from './types.js';
import { VARIABLES, type Environment, type VariableName } from './variables.js';

/**
 * Reads the environment into a frozen {@link Config}: every variable of the table in variables.ts is
 * parsed (all problems reported at once), lands where its `at` says, and the rules below fill the fields
 * that depend on several variables, on production, or on the working directory. This directory is the
 * only place that knows variable names; the rest of the code receives a typed, validated Config.
 */

const NAMES = Object.keys(VARIABLES) as VariableName[];
const variable = (name: VariableName): Variable => VARIABLES[name];

/** The text each variable with a default takes when it is unset. */
const DEFAULTS: Readonly<Record<string, string>> = Object.fromEntries(
  NAMES.flatMap((name) => {
    const text = variable(name).default;
    return text === undefined ? [] : [[name, text]];
  }),
);

const envSchema = z.object(
  Object.fromEntries(
    NAMES.map((name): [string, z.ZodType<unknown, string | undefined>] => {
      const { schema } = variable(name);
      return [name, name in DEFAULTS ? schema : schema.optional()];
    }),
  ),
);

/** One row of the README's configuration table, in the table's order (test/unit/config/config.test.ts checks the README). */
export const CONFIG_DOCS: ReadonlyArray<{ name: VariableName; default: string; description: string }> = NAMES.map((name) => {
  const { shown, default: text, doc } = variable(name);
  return { name, default: shown ?? text ?? '', description: doc };
});

/** Thrown by {@link loadConfig}; its message names every bad variable, one per line. */
export class ConfigError extends Error {
  constructor(readonly problems: ReadonlyArray<{ variable: string; problem: string }>) {
    super(`Invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Validates the environment once. Empty strings count as unset, so `PORT=` falls back to the default
 * instead of failing, which is what shells and `.env` files usually mean by it.
 */
export function loadConfig(environment: Readonly<Record<string, string | undefined>>, cwd = process.cwd()): Config {
  const given: Record<string, string> = Object.fromEntries(
    NAMES.map((name) => [name, environment[name]]).filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = envSchema.safeParse({ ...DEFAULTS, ...given });
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? '(environment)');
        const secret = name in VARIABLES && variable(name as VariableName).secret;
        return { variable: name, problem: `${issue.message}${secret ? '' : describeReceived(given[name])}` };
      }),
    );
  }
  // The table's types: each value parsed by the schema of its own entry.
  const env = parsed.data as Environment;
  return Object.freeze(placeVariables(env, ruledFields(env, cwd)));
}

/** The fields no single variable fills: set by the rules below. */
type Ruled = Pick<
  Config,
  | 'env'
  | 'isProduction'
  | 'dataDir'
  | 'database'
  | 'redis'
  | 'modelsDir'
  | 'replay'
  | 'marketProvider'
  | 'tracing'
  | 'webApp'
  | 'trustedDocuments'
> & {
  log: Pick<Config['log'], 'format'>;
  graphql: Pick<Config['graphql'], 'introspection'>;
  history: Pick<Config['history'], 'spillDir'>;
  signals: Pick<Config['signals'], 'watchlist'>;
  auth: Pick<Config['auth'], 'mode' | 'jwt'>;
  limits: Pick<Config['limits'], 'ratePoints'>;
  explorer: Pick<Config['explorer'], 'page' | 'dir'>;
};

function ruledFields(env: Environment, cwd: string): Ruled {
  const isProduction = env.NODE_ENV === 'production';
  const dataDir = path.resolve(cwd, env.DATA_DIR);
  return {
    env: env.NODE_ENV,
    isProduction,
    log: { format: env.LOG_FORMAT ?? (isProduction ? 'json' : 'pretty') },
    dataDir,
    database: env.DATABASE_URL
      ? { kind: 'postgres', url: env.DATABASE_URL, poolMax: env.DATABASE_POOL_MAX }
      : { kind: 'pglite', dataDir: path.join(dataDir, 'pglite') },
    redis: env.REDIS_URL ? { url: env.REDIS_URL, keyPrefix: env.REDIS_KEY_PREFIX } : undefined,
    graphql: { introspection: env.INTROSPECTION ?? !isProduction },
    // Production's default is the built-in explorer: it needs no third-party CDN and runs under the
    // gateway's Content-Security-Policy (docs/decisions/explorer.md).
    explorer: { page: env.EXPLORER ?? (isProduction ? 'graphiql' : 'sandbox'), dir: path.resolve(cwd, env.WEB_APP_DIR) },
    modelsDir: path.resolve(cwd, env.MODELS_DIR),
    replay: env.MARKET_REPLAY_FROM ? { from: env.MARKET_REPLAY_FROM, tickMs: env.MARKET_REPLAY_TICK_MS } : undefined,
    marketProvider: marketProviderSettings(env),
    signals: { watchlist: env.SIGNALS_WATCHLIST ?? [] },
    history: { spillDir: path.join(dataDir, 'history-spill') },
    auth: authSettings(env, isProduction),
    limits: { ratePoints: env.RATE_LIMIT_POINTS ?? (isProduction ? 60_000 : 0) },
    tracing: env.OTEL_EXPORTER_OTLP_ENDPOINT ? { otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT } : undefined,
    webApp: env.WEB_APP ? { dir: path.resolve(cwd, env.WEB_APP_DIR) } : undefined,
    trustedDocuments: env.TRUSTED_DOCUMENTS_ONLY ? { file: path.resolve(cwd, env.TRUSTED_DOCUMENTS_FILE) } : undefined,
  };
}

type Nest<P extends string, V> = P extends `${infer Head}.${infer Rest}` ? { [K in Head]: Nest<Rest, V> } : { [K in P]: V };
type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
/** What the table's `at`s fill, as a type: with {@link Ruled} it must make a whole Config (checked where it is returned). */
type Placed = UnionToIntersection<
  { [K in VariableName]: (typeof VARIABLES)[K] extends { at: infer P extends string } ? Nest<P, Environment[K]> : never }[VariableName]
>;

/** Puts each variable's value where its `at` says, into the rules' fields. */
function placeVariables(env: Environment, ruled: Ruled): Config {
  const config: Record<string, unknown> = ruled;
  for (const name of NAMES) {
    const at = variable(name).at;
    if (at === undefined) continue;
    const keys = at.split('.');
    let node = config;
    for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
    node[keys.at(-1)!] = env[name];
  }
  return config as Placed & Ruled;
}

function marketProviderSettings(env: Environment): Config['marketProvider'] {
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

function polygonSettings(env: Environment): PolygonSettings {
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
function alpacaStreamUrl(configured: string, feed: 'iex' | 'sip'): string {
  const url = new URL(configured);
  if (url.pathname === '' || url.pathname === '/') url.pathname = `/v2/${feed}`;
  return url.toString();
}

/**
 * Access control settings. Production fails closed: with no AUTH_MODE it requires API keys, and `off`
 * is refused, so a deployment cannot be opened by forgetting a variable. A mode that accepts JWTs needs
 * exactly one way to verify them.
 */
function authSettings(env: Environment, isProduction: boolean): Ruled['auth'] {
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
  };
}

function describeReceived(value: string | undefined): string {
  if (value === undefined) return '';
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
 * every bad variable to stderr (or `report`), so the caller can exit 1 without a stack trace.
 */
export function configFromEnvironment(
  environment: Readonly<Record<string, string | undefined>> = process.env,
  report: (text: string) => void = (text) => void process.stderr.write(text),
): Config | undefined {
  try {
    return loadConfig(environment);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    report(`${error.message}\n`);
    return undefined;
  }
}

/**
 * Only the log settings, for tools that must run where the gateway's own settings may be incomplete
 * (the web build inside `npm install`). Invalid values fall back to the defaults instead of failing:
 * a log format is never a reason to fail an install.
 */
export function logSettingsFromEnvironment(environment: Readonly<Record<string, string | undefined>> = process.env): Config['log'] {
  const parsed = envSchema.pick({ NODE_ENV: true, LOG_LEVEL: true, LOG_FORMAT: true }).safeParse({
    NODE_ENV: environment.NODE_ENV ?? DEFAULTS.NODE_ENV,
    LOG_LEVEL: environment.LOG_LEVEL ?? DEFAULTS.LOG_LEVEL,
    LOG_FORMAT: environment.LOG_FORMAT,
  });
  const env = (parsed.success ? parsed.data : envSchema.parse(DEFAULTS)) as Pick<Environment, 'NODE_ENV' | 'LOG_LEVEL' | 'LOG_FORMAT'>;
  return { level: env.LOG_LEVEL, format: env.LOG_FORMAT ?? (env.NODE_ENV === 'production' ? 'json' : 'pretty') };
}
