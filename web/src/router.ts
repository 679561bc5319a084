import { useEffect, useState } from 'preact/hooks';

/** Pages, addressed by the URL hash so the gateway needs no history fallback: #/, #/symbol/AAPL, #/models, #/backtest. */
export type Route =
  | { page: 'watchlist' }
  | { page: 'symbol'; symbol: string }
  | { page: 'models' }
  | { page: 'backtest' }
  | { page: 'missing'; path: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/';
  if (path === '/') return { page: 'watchlist' };
  if (path === '/models') return { page: 'models' };
  if (path === '/backtest') return { page: 'backtest' };
  const symbol = /^\/symbol\/(.+)$/.exec(path)?.[1];
  if (symbol !== undefined) return { page: 'symbol', symbol: decodeURIComponent(symbol) };
  return { page: 'missing', path };
}

export const href = {
  watchlist: () => '#/',
  symbol: (symbol: string) => `#/symbol/${encodeURIComponent(symbol)}`,
  models: () => '#/models',
  backtest: () => '#/backtest',
};

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
