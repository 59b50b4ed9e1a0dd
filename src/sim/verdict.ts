/**
 * Verdicts of a simulated run and the exit codes the `cloudbed` command maps them to.
 * `correctness`: a safety invariant broke. `liveness`: the run did not reach its goal within its
 * budget. `crash`: an assertion failed or an error went uncaught — a bug in cloudbed or in the code
 * under test.
 */
export const VERDICTS = ['ok', 'correctness', 'liveness', 'crash'] as const;
export type Verdict = (typeof VERDICTS)[number];

/** Exit codes: 0 ok, 2 is reserved for bad input (usage, scenario files), then one per failure. */
export const VERDICT_EXIT_CODES: Readonly<Record<Verdict, number>> = {
  ok: 0,
  correctness: 3,
  liveness: 4,
  crash: 5,
};

/** Exit code for bad input: a usage error or an invalid scenario or trace file. */
export const EXIT_BAD_INPUT = 2;

/** Exit code when a run ends `ok` but its scenario expected a failure verdict. */
export const EXIT_UNEXPECTED_OK = 1;

export function isVerdict(value: unknown): value is Verdict {
  return typeof value === 'string' && (VERDICTS as readonly string[]).includes(value);
}

/**
 * The exit code for a run: 0 when the verdict is the expected one (a regression scenario may expect
 * `correctness`), otherwise the verdict's own code, or {@link EXIT_UNEXPECTED_OK}.
 */
export function exitCodeFor(verdict: Verdict, expected: Verdict = 'ok'): number {
  if (verdict === expected) return 0;
  return verdict === 'ok' ? EXIT_UNEXPECTED_OK : VERDICT_EXIT_CODES[verdict];
}
