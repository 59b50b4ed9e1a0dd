/**
 * `cloudbed fuzz`: runs many seeds of random scenarios (or of one scenario file), shows progress,
 * and at the first failure shrinks it, writes the shrunk scenario under scenarios/regressions/ and
 * prints the command that replays it. The work is src/fuzz/fuzz.ts; this file is wiring: options,
 * the progress display, timing and the files. Worker processes are src/cli/fuzz-workers.ts (and
 * fuzz-worker.ts, the hidden `--worker` mode); `cloudbed fuzz merge` is src/cli/fuzz-merge.ts.
 *
 * The fuzzer (and fast-check with it) is loaded only when a fuzz session starts in this process,
 * so the other commands — and the parent of worker processes — do not load it.
 */
import { access, mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { intOption, parse, UsageError } from './args.ts';
import { loadScenario, storeOption } from './scenario-file.ts';
import type { FuzzFailure, FuzzOptions, FuzzReport, FuzzRunInfo } from '../fuzz/fuzz.ts';
import type { RawScenario } from '../fuzz/shrink.ts';
import {
  formatCampaignReport,
  formatShard,
  shardRange,
  toCampaignReport,
  type CampaignIdentity,
  type RunRange,
  type Shard,
  type WrittenFailure,
} from '../fuzz/campaign.ts';
import { describeSize } from '../fuzz/results.ts';
import { sha256Hex } from '../lib/hash.ts';
import { exitCodeFor } from '../sim/verdict.ts';
import { STORES, type StoreKind } from '../sim/scenario.ts';
import { failureReport, reproduceCommand, verdictsLine } from './fuzz-summary.ts';
import { runFuzzWorker } from './fuzz-worker.ts';
import { fuzzWithWorkers, FuzzWorkersError } from './fuzz-workers.ts';
import { fuzzMergeCommand } from './fuzz-merge.ts';

export const FUZZ_HELP = `Usage: cloudbed fuzz [--runs N] [--seed N] [--swarm] [--store memory|pgmem] [--scenario FILE]
                    [--workers N] [--shard K/N] [--report FILE]
       cloudbed fuzz merge REPORT.json... [--report FILE]

Runs many simulated scenarios and checks that each ends with its expected verdict. Without
--scenario the scenarios are generated: a small topology, a random workload (VMs and volumes
created, started, stopped, snapshotted, restored, cloned, attached, grown, deleted) and a random
fault schedule. With --scenario FILE the file runs under seeds N, N+1, …; with --swarm as well,
its workload runs under randomly drawn fault plans instead of its own faults (and without its
steps' expectStatus: under faults a call may go unanswered or get 503).

At the first failure — the failing run with the lowest number — the run is shrunk to a small
scenario that fails the same way, written to scenarios/regressions/<name>.yaml, and the command
that replays it is printed. The summary gives runs, verdicts, steps per second and simulated hours
per wall-clock second.

Run r of a campaign (--runs, --seed, --swarm, --store, --scenario) is the same scenario however
the runs are split: --workers N runs them in N processes, --shard K/N runs the K-th of N
contiguous ranges of run numbers (runs floor((K-1)*R/N)+1 to floor(K*R/N) of R), for spreading a
campaign over machines. Each shard stops at its own first failure and writes its report
(--report); 'cloudbed fuzz merge' combines the reports of all N shards into the summary, first
failure and report one process running the whole campaign would give.

Options:
  --runs N         how many runs (default 100)
  --seed N         root seed: the same seed generates the same scenarios (default 1)
  --swarm          swarm testing: each run draws which fault kinds are on
  --store KIND     memory (fast) or pgmem (the SQL store on pg-mem); default memory
  --scenario FILE  fuzz this scenario file instead of generated scenarios
  --shrink-runs N  most runs spent shrinking a failure (default 300)
  --out DIR        where the shrunk scenario goes (default scenarios/regressions)
  --workers N      worker processes (default: the number of CPU cores, here ${availableParallelism()});
                   1 runs everything in this process
  --shard K/N      run only shard K of N (1 <= K <= N <= runs)
  --report FILE    write the JSON report: the campaign, the shard, every run (number, seed,
                   verdict, steps, trace hash) and the first failure with its reproduce command
  -h, --help       show this help

merge: checks that the reports are the N shards of one campaign — same options, each shard once,
none missing — then prints the combined summary and first failure (the one with the lowest run
number), writes the combined report with --report FILE, and exits as the whole campaign would.

Exit codes: 0 every run ended as expected; otherwise the code 'cloudbed run' gives the shrunk
scenario (3 correctness, 4 liveness, 5 crash, 1 ok where a failure was expected); 2 bad input;
8 a worker process died or failed; 130 interrupted by Ctrl-C (143 by SIGTERM), the workers
stopped.
`;

/** Default directory of written regression scenarios. */
export const REGRESSIONS_DIR = 'scenarios/regressions';

/** Exit code when a worker process died or failed (a bug or the machine, never a verdict). */
export const EXIT_WORKER_FAILED = 8;

export async function fuzzCommand(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'merge') return fuzzMergeCommand(argv.slice(1));
  const { values, positionals } = parse('fuzz', argv, {
    runs: { type: 'string' },
    seed: { type: 'string' },
    swarm: { type: 'boolean' },
    store: { type: 'string' },
    scenario: { type: 'string' },
    'shrink-runs': { type: 'string' },
    out: { type: 'string' },
    workers: { type: 'string' },
    shard: { type: 'string' },
    report: { type: 'string' },
    worker: { type: 'boolean' },
  });
  if (values.worker === true) {
    if (argv.length !== 1)
      throw new UsageError(
        'cloudbed fuzz: --worker takes no other option (it gets them from its parent)',
      );
    return runFuzzWorker();
  }
  if (positionals.length > 0) {
    throw new UsageError(
      `cloudbed fuzz: unexpected argument '${positionals[0]}' (a scenario file goes after --scenario)`,
    );
  }
  const runs = intOption('fuzz', 'runs', values.runs, { min: 1, max: 10_000_000 }) ?? 100;
  const seed = intOption('fuzz', 'seed', values.seed) ?? 1;
  const shrinkRuns =
    intOption('fuzz', 'shrink-runs', values['shrink-runs'], { min: 0, max: 1_000_000 }) ?? 300;
  const workers =
    intOption('fuzz', 'workers', values.workers, { min: 1, max: 1024 }) ?? availableParallelism();
  const shard = shardOption(values.shard, runs);
  const swarm = values.swarm === true;
  const outDir = values.out ?? REGRESSIONS_DIR;
  let base: RawScenario | undefined;
  let scenario: CampaignIdentity['scenario'] = null;
  let store: StoreKind = 'memory';
  if (values.scenario !== undefined) {
    const loaded = await loadScenario(values.scenario);
    base = parseYaml(loaded.text) as RawScenario;
    store = storeOption('fuzz', values.store, loaded.scenario);
    scenario = { file: values.scenario, sha256: sha256Hex(loaded.text) };
  } else if (values.store !== undefined) {
    if (!(STORES as readonly string[]).includes(values.store))
      throw new UsageError(
        `cloudbed fuzz: --store must be one of ${STORES.join(', ')}, got '${values.store}'`,
      );
    store = values.store as StoreKind;
  }

  // The campaign's command: what the regression file says found it, and what a shard's report
  // names. --shard, --workers, --out and --report change nothing in the runs, so they are left out.
  const command = [
    'npx cloudbed fuzz',
    `--runs ${runs}`,
    `--seed ${seed}`,
    ...(swarm ? ['--swarm'] : []),
    ...(store === 'memory' ? [] : [`--store ${store}`]),
    ...(values.scenario === undefined ? [] : [`--scenario ${values.scenario}`]),
    ...(shrinkRuns === 300 ? [] : [`--shrink-runs ${shrinkRuns}`]),
  ].join(' ');
  const range = shardRange(runs, shard);
  const size = range.last - range.first + 1;
  const processes = Math.min(workers, size);
  const campaign = {
    runs,
    seed,
    swarm,
    store,
    shrinkRuns,
    ...(base === undefined ? {} : { base }),
  };
  const progress = new Progress(size, process.stderr);
  const started = performance.now();
  let report: FuzzReport;
  if (processes === 1) {
    const { fuzz } = await loadFuzzer();
    report = await fuzz({ ...campaign, range, onRun: (info) => progress.onRun(info) });
  } else {
    try {
      report = await fuzzWithWorkers(campaign, {
        range,
        workers: processes,
        onRun: (info) => progress.onRun(info),
      });
    } catch (error) {
      if (!(error instanceof FuzzWorkersError)) throw error;
      progress.done();
      process.stderr.write(`${error.message}\n`);
      return error.signal === undefined ? EXIT_WORKER_FAILED : 128 + signalNumber(error.signal);
    }
  }
  const wallMs = performance.now() - started;
  progress.done();
  process.stdout.write(summary(report, { command, wallMs, workers: processes, shard, range }));
  const failure = report.failure;
  let written: WrittenFailure | undefined;
  if (failure !== undefined) {
    const file = await writeRegression(outDir, failure, command);
    written = {
      file,
      reproduce: reproduceCommand(failure, file),
      rerun: `${command} --shard ${failure.runIndex}/${runs}`,
    };
    process.stdout.write(failureReport(failure, { file, rerun: written.rerun }));
  }
  if (values.report !== undefined) {
    const json = formatCampaignReport(
      toCampaignReport({
        command,
        campaign: { runs, seed, swarm, store, scenario, shrinkRuns },
        shard,
        report,
        written,
      }),
    );
    await mkdir(dirname(values.report), { recursive: true });
    await writeFile(values.report, json, 'utf8');
    process.stdout.write(`report: ${values.report}\n`);
  }
  return failure === undefined ? 0 : exitCodeFor(failure.result.verdict, failure.expected);
}

