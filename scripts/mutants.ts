/**
 * `npm run test:mutants`: proves the property suites have teeth. For each known-broken variant of
 * the control plane (scripts/mutants/catalog.ts) it copies src/ into a temporary directory,
 * applies the mutant's textual patches (each anchor must be found exactly once), runs the mutant's
 * property on the copy in a child process (`node --import bin/ts-register.mjs`), and requires that the property
 * fails and shrinks the failure to a small counterexample (for fuzz properties: a scenario whose
 * YAML replays with the same trace hash). Unmutated copies run every property used, as controls:
 * they must not fail. No `if` in the control plane knows about any of this.
 *
 * Prints a table (mutant, caught?, runs to catch, shrunk size, verdict, seconds) and exits 1 if a
 * mutant survived, a shrunk scenario is not small, the control failed, or a patch did not apply.
 *
 * Usage: npm run test:mutants -- [--only NAME[,NAME]] [--jobs N] [--keep] [--show] [--no-control]
 *   --only        run only these mutants (with the controls of their properties)
 *   --jobs        mutants run in parallel (default 2: one per core of the reference machine)
 *   --keep        keep the temporary copies (their paths are printed)
 *   --show        print each caught mutant's shrunk counterexample
 *   --no-control  skip the unmutated controls
 *   --write-regressions  write each shrunk scenario of a fuzz property that caught a mutant to
 *                 scenarios/regressions/mutant-<name>.yaml: on the real control plane it must end
 *                 ok, so it keeps the mutant dead in `npm test` forever
 */
import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MUTANTS, type Mutant, type Patch, type Probe } from './mutants/catalog.ts';
import type { ProbeOutcome } from './mutants/probe.ts';
import { RACE_WORLD_SETUP, settledWorld } from '../src/fuzz/races.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The first line of a scenario under scenarios/regressions/. */
const SCHEMA_LINE = '# yaml-language-server: $schema=../../scenario.schema.json';

/** Longest a probe may run before it counts as hung, ms. */
const PROBE_TIMEOUT_MS = 6 * 60_000;

/**
 * The controls: the unmutated tree under every kind of probe the catalogue uses (as many cases as
 * the largest mutant probe of that kind). Each must pass, or a "caught" mutant proves nothing.
 */
function controls(mutants: readonly Mutant[]): Mutant[] {
  const byKind = new Map<string, Probe>();
  for (const { probe } of mutants) {
    const key =
      probe.kind === 'fuzz'
        ? `fuzz ${probe.property}`
        : probe.kind === 'model'
          ? `model${probe.lossyBus ? ' lossy' : ''}`
          : `race ${probe.race}`;
    const known = byKind.get(key);
    if (known === undefined || known.runs < probe.runs) byKind.set(key, probe);
  }
  return [...byKind].map(([key, probe]) => ({
    name: `control (${key})`,
    description: 'the real control plane',
    patches: [],
    probe,
    maxShrunkSize: 0,
  }));
}

interface Row {
  readonly mutant: Mutant;
  readonly outcome: ProbeOutcome | null;
  readonly error: string | null;
  readonly ok: boolean;
}

/** Applies one patch to the copy; throws when its anchor is not found exactly once. */
async function applyPatch(srcDir: string, mutant: Mutant, patch: Patch): Promise<void> {
  const path = join(srcDir, patch.file);
  const text = await readFile(path, 'utf8');
  const count = text.split(patch.find).length - 1;
  if (count !== 1) {
    throw new Error(
      `mutant ${mutant.name}: the anchor in src/${patch.file} was found ${count} times, expected once (has the code changed? update scripts/mutants/catalog.ts): ${JSON.stringify(patch.find)}`,
    );
  }
  await writeFile(
    path,
    text.replace(patch.find, () => patch.replace),
    'utf8',
  );
}

