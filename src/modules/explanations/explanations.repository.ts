import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';

/** Realized outcomes of one model version at confidence in [bucket/100, (bucket+1)/100) (bucket 99 includes 1). */
export interface AccuracyBucket {
  readonly strategy: string;
  readonly version: string;
  readonly bucket: number;
  readonly samples: number;
  readonly correct: number;
}

export interface ModelKey {
  readonly strategy: string;
  readonly version: string;
}

/** What the explanations service reads; the repository below is the SQL one. */
export interface AccuracySource {
  accuracyByConfidence(models: readonly ModelKey[]): Promise<AccuracyBucket[]>;
}

/** Width of the confidence buckets outcomes are counted in. */
export const CONFIDENCE_BUCKETS = 100;

/**
 * All SQL of explanations: reads `prediction_history`'s realized outcomes (`correct`, filled by the
 * outcomes job; rows whose outcome is still unknown are left out).
 *
 * ```ts
 * const buckets = await new ExplanationsRepository(db).accuracyByConfidence([{ strategy: 'direction-1d', version: 'v1' }]);
 * // [{ strategy: 'direction-1d', version: 'v1', bucket: 53, samples: 412, correct: 224 }, …]
 * ```
 */
export class ExplanationsRepository implements AccuracySource {
  constructor(private readonly db: Db) {}

  /**
   * Outcome counts per model version and confidence bucket, for every model asked, in ONE statement
   * (a request explaining many predictions asks once). At most 100 rows per model come back, however
   * long the history: the service sums the buckets around each prediction's confidence.
   */
  async accuracyByConfidence(models: readonly ModelKey[]): Promise<AccuracyBucket[]> {
    if (models.length === 0) return [];
    const { rows } = await sql<AccuracyBucket>`
      select h.strategy, h.model_version as version,
             least(floor(h.confidence * ${CONFIDENCE_BUCKETS})::int, ${CONFIDENCE_BUCKETS - 1}) as bucket,
             count(*)::int as samples, (count(*) filter (where h.correct))::int as correct
      from prediction_history h
      join unnest(${models.map((m) => m.strategy)}::text[], ${models.map((m) => m.version)}::text[]) as m(strategy, version)
        on h.strategy = m.strategy and h.model_version = m.version
      where h.correct is not null
      group by 1, 2, 3
      order by 1, 2, 3
    `.execute(this.db);
    return rows;
  }
}
