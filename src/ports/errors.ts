/**
 * Boundary failures: errors raised by port implementations (I/O, adapters, simulated services). Each
 * carries a stable `code`, a `retryable` flag and its `cause`, so the control plane can decide
 * between retry, back-off and giving up without parsing messages, and the API maps them to HTTP in
 * one place.
 */

/** Options for {@link PortError}. */
export interface PortErrorOptions {
  /** True when the same operation may succeed if tried again later. */
  readonly retryable?: boolean;
  readonly cause?: unknown;
}

/** Base class of every error a port may raise. */
export class PortError extends Error {
  override name = 'PortError';
  readonly retryable: boolean;

  constructor(
    /** A stable dotted code, e.g. `store.conflict` or `hypervisor.no-domain`. */
    readonly code: string,
    message: string,
    options: PortErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options.retryable ?? false;
  }
}

/** The operation did not finish in time; it may or may not have taken effect. */
export class TimeoutError extends PortError {
  override name = 'TimeoutError';
  constructor(operation: string, timeoutMs: number, cause?: unknown) {
    super('timeout', `${operation} timed out after ${timeoutMs} ms`, { retryable: true, cause });
  }
}

/** The service is unreachable or the connection dropped; retry later. */
export class UnavailableError extends PortError {
  override name = 'UnavailableError';
  constructor(service: string, message: string, cause?: unknown) {
    super(`${service}.unavailable`, message, { retryable: true, cause });
  }
}

/** True when `error` is a {@link PortError} that may succeed on retry. */
export function isRetryable(error: unknown): boolean {
  return error instanceof PortError && error.retryable;
}
