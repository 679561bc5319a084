import { useQuery } from '@urql/preact';
import { fmt } from '../format.js';
import { PromotionDecisionsDocument } from '../generated/graphql.js';
import { ProblemBox } from './problem.js';

/** How many of the latest decisions each strategy shows. */
const SHOWN = 10;

/**
 * The promotion policy's latest recorded decisions for one strategy, newest first: when, what it
 * concluded and why, and whether the serving version changed. One query serves every strategy on the
 * page (urql answers the same query and variables once).
 */
export function PromotionsPanel({ strategy }: { strategy: string }) {
  const [result] = useQuery({ query: PromotionDecisionsDocument, variables: { last: SHOWN } });
  const decisions = result.data?.strategies.find((s) => s.name === strategy)?.promotions;
  return (
    <div class="card promotions" data-testid="promotions" data-strategy={strategy}>
      <div class="card-head">
        <h3>Promotion decisions</h3>
      </div>
      {result.error && <ProblemBox error={result.error} />}
      {result.fetching && !result.data && <p class="loading">Loading decisions…</p>}
      {decisions && decisions.length === 0 && (
        <p class="muted" data-field="no-decisions">
          No decision recorded yet: the promotion evaluator records one when the evidence about the active or shadow version changes.
        </p>
      )}
      {decisions && decisions.length > 0 && (
        <table class="metrics">
          <thead>
            <tr>
              <th>Time</th>
              <th>Action</th>
              <th>Versions</th>
              <th>Applied</th>
              <th>Why</th>
            </tr>
          </thead>
          <tbody>
            {decisions.map((d) => (
              <tr key={d.id} data-action={d.action} data-applied={String(d.applied)}>
                <td>{fmt.dateTime(d.time)}</td>
                <td>
                  {d.action} <span class="muted small">{d.reason}</span>
                </td>
                <td>
                  {d.fromVersion}
                  {d.toVersion ? ` → ${d.toVersion}` : ''}
                </td>
                <td>{d.applied ? 'yes' : 'no'}</td>
                <td>
                  {d.summary}
                  {d.error && <span class="muted small"> (not switched: {d.error})</span>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
