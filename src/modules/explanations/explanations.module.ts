import type { Database } from '../../infra/db/index.js';
import type { Logger } from '../../infra/logger/logger.js';
import { ExplanationsRepository } from './explanations.repository.js';
import { ExplanationService } from './explanations.service.js';

export interface ExplanationsModuleDeps {
  readonly database: Pick<Database, 'db'>;
  /** The serving market (MarketChoice.source): historical accuracy is measured on its rows only. */
  readonly source: string;
  readonly logger: Logger;
}

export interface ExplanationsModule {
  readonly service: ExplanationService;
}

/** Why a prediction says what it says: Shapley factors over its features, and the accuracy seen near its confidence. */
export function createExplanationsModule({ database, source, logger }: ExplanationsModuleDeps): ExplanationsModule {
  return {
    service: new ExplanationService({
      outcomes: new ExplanationsRepository(database.db, source),
      logger: logger.child({ component: 'explanations' }),
    }),
  };
}
