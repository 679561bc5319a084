import { useQuery } from '@urql/preact';
import { useState } from 'preact/hooks';
import { fmt } from '../format.js';
import { CompareModelsDocument, type ComparisonFragment } from '../generated/graphql.js';
import { ProblemBox } from './problem.js';

const VERDICT: Record<ComparisonFragment['verdict'], (a: string, b: string) => string> = {
  A_BETTER: (a) => `${a} is better`,
  B_BETTER: (_, b) => `${b} is better`,
  NO_DIFFERENCE_YET: () => 'no difference shown yet',
};

/**
 * Two versions of a strategy compared on the realized outcomes of the rows both predicted: by default
 * the active one against the shadow one, or any two chosen. Differences are a − b: negative favours a.
 */
export function ComparePanel({
  strategy,
  versions,
  active,
  shadow,
}: {
  strategy: string;
  versions: readonly string[];
  active: string;
  shadow: string | null;
}) {
  const [a, setA] = useState(active);
  const [b, setB] = useState(shadow ?? versions.find((v) => v !== active) ?? active);
  const enough = versions.length >= 2 && a !== b;
  const [result] = useQuery({ query: CompareModelsDocument, variables: { strategy, a, b }, pause: !enough });
  const c = result.data?.compareModels;
  const select = (value: string, set: (v: string) => void, label: string) => (
    <label>
      {label}{' '}
      <select name={label} value={value} onChange={(e) => set((e.target as HTMLSelectElement).value)}>
        {versions.map((v) => (
          <option key={v} value={v}>
            {v}
          </option>
        ))}
      </select>
    </label>
  );
  return (
    <div class="card compare" data-testid="compare" data-a={a} data-b={b}>
      <div class="card-head">
        <h3>Compare versions on realized outcomes</h3>
      </div>
      {versions.length < 2 ? (
        <p class="muted">Only one version is loaded: a comparison needs a second one (e.g. a shadow version).</p>
      ) : (
        <form class="drift-window" onSubmit={(e) => e.preventDefault()}>
          {select(a, setA, 'a')}
          {select(b, setB, 'b')}
          {a === b && <span class="muted small">choose two different versions</span>}
        </form>
      )}
      {result.error && <ProblemBox error={result.error} />}
      {result.fetching && <p class="loading">Comparing…</p>}
      {enough && c && (
        <>
          <p class="muted small">
            {c.brier.rows} paired predictions over {c.brier.days} days
            {c.from && c.to ? ` (${c.from.slice(0, 10)} to ${c.to.slice(0, 10)})` : ''}. Difference = {a} − {b}: negative favours {a},
            positive favours {b}.
          </p>
          <table class="metrics compare-table">
            <thead>
              <tr>
                <th>Loss</th>
                <th class="num">{a}</th>
                <th class="num">{b}</th>
                <th class="num">Difference</th>
                <th class="num">{fmt.percent(c.method.level)} interval</th>
                <th class="num">DM (p)</th>
                <th class="num">MDE 80%</th>
                <th class="num">Days still needed</th>
                <th>Verdict</th>
              </tr>
            </thead>
            <tbody>
              {[c.brier, c.logLoss].map((l) => (
                <tr key={l.loss} data-loss={l.loss} data-verdict={l.verdict} title={l.note ?? undefined}>
                  <th scope="row">{l.loss === 'brier' ? 'Brier' : 'Log loss'}</th>
                  <td class="num">{fmt.decimal(l.meanA)}</td>
                  <td class="num">{fmt.decimal(l.meanB)}</td>
                  <td class="num">{fmt.signedDecimal(l.meanDifference)}</td>
                  <td class="num">{l.interval ? `${fmt.signedDecimal(l.interval.low)} – ${fmt.signedDecimal(l.interval.high)}` : '—'}</td>
                  <td class="num">
                    {l.dmStatistic === null ? '—' : `${l.dmStatistic.toFixed(2)} (${l.pValue === null ? '—' : l.pValue.toFixed(3)})`}
                  </td>
                  <td class="num">{fmt.decimal(l.mde80)}</td>
                  <td class="num">{l.daysStillNeeded ?? '—'}</td>
                  <td>{VERDICT[l.verdict](a, b)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {[c.brier, c.logLoss].some((l) => l.note) && (
            <p class="muted small" data-field="note">
              {c.brier.note ?? c.logLoss.note}
            </p>
          )}
          <p class="muted small">
            Diebold–Mariano on daily mean differences, Newey–West lag {c.method.lag}; interval from {c.method.blocks} calendar-month blocks
            (seed {c.method.seed}). A verdict needs at least {c.method.minDays} days, the interval and the test agreeing.
          </p>
        </>
      )}
    </div>
  );
}
