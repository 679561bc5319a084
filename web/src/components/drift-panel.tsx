import { useQuery } from '@urql/preact';
import { useState } from 'preact/hooks';
import { fmt } from '../format.js';
import { ModelDriftDocument, type VariableDriftRowFragment } from '../generated/graphql.js';
import { ProblemBox } from './problem.js';

const DAY_MS = 86_400_000;
const isoDay = (d: Date) => d.toISOString().slice(0, 10);

/**
 * Drift of one model version over a window of stored bars, measured only when asked (`drift` costs a
 * fixed 500 points and reads every bar of the window): PSI and KS per input and for the predicted
 * probability against the training distribution, the months that drifted, and the realized figures.
 */
export function DriftPanel({ strategy, version }: { strategy: string; version: string }) {
  const today = new Date();
  const [from, setFrom] = useState(isoDay(new Date(today.getTime() - 364 * DAY_MS)));
  const [to, setTo] = useState(isoDay(today));
  const [asked, setAsked] = useState<{ from: string; to: string } | undefined>(undefined);
  const [result] = useQuery({
    query: ModelDriftDocument,
    variables: { strategy, version, window: { from: `${asked?.from ?? from}T00:00:00Z`, to: `${asked?.to ?? to}T00:00:00Z` } },
    pause: !asked,
  });
  const drift = result.data?.drift;
  return (
    <div class="card drift" data-testid="drift" data-version={version}>
      <div class="card-head">
        <h3>Drift of {version}</h3>
      </div>
      <form
        class="drift-window"
        onSubmit={(event) => {
          event.preventDefault();
          setAsked({ from, to });
        }}
      >
        <label>
          From <input type="date" name="from" value={from} onInput={(e) => setFrom((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          To <input type="date" name="to" value={to} onInput={(e) => setTo((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Measure</button>
      </form>
      {result.error && <ProblemBox error={result.error} />}
      {result.fetching && <p class="loading">Measuring drift…</p>}
      {drift && (
        <>
          <p class="muted small">
            {drift.samples} feature vectors ({drift.symbols.length} symbols, {drift.days} days) against the training distribution
          </p>
          <p class="muted small">
            Reference: {drift.reference.features}, {drift.reference.featuresFrom} to {drift.reference.featuresTo}. PSI above{' '}
            {drift.thresholds.watch} is worth watching, above {drift.thresholds.drifted} drifted.
          </p>
          <table class="metrics drift-table">
            <thead>
              <tr>
                <th>Input</th>
                <th class="num">PSI</th>
                <th class="num">KS</th>
                <th class="num">Median now</th>
                <th class="num">Training</th>
                <th>Status</th>
              </tr>
            </thead>
            <tbody>
              {[...drift.features, ...(drift.probability ? [drift.probability] : [])].map((row) => (
                <DriftRow row={row} key={row.name} />
              ))}
            </tbody>
          </table>
          {drift.probabilityReason && <p class="muted small">Predicted probability: {drift.probabilityReason}</p>}
          <p class="small" data-field="months">
            Drifted by month:{' '}
            {drift.months.map((m) => (
              <span key={m.month} title={m.drifted.join(', ') || 'none'}>
                {m.month} <b>{m.drifted.length}</b>{' '}
              </span>
            ))}
          </p>
          <p class="muted small">
            Realized in the window: {drift.realized.sampleSize} resolved predictions, ECE {fmt.decimal(drift.realized.ece)}, 95% interval
            coverage {fmt.percent(drift.realized.intervalCoverage)}.
          </p>
        </>
      )}
    </div>
  );
}

function DriftRow({ row }: { row: VariableDriftRowFragment }) {
  return (
    <tr data-feature={row.name} data-status={row.status}>
      <td>{row.name}</td>
      <td class="num">{fmt.decimal(row.psi)}</td>
      <td class="num">{fmt.decimal(row.ks)}</td>
      <td class="num">{fmt.decimal(row.recentMedian)}</td>
      <td class="num">{fmt.decimal(row.referenceMedian)}</td>
      <td>
        {row.status === 'STABLE' ? <span class="muted small">stable</span> : <span class="tag warn">{row.status.toLowerCase()}</span>}
      </td>
    </tr>
  );
}
