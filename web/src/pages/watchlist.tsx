import { useClient, useQuery, useSubscription } from '@urql/preact';
import { useEffect, useMemo, useReducer, useRef, useState } from 'preact/hooks';
import { useLinkStatus, type LinkStatusStore } from '../api/connection.js';
import { describeError, describeGraphQLError, type Problem } from '../api/errors.js';
import { ProblemBox } from '../components/problem.js';
import { SignalBadge } from '../components/signal.js';
import { Sparkline } from '../components/sparkline.js';
import { direction, fmt } from '../format.js';
import { SignalsDocument, SymbolsDocument, WatchlistDocument, WatchlistHistoryDocument } from '../generated/graphql.js';
import { href } from '../router.js';
import { resumePoint, watchReducer, type WatchEntry } from './watchlist-state.js';

const STORAGE_KEY = 'sibyl.watchlist';
/** A fresh watchlist shows this many of the gateway's symbols. */
const DEFAULT_SIZE = 12;

/** Watchlist: current predictions of the chosen symbols, updated live from the `signals` subscription. */
export function WatchlistPage({ link }: { link: LinkStatusStore }) {
  const [saved, setSaved] = useState<string[] | null>(() => readSaved());
  const [known] = useQuery({ query: SymbolsDocument, pause: saved !== null });
  const symbols = useMemo(() => saved ?? known.data?.symbols.slice(0, DEFAULT_SIZE) ?? null, [saved, known.data]);

  const save = (next: string[]) => {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(next));
    setSaved(next);
  };
  const reset = () => {
    localStorage.removeItem(STORAGE_KEY);
    setSaved(null);
  };

  return (
    <section class="page">
      <header class="page-head">
        <div>
          <h1>Watchlist</h1>
          <p class="lede">
            Current signal of each symbol under the active <code>direction-1d</code> model; rows update as new bars arrive.
          </p>
        </div>
        {symbols && <AddSymbol symbols={symbols} onAdd={(s) => save([...symbols, s])} />}
      </header>
      {known.error && <ProblemBox error={known.error} />}
      {symbols === null && !known.error && <p class="loading">Loading symbols…</p>}
      {symbols && symbols.length === 0 && (
        <p class="empty">
          The watchlist is empty. Add a symbol above
          {saved ? (
            <>
              , or{' '}
              <button class="link" onClick={reset}>
                restore the default list
              </button>
            </>
          ) : null}
          .
        </p>
      )}
      {symbols && symbols.length > 0 && (
        <WatchTable
          symbols={symbols}
          link={link}
          onRemove={(s) => save(symbols.filter((x) => x !== s))}
          onReset={saved ? reset : undefined}
        />
      )}
    </section>
  );
}

function WatchTable({
  symbols,
  link,
  onRemove,
  onReset,
}: {
  symbols: string[];
  link: LinkStatusStore;
  onRemove: (s: string) => void;
  onReset: (() => void) | undefined;
}) {
  const [result] = useQuery({ query: WatchlistDocument, variables: { symbols }, requestPolicy: 'network-only' });
  const [entries, dispatch] = useReducer(watchReducer, []);
  const [since, setSince] = useState<string | undefined>();
  const [liveCount, setLiveCount] = useState(0);
  const entriesRef = useRef(entries);
  entriesRef.current = entries;

  // Subscribe from the oldest asOf the query showed: whatever the gateway recorded between the query and
  // the subscription is replayed first (signals(since:)), so no bar is missed.
  useEffect(() => {
    if (!result.data || result.stale) return;
    const action = { type: 'loaded', symbols, data: result.data, errors: result.error?.graphQLErrors ?? [] } as const;
    dispatch(action);
    setSince(resumePoint(watchReducer(entriesRef.current, action)));
  }, [result.data, result.stale]);
  // Sparklines start from the recorded history once the rows are there (analyst role and above).
  const [recorded] = useQuery({
    query: WatchlistHistoryDocument,
    variables: { symbols },
    requestPolicy: 'network-only',
    pause: entries.length === 0,
  });
  useEffect(() => {
    if (recorded.data && !recorded.stale) dispatch({ type: 'history', data: recorded.data });
  }, [recorded.data, recorded.stale, entries.length > 0]);
  const historyProblem = recorded.error?.graphQLErrors[0] ? describeGraphQLError(recorded.error.graphQLErrors[0]) : undefined;

  const servedKey = entries
    .filter((e) => e.row)
    .map((e) => e.symbol)
    .join(',');
  const served = useMemo(() => (servedKey ? servedKey.split(',') : []), [servedKey]);

  // When the socket drops, re-subscribe from the last asOf seen, so the resumed stream starts exactly there.
  const status = useLinkStatus(link);
  useEffect(() => {
    if (status.state === 'lost') setSince(resumePoint(entriesRef.current));
  }, [status.state]);

  const [live] = useSubscription(
    { query: SignalsDocument, variables: { symbols: served, since }, pause: served.length === 0 || since === undefined },
    (_previous, data) => {
      dispatch({ type: 'live', row: data.signals, at: Date.now() });
      setLiveCount((n) => n + 1);
      return data;
    },
  );

  const wholeProblem =
    result.error && (!result.data || result.error.graphQLErrors.some((e) => !e.path || e.path.length < 2))
      ? describeError(result.error)
      : undefined;
  const sources = [...new Set(entries.map((e) => e.row?.quote.source).filter(Boolean))];

  return (
    <>
      {wholeProblem && <ProblemBox problem={wholeProblem} />}
      {live.error && <ProblemBox error={live.error} />}
      {result.fetching && entries.length === 0 && <p class="loading">Loading predictions…</p>}
      {entries.length > 0 && (
        <div class="card">
          <table class="watchlist" data-testid="watchlist">
            <thead>
              <tr>
                <th>Symbol</th>
                <th>Signal</th>
                <th class="num">Confidence</th>
                <th class="num">Change</th>
                <th class="num" title="calibrated probability that the strategy's event happens">
                  P(event)
                </th>
                <th class="num">Close</th>
                <th class="num">Bar move</th>
                <th>Recent confidence</th>
                <th>As of</th>
                <th aria-label="remove" />
              </tr>
            </thead>
            <tbody>
              {entries.map((entry) => (
                // Keyed by the update time too: a live update re-creates the row, which replays its highlight.
                <WatchRow key={`${entry.symbol}:${entry.updatedAt ?? 0}`} entry={entry} onRemove={onRemove} />
              ))}
            </tbody>
          </table>
          <footer class="card-foot">
            <span data-testid="live-count">
              {liveCount === 0 ? 'Waiting for the next bar…' : `${liveCount} live update${liveCount === 1 ? '' : 's'} received`}
            </span>
            {sources.length > 0 && <span>market data: {sources.join(', ')}</span>}
            {historyProblem && (
              <span data-code={historyProblem.code}>
                {historyProblem.code === 'FORBIDDEN'
                  ? 'Recorded confidence needs the analyst role: sparklines show live updates only.'
                  : historyProblem.message}
              </span>
            )}
            {onReset && (
              <button class="link" onClick={onReset}>
                Restore default list
              </button>
            )}
          </footer>
        </div>
      )}
    </>
  );
}

