import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';

/**
 * Realized outcomes of one model version in the confidence buckets lo..hi (bucket k holds confidence in
 * [k/100, (k+1)/100); bucket 99 includes 1), with what a day-clustered interval needs: the distinct UTC
 * days (of asOf) behind them and, over those days, Σ rows², Σ correct², Σ correct·rows.
 */
export interface BandEvidence {
  readonly samples: number;
  readonly correct: number;
  readonly days: number;
  readonly sumRows2: number;
  readonly sumCorrect2: number;
  readonly sumCorrectRows: number;
}

export interface ConfidenceBand {
  readonly strategy: string;
  readonly version: string;
  /** Inclusive bucket range, 0-99. */
  readonly lo: number;
  readonly hi: number;
}

/** What the explanations service reads; the repository below is the SQL one. */
export interface AccuracySource {
  /** One answer per band, in order (zeros where nothing is recorded). */
  evidenceInBands(bands: readonly ConfidenceBand[]): Promise<BandEvidence[]>;
}

/** Width of the confidence buckets outcomes are counted in. */
export const CONFIDENCE_BUCKETS = 100;

const NO_EVIDENCE: BandEvidence = { samples: 0, correct: 0, days: 0, sumRows2: 0, sumCorrect2: 0, sumCorrectRows: 0 };

/**
 * All SQL of explanations: reads realized outcomes (`prediction_outcomes`: `correct` and the
 * prediction's confidence, appended by the outcomes job; predictions whose outcome is still unknown
 * are left out) of one market: the one the gateway serves, so a synthetic run's outcomes never stand
 * behind a real prediction's historicalAccuracy.
 *
 * ```ts
 * const evidence = new ExplanationsRepository(db, STORED_MARKET);
 * const [e] = await evidence.evidenceInBands([{ strategy: 'direction-1d', version: 'v1', lo: 53, hi: 58 }]);
 * // { samples: 412, correct: 224, days: 131, sumRows2: 1390, sumCorrect2: 420, sumCorrectRows: 760 }
 * ```
 */
export class ExplanationsRepository implements AccuracySource {
  constructor(
    private readonly db: Db,
    /** The market whose outcomes count (`market_source`). */
    private readonly market: string,
  ) {}

  /**
   * Outcome evidence for every band asked, in ONE statement (a request explaining many predictions asks
   * once, with its distinct bands): rows grouped per band and day, then per band. The answer has one
   * row per band, however long the history.
   */
  async evidenceInBands(bands: readonly ConfidenceBand[]): Promise<BandEvidence[]> {
    if (bands.length === 0) return [];
    // Rows are first counted per (model, bucket, day) in one pass; each band is then the sum of its
    // buckets, joined by equality (a band spans ~6 buckets), never a range join of bands × rows.
    // `materialized`: inlined, the planner re-expanded every band for each counted row (3× slower).
    const { rows } = await sql<BandEvidence & { i: number }>`
      with m as (
        select * from unnest(${bands.map((_, i) => i)}::int[], ${bands.map((b) => b.strategy)}::text[], ${bands.map((b) => b.version)}::text[],
                             ${bands.map((b) => b.lo)}::int[], ${bands.map((b) => b.hi)}::int[]) as m(i, strategy, version, lo, hi)
      ),
      e as materialized (
        select m.i, m.strategy, m.version, g.bucket from m cross join lateral generate_series(m.lo, m.hi) as g(bucket)
      ),
      b as materialized (
        select o.strategy, o.model_version as version, least(floor(o.confidence * ${CONFIDENCE_BUCKETS})::int, ${CONFIDENCE_BUCKETS - 1}) as bucket,
               (o.time at time zone 'UTC')::date as day, count(*)::float8 as n, (count(*) filter (where o.correct))::float8 as c
        from prediction_outcomes o
        where o.market_source = ${this.market}
          and (o.strategy, o.model_version) in (select strategy, version from m)
        group by 1, 2, 3, 4
      ),
      d as (
        select e.i, b.day, sum(b.n) as n, sum(b.c) as c
        from e join b on b.strategy = e.strategy and b.version = e.version and b.bucket = e.bucket
        group by e.i, b.day
      )
      select i, sum(n)::int as samples, sum(c)::int as correct, count(*)::int as days,
             sum(n * n) as "sumRows2", sum(c * c) as "sumCorrect2", sum(c * n) as "sumCorrectRows"
      from d
      group by i
    `.execute(this.db);
    const out = bands.map(() => NO_EVIDENCE);
    for (const { i, ...evidence } of rows) out[i] = evidence;
    return out;
  }
}
