/** `cloudbed check-determinism`: runs each seed twice and reports the first divergent trace entry. */
import { intOption } from './args.ts';
import { replayCommand, scenarioArgs, seedOption, storeOption } from './scenario-file.ts';
import { runScenario } from '../sim/run-scenario.ts';
import { clip, findDivergence } from '../sim/determinism.ts';

export const CHECK_DETERMINISM_HELP = `Usage: cloudbed check-determinism <scenario.yaml> [--seeds N] [--seed S] [--store memory|pgmem]

Runs seeds S, S+1, …, S+N-1 of the scenario twice each and compares the traces entry by entry.
Any difference means nondeterminism outside the ports; the first divergent entry of both runs is
printed, and the exit code is 7.

Options:
  --seeds N      how many seeds (default 10)
  --seed S       the first seed (default: the scenario's seed, else 1)
  --store KIND   memory or pgmem (default: the scenario's, else memory)
  -h, --help     show this help
`;

/** Exit code when a seed gives two different traces. */
export const EXIT_NONDETERMINISTIC = 7;

export async function checkDeterminismCommand(argv: readonly string[]): Promise<number> {
  const { values, file, scenario } = await scenarioArgs('check-determinism', argv, {
    seeds: { type: 'string' },
  });
  const seeds =
    intOption('check-determinism', 'seeds', values.seeds, { min: 1, max: 100_000 }) ?? 10;
  const first = seedOption('check-determinism', values.seed, scenario);
  const store = storeOption('check-determinism', values.store, scenario);
  for (let seed = first; seed < first + seeds; seed++) {
    const a = await runScenario(scenario, { seed, store, keepTrace: true });
    const b = await runScenario(scenario, { seed, store, keepTrace: true });
    if (a.result.traceHash !== b.result.traceHash) {
      const divergence = findDivergence(a.trace.lines, b.trace.lines);
      process.stderr.write(
        `seed=${seed} scenario=${scenario.name}: nondeterministic (trace-hash ${a.result.traceHash} vs ${b.result.traceHash})\n`,
      );
      if (divergence !== undefined) {
        process.stderr.write(
          `first divergent entry #${divergence.index}:\n  run 1: ${clip(divergence.first)}\n  run 2: ${clip(divergence.second)}\n`,
        );
      }
      process.stderr.write(`reproduce: ${replayCommand(file, seed, store)}\n`);
      return EXIT_NONDETERMINISTIC;
    }
    process.stdout.write(
      `seed=${seed} scenario=${scenario.name} trace-hash=${a.result.traceHash} steps=${a.result.steps} deterministic\n`,
    );
  }
  process.stdout.write(`${seeds} seeds of ${scenario.name} are deterministic\n`);
  return 0;
}
