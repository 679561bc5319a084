import { useQuery } from '@urql/preact';
import type { ChartConfiguration } from 'chart.js';
import { useMemo } from 'preact/hooks';
import { ChartCanvas } from '../components/chart.js';
import { ComparePanel } from '../components/compare-panel.js';
import { DriftPanel } from '../components/drift-panel.js';
import { ProblemBox } from '../components/problem.js';
import { PromotionsPanel } from '../components/promotions-panel.js';
import { fmt } from '../format.js';
import { RealizedMetricsDocument, StrategiesDocument, type MetricsFragment, type VersionCardFragment } from '../generated/graphql.js';

const OFFLINE = '#3b5bdb';
const REALIZED = '#e8590c';

/** Models: each strategy's active and shadow versions, held-out against realized metrics, with calibration. */
export function ModelsPage() {
  const [result] = useQuery({ query: StrategiesDocument });
  return (
    <section class="page">
      <header class="page-head">
        <div>
          <h1>Models</h1>
          <p class="lede">
            <em>Offline</em>: held-out data at training time. <em>Realized</em>: outcomes of the predictions this gateway served, once their
            horizon passed.
          </p>
        </div>
      </header>
      {result.error && <ProblemBox error={result.error} />}
      {result.fetching && !result.data && <p class="loading">Loading models…</p>}
      {result.data?.strategies.map((strategy) => (
        <article class="strategy" key={strategy.name}>
          <h2>
            {strategy.name} <span class="muted small">horizon {strategy.horizon}</span>
          </h2>
          <p class="muted">{strategy.description}</p>
          <div class="grid two">
            <VersionPanel strategy={strategy.name} version={strategy.activeVersion} role="active" />
            {strategy.shadowVersion ? (
              <VersionPanel strategy={strategy.name} version={strategy.shadowVersion} role="shadow" />
            ) : (
              <div class="card empty-card">
                <p class="muted">
                  No shadow version. An admin can run one beside the active version with <code>setShadowModelVersion</code>.
                </p>
              </div>
            )}
          </div>
          <ComparePanel
            strategy={strategy.name}
            versions={strategy.versions.map((v) => v.version)}
            active={strategy.activeVersion.version}
            shadow={strategy.shadowVersion?.version ?? null}
          />
          <PromotionsPanel strategy={strategy.name} />
          <DriftPanel strategy={strategy.name} version={strategy.activeVersion.version} />
        </article>
      ))}
    </section>
  );
}

function VersionPanel({ strategy, version, role }: { strategy: string; version: VersionCardFragment; role: 'active' | 'shadow' }) {
  const [realized] = useQuery({ query: RealizedMetricsDocument, variables: { strategy, version: version.version } });
  const offline = version.offlineMetrics;
  const live = realized.data?.modelMetrics;
  return (
    <div class="card" data-version={version.version} data-role={role}>
      <div class="card-head">
        <h3>
          <span class={`tag ${role}`}>{role}</span> {version.version}
        </h3>
        <span class="muted small">
          trained {fmt.dateTime(version.createdAt)} · {version.features.length} features
        </span>
      </div>
      {realized.error && <ProblemBox error={realized.error} />}
      <CalibrationChart offline={offline} realized={live} />
      <MetricsTable offline={offline} realized={live} />
    </div>
  );
}

const ROWS: Array<{ key: keyof MetricsFragment; label: string; format: (v: number | null | undefined) => string; hint?: string }> = [
  { key: 'sampleSize', label: 'Samples', format: (v) => fmt.compact(v) },
  { key: 'accuracy', label: 'Accuracy', format: fmt.percent },
  { key: 'brier', label: 'Brier', format: fmt.decimal, hint: 'lower is better' },
  { key: 'baselineBrier', label: 'Baseline Brier', format: fmt.decimal, hint: 'always the base rate: the bar to beat' },
  { key: 'ece', label: 'Calibration error (ECE)', format: fmt.decimal },
  { key: 'logLoss', label: 'Log loss', format: fmt.decimal },
  { key: 'precision', label: 'Precision', format: fmt.percent },
  { key: 'recall', label: 'Recall', format: fmt.percent },
  { key: 'f1', label: 'F1', format: fmt.decimal },
  { key: 'intervalCoverage', label: '95% interval coverage', format: fmt.percent },
];

