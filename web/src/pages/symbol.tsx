import { useQuery, useSubscription } from '@urql/preact';
import type { ChartConfiguration } from 'chart.js';
import { useMemo, useState } from 'preact/hooks';
import { ChartCanvas } from '../components/chart.js';
import { ProblemBox } from '../components/problem.js';
import { SignalBadge } from '../components/signal.js';
import { direction, fmt } from '../format.js';
import {
  ConfidenceHistoryDocument,
  SignalsDocument,
  SymbolDetailDocument,
  SymbolExplanationDocument,
  type ConfidenceHistoryQuery,
  type SymbolDetailQuery,
  type SymbolExplanationQuery,
} from '../generated/graphql.js';
import { href } from '../router.js';

/**
 * Bucket choices for the history chart, each over a window ending at the prediction's asOf (so stored
 * historical bars work as well as the live market). `Auto`: the gateway's defaults (30 days, the bucket
 * it picks for at most 1,000 points).
 */
const BUCKETS = [
  { label: '10 s', title: 'last hour in 10-second buckets', bucket: '10 seconds', windowMs: 3_600_000 },
  { label: '1 min', title: 'last 6 hours in 1-minute buckets', bucket: '1 minute', windowMs: 6 * 3_600_000 },
  { label: '1 hour', title: 'last 7 days in hourly buckets', bucket: '1 hour', windowMs: 7 * 86_400_000 },
  { label: '1 day', title: 'last 90 days in daily buckets', bucket: '1 day', windowMs: 90 * 86_400_000 },
  { label: 'Auto', title: 'last 30 days, bucket chosen by the gateway', bucket: undefined, windowMs: undefined },
] as const;
type BucketChoice = (typeof BUCKETS)[number];
/** The interval levels the gateway calibrates (PriceInterval.level). */
const LEVELS = [0.8, 0.9, 0.95, 0.99] as const;

const UP = '#0f9d58';
const DOWN = '#d93025';
const ACCENT = '#3b5bdb';

/** One symbol: its prediction, price interval, explanation and recorded confidence, refreshed on every new bar. */
export function SymbolPage({ symbol }: { symbol: string }) {
  const [level, setLevel] = useState<number>(0.95);
  const [choice, setChoice] = useState<BucketChoice>(BUCKETS[0]);
  const [detail, refetchDetail] = useQuery({ query: SymbolDetailDocument, variables: { symbol, level } });
  const [explained, refetchExplained] = useQuery({ query: SymbolExplanationDocument, variables: { symbol }, pause: !detail.data });
  const asOf = detail.data?.prediction.asOf;
  // Auto omits the arguments: the gateway then picks (an explicit null bucket is refused).
  const historyVariables = useMemo(
    () =>
      choice.bucket && asOf
        ? { symbol, bucket: choice.bucket, from: new Date(Date.parse(asOf) - choice.windowMs).toISOString() }
        : { symbol },
    [symbol, choice, asOf],
  );
  const [history] = useQuery({ query: ConfidenceHistoryDocument, variables: historyVariables, pause: !asOf });

  // A new bar for this symbol: fetch the prediction again (explanations are not streamed); its new asOf
  // moves the history window, which fetches the history again.
  const [live] = useSubscription({ query: SignalsDocument, variables: { symbols: [symbol] }, pause: !detail.data }, (_previous, data) => {
    refetchDetail({ requestPolicy: 'network-only' });
    refetchExplained({ requestPolicy: 'network-only' });
    return data;
  });

  const prediction = detail.data?.prediction;
  return (
    <section class="page">
      <header class="page-head">
        <div>
          <p class="crumbs">
            <a href={href.watchlist()}>Watchlist</a> / {symbol}
          </p>
          <h1>{symbol}</h1>
          {prediction && (
            <p class="lede">
              {prediction.strategy} · horizon {prediction.horizon} · model {prediction.model.version} · as of{' '}
              {fmt.dateTime(prediction.asOf)}
              {prediction.stale && <span class="tag warn">stale</span>}
            </p>
          )}
        </div>
      </header>
      {detail.error && <ProblemBox error={detail.error} />}
      {live.error && <ProblemBox error={live.error} />}
      {detail.fetching && !prediction && <p class="loading">Loading prediction…</p>}
      {prediction && (
        <>
          <div class="grid three">
            <Headline prediction={prediction} />
            <IntervalCard prediction={prediction} level={level} onLevel={setLevel} />
            <AccuracyCard explained={explained.data?.prediction} />
          </div>
          <div class="card">
            <div class="card-head">
              <h2>Confidence history</h2>
              <div class="segmented" role="group" aria-label="Bucket">
                {BUCKETS.map((b) => (
                  <button key={b.label} title={b.title} class={choice === b ? 'on' : ''} onClick={() => setChoice(b)}>
                    {b.label}
                  </button>
                ))}
              </div>
            </div>
            {history.error && <ProblemBox error={history.error} />}
            {history.data && <HistoryChart points={history.data.confidenceHistory} />}
          </div>
          {explained.error && (
            <div class="card">
              <h2>Why</h2>
              <ProblemBox error={explained.error} />
            </div>
          )}
          {explained.data && <ExplanationCard explained={explained.data.prediction} />}
        </>
      )}
    </section>
  );
}

