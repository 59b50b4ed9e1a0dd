/**
 * Retry with exponential backoff and an attempt limit: how long the main loop waits for an
 * attempt's effect to be observed before it tries again, and when it gives up into the error
 * state. Pure arithmetic; the deadline is kept in the row (`nextAttemptAtMs`), never in a timer,
 * so a restarted main loop resumes exactly where the last one left off.
 */
import { assert } from '../lib/assert.ts';

/** How attempts are spaced and bounded. */
export interface RetryPolicy {
  /** Wait after the first attempt, ms (> 0). */
  readonly baseMs: number;
  /** Longest wait between attempts, ms (>= baseMs). */
  readonly capMs: number;
  /** Attempts toward one goal before the resource goes to `error` (>= 1). */
  readonly maxAttempts: number;
}

/**
 * Defaults: 2 s, doubling, capped at 60 s, 8 attempts — about 4 minutes of trying before an error,
 * long enough for a slow agent, short enough that a user sees a reason soon.
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 2_000, capMs: 60_000, maxAttempts: 8 };

/** Asserts that a policy is well formed. */
export function assertRetryPolicy(policy: RetryPolicy): void {
  assert(Number.isFinite(policy.baseMs) && policy.baseMs > 0, 'retry baseMs must be > 0');
  assert(
    Number.isFinite(policy.capMs) && policy.capMs >= policy.baseMs,
    'retry capMs must be >= baseMs',
  );
  assert(
    Number.isInteger(policy.maxAttempts) && policy.maxAttempts >= 1,
    'maxAttempts must be >= 1',
  );
}

/** The wait after attempt `attempt` (1-based): min(baseMs * 2^(attempt-1), capMs), in ms. */
export function retryDelayMs(policy: RetryPolicy, attempt: number): number {
  assert(
    Number.isInteger(attempt) && attempt >= 1,
    `attempt must be a positive integer, got ${attempt}`,
  );
  // Cap the exponent so 2^n never overflows to Infinity before the cap applies.
  const exponent = Math.min(attempt - 1, 52);
  return Math.min(policy.baseMs * 2 ** exponent, policy.capMs);
}

/** Upper bound of the total time spent on one goal before giving up, ms. */
export function retryBudgetMs(policy: RetryPolicy): number {
  let total = 0;
  for (let a = 1; a <= policy.maxAttempts; a++) total += retryDelayMs(policy, a);
  return total;
}
