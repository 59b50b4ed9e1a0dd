/**
 * The SQL driver for real PostgreSQL: a `pg.Pool` behind the {@link SqlDriver} interface. A
 * transaction runs on one dedicated client between BEGIN and COMMIT (ROLLBACK on failure), every
 * statement has a server-side timeout, int8 columns come back as numbers (as pg-mem gives them),
 * and failures become port errors that keep the driver's error as `cause` (see {@link toSqlError}:
 * a clash on the events table's `unique (stream, version)` becomes a ConcurrencyError).
 *
 * The small part of `pg`'s API used here is typed below and the module is loaded with
 * `createRequire`, so the driver depends on no declaration package at run time;
 * test/real/event-store.real.test.ts checks these types against `@types/pg`.
 */
import { createRequire } from 'node:module';
import { assert } from '../lib/assert.ts';
import { PortError, TimeoutError, UnavailableError } from '../ports/errors.ts';
import { toSqlError, type SqlDriver, type SqlQuery } from './sql.ts';
import { createTransactionHandle } from './sql-transaction.ts';

/** A column description in a `pg` result. */
interface PgField {
  readonly name: string;
  readonly dataTypeID: number;
}

/** The part of a `pg` query result this driver reads. */
interface PgResult {
  readonly rows: Record<string, unknown>[];
  readonly fields?: readonly PgField[];
}

/** The part of a `pg.PoolClient` this driver uses. */
export interface PgClientLike {
  query(text: string, params?: unknown[]): Promise<PgResult>;
  /** `true` or an error destroys the connection instead of returning it to the pool. */
  release(destroy?: boolean | Error): void;
  /**
   * A checked-out connection that dies (its backend terminated, the server restarted) emits
   * `error`; unheard, that would end the process. Optional: test doubles need not have it.
   */
  on?(event: 'error', listener: (error: Error) => void): unknown;
  removeListener?(event: 'error', listener: (error: Error) => void): unknown;
}