function MetricsTable({ offline, realized }: { offline: MetricsFragment | null; realized: MetricsFragment | undefined }) {
  const value = (m: MetricsFragment | null | undefined, key: keyof MetricsFragment) => (m ? (m[key] as number | null) : undefined);
  return (
    <table class="metrics">
      <thead>
        <tr>
          <th />
          <th class="num">Offline</th>
          <th class="num">Realized</th>
        </tr>
      </thead>
      <tbody>
        {ROWS.map((row) => (
          <tr key={row.key} title={row.hint}>
            <th scope="row">{row.label}</th>
            <td class="num">{row.format(value(offline, row.key))}</td>
            <td class="num">{row.format(value(realized, row.key))}</td>
          </tr>
        ))}
      </tbody>
      {realized && realized.sampleSize === 0 && (
        <caption class="muted small">
          No served prediction has resolved yet: realized metrics appear once outcomes are recorded (after each horizon).
        </caption>
      )}
    </table>
  );
}

function CalibrationChart({ offline, realized }: { offline: MetricsFragment | null; realized: MetricsFragment | undefined }) {
  const config = useMemo<ChartConfiguration>(() => {
    const bins = (m: MetricsFragment | null | undefined) =>
      (m?.calibration ?? [])
        .filter((b) => b.count > 0 && b.meanPredicted !== null && b.observedRate !== null)
        .map((b) => ({ x: b.meanPredicted!, y: b.observedRate!, count: b.count }));
    const offlineBins = bins(offline);
    const realizedBins = bins(realized);
    const all = [...offlineBins, ...realizedBins];
    // Zoom to the bins (calibrated probabilities cluster near 0.5), keeping the square so the diagonal is 45°.
    const lo = all.length ? Math.max(0, Math.floor((Math.min(...all.flatMap((b) => [b.x, b.y])) - 0.05) * 10) / 10) : 0;
    const hi = all.length ? Math.min(1, Math.ceil((Math.max(...all.flatMap((b) => [b.x, b.y])) + 0.05) * 10) / 10) : 1;
    const radius = (count: number) => Math.max(3, Math.min(10, Math.sqrt(count) / 4));
    return {
      type: 'scatter',
      data: {
        datasets: [
          {
            type: 'line',
            label: 'Perfect calibration',
            data: [
              { x: lo, y: lo },
              { x: hi, y: hi },
            ],
            borderColor: '#adb5bd',
            borderDash: [5, 4],
            borderWidth: 1,
            pointRadius: 0,
          },
          {
            label: 'Offline',
            data: offlineBins,
            backgroundColor: OFFLINE,
            borderColor: OFFLINE,
            pointRadius: offlineBins.map((b) => radius(b.count)),
          },
          {
            label: 'Realized',
            data: realizedBins,
            backgroundColor: REALIZED,
            borderColor: REALIZED,
            pointRadius: realizedBins.map((b) => radius(b.count)),
          },
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: {
            type: 'linear',
            min: lo,
            max: hi,
            title: { display: true, text: 'predicted probability (bin mean)' },
            ticks: { callback: (v) => fmt.percent(Number(v)) },
          },
          y: { min: lo, max: hi, title: { display: true, text: 'observed rate' }, ticks: { callback: (v) => fmt.percent(Number(v)) } },
        },
        plugins: {
          legend: { labels: { boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: (item) => {
                const raw = item.raw as { x: number; y: number; count?: number };
                return `${item.dataset.label}: predicted ${fmt.percent(raw.x)}, observed ${fmt.percent(raw.y)}${raw.count ? ` (${raw.count} outcomes)` : ''}`;
              },
            },
          },
        },
      },
    };
  }, [offline, realized]);
  return <ChartCanvas config={config} label="calibration" height={260} />;
}