/** Builds the mutant's copy of the tree under `base`; returns its root. */
async function buildCopy(base: string, mutant: Mutant, index: number): Promise<string> {
  const dir = join(base, `${index}-${mutant.name.replace(/[^a-z0-9-]/g, '')}`);
  await mkdir(join(dir, 'scripts', 'mutants'), { recursive: true });
  await cp(join(ROOT, 'src'), join(dir, 'src'), { recursive: true });
  for (const file of ['probe.ts', 'catalog.ts'])
    await cp(join(ROOT, 'scripts', 'mutants', file), join(dir, 'scripts', 'mutants', file));
  for (const file of ['package.json', 'tsconfig.json']) await cp(join(ROOT, file), join(dir, file));
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  for (const patch of mutant.patches) await applyPatch(join(dir, 'src'), mutant, patch);
  return dir;
}

/** Runs the probe in the copy; resolves with its outcome (the last stdout line, JSON). */
function runProbe(dir: string, mutant: Mutant, worldFile: string): Promise<ProbeOutcome> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        join(ROOT, 'bin', 'ts-register.mjs'),
        join(dir, 'scripts', 'mutants', 'probe.ts'),
        JSON.stringify(mutant.probe),
        worldFile,
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // A mutant can make a run spin forever inside one step (a loop that never yields): a hung
    // probe is reported as such, never waited for.
    const timer = setTimeout(() => child.kill('SIGKILL'), PROBE_TIMEOUT_MS);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const last = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolvePromise(JSON.parse(last) as ProbeOutcome);
      } catch {
        reject(
          new Error(
            `probe of ${mutant.name} exited ${code ?? 'on a signal (hung past the timeout?)'} without a result:\n${stderr.slice(-3000)}`,
          ),
        );
      }
    });
  });
}

async function runOne(
  base: string,
  mutant: Mutant,
  index: number,
  worldFile: string,
): Promise<Row> {
  const isControl = mutant.patches.length === 0;
  try {
    const dir = await buildCopy(base, mutant, index);
    const outcome = await runProbe(dir, mutant, worldFile);
    const ok = isControl
      ? !outcome.caught
      : outcome.caught &&
        (outcome.shrunkSize ?? Infinity) <= mutant.maxShrunkSize &&
        outcome.replayed !== false;
    return { mutant, outcome, error: null, ok };
  } catch (error) {
    return {
      mutant,
      outcome: null,
      error: error instanceof Error ? error.message : String(error),
      ok: false,
    };
  }
}

/** Runs `tasks` with at most `jobs` at a time, keeping their order in the result. */
async function pool<T>(jobs: number, tasks: readonly (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await (tasks[i] as () => Promise<T>)();
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, () => worker()));
  return results;
}