/** The part of a `pg.Pool` this driver uses. */
export interface PgPoolLike {
  query(text: string, params?: unknown[]): Promise<PgResult>;
  connect(): Promise<PgClientLike>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** The subset of `pg.PoolConfig` this driver sets. */
interface PgPoolConfig {
  connectionString?: string;
  max?: number;
  statement_timeout?: number;
  query_timeout?: number;
  connectionTimeoutMillis?: number;
  application_name?: string;
}

interface PgModule {
  Pool: new (config: PgPoolConfig) => PgPoolLike;
}

/** Options for {@link createPostgresDriver}. */
export interface PostgresDriverOptions {
  /** `postgres://user:password@host:port/database`. Required unless `pool` is given. */
  readonly connectionString?: string;
  /**
   * A pool built elsewhere (tests, a shared pool). Its statement timeout is then the builder's
   * business; this driver still maps errors and normalises int8.
   */
  readonly pool?: PgPoolLike;
  /** Server-side `statement_timeout` per statement, in ms (> 0). Default 10,000. */
  readonly statementTimeoutMs?: number;
  /** Pool size, 1–1,000. Default 10. */
  readonly maxConnections?: number;
  /** How long to wait for a connection, in ms (> 0). Default 10,000. */
  readonly connectTimeoutMs?: number;
  /** Shown in `pg_stat_activity`. Default `cloudbed`. */
  readonly applicationName?: string;
  /**
   * Called when an idle pooled connection fails (the pool drops it and opens another later).
   * Default: ignored — without a listener Node would crash the process on the pool's `error` event.
   */
  readonly onIdleError?: (error: Error) => void;
}

/** PostgreSQL's type oid of int8 (bigint, bigserial, count(*)). */
const INT8_OID = 20;

/** Replaces int8 strings in `rows` by numbers; a value beyond 2^53 is a bug, not data we can hold. */
function normaliseRows(result: PgResult): Record<string, unknown>[] {
  const int8Columns = (result.fields ?? [])
    .filter((field) => field.dataTypeID === INT8_OID)
    .map((field) => field.name);
  if (int8Columns.length === 0) return result.rows;
  for (const row of result.rows)
    for (const column of int8Columns) {
      const value = row[column];
      if (typeof value !== 'string') continue;
      const number = Number(value);
      assert(Number.isSafeInteger(number), `int8 column ${column} holds ${value}, beyond 2^53`);
      row[column] = number;
    }
  return result.rows;
}

/**
 * Maps a `pg` failure: SQLSTATEs as {@link toSqlError} does; pg's own connection and client-side
 * timeout errors, which carry no SQLSTATE, to {@link UnavailableError} and {@link TimeoutError}.
 */
function toDriverError(error: unknown, statementTimeoutMs: number): unknown {
  const mapped = toSqlError(error, { statementTimeoutMs });
  if (mapped instanceof PortError || !(error instanceof Error)) return mapped;
  if (/Query read timeout/i.test(error.message))
    return new TimeoutError('sql statement', statementTimeoutMs, error);
  if (
    /Connection terminated|timeout exceeded when trying to connect|Client was closed|Connection ended|Cannot use a pool after calling end/i.test(
      error.message,
    )
  )
    return new UnavailableError('sql', error.message, error);
  return mapped;
}

function loadPg(): PgModule {
  const load = createRequire(import.meta.url);
  return load('pg') as PgModule;
}

/** Creates a driver over a `pg.Pool`. Connections are opened lazily, on first use. */
export function createPostgresDriver(options: PostgresDriverOptions): SqlDriver {
  const statementTimeoutMs = options.statementTimeoutMs ?? 10_000;
  assert(statementTimeoutMs > 0, 'statementTimeoutMs must be positive');
  const maxConnections = options.maxConnections ?? 10;
  assert(
    Number.isInteger(maxConnections) && maxConnections >= 1 && maxConnections <= 1_000,
    'maxConnections must be an integer in [1, 1000]',
  );
  let pool: PgPoolLike;
  if (options.pool !== undefined) {
    pool = options.pool;
  } else {
    assert(options.connectionString !== undefined, 'connectionString or pool is required');
    const pg = loadPg();
    pool = new pg.Pool({
      connectionString: options.connectionString,
      max: maxConnections,
      statement_timeout: statementTimeoutMs,
      // The client-side timeout catches a dead connection the server-side one cannot.
      query_timeout: statementTimeoutMs + 5_000,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      application_name: options.applicationName ?? 'cloudbed',
    });
  }
  pool.on('error', options.onIdleError ?? (() => {}));
  let closed = false;
  const fail = (error: unknown): unknown => toDriverError(error, statementTimeoutMs);

  async function run<R>(
    target: { query(text: string, params?: unknown[]): Promise<PgResult> },
    text: string,
    params: readonly unknown[] | undefined,
  ): Promise<{ rows: R[] }> {
    try {
      const result = await target.query(text, params === undefined ? undefined : [...params]);
      return { rows: normaliseRows(result) as R[] };
    } catch (error) {
      throw fail(error);
    }
  }

  return {
    query<R>(text: string, params?: readonly unknown[]) {
      assert(!closed, 'sql driver used after close');
      return run<R>(pool, text, params);
    },
    async transaction<T>(fn: (q: SqlQuery) => Promise<T>) {
      assert(!closed, 'sql driver used after close');
      let client: PgClientLike;
      try {
        client = await pool.connect();
      } catch (error) {
        throw fail(error);
      }
      const transaction = createTransactionHandle((text, params) => run(client, text, params));
      // A connection whose ROLLBACK failed is in an unknown state: destroy it, do not reuse it. So
      // is one that died while checked out: its error reaches the statement in flight (or the
      // next one) as a rejection; heard here, it does not also end the process.
      let destroy = false;
      const onError = (): void => {
        destroy = true;
      };
      client.on?.('error', onError);
      try {
        await run(client, 'BEGIN', undefined);
        const result = await fn(transaction.q);
        // PostgreSQL turns COMMIT of a failed transaction into a silent ROLLBACK: fail loudly.
        transaction.throwFailure();
        await run(client, 'COMMIT', undefined);
        return result;
      } catch (error) {
        try {
          await client.query('ROLLBACK');
        } catch {
          destroy = true;
        }
        throw error;
      } finally {
        transaction.end();
        client.removeListener?.('error', onError);
        client.release(destroy);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await pool.end();
      } catch (error) {
        throw fail(error);
      }
    },
  };
}
