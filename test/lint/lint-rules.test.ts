// Goal: prove that the lint rules bite — the determinism bans, the layer rules and
// no-floating-promises reject what they must and accept a clean control-plane file — and that
// scripts/check-cycles.mjs fails on an import cycle and passes on src.
// Method: one ESLint instance over the project's own eslint.config.js lints a handful of snippets
// with `lintText(code, { filePath })`. The rules are chosen by folder, so each snippet is linted
// under a path in the folder it tests. Snippets stay in memory: probe files written into src/
// would be picked up by any lint, typecheck or cycle check running meanwhile, and left behind if
// the test died. But type-aware rules need the file in a TypeScript project, and the project
// service only knows files that existed when it read tsconfig.json (a non-existent path fails with
// "was not found by the project service"). So snippets are named `src/<folder>/__lint_probe__.ts`
// and the test overrides one parser option, no rule: those names join `allowDefaultProject`,
// compiled with tsconfig.json's options (`defaultProject`), so imports such as src/ports resolve
// with their types. An existing file (src/sim/quiesce.ts) is linted under its real name with the
// snippet as its content. The cycle check runs as a child process on a temporary directory
// holding a two-module cycle, and on src.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ESLint, type Linter } from 'eslint';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

let eslint: ESLint;

beforeAll(() => {
  eslint = new ESLint({
    cwd: root,
    overrideConfig: {
      languageOptions: {
        parserOptions: {
          projectService: {
            allowDefaultProject: ['src/*/__lint_probe__*.ts'],
            defaultProject: 'tsconfig.json',
          },
        },
      },
    },
  });
});

/** Lints `code` as the file at `filePath` (relative to the repository root). */
async function lint(code: string, filePath: string): Promise<Linter.LintMessage[]> {
  const [result] = await eslint.lintText(code, { filePath: join(root, filePath) });
  return result!.messages;
}

/** `rule: message` lines, for readable failures. */
function describeMessages(messages: readonly Linter.LintMessage[]): string[] {
  return messages.map((m) => `${m.ruleId ?? 'fatal'}: ${m.message}`);
}

/** Asserts that `rule` reported at least once with a message matching `pattern`. */
function expectReported(
  messages: readonly Linter.LintMessage[],
  rule: string,
  pattern: RegExp,
): void {
  // A parse failure reports no rule at all; it must not pass for a rejection.
  expect(messages.filter((m) => m.fatal === true)).toEqual([]);
  expect(describeMessages(messages.filter((m) => m.ruleId === rule))).toContainEqual(
    expect.stringMatching(pattern),
  );
}

const header = '// A probe for the lint rules.\n';

describe('determinism bans', () => {
  it('rejects Date.now() in src/control', async () => {
    const messages = await lint(
      `${header}export const now = (): number => Date.now();\n`,
      'src/control/__lint_probe__.ts',
    );
    expectReported(messages, 'no-restricted-properties', /Date\.now/);
  });

  it('rejects Math.random(), new Date() and setTimeout in src/sim', async () => {
    const messages = await lint(
      `${header}export const roll = (): number => Math.random();\n` +
        `export const today = (): Date => new Date();\n` +
        `export function later(f: () => void): void {\n  setTimeout(f, 10);\n}\n`,
      'src/sim/__lint_probe__.ts',
    );
    expectReported(messages, 'no-restricted-properties', /Math\.random/);
    expectReported(messages, 'no-restricted-syntax', /new Date\(\)/);
    expectReported(messages, 'no-restricted-globals', /setTimeout/);
  });

  it('allows timers in src/sim/quiesce.ts only, and still bans Date.now there', async () => {
    // eslint.config.js turns no-restricted-globals off for quiesce.ts alone: it observes Node's
    // queues with setImmediate and process. The other bans stay on.
    const code =
      `${header}export function tick(f: () => void): void {\n  setImmediate(f);\n}\n` +
      `export const pending = (): number => process.getActiveResourcesInfo().length;\n` +
      `export const now = (): number => Date.now();\n`;
    const allowed = await lint(code, 'src/sim/quiesce.ts');
    expect(describeMessages(allowed.filter((m) => m.ruleId === 'no-restricted-globals'))).toEqual(
      [],
    );
    expectReported(allowed, 'no-restricted-properties', /Date\.now/);
    const elsewhere = await lint(code, 'src/sim/__lint_probe__.ts');
    expectReported(elsewhere, 'no-restricted-globals', /setImmediate/);
    expectReported(elsewhere, 'no-restricted-globals', /process/);
  });
});

