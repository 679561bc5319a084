import { registerCleanup } from './cleanup.js';
import { benchSymbols, seededDatabase, type ScratchDatabase } from './postgres.js';
import { startGateway, type ServerProcess } from './process.js';

/**
 * Gateways on a seeded PostgreSQL scratch database, in the configurations the request benchmarks use.
 *
 * In a full run each benchmark seeds its own database and starts its own gateways, so no benchmark
 * measures a process another one warmed up or grew. A smoke run measures nothing (it only proves the
 * benchmarks still run) and is dominated by process start-ups (~2.5 s each under tsx on 2 cores), so
 * there the runner starts each configuration once, in parallel, before the first benchmark
 * ({@link startSharedGateways}) and every benchmark borrows them: its code path is the same, only
 * the processes are reused.
 */
export const GATEWAY_CONFIGS = {
  /** As deployed: default cache TTLs and batching. */
  default: {},
  /** As deployed, with the response cache on (whole answers until an input changes). */
  responseCache: { RESPONSE_CACHE: 'on' },
  /** Every cache off: each request fetches bars, computes features and runs the model. */
  cold: { MARKET_CACHE_TTL_MS: '0', FEATURES_CACHE_TTL_MS: '0', PREDICTIONS_CACHE_TTL_MS: '0' },
  /** Caches off and every inference run one row: cross-request batching switched off. */
  unbatched: { MARKET_CACHE_TTL_MS: '0', FEATURES_CACHE_TTL_MS: '0', PREDICTIONS_CACHE_TTL_MS: '0', INFERENCE_MAX_BATCH: '1' },
} as const satisfies Record<string, Record<string, string>>;

export type GatewayConfig = keyof typeof GATEWAY_CONFIGS;

/** What a child benchmark process needs to use a gateway the runner started (JSON, via BenchContext.shared). */
interface SharedGateway {
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  readonly readyMs: number;
  readonly readyLine: Record<string, unknown>;
}

interface SharedGateways {
  readonly databaseUrl: string;
  /** The seeded database holds benchSymbols(symbols) × bars. */
  readonly symbols: number;
  readonly bars: number;
  readonly gateways: Partial<Record<GatewayConfig, SharedGateway>>;
}

const SHARED_KEY = 'sharedGateways';
/** Enough for every benchmark's symbols (batching asks for 200 different ones). */
const SHARED_SYMBOLS = 200;
const SHARED_BARS = 250;

export interface SeededGateways {
  readonly databaseUrl: string;
  readonly gateways: ServerProcess[];
  /** Stops the gateways and drops the database, unless they are the run's shared ones. */
  release(): Promise<void>;
}

/**
 * Gateways of the given configurations on a database seeded with benchSymbols(symbols) × bars:
 * the run's shared ones when the runner started them (smoke runs), otherwise a fresh scratch
 * database and fresh processes, started in parallel (nothing is measured while they start).
 */
export async function seededGateways(
  shared: ReadonlyMap<string, unknown>,
  kind: string,
  options: { symbols: number; bars: number; configs: readonly GatewayConfig[] },
): Promise<SeededGateways> {
  const borrowed = shared.get(SHARED_KEY) as SharedGateways | undefined;
  if (borrowed && borrowed.symbols >= options.symbols && options.configs.every((c) => borrowed.gateways[c])) {
    return {
      databaseUrl: borrowed.databaseUrl,
      gateways: options.configs.map((c) => borrowedProcess(c, borrowed.gateways[c]!)),
      release: async () => undefined,
    };
  }
  const database = await seededDatabase(kind, benchSymbols(options.symbols), options.bars);
  const started = await Promise.allSettled(
    options.configs.map((c) => startGateway({ env: { DATABASE_URL: database.url, ...GATEWAY_CONFIGS[c] } })),
  );
  const gateways = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const release = async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await database.drop();
  };
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await release();
    throw failed.reason;
  }
  return { databaseUrl: database.url, gateways, release };
}

/**
 * The run's shared gateway of `config` and its database, if the runner started one (smoke runs), for
 * a benchmark that brings its own rows rather than the seeded bars.
 */
export function sharedGateway(
  shared: ReadonlyMap<string, unknown>,
  config: GatewayConfig,
): { databaseUrl: string; gateway: ServerProcess } | undefined {
  const borrowed = shared.get(SHARED_KEY) as SharedGateways | undefined;
  const gateway = borrowed?.gateways[config];
  return borrowed && gateway ? { databaseUrl: borrowed.databaseUrl, gateway: borrowedProcess(config, gateway) } : undefined;
}

/**
 * The runner's half (smoke runs): seeds one database and starts one gateway per configuration, in
 * parallel; `shared` is what to hand the benchmark processes; `stop` ends the gateways and drops the
 * database (also registered as a cleanup, for Ctrl-C).
 */
export async function startSharedGateways(
  configs: readonly GatewayConfig[],
): Promise<{ shared: Record<string, unknown>; stop(): Promise<void> }> {
  let database: ScratchDatabase | undefined;
  const processes: ServerProcess[] = [];
  const stop = async () => {
    unregister();
    await Promise.all(processes.map((p) => p.stop()));
    await database?.drop();
  };
  const unregister = registerCleanup(stop);
  try {
    database = await seededDatabase('shared', benchSymbols(SHARED_SYMBOLS), SHARED_BARS);
    const url = database.url;
    const started = await Promise.allSettled(configs.map((c) => startGateway({ env: { DATABASE_URL: url, ...GATEWAY_CONFIGS[c] } })));
    for (const s of started) if (s.status === 'fulfilled') processes.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const gateways: SharedGateways['gateways'] = Object.fromEntries(
      configs.map((c, i) => {
        const p = processes[i]!;
        return [c, { pid: p.pid, port: p.port, url: p.url, readyMs: p.readyMs, readyLine: p.readyLine } satisfies SharedGateway];
      }),
    );
    const value: SharedGateways = { databaseUrl: url, symbols: SHARED_SYMBOLS, bars: SHARED_BARS, gateways };
    return { shared: { [SHARED_KEY]: value }, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A gateway another process owns: usable like one of ours, except that stopping it is the owner's job. */
function borrowedProcess(config: GatewayConfig, g: SharedGateway): ServerProcess {
  return {
    name: `gateway (${config}, shared)`,
    pid: g.pid,
    port: g.port,
    url: g.url,
    readyMs: g.readyMs,
    readyLine: g.readyLine,
    output: () => '(output goes to the runner, which started this gateway)',
    stop: async () => undefined,
  };
}
