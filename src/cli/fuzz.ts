/**
 * `cloudbed fuzz`: runs many seeds of random scenarios (or of one scenario file), shows progress,
 * and at the first failure shrinks it, writes the shrunk scenario under scenarios/regressions/ and
 * prints the command that replays it. The work is src/fuzz/fuzz.ts; this file is wiring: options,
 * the progress display, timing and the file.
 *
 * The fuzzer (and fast-check with it) is loaded only when a fuzz session starts, so the other
 * commands do not depend on it.
 */
import { access, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { intOption, parse, UsageError } from './args.ts';
import { loadScenario, storeOption } from './scenario-file.ts';
import type { FuzzFailure, FuzzOptions, FuzzReport, FuzzRunInfo } from '../fuzz/fuzz.ts';
import type { RawScenario } from '../fuzz/shrink.ts';
import { exitCodeFor, VERDICTS } from '../sim/verdict.ts';
import { STORES, type StoreKind } from '../sim/scenario.ts';
import { verdictLine } from './run.ts';

export const FUZZ_HELP = `Usage: cloudbed fuzz [--runs N] [--seed N] [--swarm] [--store memory|pgmem] [--scenario FILE]

Runs many simulated scenarios and checks that each ends with its expected verdict. Without
--scenario the scenarios are generated: a small topology, a random workload (VMs and volumes
created, started, stopped, snapshotted, restored, cloned, attached, grown, deleted) and a random
fault schedule. With --scenario FILE the file runs under seeds N, N+1, …; with --swarm as well,
its workload runs under randomly drawn fault plans instead of its own faults (and without its
steps' expectStatus: under faults a call may go unanswered or get 503).

At the first failure the run is shrunk to a small scenario that fails the same way, written to
scenarios/regressions/<name>.yaml, and the command that replays it is printed. The summary gives
runs, verdicts, steps per second and simulated hours per wall-clock second.

Options:
  --runs N         how many runs (default 100)
  --seed N         root seed: the same seed generates the same scenarios (default 1)
  --swarm          swarm testing: each run draws which fault kinds are on
  --store KIND     memory (fast) or pgmem (the SQL store on pg-mem); default memory
  --scenario FILE  fuzz this scenario file instead of generated scenarios
  --shrink-runs N  most runs spent shrinking a failure (default 300)
  --out DIR        where the shrunk scenario goes (default scenarios/regressions)
  -h, --help       show this help

Exit codes: 0 every run ended as expected; otherwise the code 'cloudbed run' gives the shrunk
scenario (3 correctness, 4 liveness, 5 crash, 1 ok where a failure was expected); 2 bad input.
`;

/** Default directory of written regression scenarios. */
export const REGRESSIONS_DIR = 'scenarios/regressions';

export async function fuzzCommand(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parse('fuzz', argv, {
    runs: { type: 'string' },
    seed: { type: 'string' },
    swarm: { type: 'boolean' },
    store: { type: 'string' },
    scenario: { type: 'string' },
    'shrink-runs': { type: 'string' },
    out: { type: 'string' },
  });
  if (positionals.length > 0) {
    throw new UsageError(
      `cloudbed fuzz: unexpected argument '${positionals[0]}' (a scenario file goes after --scenario)`,
    );
  }
  const runs = intOption('fuzz', 'runs', values.runs, { min: 1, max: 10_000_000 }) ?? 100;
  const seed = intOption('fuzz', 'seed', values.seed) ?? 1;
  const shrinkRuns =
    intOption('fuzz', 'shrink-runs', values['shrink-runs'], { min: 0, max: 1_000_000 }) ?? 300;
  const swarm = values.swarm === true;
  const outDir = values.out ?? REGRESSIONS_DIR;
  let base: RawScenario | undefined;
  let store: StoreKind = 'memory';
  if (values.scenario !== undefined) {
    const loaded = await loadScenario(values.scenario);
    base = parseYaml(loaded.text) as RawScenario;
    store = storeOption('fuzz', values.store, loaded.scenario);
  } else if (values.store !== undefined) {
    if (!(STORES as readonly string[]).includes(values.store))
      throw new UsageError(
        `cloudbed fuzz: --store must be one of ${STORES.join(', ')}, got '${values.store}'`,
      );
    store = values.store as StoreKind;
  }

  const command = [
    'npx cloudbed fuzz',
    `--runs ${runs}`,
    `--seed ${seed}`,
    ...(swarm ? ['--swarm'] : []),
    ...(store === 'memory' ? [] : [`--store ${store}`]),
    ...(values.scenario === undefined ? [] : [`--scenario ${values.scenario}`]),
  ].join(' ');
  const { fuzz, describeSize } = await loadFuzzer();
  const progress = new Progress(runs, process.stderr, describeSize);
  const started = performance.now();
  const report = await fuzz({
    runs,
    seed,
    swarm,
    store,
    shrinkRuns,
    ...(base === undefined ? {} : { base }),
    onRun: (info) => progress.onRun(info),
  });
  const wallMs = performance.now() - started;
  progress.done();
  process.stdout.write(summary(report, { command, wallMs }));
  const failure = report.failure;
  if (failure === undefined) return 0;
  const file = await writeRegression(outDir, failure, command);
  process.stdout.write(await failureReport(failure, file));
  return exitCodeFor(failure.result.verdict, failure.expected);
}

/** The summary block: runs, verdicts and throughput. */
function summary(report: FuzzReport, run: { command: string; wallMs: number }): string {
  const seconds = run.wallMs / 1000;
  const verdicts = VERDICTS.map((v) => `${v}=${report.verdicts[v]}`).join(' ');
  const shrink = report.shrinkRuns > 0 ? ` + ${report.shrinkRuns} shrink runs` : '';
  return [
    `fuzz: ${run.command}`,
    `runs: ${report.runs}${shrink} in ${seconds.toFixed(1)} s (${((report.runs + report.shrinkRuns) / seconds).toFixed(1)} runs/s)`,
    `verdicts: ${verdicts}`,
    `throughput: ${Math.round(report.steps / seconds)} steps/s, ${(report.simTimeMs / 3_600_000 / seconds).toFixed(2)} simulated hours per wall-clock second`,
    '',
  ].join('\n');
}

async function failureReport(failure: FuzzFailure, file: string): Promise<string> {
  const { describeShrink } = await loadFuzzer();
  const original = failure.original.result;
  const lines = [
    `first failure: run ${failure.runIndex}: verdict=${original.verdict} (expected ${failure.expected}): ${original.reason}`,
    `${describeShrink(failure)}`,
    ...(failure.fastCheck === undefined
      ? []
      : [`fast-check: seed=${failure.fastCheck.seed} path="${failure.fastCheck.path}"`]),
    `shrunk: ${failure.result.verdict}: ${failure.result.reason}`,
    `wrote ${file}`,
    `reproduce: npx cloudbed run ${file} --seed ${failure.seed}${failure.store === 'memory' ? '' : ` --store ${failure.store}`}`,
    verdictLine(failure.seed, String(failure.data['name']), failure.result),
    '',
  ];
  return lines.join('\n');
}

/**
 * Writes the regression file of `failure` into `dir` as `<scenario name>.yaml` (a numbered suffix
 * if that exists) and returns its path.
 */
export async function writeRegression(
  dir: string,
  failure: FuzzFailure,
  foundBy: string,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const name = String(failure.data['name']);
  let file = join(dir, `${name}.yaml`);
  for (let n = 2; await exists(file); n++) file = join(dir, `${name}-${n}.yaml`);
  const { regressionYaml } = await loadFuzzer();
  await writeFile(file, regressionYaml(failure, { command: foundBy, file }), 'utf8');
  return file;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Progress on stderr: a bar redrawn in place when stderr is a terminal, otherwise a plain line
 * every 10% of the runs (and every 50 shrink runs), so logs stay readable.
 */
class Progress {
  private lastDrawMs = 0;
  private readonly tty: boolean;
  private lastLine = '';
  private readonly started = performance.now();
  private failures = 0;

  constructor(
    private readonly runs: number,
    private readonly out: NodeJS.WriteStream,
    private readonly describeSize: (size: FuzzRunInfo['size']) => string,
  ) {
    this.tty = out.isTTY === true;
  }

  onRun(info: FuzzRunInfo): void {
    if (info.phase === 'search' && info.result.verdict !== 'ok') this.failures++;
    if (this.tty) {
      const now = performance.now();
      if (now - this.lastDrawMs < 100 && info.index !== this.runs) return;
      this.lastDrawMs = now;
      this.draw(this.line(info));
      return;
    }
    const step = Math.max(1, Math.round(this.runs / 10));
    if (info.phase === 'search' && (info.index % step === 0 || info.result.verdict !== 'ok')) {
      this.out.write(`${this.line(info)}\n`);
    } else if (info.phase === 'shrink' && info.index % 50 === 0) {
      this.out.write(`${this.line(info)}\n`);
    }
  }

  private line(info: FuzzRunInfo): string {
    const seconds = (performance.now() - this.started) / 1000;
    if (info.phase === 'shrink') {
      return `shrinking: ${info.index} runs, last ${info.result.verdict} with ${this.describeSize(info.size)} (${seconds.toFixed(0)} s)`;
    }
    const width = 30;
    const filled = Math.round((info.index / this.runs) * width);
    const bar = this.tty ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ` : '';
    const rate = info.index / Math.max(seconds, 1e-3);
    return `${bar}${info.index}/${this.runs} runs, ${this.failures} failed, ${rate.toFixed(1)} runs/s`;
  }

  private draw(line: string): void {
    const padded = line.padEnd(this.lastLine.length);
    this.lastLine = line;
    this.out.write(`\r${padded}`);
  }

  done(): void {
    if (this.tty && this.lastLine !== '') this.out.write('\n');
  }
}

/**
 * Runs a fuzz session (as the property suites do) and, on a failure, writes its regression file
 * under `outDir` and explains it: what failed, how it was shrunk, fast-check's seed and path, the
 * file and the command that replays it. `explanation` is undefined when every run passed.
 */
export async function fuzzWithRegression(
  options: FuzzOptions & { readonly foundBy: string; readonly outDir?: string },
): Promise<{ report: FuzzReport; explanation: string | undefined }> {
  const { fuzz } = await loadFuzzer();
  const report = await fuzz(options);
  const failure = report.failure;
  if (failure === undefined) return { report, explanation: undefined };
  const file = await writeRegression(options.outDir ?? REGRESSIONS_DIR, failure, options.foundBy);
  return { report, explanation: await failureReport(failure, file) };
}

/** The fuzzer's modules, loaded on first use. */
async function loadFuzzer() {
  const [engine, scenario] = await Promise.all([
    import('../fuzz/fuzz.ts'),
    import('../fuzz/cases.ts'),
  ]);
  return {
    fuzz: engine.fuzz,
    regressionYaml: engine.regressionYaml,
    describeShrink: engine.describeShrink,
    describeSize: scenario.describeSize,
  };
}
