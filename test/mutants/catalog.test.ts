// Goal: the mutant catalogue (scripts/mutants/catalog.ts) stays applicable, so `npm run
// test:mutants` keeps proving the property suites have teeth. A refactor of the control plane that
// moves a mutant's anchor text must fail here, in every `npm test`, not silently later.
// Method: every patch's anchor must occur exactly once in its file under src/, the patched text
// must differ from the original, and every mutant names a property the suites run. The mutants
// themselves run in `npm run test:mutants` (about 2.5 minutes), not here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MUTANTS } from '../../scripts/mutants/catalog.ts';
import { FUZZ_PROPERTIES } from '../../src/fuzz/cases.ts';

describe('the mutant catalogue', () => {
  it('has distinct names and at least one patch per mutant', () => {
    expect(new Set(MUTANTS.map((m) => m.name)).size).toBe(MUTANTS.length);
    for (const mutant of MUTANTS) expect(mutant.patches.length, mutant.name).toBeGreaterThan(0);
  });

  it.each(MUTANTS.map((m) => [m.name, m] as const))(
    '%s: every anchor occurs exactly once and the patch changes it',
    (_, mutant) => {
      for (const patch of mutant.patches) {
        const text = readFileSync(join('src', patch.file), 'utf8');
        expect(text.split(patch.find).length - 1, `${patch.file}: ${patch.find}`).toBe(1);
        expect(patch.replace).not.toBe(patch.find);
      }
      const probe = mutant.probe;
      if (probe.kind === 'fuzz') expect(Object.keys(FUZZ_PROPERTIES)).toContain(probe.property);
      expect(probe.runs).toBeGreaterThan(0);
    },
  );
});
