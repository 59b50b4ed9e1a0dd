/** `cloudbed run`: runs one scenario with one seed and prints the verdict line. */
import { UsageError } from './args.ts';
import { replayCommand, scenarioArgs, seedOption, storeOption } from './scenario-file.ts';
import { CHECK_MODES, type CheckMode } from '../sim/checkers.ts';
import { runScenario, type RunProgress } from '../sim/run-scenario.ts';
import { exitCodeFor } from '../sim/verdict.ts';
import type { RunResult } from '../sim/simulation.ts';
import type { WorkloadStats } from '../sim/workload-driver.ts';
import { writeTraceFile } from './trace-file.ts';

/** Seconds of wall time between two `--progress` lines. */
const PROGRESS_SECONDS = 10;

export const RUN_HELP = `Usage: cloudbed run <scenario.yaml> [--seed N] [--store memory|pgmem] [--trace FILE]
                    [--check incremental|full] [--progress]

Runs the scenario in the deterministic simulator and ends with one line:
  seed=<n> scenario=<name> verdict=<v> trace-hash=<hex> steps=<n> sim-time-ms=<n>
The same seed, scenario and code always give the same trace-hash.

Options:
  --seed N        root seed (default: the scenario's seed, else 1)
  --store KIND    memory (fast) or pgmem (the SQL store on pg-mem); default: the scenario's, else memory
  --trace FILE    write every trace entry to FILE (JSON Lines) for 'cloudbed replay'
  --check MODE    incremental (default): the invariants are checked from what each step touched;
                  full: also recomputed over the whole world after every step, and both must agree
                  (a disagreement is a crash). Same verdict and trace-hash, much slower.
  --progress      print a line to stderr every ${PROGRESS_SECONDS} s: simulated time, steps and steps/s,
                  speed against real time, VMs/volumes/snapshots not settled, generated calls,
                  resident memory (for long benchmark scenarios; the run itself is unchanged)
  -h, --help      show this help
`;

/** The final line of a run. */
export function verdictLine(seed: number, scenario: string, result: RunResult): string {
  return `seed=${seed} scenario=${scenario} verdict=${result.verdict} trace-hash=${result.traceHash} steps=${result.steps} sim-time-ms=${Math.round(result.simTimeMs)}`;
}

/** What the generators and waiting steps did, for scenarios that have them. */
export function workloadLine(stats: WorkloadStats): string {
  return `workload: ${stats.generated} generated calls, ${stats.skipped} skipped (an id never saved), ${stats.poolEmpty} skipped (pool empty), ${stats.waitTimeouts} waitFor timeouts`;
}

export async function runCommand(argv: readonly string[]): Promise<number> {
  const { values, file, scenario, text } = await scenarioArgs('run', argv, {
    trace: { type: 'string' },
    check: { type: 'string' },
    progress: { type: 'boolean' },
  });
  const seed = seedOption('run', values.seed, scenario);
  const store = storeOption('run', values.store, scenario);
  const tracePath = values.trace;
  const check = checkOption('run', values.check);
  const run = await runScenario(scenario, {
    seed,
    store,
    check,
    keepTrace: tracePath !== undefined,
    ...(values.progress === true ? { progress: progressPrinter() } : {}),
  });
  if (tracePath !== undefined) {
    await writeTraceFile(
      tracePath,
      { scenarioFile: file, scenarioText: text, seed, store },
      run.trace.lines,
      run.result,
    );
  }
  const { result } = run;
  if (result.verdict !== scenario.expect.verdict) {
    process.stderr.write(`${result.verdict}: ${result.reason}\n`);
    if (scenario.expect.verdict !== 'ok')
      process.stderr.write(`the scenario expects verdict=${scenario.expect.verdict}\n`);
    process.stderr.write(`reproduce: ${replayCommand(file, seed, store)}\n`);
  }
  if (scenario.workload.some((entry) => entry.kind !== 'call' || entry.waitFor !== undefined)) {
    process.stdout.write(`${workloadLine(run.workload)}\n`);
  }
  process.stdout.write(`${verdictLine(seed, scenario.name, result)}\n`);
  return exitCodeFor(result.verdict, scenario.expect.verdict);
}

/**
 * A `--progress` callback: prints a line to stderr when {@link PROGRESS_SECONDS} of wall time have
 * passed since the last, with the rates over that interval. Wall time is read here, in the CLI,
 * never inside the run.
 */
function progressPrinter(): (progress: RunProgress) => void {
  let last = { wallMs: Date.now(), steps: 0, simTimeMs: 0 };
  return (p) => {
    const wallMs = Date.now();
    const seconds = (wallMs - last.wallMs) / 1000;
    if (seconds < PROGRESS_SECONDS) return;
    const stepsPerSecond = (p.steps - last.steps) / seconds;
    const speed = (p.simTimeMs - last.simTimeMs) / 1000 / seconds;
    const rssMb = process.memoryUsage.rss() / 2 ** 20;
    process.stderr.write(
      `progress: sim ${formatSimTime(p.simTimeMs)}  steps ${p.steps.toLocaleString('en-US')} ` +
        `(${Math.round(stepsPerSecond).toLocaleString('en-US')}/s, ${speed.toFixed(2)}x real time)  ` +
        `not settled ${p.unsettled.toLocaleString('en-US')}  generated calls ${p.generated.toLocaleString('en-US')}  ` +
        `rss ${Math.round(rssMb).toLocaleString('en-US')} MB\n`,
    );
    last = { wallMs, steps: p.steps, simTimeMs: p.simTimeMs };
  };
}

/** Simulated time as `1h02m03s`. */
function formatSimTime(ms: number): string {
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n: number): string => String(n).padStart(2, '0');
  return h > 0 ? `${h}h${two(m)}m${two(s)}s` : `${m}m${two(s)}s`;
}

/** The `--check` option: incremental (default) or full. */
export function checkOption(command: string, value: string | undefined): CheckMode {
  if (value === undefined) return 'incremental';
  if (!(CHECK_MODES as readonly string[]).includes(value))
    throw new UsageError(
      `cloudbed ${command}: --check must be one of ${CHECK_MODES.join(', ')}, got '${value}'`,
    );
  return value as CheckMode;
}