function table(rows: readonly Row[]): string {
  const header = [
    'mutant',
    'property',
    'caught?',
    'runs to catch',
    'shrunk size',
    'verdict',
    'replays?',
    'seconds',
  ];
  const body = rows.map((row) => {
    const o = row.outcome;
    const isControl = row.mutant.patches.length === 0;
    const p = row.mutant.probe;
    return [
      row.mutant.name,
      p.kind === 'fuzz'
        ? `fuzz ${p.property}`
        : p.kind === 'model'
          ? `model${p.lossyBus ? ' (lossy bus)' : ''}`
          : `race ${p.race}`,
      o === null ? 'ERROR' : isControl ? (o.caught ? 'FAILED' : 'passes') : o.caught ? 'yes' : 'NO',
      o === null ? '-' : o.caught ? String(o.runs) : `>${o.runs}`,
      o?.shrunkSize === null || o === null
        ? '-'
        : `${o.shrunkSize}${o.shrunkSize > row.mutant.maxShrunkSize ? ' (too big)' : ''}`,
      o?.verdict ?? '-',
      o?.replayed === null || o === null ? '-' : o.replayed ? 'yes' : 'NO',
      o === null ? '-' : o.seconds.toFixed(0),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      jobs: { type: 'string' },
      keep: { type: 'boolean' },
      show: { type: 'boolean' },
      'no-control': { type: 'boolean' },
      'write-regressions': { type: 'boolean' },
    },
  });
  const only = values.only?.split(',').map((s) => s.trim());
  const unknown = only?.filter((name) => !MUTANTS.some((m) => m.name === name)) ?? [];
  if (unknown.length > 0) {
    process.stderr.write(
      `mutants: unknown mutant ${unknown.join(', ')}; mutants: ${MUTANTS.map((m) => m.name).join(', ')}\n`,
    );
    return 2;
  }
  const chosen = only === undefined ? MUTANTS : MUTANTS.filter((m) => only.includes(m.name));
  const selected = [...chosen, ...(values['no-control'] === true ? [] : controls(chosen))];
  const jobs = Math.max(1, Number(values.jobs ?? 2));
  const base = await mkdtemp(join(tmpdir(), 'cloudbed-mutants-'));
  const started = performance.now();
  process.stderr.write(`mutants: ${selected.length} variants, ${jobs} at a time, in ${base}\n`);
  // The settled world of the race probes, built once by the real control plane.
  const world = await settledWorld(1, RACE_WORLD_SETUP);
  const worldFile = join(base, 'race-world.json');
  await writeFile(worldFile, JSON.stringify({ ...world, ids: [...world.ids] }), 'utf8');
  const rows = await pool(
    jobs,
    selected.map((mutant, i) => async () => {
      const row = await runOne(base, mutant, i, worldFile);
      const o = row.outcome;
      process.stderr.write(
        `  ${mutant.name}: ${row.error !== null ? 'error' : o?.caught === true ? `caught after ${o.runs} runs (${o.verdict}), shrunk to ${o.shrunkSize}` : `not caught in ${o?.runs} runs`} [${o?.seconds.toFixed(0) ?? '-'} s]\n`,
      );
      return row;
    }),
  );
  process.stdout.write(`\n${table(rows)}\n`);
  for (const row of rows) {
    if (row.error !== null) process.stdout.write(`\n${row.mutant.name}: ${row.error}\n`);
    else if (row.outcome?.caught === true && row.outcome.reason !== null)
      process.stdout.write(`\n${row.mutant.name}: ${row.outcome.reason.slice(0, 400)}\n`);
    if (values.show === true && row.outcome !== null && row.outcome.counterexample !== null)
      process.stdout.write(`${row.outcome.counterexample}\n`);
  }
  if (values['write-regressions'] === true) {
    for (const row of rows) {
      const yaml = row.outcome?.counterexample;
      if (row.mutant.probe.kind !== 'fuzz' || !row.ok || yaml === null || yaml === undefined)
        continue;
      const name = row.mutant.name;
      const file = join(ROOT, 'scenarios', 'regressions', `mutant-${name}.yaml`);
      // The failure reproduces only on the mutant; on the real tree the file must simply pass.
      const body = yaml
        .replace(
          /^# Goal: .*$/m,
          `# Goal: keep the mutant '${name}' dead (${row.mutant.description}).\n# With the mutant this scenario fails as recorded below; the real control plane must end it ok.`,
        )
        .replace(
          /^# Reproduce: .*$/m,
          `# Reproduce the failure: npm run test:mutants -- --only ${name} --show`,
        );
      // Editors find the scenario schema through the first line, as in every shipped scenario.
      await writeFile(file, `${SCHEMA_LINE}\n${body}`, 'utf8');
      process.stdout.write(`wrote ${file}\n`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const failed = rows.filter((row) => !row.ok);
  process.stdout.write(
    `\n${failed.length === 0 ? 'every mutant was caught and shrunk' : `${failed.length} problem(s): ${failed.map((r) => r.mutant.name).join(', ')}`} (${seconds.toFixed(0)} s)\n`,
  );
  if (values.keep === true) process.stdout.write(`copies kept in ${base}\n`);
  else await rm(base, { recursive: true, force: true });
  return failed.length === 0 ? 0 : 1;
}

process.exitCode = await main();
