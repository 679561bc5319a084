import { type Kysely, sql } from 'kysely';

/**
 * Data-quality flags on stored bars (src/infra/market-data/bar-quality.ts; the policy in
 * docs/decisions/data-quality.md): `quality` holds the flags a suspect bar was stored with, `{}` for a
 * clean one. Suspect bars are kept, not refused, so the flags are what training and outcomes read to
 * leave them out. The partial index serves `npm run quality` and the flagged-bar counts, which read
 * only the few flagged rows.
 *
 * Bars stored before this migration get the flags their own values earn (`flat_price`, `zero_volume`);
 * the calendar and series flags need the NYSE calendar, which SQL does not have: re-importing the files
 * (an idempotent upsert) assesses them fully.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('market_bars')
    .addColumn('quality', sql`text[]`, (col) => col.notNull().defaultTo(sql`'{}'::text[]`))
    .execute();
  await sql`create index market_bars_flagged on market_bars (symbol, time) where quality <> '{}'`.execute(db);
  await sql`
    update market_bars set quality = array_remove(array[
      case when open = high and high = low and low = close and volume > 0 then 'flat_price' end,
      case when volume = 0 then 'zero_volume' end
    ], null)
    where (open = high and high = low and low = close) or volume = 0
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists market_bars_flagged`.execute(db);
  await db.schema.alterTable('market_bars').dropColumn('quality').execute();
}
