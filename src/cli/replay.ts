/** `cloudbed replay`: re-runs a recorded trace and checks that it reproduces exactly. */
import { onePositional, parse } from './args.ts';
import { readTraceFile } from './trace-file.ts';
import { parseScenario } from '../sim/scenario.ts';
import { runScenario } from '../sim/run-scenario.ts';
import { clip, findDivergence } from '../sim/determinism.ts';
import { verdictLine } from './run.ts';
import { exitCodeFor } from '../sim/verdict.ts';

export const REPLAY_HELP = `Usage: cloudbed replay <trace.jsonl>

Re-runs the scenario, seed and store recorded in a trace file written by 'cloudbed run --trace'
and checks that the new run has the same trace-hash. On a mismatch it prints the first divergent
trace entry, recorded and replayed, and exits with code 6.

Options:
  -h, --help   show this help
`;

/** Exit code when a replay does not reproduce its trace. */
export const EXIT_REPLAY_MISMATCH = 6;

export async function replayCommand(argv: readonly string[]): Promise<number> {
  const { positionals } = parse('replay', argv, {});
  const path = onePositional('replay', positionals, 'trace file');
  const recorded = await readTraceFile(path);
  const { header } = recorded;
  const scenario = parseScenario(header.scenarioText, `${path} (embedded ${header.scenarioFile})`);
  const run = await runScenario(scenario, {
    seed: header.seed,
    store: header.store,
    keepTrace: true,
  });
  process.stdout.write(`${verdictLine(header.seed, scenario.name, run.result)}\n`);
  if (run.result.traceHash !== recorded.end.traceHash) {
    const divergence = findDivergence(recorded.lines, run.trace.lines);
    process.stderr.write(
      `replay diverged: recorded trace-hash=${recorded.end.traceHash}, replayed trace-hash=${run.result.traceHash}\n`,
    );
    if (divergence !== undefined) {
      process.stderr.write(
        `first divergent entry #${divergence.index}:\n  recorded: ${clip(divergence.first)}\n  replayed: ${clip(divergence.second)}\n`,
      );
    }
    return EXIT_REPLAY_MISMATCH;
  }
  process.stderr.write(
    `replay matches: ${recorded.lines.length} entries, trace-hash=${run.result.traceHash}\n`,
  );
  return exitCodeFor(run.result.verdict, scenario.expect.verdict);
}
