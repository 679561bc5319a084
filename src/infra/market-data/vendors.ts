import type { AlpacaSettings, PolygonSettings } from '../../config/index.js';
import type { Logger } from '../logger/logger.js';
import { createAlpacaFeed } from './alpaca.js';
import type { BarsRepository } from './bars-repository.js';
import type { LiveVendorFeed } from './live-vendor.js';
import { createPolygonFeed } from './polygon.js';
import { createVendorHttpClient, type VendorHttpClient } from './vendor-http.js';

/**
 * The live market-data vendors, one row per MARKET_PROVIDER value: how to build its feed from its
 * settings. Everything after that is the same for every vendor (live-vendor.ts), so whoever starts
 * the gateway needs no vendor-specific branch.
 */
export type VendorSettings = AlpacaSettings | PolygonSettings;

export interface VendorDependencies {
  /** The universe: configured symbols, or the caller's default. */
  readonly symbols: readonly string[];
  readonly store: Pick<BarsRepository, 'upsert' | 'fetchBars'>;
  readonly logger: Logger;
}

export interface MarketVendor {
  readonly feed: LiveVendorFeed;
  /** For the start-up log line: what was configured, never a key. */
  readonly describe: Record<string, unknown>;
  release(): Promise<void>;
}

type Row<S extends VendorSettings> = (settings: S, http: VendorHttpClient, deps: VendorDependencies) => LiveVendorFeed;

const VENDORS: { readonly [K in VendorSettings['kind']]: Row<Extract<VendorSettings, { kind: K }>> } = {
  alpaca: (settings, http, deps) => createAlpacaFeed({ ...settings, ...deps, http }),
  polygon: (settings, http, deps) => createPolygonFeed({ ...settings, ...deps, http }),
};

/**
 * Timeouts, retries and the breaker every vendor's REST calls go through: 10 s per attempt, 3 retries
 * of 429/5xx/network failures (a Retry-After is a floor), and a breaker that opens after 3 calls with
 * over half failing and tries again after 30 s.
 */
const HTTP = {
  timeoutMs: 10_000,
  retries: 3,
  backoffMs: 500,
  breaker: { errorThresholdPercentage: 50, resetTimeoutMs: 30_000, volumeThreshold: 3 },
};

export function createMarketVendor(settings: VendorSettings, deps: VendorDependencies): MarketVendor {
  const http = createVendorHttpClient({ name: settings.kind, ...HTTP, logger: deps.logger });
  const feed = (VENDORS[settings.kind] as Row<VendorSettings>)(settings, http, deps);
  return {
    feed,
    describe: { provider: settings.kind, symbols: deps.symbols.length, backfillDays: settings.backfillDays },
    async release() {
      await feed.stop();
      http.shutdown();
    },
  };
}
