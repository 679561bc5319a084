import { Provider } from '@urql/preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { readApiKey, storeApiKey } from './api/auth.js';
import { createApi } from './api/client.js';
import { useLinkStatus, type LinkStatusStore } from './api/connection.js';
import { BacktestPage } from './pages/backtest.js';
import { ModelsPage } from './pages/models.js';
import { SymbolPage } from './pages/symbol.js';
import { WatchlistPage } from './pages/watchlist.js';
import { href, useRoute } from './router.js';

export function App() {
  const [apiKey, setApiKey] = useState(readApiKey);
  // A new key means new transports: HTTP headers and the WebSocket's connectionParams both carry it.
  const api = useMemo(() => createApi(apiKey), [apiKey]);
  useEffect(() => () => api.dispose(), [api]);
  const route = useRoute();

  const changeKey = (key: string) => {
    storeApiKey(key);
    setApiKey(key);
  };

  return (
    <Provider value={api.client}>
      <header class="top">
        <a class="brand" href={href.watchlist()}>
          <span class="logo" aria-hidden="true">
            ◆
          </span>{' '}
          Sibyl
        </a>
        <nav>
          <a href={href.watchlist()} class={route.page === 'watchlist' ? 'on' : ''}>
            Watchlist
          </a>
          <a href={href.models()} class={route.page === 'models' ? 'on' : ''}>
            Models
          </a>
          <a href={href.backtest()} class={route.page === 'backtest' ? 'on' : ''}>
            Backtest
          </a>
          {/* The gateway's configured explorer (EXPLORER); it falls back to the built-in one offline. */}
          <a href="/graphql" title="Write and run GraphQL queries against this gateway">
            API explorer
          </a>
        </nav>
        <SymbolJump />
        <KeyField value={apiKey} onChange={changeKey} />
        <LinkDot link={api.link} />
      </header>
      <LinkBanner link={api.link} />
      {/* Keyed by the key as well: pages refetch everything with the new credentials. */}
      <main key={apiKey}>
        {route.page === 'watchlist' && <WatchlistPage link={api.link} />}
        {route.page === 'symbol' && <SymbolPage key={route.symbol} symbol={route.symbol} />}
        {route.page === 'models' && <ModelsPage />}
        {route.page === 'backtest' && <BacktestPage />}
        {route.page === 'missing' && (
          <section class="page">
            <h1>Not found</h1>
            <p>
              No page at <code>{route.path}</code>. <a href={href.watchlist()}>Back to the watchlist</a>.
            </p>
          </section>
        )}
      </main>
      <footer class="bottom">
        Every number on these pages comes from the Sibyl GraphQL API at <a href="/graphql">/graphql</a> (explorer that works offline:{' '}
        <a href="/explorer/">/explorer/</a>). Predictions are model output, not advice.
      </footer>
    </Provider>
  );
}

function SymbolJump() {
  const [value, setValue] = useState('');
  return (
    <form
      class="jump"
      onSubmit={(e) => {
        e.preventDefault();
        const symbol = value.trim().toUpperCase();
        if (symbol) window.location.hash = href.symbol(symbol);
        setValue('');
      }}
    >
      <input
        value={value}
        onInput={(e) => setValue(e.currentTarget.value)}
        placeholder="Go to symbol…"
        aria-label="Go to symbol"
        maxLength={12}
      />
    </form>
  );
}

/** The API key field: kept in sessionStorage, so it lasts for this tab only. */
function KeyField({ value, onChange }: { value: string; onChange: (key: string) => void }) {
  const [draft, setDraft] = useState(value);
  useEffect(() => setDraft(value), [value]);
  return (
    <form
      class="key"
      onSubmit={(e) => {
        e.preventDefault();
        onChange(draft.trim());
      }}
    >
      <label for="api-key">API key</label>
      <input
        id="api-key"
        type="password"
        autocomplete="off"
        value={draft}
        onInput={(e) => setDraft(e.currentTarget.value)}
        placeholder={value ? '' : 'none (open gateway)'}
      />
      <button type="submit" disabled={draft.trim() === value}>
        Use
      </button>
      {value && (
        <button type="button" class="link" onClick={() => onChange('')}>
          Clear
        </button>
      )}
    </form>
  );
}

function LinkDot({ link }: { link: LinkStatusStore }) {
  const { state } = useLinkStatus(link);
  const label = {
    idle: 'live: idle',
    connecting: 'live: connecting',
    connected: 'live',
    lost: 'live: lost',
    reconnecting: 'live: reconnecting',
    refused: 'live: refused',
  }[state];
  return (
    <span class={`link-dot ${state}`} title={label} data-state={state}>
      {label}
    </span>
  );
}

/** Tells the user when live data stops, and when it is back. */
function LinkBanner({ link }: { link: LinkStatusStore }) {
  const status = useLinkStatus(link);
  const [restored, setRestored] = useState(false);
  useEffect(() => {
    if (status.reconnects === 0) return;
    setRestored(true);
    const timer = setTimeout(() => setRestored(false), 4_000);
    return () => clearTimeout(timer);
  }, [status.reconnects]);

  if (status.state === 'lost' || status.state === 'reconnecting') {
    return (
      <div class="banner warn" role="status" data-testid="link-banner" data-state={status.state}>
        Live connection to the gateway lost{status.detail ? ` (${status.detail})` : ''} — reconnecting… Updates resume where they stopped.
      </div>
    );
  }
  if (status.state === 'refused') {
    return (
      <div class="banner error" role="alert" data-testid="link-banner" data-state="refused">
        The gateway refused the live connection: {status.detail}. Check the API key field above.
      </div>
    );
  }
  if (restored) {
    return (
      <div class="banner ok" role="status" data-testid="link-banner" data-state="restored">
        Live connection restored.
      </div>
    );
  }
  return null;
}
