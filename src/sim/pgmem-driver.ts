/**
 * The SQL driver of the simulator (and of `cloudbed serve` without a database): a fresh pg-mem
 * database behind the {@link SqlDriver} interface, through pg-mem's own `pg` adapter so statements
 * are bound the way `pg` binds them.
 *
 * pg-mem has no transactions worth the name: `ROLLBACK` through the pg adapter undoes nothing and
 * every connection sees every write at once. Real PostgreSQL never shows half a transaction, so
 * this driver makes transactions atomic and serialised itself: a FIFO mutex lets one transaction
 * (or one standalone statement) run at a time, `db.backup()` is taken when a transaction begins and
 * restored when it fails. Like PostgreSQL, a failed statement dooms its transaction: later
 * statements are refused and the transaction rolls back even if the caller caught the error.
 *
 * Wiring rule: bind processes to the store, not to this driver. A transaction whose function never
 * settles (say, a crashed incarnation's guarded promise) holds the mutex forever and stalls every
 * other process; guarded at the store boundary, a transaction always runs to commit or rollback.
 * Results resolve through `setImmediate` (pg-mem's doing); the scheduler drains those between
 * steps.
 */
import { DataType, newDb, type IMemoryDb } from 'pg-mem';
import { assert } from '../lib/assert.ts';
import { SqlError, toSqlError, type SqlDriver, type SqlQuery } from '../adapters/sql.ts';
import { createTransactionHandle } from '../adapters/sql-transaction.ts';
import { PortError } from '../ports/errors.ts';

/** Options for {@link createPgMemDriver}. */
export interface PgMemDriverOptions {
  /** Makes SQL `now()` follow this clock (ms since the epoch). Default: pg-mem's wall clock. */
  readonly nowMs?: () => number;
}

/** A {@link SqlDriver} over one in-process pg-mem database. */
export interface PgMemDriver extends SqlDriver {
  /** The database itself, for inspection in tests. Writing to it bypasses the mutex. */
  readonly db: IMemoryDb;
}

/** The part of pg-mem's `pg`-compatible pool this driver uses. */
interface PgMemPool {
  query(text: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
  end(): Promise<void>;
}

/**
 * Maps a pg-mem failure like a PostgreSQL one. pg-mem leaves the SQLSTATE out of many errors (an
 * unknown table, an unsupported statement): those become a non-retryable {@link SqlError} as well.
 */
function toPgMemError(error: unknown): unknown {
  const mapped = toSqlError(error);
  if (mapped instanceof PortError || !(mapped instanceof Error)) return mapped;
  return new SqlError(mapped.message, undefined, { retryable: false, cause: error });
}

/** Runs async functions one at a time, in the order they asked. */
class FifoMutex {
  private tail: Promise<void> = Promise.resolve();

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release = (): void => {};
    this.tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/**
 * Creates a driver over a new, empty pg-mem database. Every call gives an independent database, so
 * simulations in one process share nothing.
 */
export function createPgMemDriver(options: PgMemDriverOptions = {}): PgMemDriver {
  const db = newDb();
  const { nowMs } = options;
  if (nowMs !== undefined)
    db.getSchema('pg_catalog').registerFunction(
      {
        name: 'now',
        returns: DataType.timestamptz,
        impure: true,
        implementation: () => new Date(nowMs()),
      },
      true,
    );
  const adapter = db.adapters.createPg() as { Pool: new () => PgMemPool };
  const pool = new adapter.Pool();
  const mutex = new FifoMutex();
  let closed = false;

  async function run<R>(
    text: string,
    params: readonly unknown[] | undefined,
  ): Promise<{ rows: R[] }> {
    const result = await pool.query(text, params === undefined ? undefined : [...params]);
    return { rows: result.rows as R[] };
  }

  return {
    db,
    query<R>(text: string, params?: readonly unknown[]) {
      assert(!closed, 'sql driver used after close');
      // pg-mem applies a single statement all or nothing, so no backup is needed here.
      return mutex.run(async () => {
        try {
          return await run<R>(text, params);
        } catch (error) {
          throw toPgMemError(error);
        }
      });
    },
    transaction<T>(fn: (q: SqlQuery) => Promise<T>) {
      assert(!closed, 'sql driver used after close');
      return mutex.run(async () => {
        const backup = db.backup();
        const transaction = createTransactionHandle(run, toPgMemError);
        try {
          const result = await fn(transaction.q);
          transaction.throwFailure();
          return result;
        } catch (error) {
          backup.restore();
          throw error;
        } finally {
          transaction.end();
        }
      });
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      // Queued work finishes first: the mutex orders close after it.
      return mutex.run(() => pool.end());
    },
  };
}