type Prediction = SymbolDetailQuery['prediction'];

function Headline({ prediction }: { prediction: Prediction }) {
  const move = prediction.quote.close / prediction.quote.open - 1;
  return (
    <div class="card stat">
      <div class="stat-row">
        <SignalBadge signal={prediction.signal} />
        <span class="big" data-field="confidence">
          {fmt.percent(prediction.confidence)}
        </span>
        <span class="muted">confidence</span>
      </div>
      <dl class="facts">
        <dt>P(event)</dt>
        <dd>{fmt.percent(prediction.probability)}</dd>
        <dt>Close</dt>
        <dd>
          {fmt.price(prediction.quote.close)} <span class={`dir${direction(move)}`}>{fmt.signedPercent(move)}</span>
        </dd>
        <dt>Bar</dt>
        <dd>
          O {fmt.price(prediction.quote.open)} · H {fmt.price(prediction.quote.high)} · L {fmt.price(prediction.quote.low)} · V{' '}
          {fmt.compact(prediction.quote.volume)}
        </dd>
        <dt>Source</dt>
        <dd>{prediction.quote.source}</dd>
      </dl>
    </div>
  );
}

function IntervalCard({ prediction, level, onLevel }: { prediction: Prediction; level: number; onLevel: (l: number) => void }) {
  const { low, high } = prediction.interval;
  const close = prediction.quote.close;
  // Where the close sits inside the range, for the marker (the range is the API's; only drawn here).
  const at = high > low ? Math.min(1, Math.max(0, (close - low) / (high - low))) : 0.5;
  return (
    <div class="card stat" data-testid="interval">
      <div class="card-head">
        <h2>Price interval</h2>
        <select value={String(level)} onChange={(e) => onLevel(Number(e.currentTarget.value))} aria-label="Interval level">
          {LEVELS.map((l) => (
            <option key={l} value={String(l)}>
              {Math.round(l * 100)}%
            </option>
          ))}
        </select>
      </div>
      <p class="range-text">
        <span class="dir-1">{fmt.price(low)}</span> – <span class="dir1">{fmt.price(high)}</span>
      </p>
      <div class="range" aria-hidden="true">
        <div class="range-marker" style={{ left: `${at * 100}%` }} />
      </div>
      <p class="muted small">
        {Math.round(prediction.interval.level * 100)}% conformal range for the close after {prediction.horizon}; last close{' '}
        {fmt.price(close)} ({fmt.signedPercent(low / close - 1)} / {fmt.signedPercent(high / close - 1)}).
      </p>
    </div>
  );
}

type Explained = SymbolExplanationQuery['prediction'];

function AccuracyCard({ explained }: { explained: Explained | undefined }) {
  if (!explained) {
    return (
      <div class="card stat">
        <h2>Track record</h2>
        <p class="muted small">Comes with the explanation (analyst role and above).</p>
      </div>
    );
  }
  const e = explained.explanation;
  return (
    <div class="card stat">
      <h2>Track record</h2>
      <p class="big">{fmt.percent(e.historicalAccuracy)}</p>
      <p class="muted small">
        {e.historicalAccuracy === null
          ? 'Not enough resolved outcomes at this confidence yet.'
          : `right at about this confidence (${e.historicalAccuracySource}${e.historicalAccuracySamples ? `, ${e.historicalAccuracySamples} outcomes` : ''})`}
      </p>
    </div>
  );
}