function WatchRow({ entry, onRemove }: { entry: WatchEntry; onRemove: (s: string) => void }) {
  const { symbol, row, points, problem } = entry;
  const previous = points.length > 1 ? points[points.length - 2]!.confidence : undefined;
  // Below 0.05 pp a change rounds to ±0.0 pp: shown neutral, not as a move.
  const rawChange = row && previous !== undefined ? row.confidence - previous : undefined;
  const change = rawChange !== undefined && Math.abs(rawChange) < 0.0005 ? 0 : rawChange;
  const move = row ? row.quote.close / row.quote.open - 1 : undefined;
  return (
    <tr data-symbol={symbol} data-asof={row?.asOf ?? ''} class={entry.updatedAt ? 'updated' : ''}>
      <th scope="row">
        <a href={href.symbol(symbol)}>{symbol}</a>
        {row?.stale && (
          <span class="tag warn" title="served from the last good bars while market data fails">
            stale
          </span>
        )}
      </th>
      {row ? (
        <>
          <td>
            <SignalBadge signal={row.signal} />
          </td>
          <td class="num strong" data-field="confidence">
            {fmt.percent(row.confidence)}
          </td>
          <td class={`num dir${direction(change)}`}>{fmt.points(change)}</td>
          <td class="num">{fmt.percent(row.probability)}</td>
          <td class="num">{fmt.price(row.quote.close)}</td>
          <td class={`num dir${direction(move)}`}>{fmt.signedPercent(move)}</td>
          <td>
            <Sparkline values={points.map((p) => p.confidence)} />
          </td>
          <td class="muted time">{fmt.dateTime(row.asOf)}</td>
        </>
      ) : (
        <td colSpan={8} class="row-problem" role="alert" data-code={problem?.code}>
          {problem?.message ?? 'No prediction'}
        </td>
      )}
      <td>
        <button class="icon" title={`Remove ${symbol}`} aria-label={`Remove ${symbol}`} onClick={() => onRemove(symbol)}>
          ×
        </button>
      </td>
    </tr>
  );
}

/** Adds a symbol after asking the gateway for it, so a bad one shows the server's reason and is not kept. */
function AddSymbol({ symbols, onAdd }: { symbols: string[]; onAdd: (symbol: string) => void }) {
  const client = useClient();
  const [value, setValue] = useState('');
  const [problem, setProblem] = useState<Problem | undefined>();
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const symbol = value.trim().toUpperCase();
    if (!symbol) return;
    if (symbols.includes(symbol)) {
      setProblem({ code: 'DUPLICATE', aboutKey: false, message: `${symbol} is already on the watchlist.` });
      return;
    }
    setBusy(true);
    const result = await client.query(WatchlistDocument, { symbols: [symbol] }, { requestPolicy: 'network-only' }).toPromise();
    setBusy(false);
    const error = result.error?.graphQLErrors[0];
    if (result.error) setProblem(error ? describeGraphQLError(error) : describeError(result.error));
    else if (!result.data?.predictions[0]) setProblem({ code: 'UNKNOWN_SYMBOL', aboutKey: false, message: `No prediction for ${symbol}.` });
    else {
      setProblem(undefined);
      setValue('');
      onAdd(symbol);
    }
  };

  return (
    <form class="add-symbol" onSubmit={submit}>
      <input
        value={value}
        onInput={(e) => setValue(e.currentTarget.value)}
        placeholder="Add symbol, e.g. NVDA"
        aria-label="Symbol to add"
        maxLength={12}
      />
      <button type="submit" disabled={busy}>
        Add
      </button>
      {problem && (
        <p class="field-problem" role="alert" data-code={problem.code}>
          {problem.message}
        </p>
      )}
    </form>
  );
}

function readSaved(): string[] | null {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null');
    return Array.isArray(parsed) && parsed.every((s) => typeof s === 'string') ? parsed : null;
  } catch {
    return null;
  }
}
