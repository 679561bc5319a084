import { inSpan } from '../tracing/tracing.js';
import type { MarketDataProvider } from './market-data.js';

/** Wraps a provider so every fetch is counted (`sibyl_market_fetches_total{provider}`) and traced (`market.fetch`). */
export function countingFetches(provider: MarketDataProvider, count: (provider: string) => void): MarketDataProvider {
  return {
    name: provider.name,
    fetchBars(symbols, options) {
      count(provider.name);
      return inSpan('market.fetch', { 'sibyl.provider': provider.name, 'sibyl.symbols': symbols.length }, () =>
        provider.fetchBars(symbols, options),
      );
    },
    listSymbols: () => provider.listSymbols(),
  };
}
