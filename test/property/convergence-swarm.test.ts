// Goal: the reconciler converges under swarm testing — each run switches whole kinds of faults on
// or off (as TigerBeetle's VOPR and FoundationDB's BUGGIFY do), so one run sees only frozen lock
// holders and a lossy bus, the next only host failures and a flaky database: combinations a uniform
// mix of every fault at once would dilute.
// Method: `fuzz` over the `swarm` property of FUZZ_PROPERTIES (src/fuzz/cases.ts); as in
// convergence.test.ts, the first failure is shrunk, written under scenarios/regressions/ and
// fails the test with the command that replays it.
// Budget: 250 runs (~15 s on two cores). `npx cloudbed fuzz --runs 1000 --swarm --seed 1` is the
// same property with more runs.
import { describe, expect, it } from 'vitest';
import { fuzzWithRegression } from '../../src/cli/fuzz.ts';
import { FUZZ_PROPERTIES } from '../../src/fuzz/cases.ts';

describe('random workloads under swarm faults', () => {
  it('stay safe and converge once the faults heal', async () => {
    const { report, explanation } = await fuzzWithRegression({
      runs: 250,
      seed: 2,
      ...FUZZ_PROPERTIES.swarm,
      foundBy: 'test/property/convergence-swarm.test.ts (fuzz --runs 250 --swarm --seed 2)',
    });
    expect(explanation).toBeUndefined();
    expect(report.runs).toBe(250);
    expect(report.steps / report.runs).toBeGreaterThan(500);
  });
});
