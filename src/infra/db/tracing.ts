import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { CompiledQuery, DatabaseConnection, Dialect, Driver, QueryResult } from 'kysely';
import { tracer } from '../tracing/tracing.js';

/** Longest `db.statement` recorded; longer statements (multi-row inserts) are cut, with an ellipsis. */
const MAX_STATEMENT_CHARS = 1_000;

/**
 * A Kysely dialect whose every statement is an OpenTelemetry span (`sql.query`, kind CLIENT), whatever
 * engine runs it: the wrapper sits around the driver's connections, below Kysely, so query builders,
 * raw `sql` templates, migrations and transaction statements (`begin`, `commit`) are all covered, on
 * PGlite and on `pg` alike.
 *
 * Attributes: `db.system` (postgresql), `db.operation` (the statement's first keyword), `db.statement`
 * (the compiled text: values travel as `$n` parameters and are never recorded; literals a query inlines
 * are replaced by `?`; at most 1,000 characters), `db.response.returned_rows`, and `sibyl.db.engine`.
 *
 * Only statements that run inside a traced operation (a GraphQL request, a WebSocket operation) get a
 * span. Background work (history flushes, readiness probes, rescans) would otherwise start a new trace
 * per statement and flood the collector with one-span traces nobody asked for.
 */
export function tracedDialect(dialect: Dialect, engine: 'postgres' | 'pglite'): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createDriver: () => tracedDriver(dialect.createDriver(), engine),
  };
}

/**
 * The driver as it is, except that the connections it hands out are traced. A Proxy rather than a
 * subclass or a hand-written forwarder: drivers call private members of their own connections (Kysely's
 * PostgresDriver releases a connection through a symbol-keyed method), so every member other than the
 * two query methods is forwarded, bound to the real object.
 */
function tracedDriver(driver: Driver, engine: string): Driver {
  return forwarding(driver, {
    acquireConnection: async () => tracedConnection(await driver.acquireConnection(), engine),
  });
}

function tracedConnection(connection: DatabaseConnection, engine: string): DatabaseConnection {
  return forwarding(connection, {
    executeQuery: async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
      // No active span: not part of a traced operation (see tracedDialect).
      if (!trace.getSpan(context.active())) return connection.executeQuery<R>(query);
      const span = tracer.startSpan(
        'sql.query',
        { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql', 'sibyl.db.engine': engine } },
        context.active(),
      );
      if (span.isRecording()) span.setAttributes({ 'db.operation': operationOf(query.sql), 'db.statement': statementOf(query.sql) });
      try {
        const result = await connection.executeQuery<R>(query);
        span.setAttribute('db.response.returned_rows', result.rows.length);
        if (result.numAffectedRows !== undefined) span.setAttribute('db.response.affected_rows', Number(result.numAffectedRows));
        return result;
      } catch (error) {
        // The exception's message may quote values (e.g. a unique violation's key): only its kind is kept.
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as { code?: string }).code ?? 'query failed' });
        throw error;
      } finally {
        span.end();
      }
    },
  });
}

function forwarding<T extends object>(target: T, overrides: Partial<Record<keyof T, unknown>>): T {
  return new Proxy(target, {
    get(object, property) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof T];
      const value: unknown = Reflect.get(object, property, object);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(object) : value;
    },
  });
}

/** The statement's first keyword, upper-cased (`SELECT`, `INSERT`, `WITH`, `BEGIN`). */
export function operationOf(sqlText: string): string {
  return /^\s*\(?\s*([A-Za-z]+)/.exec(sqlText)?.[1]?.toUpperCase() ?? 'UNKNOWN';
}

/** The statement as recorded: whitespace collapsed, inlined string literals replaced by `?`, cut short. */
export function statementOf(sqlText: string): string {
  const text = sqlText
    .replace(/'(?:[^']|'')*'/g, "'?'")
    .replace(/\s+/g, ' ')
    .trim();
  return text.length > MAX_STATEMENT_CHARS ? `${text.slice(0, MAX_STATEMENT_CHARS)}…` : text;
}
