// Goal: the crash-only reconciler converges. For random workloads (VMs and volumes created,
// started, stopped, restarted, deleted, snapshotted, restored, cloned, attached, detached, grown)
// under random faults of every kind (crashes, pauses, frozen lock holders, bus and session faults,
// host crashes, hangs and isolation, flaky adapters and database, lost expiry notices), every run
// stays safe while the faults strike and, once they heal, settles within its budget.
// Method: `fuzz` (src/fuzz/fuzz.ts) draws scenarios from the `convergence` property of
// FUZZ_PROPERTIES on small topologies, runs each on the memory store with the safety checkers after
// every step, and shrinks the first failure. A failure writes its shrunk scenario under
// scenarios/regressions/ (replay it with the command in the message) and fails the test.
// Budget: 250 runs at about 60 ms each (~15 s on two cores); `cloudbed fuzz --runs N --seed S`
// explores further.
import { describe, expect, it } from 'vitest';
import { fuzzWithRegression } from '../../src/cli/fuzz.ts';
import { FUZZ_PROPERTIES } from '../../src/fuzz/cases.ts';

describe('random workloads under random faults', () => {
  it('stay safe and converge once the faults heal', async () => {
    const { report, explanation } = await fuzzWithRegression({
      runs: 250,
      seed: 1,
      ...FUZZ_PROPERTIES.convergence,
      foundBy: 'test/property/convergence.test.ts (fuzz --runs 250 --seed 1)',
    });
    expect(explanation).toBeUndefined();
    expect(report.runs).toBe(250);
    // The runs did something: a property over empty runs cannot fail.
    expect(report.steps / report.runs).toBeGreaterThan(500);
  });
});
