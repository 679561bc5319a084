import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const resultsDir = path.join(projectRoot, 'bench', 'results');

/**
 * The real market data (Alpha Vantage daily-adjusted CSVs), never copied into the repository: the
 * same convention as the tests, SIBYL_MARKET_DATA names the folder holding `daily_adjusted/`.
 */
export function marketDataDir(): string {
  const root = process.env.SIBYL_MARKET_DATA ?? path.resolve(projectRoot, '../shared/data/market');
  return path.join(root, 'daily_adjusted');
}
