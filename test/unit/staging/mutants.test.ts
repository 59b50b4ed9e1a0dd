// Goal: staging runs a mutant only where the staging file allows it, and a mutant is exactly its
// patches over this checkout's sources: every patch found once and applied, node_modules shared,
// the copy reused while nothing changed; a patch whose text is gone fails loudly.
// Method: mutantProblem on allowed/refused/unknown names; mutantTree built in a temporary state
// directory and read back.
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mutantProblem, mutantTree, STAGING_MUTANTS } from '../../../src/staging/mutants.ts';

const dir = mkdtempSync(join(tmpdir(), 'cloudbed-staging-mutants-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('staging mutants', () => {
  it('are refused unless the staging file allows them, and named', () => {
    expect(mutantProblem(false, 'no-fence')).toMatch(
      /does not allow mutants: add 'mutants: \{ allow: true \}'/,
    );
    expect(mutantProblem(true, 'no-such')).toMatch(
      /no mutant 'no-such'; mutants: no-store-fence, no-fence/,
    );
    expect(mutantProblem(true, 'no-fence')).toBeNull();
  });

  it('build a patched copy of the sources, reused while nothing changes', () => {
    const tree = mutantTree(dir, 'no-fence');
    for (const patch of STAGING_MUTANTS['no-fence']!.patches) {
      const text = readFileSync(join(tree, 'src', patch.file), 'utf8');
      expect(text, patch.file).toContain(patch.replace);
      expect(text, patch.file).not.toContain(patch.find);
      // The checkout itself is untouched.
      expect(readFileSync(join('src', patch.file), 'utf8')).toContain(patch.find);
    }
    expect(lstatSync(join(tree, 'node_modules')).isSymbolicLink()).toBe(true);
    expect(existsSync(join(tree, 'bin', 'cloudbed.js'))).toBe(true);
    const built = statSync(join(tree, '.stamp')).mtimeMs;
    expect(mutantTree(dir, 'no-fence')).toBe(tree);
    expect(statSync(join(tree, '.stamp')).mtimeMs).toBe(built);
  });
});
