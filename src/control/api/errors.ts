/**
 * API errors: the one place where failures become HTTP responses. Input problems are GDAPI errors
 * (4xx) built as data by validation; handlers raise them as {@link ApiError} so a deep check can end
 * the request at once, and the router turns them into responses. Dependency failures (retryable
 * port errors) become 503; anything else unexpected is a bug and becomes a logged 500 — never the
 * answer to bad input.
 */
import { ConcurrencyError } from '../../ports/event-store.ts';
import { PortError, UnavailableError } from '../../ports/errors.ts';
import type { GdapiError, GdapiErrorCode } from '../../model/gdapi-schema.ts';

/** A request that ends with a GDAPI error response. */
export class ApiError extends Error {
  override name = 'ApiError';

  constructor(
    readonly error: GdapiError,
    /** Extra response headers (`www-authenticate`, `allow`). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(`${error.status} ${error.code}: ${error.message}`);
  }
}

/** Options of {@link fail}. */
export interface FailOptions {
  readonly fieldName?: string;
  readonly detail?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Builds an {@link ApiError} to throw. */
export function fail(
  status: number,
  code: GdapiErrorCode,
  message: string,
  options: FailOptions = {},
): ApiError {
  const error: GdapiError = {
    status,
    code,
    message,
    ...(options.fieldName === undefined ? {} : { fieldName: options.fieldName }),
    ...(options.detail === undefined ? {} : { detail: options.detail }),
  };
  return new ApiError(error, options.headers);
}

/** 404 NotFound for `what`. */
export function notFound(what: string): ApiError {
  return fail(404, 'NotFound', `${what} not found`);
}

/** How an exception escaping a handler is answered. */
export interface Classified {
  readonly error: ApiError;
  /** True when the exception is a bug (500) and must be logged as such. */
  readonly bug: boolean;
}

/**
 * Classifies an exception that escaped a handler: an {@link ApiError} as itself, a lost write race
 * as 409, a dependency failure as 503, anything else as a 500 bug.
 */
export function classify(error: unknown): Classified {
  if (error instanceof ApiError) return { error, bug: false };
  if (error instanceof ConcurrencyError)
    return {
      error: fail(409, 'Conflict', 'the resource changed while this request was processed', {
        detail: 'read it again and retry',
      }),
      bug: false,
    };
  if (error instanceof UnavailableError || (error instanceof PortError && error.retryable))
    return {
      error: fail(503, 'ServiceUnavailable', 'a service the API depends on is unavailable', {
        detail: 'retry later; the request may or may not have taken effect',
        headers: { 'retry-after': '1' },
      }),
      bug: false,
    };
  return {
    error: fail(500, 'ServerError', 'internal error', {
      detail: 'this is a bug in cloudbed; it has been logged',
    }),
    bug: true,
  };
}

/** The GDAPI error body. */
export function errorBody(error: GdapiError): Record<string, string | number | null> {
  return {
    type: 'error',
    status: error.status,
    code: error.code,
    message: error.message,
    detail: error.detail ?? null,
    fieldName: error.fieldName ?? null,
  };
}
