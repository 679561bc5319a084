import { type Kysely, sql } from 'kysely';

/**
 * Which model version serves each strategy, and which one runs beside it in shadow: one row per
 * strategy, shared by every instance, so they all serve the same version. The models directory says
 * which versions exist; this table says which of them is chosen. Changes are made by activation (the
 * `activateModelVersion` mutation or `npm run models -- activate`), each with an `audit_log` row.
 *
 * A shadow version is never the active one: a version is served or it is evaluated, not both.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('model_serving')
    .addColumn('strategy', 'text', (col) => col.primaryKey())
    .addColumn('active_version', 'text', (col) => col.notNull())
    .addColumn('shadow_version', 'text')
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_by', 'text', (col) => col.notNull())
    .addCheckConstraint('model_serving_shadow_not_active', sql`shadow_version is null or shadow_version <> active_version`)
    .execute();
  // Rollback reads a strategy's latest activations from the audit log.
  await db.schema.createIndex('audit_log_subject_action_idx').on('audit_log').columns(['subject', 'action', 'id desc']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('audit_log_subject_action_idx').execute();
  await db.schema.dropTable('model_serving').execute();
}
