/**
 * The `cloudbed` command: wiring only. Parses arguments, reads files, calls into src/sim (and, for
 * `serve`, src/adapters), prints results. Bad input is one line on stderr and exit code 2.
 */
import { ScenarioError } from '../sim/scenario.ts';
import { closest, UsageError } from './args.ts';
import { readFile } from 'node:fs/promises';
import { runCommand, RUN_HELP } from './run.ts';
import { replayCommand, REPLAY_HELP } from './replay.ts';
import { checkDeterminismCommand, CHECK_DETERMINISM_HELP } from './check-determinism.ts';
import { fuzzCommand, FUZZ_HELP } from './fuzz.ts';
import { TraceFileError } from './trace-file.ts';
import { serveCommand, SERVE_HELP } from './serve.ts';
import { stagingCommand, STAGING_HELP } from './staging.ts';
import { processCommand, PROCESS_HELP } from './process.ts';
import { chaosCommand, CHAOS_HELP } from './chaos.ts';
import { EXIT_BAD_INPUT } from '../sim/verdict.ts';

const HELP = `cloudbed — an event-sourced cloud control plane and its deterministic test bed

Usage: cloudbed <command> [options]

Commands:
  run <scenario.yaml>                 run a scenario in the simulator and print its verdict
  replay <trace.jsonl>                re-run a recorded trace and check it reproduces exactly
  check-determinism <scenario.yaml>   run seeds twice each and report the first divergence
  fuzz [--runs N] [--swarm]           run many random scenarios; shrink the first failure to a file
       [--workers N] [--shard K/N]    … in N processes (default: one per core), or one shard of them
  fuzz merge REPORT.json...           combine the --report files of a campaign's shards
  serve [--port N]                    serve the API over HTTP with every component embedded
  staging up|down|status [--config F] run the control plane as OS processes on real services
  process <role> --config F           run one control-plane process against real services
  chaos <experiment.yaml> [--config F] inject faults into staging and judge it with the checkers

Run 'cloudbed <command> --help' for a command's options.

Exit codes: 0 ok (or the verdict the scenario expects), 2 bad input, 3 correctness,
4 liveness, 5 crash, 1 a run ended ok where the scenario expected a failure (staging and chaos:
a failure), 6 a replay that does not reproduce its trace, 7 a nondeterministic scenario,
8 a fuzz worker that failed.

cloudbed --version prints the version.
`;

interface Command {
  readonly help: string;
  readonly run: (argv: readonly string[]) => Promise<number | undefined>;
}

const COMMANDS: Readonly<Record<string, Command>> = {
  run: { help: RUN_HELP, run: runCommand },
  replay: { help: REPLAY_HELP, run: replayCommand },
  'check-determinism': { help: CHECK_DETERMINISM_HELP, run: checkDeterminismCommand },
  fuzz: { help: FUZZ_HELP, run: fuzzCommand },
  serve: { help: SERVE_HELP, run: serveCommand },
  staging: { help: STAGING_HELP, run: stagingCommand },
  process: { help: PROCESS_HELP, run: processCommand },
  chaos: { help: CHAOS_HELP, run: chaosCommand },
};

/** The version in package.json. */
async function version(): Promise<string> {
  const text = await readFile(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

/** Runs the command line `argv` (without `node` and the script). Resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number | undefined> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP);
    return name === undefined ? EXIT_BAD_INPUT : 0;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(`cloudbed ${await version()}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    const guess = closest(name, Object.keys(COMMANDS));
    process.stderr.write(
      `cloudbed: unknown command '${name.slice(0, 40)}'${guess === null ? '' : ` (did you mean '${guess}'?)`}; commands: ${Object.keys(COMMANDS).join(', ')}\n`,
    );
    return EXIT_BAD_INPUT;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.help);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (
      error instanceof UsageError ||
      error instanceof ScenarioError ||
      error instanceof TraceFileError
    ) {
      process.stderr.write(`${error.message}\n`);
      return EXIT_BAD_INPUT;
    }
    throw error;
  }
}
