// Goal: every failure ever shrunk into scenarios/regressions/ stays fixed, forever.
// Method: each YAML file there runs with the seed and store it stores (its `seed`, `store`) and
// must end with its expected verdict (`expect.verdict`). A file whose `# recorded:` line
// (src/fuzz/fuzz.ts, recordedRunOf) records a run with that same verdict, seed and store must also
// reproduce that run's trace hash exactly: such a file pins a run, not only its outcome. Files
// written from a failure record the failing run; once fixed they end `ok` and only the verdict
// is checked.
// Budget: each file is a small shrunk scenario (well under a second).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { recordedRunOf } from '../src/fuzz/fuzz.ts';
import { runScenario } from '../src/sim/run-scenario.ts';
import { parseScenario } from '../src/sim/scenario.ts';

const DIR = 'scenarios/regressions';
const files = readdirSync(DIR)
  .filter((file) => file.endsWith('.yaml') || file.endsWith('.yml'))
  .sort();

describe('scenarios/regressions', () => {
  it('holds scenario files', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  it.each(files)('%s ends with its expected verdict', async (file) => {
    const path = join(DIR, file);
    const text = readFileSync(path, 'utf8');
    const scenario = parseScenario(text, path);
    const seed = scenario.seed ?? 1;
    const store = scenario.store ?? 'memory';
    const { result } = await runScenario(scenario, { seed, store });
    expect(
      result.verdict,
      `${result.reason}\nreproduce: npx cloudbed run ${path} --seed ${seed} --store ${store}`,
    ).toBe(scenario.expect.verdict);
    const recorded = recordedRunOf(text);
    if (
      recorded !== undefined &&
      recorded.verdict === scenario.expect.verdict &&
      recorded.seed === seed &&
      recorded.store === store
    ) {
      expect(result.traceHash, 'the recorded run must replay exactly').toBe(recorded.traceHash);
    }
  });
});