describe('layer rules', () => {
  it('rejects an import of src/adapters or of pg from src/control', async () => {
    const messages = await lint(
      `${header}import { createPostgresStore } from '../adapters/postgres-store.ts';\n` +
        `import pg from 'pg';\n` +
        `export const parts = [createPostgresStore, pg];\n`,
      'src/control/__lint_probe__.ts',
    );
    expectReported(messages, 'no-restricted-imports', /must not import src\/adapters/);
    expectReported(messages, 'no-restricted-imports', /'pg'.*real I\/O lives in src\/adapters/);
  });

  it('rejects an import of src/sim from src/model', async () => {
    const messages = await lint(
      `${header}import { Simulation } from '../sim/simulation.ts';\nexport const S = Simulation;\n`,
      'src/model/__lint_probe__.ts',
    );
    expectReported(messages, 'no-restricted-imports', /must not import src\/sim/);
  });
});

describe('the fuzz, staging and chaos layers', () => {
  it('rejects an import of src/fuzz from src/sim: the fuzzer sits on top of the simulator', async () => {
    const messages = await lint(
      `${header}import { fuzz } from '../fuzz/fuzz.ts';\nexport const f = fuzz;\n`,
      'src/sim/__lint_probe__.ts',
    );
    expectReported(messages, 'no-restricted-imports', /must not import src\/fuzz/);
  });

  it('rejects an import of src/staging from src/control and src/sim', async () => {
    const code = `${header}import { purge } from '../staging/purge.ts';\nexport const p = purge;\n`;
    expectReported(
      await lint(code, 'src/control/__lint_probe__.ts'),
      'no-restricted-imports',
      /must not import src\/staging/,
    );
    expectReported(
      await lint(code, 'src/sim/__lint_probe__.ts'),
      'no-restricted-imports',
      /must not import src\/staging/,
    );
  });

  it('rejects an import of src/sim or src/cli from src/staging, and accepts real I/O there', async () => {
    const messages = await lint(
      `${header}import { readFileSync } from 'node:fs';\n` +
        `import { Simulation } from '../sim/simulation.ts';\n` +
        `import { main } from '../cli/main.ts';\n` +
        `export const parts = [readFileSync, Simulation, main];\n`,
      'src/staging/__lint_probe__.ts',
    );
    expectReported(messages, 'no-restricted-imports', /must not import src\/sim/);
    expectReported(messages, 'no-restricted-imports', /must not import src\/cli/);
    expect(describeMessages(messages).filter((m) => m.includes("'node:fs'"))).toEqual([]);
  });

  it('keeps src/chaos above staging and the simulator: none of them imports it; it may import them', async () => {
    const code = `${header}import { runExperiment } from '../chaos/runner.ts';\nexport const r = runExperiment;\n`;
    for (const folder of ['sim', 'staging', 'faults'])
      expectReported(
        await lint(code, `src/${folder}/__lint_probe__.ts`),
        'no-restricted-imports',
        /must not import src\/chaos/,
      );
    const messages = await lint(
      `${header}import { Checkers } from '../sim/checkers.ts';\n` +
        `import { up } from '../staging/deployment.ts';\n` +
        `import { fuzz } from '../fuzz/fuzz.ts';\n` +
        `export const parts = [Checkers, up, fuzz, Date.now()];\n`,
      'src/chaos/__lint_probe__.ts',
    );
    expectReported(messages, 'no-restricted-imports', /must not import src\/fuzz/);
    expect(
      describeMessages(messages).filter((m) => /src\/(sim|staging)|Date\.now/.test(m)),
    ).toEqual([]);
  });

  it('bans the wall clock in src/fuzz, as in the simulator', async () => {
    const messages = await lint(
      `${header}export const now = (): number => Date.now();\n`,
      'src/fuzz/__lint_probe__.ts',
    );
    expectReported(messages, 'no-restricted-properties', /Date\.now/);
  });
});

