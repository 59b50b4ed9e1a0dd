/**
 * The statement handle of one SQL transaction, with PostgreSQL's rule for failures: once a
 * statement fails the transaction is aborted, later statements are refused (SQLSTATE 25P02) and the
 * transaction must roll back even if the caller caught the error. Shared by the PostgreSQL driver,
 * whose server enforces the rule as well, and the pg-mem driver, which must enforce it itself.
 */
import { assert } from '../lib/assert.ts';
import { SqlError, type SqlQuery } from './sql.ts';

/** Runs one statement on the transaction's connection. */
export type RunStatement = <R>(
  text: string,
  params: readonly unknown[] | undefined,
) => Promise<{ rows: R[] }>;

/** One transaction's handle, as its driver sees it. */
export interface TransactionHandle {
  /** What the transaction's function is given to run statements. */
  readonly q: SqlQuery;
  /** Throws the first statement failure, if there was one: such a transaction must not commit. */
  throwFailure(): void;
  /** Ends the handle when the transaction ends: a statement through it after that is a bug. */
  end(): void;
}

/**
 * A handle over `run`. A failed statement's error goes through `toError` (default: unchanged)
 * before the caller sees it, and is remembered as the transaction's failure.
 */
export function createTransactionHandle(
  run: RunStatement,
  toError: (error: unknown) => unknown = (error) => error,
): TransactionHandle {
  let failed: { readonly error: unknown } | undefined;
  let ended = false;
  return {
    q: {
      async query<R>(text: string, params?: readonly unknown[]) {
        assert(!ended, 'transaction handle used after its transaction ended');
        if (failed !== undefined)
          throw new SqlError(
            'current transaction is aborted, commands ignored until end of transaction block',
            '25P02',
            { retryable: false, cause: failed.error },
          );
        try {
          return await run<R>(text, params);
        } catch (error) {
          const mapped = toError(error);
          failed = { error: mapped };
          throw mapped;
        }
      },
    },
    throwFailure() {
      if (failed !== undefined) throw failed.error;
    },
    end() {
      ended = true;
    },
  };
}
