import type { Kysely } from 'kysely';
import type { HealthCheck } from '../../shared/health.js';
import type { Tables } from './tables.js';

/**
 * The storage contract: a Kysely instance over PostgreSQL, whichever engine runs it. Engines:
 * `postgres.ts` (a real server through `pg`) and `pglite.ts` (PostgreSQL compiled to WASM, in-process,
 * data on disk). Both speak the same SQL and return the same JavaScript types (int8 → number,
 * timestamptz → Date, numeric → string), which the integration tests check on both.
 */
export type Db = Kysely<Tables>;

export interface Database {
  readonly db: Db;
  readonly engine: 'postgres' | 'pglite';
  /** Server version, e.g. "15.20" */
  readonly serverVersion: string;
  /** Whether the TimescaleDB extension is installed in this database. */
  readonly timescale: boolean;
  readonly health: HealthCheck;
  close(): Promise<void>;
}