describe('the bans are per folder', () => {
  it('accepts the wall clock and real I/O in src/adapters, not in src/control', async () => {
    const code =
      `${header}import { readFileSync } from 'node:fs';\n\n` +
      `export const load = (path: string): string => readFileSync(path, 'utf8');\n` +
      `export const now = (): number => Date.now();\n`;
    const adapters = await lint(code, 'src/adapters/__lint_probe__.ts');
    expect(describeMessages(adapters)).toEqual([]);
    const control = await lint(code, 'src/control/__lint_probe__.ts');
    expectReported(control, 'no-restricted-imports', /'node:fs'/);
    expectReported(control, 'no-restricted-properties', /Date\.now/);
  });
});

describe('type-aware rules', () => {
  it('rejects a floating promise, with types resolved across modules', async () => {
    // `clock.sleep` returns a Promise only according to src/ports/runtime.ts: the rule can see it
    // only if the snippet is type-checked inside the project.
    const messages = await lint(
      `${header}import type { Clock } from '../ports/runtime.ts';\n\n` +
        `export function nap(clock: Clock): void {\n  clock.sleep(5);\n}\n`,
      'src/control/__lint_probe__.ts',
    );
    expectReported(messages, '@typescript-eslint/no-floating-promises', /Promises must be awaited/);
  });

  it('accepts a clean control-plane file', async () => {
    const messages = await lint(
      `// Deadlines on the Clock port: how long until a moment, never negative.\n` +
        `import type { Clock } from '../ports/runtime.ts';\n\n` +
        `/** Milliseconds from now until \`deadlineMs\` (ms since the epoch), at least 0. */\n` +
        `export function remainingMs(clock: Clock, deadlineMs: number): number {\n` +
        `  return Math.max(0, deadlineMs - clock.nowMs());\n}\n\n` +
        `/** Sleeps until \`deadlineMs\`; resolves at once if it has passed. */\n` +
        `export async function sleepUntil(clock: Clock, deadlineMs: number): Promise<void> {\n` +
        `  await clock.sleep(remainingMs(clock, deadlineMs));\n}\n`,
      'src/control/__lint_probe__.ts',
    );
    expect(describeMessages(messages)).toEqual([]);
  });
});

describe('scripts/check-cycles.mjs', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cloudbed-cycles-'));
    writeFileSync(
      join(dir, 'alpha.ts'),
      "import { b } from './beta.ts';\nexport const a = b + 1;\n",
    );
    writeFileSync(
      join(dir, 'beta.ts'),
      "import { a } from './alpha.ts';\nexport const b = a + 1;\n",
    );
    writeFileSync(join(dir, 'gamma.ts'), "import { a } from './alpha.ts';\nexport const c = a;\n");
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const checkCycles = (target: string) =>
    spawnSync(process.execPath, ['scripts/check-cycles.mjs', target], {
      cwd: root,
      encoding: 'utf8',
    });

  it('fails on two modules importing each other and names both', () => {
    const run = checkCycles(dir);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/import cycle: .*alpha\.ts <-> .*beta\.ts/);
    // gamma imports into the cycle but is not part of it.
    expect(run.stderr).not.toMatch(/gamma/);
  });

  it('passes on src', () => {
    const run = checkCycles('src');
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect(run.stdout).toMatch(/^no import cycles among \d+ modules/);
  });
});
