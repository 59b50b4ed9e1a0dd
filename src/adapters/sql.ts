/**
 * The minimal SQL driver the SQL-backed adapters run on: parameterised queries, transactions that
 * commit or roll back as a whole, and close. Two implementations: pg-mem inside the simulator
 * (src/sim/pgmem-driver.ts) and a `pg.Pool` for PostgreSQL (src/adapters/postgres-driver.ts). The
 * error mapping lives here so that both drivers raise the same errors for the same failures.
 */
import { ConcurrencyError } from '../ports/event-store.ts';
import { PortError, TimeoutError, UnavailableError } from '../ports/errors.ts';

/** Something that runs one parameterised statement: the driver itself or an open transaction. */
export interface SqlQuery {
  /**
   * Runs one statement with `$1`, `$2`… placeholders bound to `params` (never interpolate values
   * into `text`). Rows come back as the engine returns them: callers normalise column types
   * (PostgreSQL returns int8 as strings unless the driver converts them, pg-mem returns numbers).
   */
  query<R>(text: string, params?: readonly unknown[]): Promise<{ rows: R[] }>;
}

/** A database connection pool (or an in-process engine) with atomic transactions. */
export interface SqlDriver extends SqlQuery {
  /**
   * Runs `fn` in one transaction on a dedicated connection: commits when `fn` resolves, rolls back
   * and rethrows when it rejects. If any statement of the transaction failed, the transaction rolls
   * back and rejects with that statement's error even when `fn` caught it (PostgreSQL would refuse
   * every later statement and turn COMMIT into ROLLBACK). `fn` must issue its statements through
   * the `q` it receives, never through the driver, and must not use `q` after it settles.
   */
  transaction<T>(fn: (q: SqlQuery) => Promise<T>): Promise<T>;
  /** Releases every connection. Later calls are programmer errors. Idempotent. */
  close(): Promise<void>;
}

/** A statement the database rejected (SQLSTATE other than the ones mapped to sharper errors). */
export class SqlError extends PortError {
  override name = 'SqlError';
  constructor(
    message: string,
    /** The five-character SQLSTATE, when the engine gave one. */
    readonly sqlState: string | undefined,
    options: { readonly retryable: boolean; readonly cause: unknown },
  ) {
    super('sql.error', message, options);
  }
}

/** The name PostgreSQL gives `unique (stream, version)` on the events table. */
export const EVENTS_VERSION_CONSTRAINT = 'events_stream_version_key';

/**
 * Error fields both `pg` and pg-mem put on a failed statement. pg-mem sets `code` but reports
 * constraint names wrongly and folds the detail into the message, so the mapping reads both.
 */
interface EngineErrorFields {
  readonly code?: unknown;
  readonly constraint?: unknown;
  readonly detail?: unknown;
  readonly message?: unknown;
}

// PostgreSQL: `Key (stream, version)=(vm-1, 4) already exists.`; pg-mem: `Key (stream,version)=(vm-1,4)
// already exists.` The stream is matched greedily so that a stream containing ", " still parses: the
// version is the digits before the final parenthesis.
const EVENTS_KEY_DETAIL = /Key \(stream, ?version\)=\((.*), ?(\d+)\) already exists/;

/**
 * Maps an engine error to the error a port caller understands:
 * - 23505 on the events table's `unique (stream, version)` → {@link ConcurrencyError} (another
 *   writer appended that version first; `expectedVersion` is the version before the clash, the
 *   event store refines it), with the engine error as `cause`;
 * - 57014 (statement timeout) → {@link TimeoutError};
 * - connection failures (class 08, 57P01–57P03, 53300, socket errors) → {@link UnavailableError};
 * - serialisation failures and deadlocks (40001, 40P01) → retryable {@link SqlError};
 * - anything else with a SQLSTATE → non-retryable {@link SqlError}.
 * Errors that are not engine errors (assertions, errors thrown by callers' code) pass unchanged.
 */
export function toSqlError(
  error: unknown,
  options: { readonly statementTimeoutMs?: number } = {},
): unknown {
  if (error instanceof PortError || typeof error !== 'object' || error === null) return error;
  const fields = error as EngineErrorFields;
  const code = typeof fields.code === 'string' ? fields.code : undefined;
  const message = typeof fields.message === 'string' ? fields.message : 'sql statement failed';
  if (code === undefined) return error;
  if (code === '23505') {
    const detail = typeof fields.detail === 'string' ? fields.detail : message;
    const match = EVENTS_KEY_DETAIL.exec(detail);
    if (fields.constraint === EVENTS_VERSION_CONSTRAINT || match !== null) {
      const stream = match?.[1] ?? '';
      const version = Number(match?.[2] ?? 0);
      const conflict = new ConcurrencyError(stream, version - 1, version);
      conflict.cause = error;
      return conflict;
    }
    return new SqlError(`unique violation: ${message}`, code, { retryable: false, cause: error });
  }
  if (code === '57014')
    return new TimeoutError('sql statement', options.statementTimeoutMs ?? 0, error);
  if (code.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(code))
    return new UnavailableError('sql', message, error);
  // Node socket errors (ECONNREFUSED, ECONNRESET, ETIMEDOUT…) carry an `E…` code, not a SQLSTATE.
  if (/^E[A-Z]+$/.test(code)) return new UnavailableError('sql', message, error);
  const retryable = code === '40001' || code === '40P01';
  return new SqlError(message, code, { retryable, cause: error });
}
