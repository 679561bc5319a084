import { type Kysely, sql } from 'kysely';

/**
 * Realized outcomes of recorded predictions, and what reads them.
 *
 * The outcome columns (created by 0003, null until the horizon has passed) mean, for a prediction made
 * at bar t with a horizon of h bars:
 *
 * - `realized_return` = adjClose[t+h] / adjClose[t] − 1: adjusted closes, so splits and dividends do not
 *   count as moves (the label the models were trained on is `realized_return > 0`).
 * - `correct` = the likelier direction was right: (probability ≥ 0.5) = (realized_return > 0). It is
 *   defined on the probability, not the signal, so it is defined for HOLD too (whose confidence is
 *   max(p, 1 − p), the probability of exactly this being right), and `avg(correct)` is the accuracy of
 *   modelMetrics at threshold 0.5. A flat realized return counts as "not higher", as in training.
 * - `covered` = the horizon's price close[t] × adjClose[t+h] / adjClose[t] (the raw close the interval
 *   was built around, moved by the adjusted return, so a split inside the horizon does not break it)
 *   lies within [interval_low, interval_high].
 *
 * Indexes:
 * - pending rows (realized_return is null), in (time, key) order: the outcome job pages through them;
 *   the index shrinks as outcomes are filled in, so it stays about as large as the last horizon's rows.
 * - resolved rows by (strategy, model_version, time): modelMetrics filters on exactly those.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create index prediction_history_pending_idx on prediction_history (time, symbol, strategy, model_version)
    where realized_return is null
  `.execute(db);
  await sql`
    create index prediction_history_resolved_idx on prediction_history (strategy, model_version, time)
    where realized_return is not null
  `.execute(db);
  await sql`comment on column prediction_history.realized_return is 'adjClose[t+h] / adjClose[t] - 1; null until bars after asOf + horizon exist'`.execute(
    db,
  );
  await sql`comment on column prediction_history.correct is '(probability >= 0.5) = (realized_return > 0): the likelier direction was right'`.execute(
    db,
  );
  await sql`comment on column prediction_history.covered is 'close[t] * adjClose[t+h] / adjClose[t] within [interval_low, interval_high]'`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists prediction_history_resolved_idx`.execute(db);
  await sql`drop index if exists prediction_history_pending_idx`.execute(db);
}
