// Goal: fencing holds. Two main loops share the work; lock holders freeze past their session
// timeout (right after a grant, or right after a fenced write, before publishing the command) and
// sessions are expired outright, while flaky agent ports keep work open long enough for a stale
// holder to wake up and act. No write with a stale token may be applied, and no agent may act on
// a command older than one it already applied; the cloud must still converge.
// Method: `fuzz` over the `fencing` property of FUZZ_PROPERTIES (src/fuzz/cases.ts). The
// mutants run (npm run test:mutants) proves this property catches a store or agents without the
// fencing check. A failure is shrunk, written under scenarios/regressions/ and fails the test.
// Budget: 250 runs (~15 s on two cores).
import { describe, expect, it } from 'vitest';
import { fuzzWithRegression } from '../../src/cli/fuzz.ts';
import { FUZZ_PROPERTIES } from '../../src/fuzz/cases.ts';

describe('lock holders frozen past their session, with flaky ports', () => {
  it('never apply a stale write or command, and converge once the faults heal', async () => {
    const { report, explanation } = await fuzzWithRegression({
      runs: 250,
      seed: 3,
      ...FUZZ_PROPERTIES.fencing,
      foundBy: 'test/property/convergence-fencing.test.ts (fencing property, seed 3)',
    });
    expect(explanation).toBeUndefined();
    expect(report.runs).toBe(250);
    expect(report.steps / report.runs).toBeGreaterThan(500);
  });
});
