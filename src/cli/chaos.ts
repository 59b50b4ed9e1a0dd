/** `cloudbed chaos EXPERIMENT.yaml`: runs a chaos experiment against a staging deployment. */
import { writeFile } from 'node:fs/promises';
import { intOption, parse, UsageError } from './args.ts';
import { ExperimentError, parseExperiment, targetsOf } from '../chaos/experiment.ts';
import { ChaosSetupError, chaosLine, runExperiment } from '../chaos/runner.ts';
import { compareRun, exportRun, formatComparison, RunDirError } from '../chaos/export.ts';
import { stagingConfigOption } from './staging.ts';
import { EXIT_FAILED } from '../staging/deployment.ts';
import { readDataFile } from '../lib/read-data-file.ts';
import { EXIT_BAD_INPUT, exitCodeFor } from '../sim/verdict.ts';

export const CHAOS_HELP = `Usage: cloudbed chaos <experiment.yaml> [--config FILE] [--seed N] [--runs-dir DIR]
                      [--mutant NAME]
       cloudbed chaos export <run-dir> [-o FILE]
       cloudbed chaos compare <run-dir>

Runs a chaos experiment against the staging deployment of the staging file (brought up, without
its supervisor, when it is not running): the experiment's workload goes to the real API at its
wall-clock offsets, its faults strike the deployment's own processes and hosts, and the
simulator's checkers judge the real world — the event log tailed from PostgreSQL, the domains and
datasets polled from libvirt and ZFS, the API's answers. After the heal every fault is undone and
the deployment must converge within budgets.settleWithin. Ends with one line:
  experiment=<name> seed=<n> verdict=<v> faults=<n> kills=<n> pauses=<n> host-crashes=<n>
  requests=<n> unanswered=<n> 5xx=<n> 503=<n> stale-refused=<n> sends-withheld=<n>
  converged-in=<ms> run-dir=<dir>
stale-refused and sends-withheld count, from the main loops' logs, fenced writes the store refused
as stale and commands a main loop withheld because its lock was gone: fencing at work.

Experiments (see experiments/): a scenario's workload, faults (schedule: crash, pause,
pause-holder, host-crash; storm: crashes or pauses drawn from the seed over a window), healAt,
budgets and expect, as in scenario files. A call whose connection is refused (the API is down) is
tried again for up to 30 s; one that may have reached the API and got no answer counts as
unanswered. Ctrl-C stops the run and undoes every fault first.

The run directory (default under <stateDir>/chaos/) keeps experiment.yaml, faults.jsonl (as
injected, with times), workload.jsonl (every call and answer), events.jsonl (the event log),
inventories.jsonl (domains and datasets every 10 s), the process logs and result.json.

'chaos export' writes a run as a scenario (stdout, or -o FILE): the staging file's hosts as the
topology (compute-1…, storage-1… in file order), the calls as they were sent (ids the run created
as saved names), the faults as they struck, the same heal and budget. 'chaos compare' runs that
scenario in the simulator and prints, per VM, volume and snapshot (matched by name), the real and
simulated final state, host (up to a renaming of hosts) and attempts; exit 0 when the end states
agree, 1 when they differ.

Options:
  --config FILE    the staging file (default staging/staging.yaml)
  --seed N         root seed of the storm and the workload's generators (default: the file's, else 1)
  --runs-dir DIR   where the run directory is made
  --mutant NAME    run every process as a known-broken variant (no-store-fence, no-fence) for the
                   experiment, and the deployment's own code again after it; the run must then
                   end correctness ("caught"). The staging file must say 'mutants: { allow: true }'
  -o FILE          (export) write the scenario to FILE instead of stdout
  -h, --help       show this help

Exit codes: 0 the expected verdict, 2 bad input, 3 correctness, 4 liveness, 5 crash (the runner
failed or was interrupted), 1 the deployment could not be brought up.
`;

export async function chaosCommand(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'export' || argv[0] === 'compare') return runDirCommand(argv[0], argv.slice(1));
  const { values, positionals } = parse('chaos', argv, {
    config: { type: 'string' },
    seed: { type: 'string' },
    'runs-dir': { type: 'string' },
    mutant: { type: 'string' },
  });
  if (positionals.length !== 1)
    throw new UsageError(
      'cloudbed chaos: expected one experiment file (see cloudbed chaos --help)',
    );
  const file = positionals[0] as string;
  const seed = intOption('chaos', 'seed', values.seed);
  const config = await stagingConfigOption(values.config);
  if (config === null) return EXIT_BAD_INPUT;
  let text: string;
  let experiment;
  try {
    text = await readDataFile(file, { what: 'an experiment file', ErrorClass: ExperimentError });
    experiment = parseExperiment(text, file, targetsOf(config), seed);
  } catch (error) {
    if (error instanceof ExperimentError) {
      process.stderr.write(`${error.message}\n`);
      return EXIT_BAD_INPUT;
    }
    throw error;
  }
  const stop = new AbortController();
  const onSignal = (): void => {
    process.stderr.write('chaos: interrupted; undoing every fault…\n');
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await runExperiment({
      config,
      experiment,
      experimentText: text,
      ...(values['runs-dir'] === undefined ? {} : { runsDir: values['runs-dir'] }),
      ...(values.mutant === undefined ? {} : { mutant: values.mutant }),
      report: {
        out: (line) => process.stdout.write(`${line}\n`),
        err: (line) => process.stderr.write(`${line}\n`),
      },
      signal: stop.signal,
    });
    // Against a mutant, the experiment must find the bug.
    const expected = values.mutant === undefined ? experiment.expect : 'correctness';
    if (result.verdict !== expected) process.stderr.write(`${result.verdict}: ${result.reason}\n`);
    if (values.mutant !== undefined)
      process.stdout.write(
        result.verdict === 'correctness'
          ? `mutant ${values.mutant} caught: ${result.reason}\n`
          : `mutant ${values.mutant} NOT caught (verdict ${result.verdict})\n`,
      );
    process.stdout.write(`${chaosLine(result)}\n`);
    return exitCodeFor(result.verdict, expected);
  } catch (error) {
    if (error instanceof ChaosSetupError) {
      process.stderr.write(`cloudbed chaos: ${error.message}\n`);
      return EXIT_FAILED;
    }
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `chaos export RUN_DIR [-o FILE]` and `chaos compare RUN_DIR`. */
async function runDirCommand(sub: 'export' | 'compare', argv: readonly string[]): Promise<number> {
  const { values, positionals } = parse(`chaos ${sub}`, argv, {
    ...(sub === 'export' ? { output: { type: 'string', short: 'o' } } : {}),
  });
  if (positionals.length !== 1)
    throw new UsageError(`cloudbed chaos ${sub}: expected one run directory`);
  const runDir = positionals[0] as string;
  try {
    if (sub === 'export') {
      const text = exportRun(runDir);
      const output = (values as { output?: string }).output;
      if (output === undefined) process.stdout.write(text);
      else {
        await writeFile(output, text);
        process.stdout.write(`wrote ${output}; run it with: npx cloudbed run ${output}\n`);
      }
      return 0;
    }
    const comparison = await compareRun(runDir);
    for (const line of formatComparison(comparison)) process.stdout.write(`${line}\n`);
    return comparison.same ? 0 : 1;
  } catch (error) {
    if (error instanceof RunDirError || error instanceof ExperimentError) {
      process.stderr.write(`cloudbed chaos ${sub}: ${error.message}\n`);
      return EXIT_BAD_INPUT;
    }
    throw error;
  }
}