/** `--shard K/N`, checked against the runs; 1/1 (the whole campaign) when absent. */
function shardOption(value: string | undefined, runs: number): Shard {
  if (value === undefined) return { index: 1, count: 1 };
  const match = /^(\d+)\/(\d+)$/.exec(value);
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (match === null || !(index >= 1 && index <= count && count <= 1_000_000))
    throw new UsageError(
      `cloudbed fuzz: --shard must be K/N with 1 <= K <= N, such as 3/8, got '${value}'`,
    );
  if (count > runs)
    throw new UsageError(
      `cloudbed fuzz: --shard ${value}: ${count} shards of --runs ${runs} would leave some empty; use at most ${runs} shards`,
    );
  return { index, count };
}

function signalNumber(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 0;
}

/** The summary block: runs, verdicts and throughput. */
function summary(
  report: FuzzReport,
  run: {
    command: string;
    wallMs: number;
    workers: number;
    shard: Shard;
    range: RunRange;
  },
): string {
  const seconds = run.wallMs / 1000;
  const shrink = report.shrinkRuns > 0 ? ` + ${report.shrinkRuns} shrink runs` : '';
  const shard =
    run.shard.count === 1
      ? ''
      : `, shard ${formatShard(run.shard)}: runs ${run.range.first}–${run.range.last}`;
  return [
    `fuzz: ${run.command}`,
    `runs: ${report.runs}${shrink} in ${seconds.toFixed(1)} s (${((report.runs + report.shrinkRuns) / seconds).toFixed(1)} runs/s)`,
    `workers: ${run.workers}${run.workers === 1 ? ' (in process)' : ' processes'}${shard}`,
    verdictsLine(report.verdicts),
    `throughput: ${Math.round(report.steps / seconds)} steps/s, ${(report.simTimeMs / 3_600_000 / seconds).toFixed(2)} simulated hours per wall-clock second`,
    '',
  ].join('\n');
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
 * every 10% of the runs (and every 50 shrink runs), so logs stay readable. Search runs are counted
 * as they finish, which with workers is not in run order.
 */
class Progress {
  private lastDrawMs = 0;
  private readonly tty: boolean;
  private lastLine = '';
  private readonly started = performance.now();
  private failures = 0;
  private finished = 0;

  constructor(
    private readonly runs: number,
    private readonly out: NodeJS.WriteStream,
  ) {
    this.tty = out.isTTY === true;
  }

  onRun(info: FuzzRunInfo): void {
    if (info.phase === 'search') {
      this.finished++;
      if (info.result.verdict !== 'ok') this.failures++;
    }
    if (this.tty) {
      const now = performance.now();
      if (now - this.lastDrawMs < 100 && this.finished !== this.runs) return;
      this.lastDrawMs = now;
      this.draw(this.line(info));
      return;
    }
    const step = Math.max(1, Math.round(this.runs / 10));
    if (info.phase === 'search' && (this.finished % step === 0 || info.result.verdict !== 'ok')) {
      this.out.write(`${this.line(info)}\n`);
    } else if (info.phase === 'shrink' && info.index % 50 === 0) {
      this.out.write(`${this.line(info)}\n`);
    }
  }

  private line(info: FuzzRunInfo): string {
    const seconds = (performance.now() - this.started) / 1000;
    if (info.phase === 'shrink') {
      return `shrinking: ${info.index} runs, last ${info.result.verdict} with ${describeSize(info.size)} (${seconds.toFixed(0)} s)`;
    }
    const width = 30;
    const filled = Math.round((this.finished / this.runs) * width);
    const bar = this.tty ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ` : '';
    const rate = this.finished / Math.max(seconds, 1e-3);
    return `${bar}${this.finished}/${this.runs} runs, ${this.failures} failed, ${rate.toFixed(1)} runs/s`;
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
  return { report, explanation: failureReport(failure, { file }) };
}

/** The fuzzer's modules, loaded on first use. */
async function loadFuzzer() {
  const engine = await import('../fuzz/fuzz.ts');
  return { fuzz: engine.fuzz, regressionYaml: engine.regressionYaml };
}
