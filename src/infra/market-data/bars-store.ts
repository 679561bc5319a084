import type { BarsRepository } from './bars-repository.js';
import type { MarketDataProvider } from './market-data.js';

/**
 * The market as stored in PostgreSQL/PGlite (imported CSVs, recorded feeds). Each call is one SQL
 * statement for all requested symbols, so the gateway's batching carries through to the database.
 */
export function createBarsStoreProvider(repository: Pick<BarsRepository, 'fetchBars' | 'listSymbols'>): MarketDataProvider {
  return {
    name: 'postgres',
    fetchBars: (symbols, options) => repository.fetchBars(symbols, options),
    listSymbols: () => repository.listSymbols(),
  };
}
