/** `cloudbed chaos EXPERIMENT.yaml`: runs a chaos experiment against a staging deployment. */
import { readFile } from 'node:fs/promises';
import { parse, UsageError } from './args.ts';
import { ExperimentError, parseExperiment } from '../chaos/experiment.ts';
import { ChaosSetupError, chaosLine, runExperiment } from '../chaos/runner.ts';
import { stagingConfigOption } from './staging.ts';
import { processSpecs } from '../staging/supervisor.ts';
import { EXIT_BAD_INPUT, exitCodeFor } from '../sim/verdict.ts';

export const CHAOS_HELP = `Usage: cloudbed chaos <experiment.yaml> [--config FILE] [--seed N] [--runs-dir DIR]

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

Options:
  --config FILE    the staging file (default staging/staging.yaml)
  --seed N         root seed of the storm and the workload's generators (default: the file's, else 1)
  --runs-dir DIR   where the run directory is made
  -h, --help       show this help

Exit codes: 0 the expected verdict, 2 bad input, 3 correctness, 4 liveness, 5 crash (the runner
failed or was interrupted), 1 the deployment could not be brought up.
`;

const EXIT_SETUP = 1;

export async function chaosCommand(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parse('chaos', argv, {
    config: { type: 'string' },
    seed: { type: 'string' },
    'runs-dir': { type: 'string' },
  });
  if (positionals.length !== 1)
    throw new UsageError(
      'cloudbed chaos: expected one experiment file (see cloudbed chaos --help)',
    );
  const file = positionals[0] as string;
  let seed: number | undefined;
  if (values.seed !== undefined) {
    seed = Number(values.seed);
    if (!/^\d+$/.test(values.seed) || !Number.isSafeInteger(seed))
      throw new UsageError(
        `cloudbed chaos: --seed must be a non-negative integer, got '${values.seed}'`,
      );
  }
  const config = await stagingConfigOption(values.config);
  if (config === null) return EXIT_BAD_INPUT;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cloudbed chaos: cannot read ${file}: ${(error as Error).message}`);
  }
  let experiment;
  try {
    experiment = parseExperiment(
      text,
      file,
      {
        processes: processSpecs(config).map((s) => s.name),
        hosts: config.hosts.map((h) => h.name),
      },
      seed,
    );
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
      report: {
        out: (line) => process.stdout.write(`${line}\n`),
        err: (line) => process.stderr.write(`${line}\n`),
      },
      signal: stop.signal,
    });
    if (result.verdict !== experiment.expect)
      process.stderr.write(`${result.verdict}: ${result.reason}\n`);
    process.stdout.write(`${chaosLine(result)}\n`);
    return exitCodeFor(result.verdict, experiment.expect);
  } catch (error) {
    if (error instanceof ChaosSetupError) {
      process.stderr.write(`cloudbed chaos: ${error.message}\n`);
      return EXIT_SETUP;
    }
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
