/**
 * Assertions for programmer errors. They stay on everywhere — in production, in staging and in the
 * simulator — because a broken invariant that keeps running corrupts state silently. A failed
 * assertion is a bug in cloudbed, never a reaction to bad input (bad input gets a typed error).
 */

/** Thrown when an assertion fails: always a bug, never a domain outcome. */
export class AssertionError extends Error {
  override name = 'AssertionError';
}

/** Asserts `condition`; throws {@link AssertionError} with `message` when it is falsy. */
export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Marks a branch that exhaustive `switch` statements must never reach. */
export function assertNever(value: never, what = 'value'): never {
  throw new AssertionError(`unexpected ${what}: ${JSON.stringify(value)}`);
}

/** Asserts that `value` is a finite integer within [min, max]. */
export function assertInt(value: number, min: number, max: number, what = 'value'): void {
  assert(
    Number.isInteger(value) && value >= min && value <= max,
    `${what} must be an integer in [${min}, ${max}], got ${value}`,
  );
}

/** Asserts that a probability lies in [0, 1]. */
export function assertProbability(p: number, what = 'probability'): void {
  assert(Number.isFinite(p) && p >= 0 && p <= 1, `${what} must lie in [0, 1], got ${p}`);
}
