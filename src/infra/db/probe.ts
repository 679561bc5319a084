import { sql } from 'kysely';
import type { Db } from './database.js';
import { pendingMigrations } from './migrate.js';
import type { HealthCheck } from '../../shared/health.js';
import { withTimeout } from '../../shared/deadline.js';

export async function probeServer(db: Db): Promise<{ serverVersion: string; timescale: boolean }> {
  const { rows } = await sql<{ version: string; timescale: boolean }>`
    select current_setting('server_version') as version,
           exists (select 1 from pg_extension where extname = 'timescaledb') as timescale
  `.execute(db);
  const row = rows[0];
  return { serverVersion: row?.version ?? 'unknown', timescale: row?.timescale ?? false };
}

/** Ready when a trivial query answers within `timeoutMs` and no migration is pending. */
export function databaseHealth(db: Db, describe: () => string, timeoutMs = 2_000): HealthCheck {
  return {
    name: 'database',
    async check() {
      try {
        const pending = await withTimeout(pendingMigrations(db), timeoutMs);
        if (pending.length > 0) return { status: 'down', detail: `${describe()}; pending migrations: ${pending.join(', ')}` };
        return { status: 'ok', detail: describe() };
      } catch (error) {
        return { status: 'down', detail: `${describe()}; ${(error as Error).message}` };
      }
    },
  };
}