function HistoryChart({ points }: { points: ConfidenceHistoryQuery['confidenceHistory'] }) {
  const config = useMemo<ChartConfiguration>(() => {
    const xy = (pick: (p: (typeof points)[number]) => number) => points.map((p) => ({ x: Date.parse(p.time), y: pick(p) }));
    return {
      type: 'line',
      data: {
        datasets: [
          { label: 'Highest', data: xy((p) => p.max), borderWidth: 0, pointRadius: 0, fill: '+1', backgroundColor: 'rgba(59,91,219,0.12)' },
          { label: 'Lowest', data: xy((p) => p.min), borderWidth: 0, pointRadius: 0, fill: false },
          {
            label: 'Mean confidence',
            data: xy((p) => p.confidence),
            borderColor: ACCENT,
            backgroundColor: ACCENT,
            borderWidth: 2,
            pointRadius: points.length > 60 ? 0 : 2.5,
            tension: 0.2,
          },
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: 'index', intersect: false },
        scales: {
          // A lone bucket gets a minute either side, so it is not drawn against an arbitrary span.
          x: {
            type: 'linear',
            ...(points.length === 1 && { min: Date.parse(points[0]!.time) - 60_000, max: Date.parse(points[0]!.time) + 60_000 }),
            ticks: { maxTicksLimit: 6, callback: (v) => fmt.shortTime(Number(v)) },
          },
          y: { ticks: { callback: (v) => fmt.percent(Number(v)) }, title: { display: true, text: 'confidence' } },
        },
        plugins: {
          legend: { labels: { filter: (item) => item.text !== 'Lowest', boxWidth: 12 } },
          tooltip: {
            callbacks: {
              title: (items) => fmt.shortTime(Number(items[0]?.parsed.x)),
              label: (item) => `${item.dataset.label}: ${fmt.percent(item.parsed.y)}`,
              afterBody: (items) => {
                const p = points[items[0]?.dataIndex ?? -1];
                return p ? [`${p.count} prediction${p.count === 1 ? '' : 's'}${p.signal ? `, last ${p.signal}` : ''}`] : [];
              },
            },
          },
        },
      },
    };
  }, [points]);
  if (points.length === 0) {
    return (
      <p class="empty">
        No recorded predictions in this window yet: the gateway records each prediction it serves, so this fills as bars arrive.
      </p>
    );
  }
  return (
    <>
      <ChartCanvas config={config} label="confidence history" />
      <p class="muted small" data-testid="history-count">
        {points.length} bucket{points.length === 1 ? '' : 's'}, {points.reduce((n, p) => n + p.count, 0)} recorded predictions,{' '}
        {fmt.shortTime(Date.parse(points[0]!.time))} to {fmt.shortTime(Date.parse(points[points.length - 1]!.time))}
      </p>
    </>
  );
}

function ExplanationCard({ explained }: { explained: Explained }) {
  const e = explained.explanation;
  const config = useMemo<ChartConfiguration>(() => {
    const factors = [...e.factors].sort((a, b) => Math.abs(b.contribution) - Math.abs(a.contribution));
    return {
      type: 'bar',
      data: {
        labels: factors.map((f) => f.feature),
        datasets: [
          {
            label: 'contribution',
            data: factors.map((f) => f.contribution),
            backgroundColor: factors.map((f) => (f.contribution >= 0 ? UP : DOWN)),
            borderRadius: 3,
          },
        ],
      },
      options: {
        indexAxis: 'y',
        animation: false,
        maintainAspectRatio: false,
        scales: { x: { ticks: { callback: (v) => fmt.points(Number(v), 2) }, title: { display: true, text: 'change in probability' } } },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: (item) => `${fmt.points(item.parsed.x, 2)}`,
              afterLabel: (item) => factors[item.dataIndex]?.description ?? '',
            },
          },
        },
      },
    };
  }, [e]);
  return (
    <div class="card">
      <div class="card-head">
        <h2>Why</h2>
        <span class="muted small">
          {e.method} · baseline {fmt.percent(e.baseline)} → {fmt.percent(explained.probability)}
        </span>
      </div>
      <p class="summary" data-testid="summary">
        {e.summary}
      </p>
      <ChartCanvas config={config} label="explanation factors" height={Math.max(160, e.factors.length * 30 + 50)} />
    </div>
  );
}
