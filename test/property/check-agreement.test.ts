// Goal: the incremental checkers are exactly as strong as the full recomputation over the world.
// Method: random cases of the swarm and fencing fuzz properties (every kind of fault, two main
// loops whose lock holders freeze) run with `check: 'full'`, where after every step both the
// incremental checks and the full recomputation run and any disagreement ends the run as a crash.
// Each case must end as it ends with the incremental checks alone: same verdict, same trace hash,
// and never a crash. The checkers' unit tests (test/unit/faults/checkers.test.ts) show the mode
// has teeth: an index that misses a change is reported as a disagreement.
// Budget: 40 small runs, each run twice (~10 s on two cores).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FUZZ_PROPERTIES, fuzzCaseArb, toScenarioData } from '../../src/fuzz/cases.ts';
import { runScenario } from '../../src/sim/run-scenario.ts';
import { toScenario } from '../../src/sim/scenario.ts';

describe('check mode full', () => {
  it('agrees with the incremental checks on every step of random faulty runs', async () => {
    const arb = fc.oneof(
      fuzzCaseArb(FUZZ_PROPERTIES.swarm.generator),
      fuzzCaseArb(FUZZ_PROPERTIES.fencing.generator),
    );
    await fc.assert(
      fc.asyncProperty(arb, async (fuzzCase) => {
        const scenario = toScenario(toScenarioData(fuzzCase, 'agreement'));
        const options = { seed: fuzzCase.seed, store: 'memory' } as const;
        const incremental = await runScenario(scenario, options);
        const full = await runScenario(scenario, { ...options, check: 'full' });
        expect(full.result.verdict, full.result.reason).not.toBe('crash');
        expect({
          verdict: full.result.verdict,
          traceHash: full.result.traceHash,
        }).toEqual({
          verdict: incremental.result.verdict,
          traceHash: incremental.result.traceHash,
        });
      }),
      { numRuns: 40, seed: 7 },
    );
  });
});
