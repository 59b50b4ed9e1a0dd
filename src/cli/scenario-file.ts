/**
 * Scenario files for the commands that run them: reading one from disk (one-line errors naming the
 * file) and the arguments those commands share — the file, `--seed` and `--store`.
 */
import { readDataFile } from '../lib/read-data-file.ts';
import {
  parseScenario,
  ScenarioError,
  STORES,
  type Scenario,
  type StoreKind,
} from '../sim/scenario.ts';
import {
  intOption,
  onePositional,
  parse,
  UsageError,
  type OptionSpec,
  type ParsedOptions,
} from './args.ts';

export interface LoadedScenario {
  readonly file: string;
  readonly text: string;
  readonly scenario: Scenario;
}

/** Reads and validates the scenario file at `file`; errors are {@link ScenarioError}s. */
export async function loadScenario(file: string): Promise<LoadedScenario> {
  const text = await readDataFile(file, { what: 'a scenario file', ErrorClass: ScenarioError });
  return { file, text, scenario: parseScenario(text, file) };
}

/** A scenario command's arguments: its options, and the one scenario file, read and validated. */
export interface ScenarioArgs<O extends OptionSpec> extends LoadedScenario {
  /** `--seed`, `--store` and the command's own options, unchecked. */
  readonly values: ParsedOptions<O & typeof SCENARIO_OPTIONS>;
}

/** The options of every command that runs one scenario file. */
const SCENARIO_OPTIONS = {
  seed: { type: 'string' },
  store: { type: 'string' },
} as const satisfies OptionSpec;

/**
 * Parses the arguments of a command that runs one scenario file (`<scenario.yaml> [--seed N]
 * [--store KIND]` and the command's `options`), then loads the file. Usage errors name `command`.
 */
export async function scenarioArgs<O extends OptionSpec>(
  command: string,
  argv: readonly string[],
  options: O,
): Promise<ScenarioArgs<O>> {
  const { values, positionals } = parse(command, argv, { ...SCENARIO_OPTIONS, ...options });
  const file = onePositional(command, positionals, 'scenario file');
  return { values, ...(await loadScenario(file)) };
}

/** The `--seed` option: defaults to the scenario's seed, then 1. */
export function seedOption(command: string, value: string | undefined, scenario: Scenario): number {
  return intOption(command, 'seed', value) ?? scenario.seed ?? 1;
}

/** The `--store` option: memory or pgmem; defaults to the scenario's store, then memory. */
export function storeOption(
  command: string,
  value: string | undefined,
  scenario: Scenario,
): StoreKind {
  if (value === undefined) return scenario.store ?? 'memory';
  if (!(STORES as readonly string[]).includes(value)) {
    throw new UsageError(
      `cloudbed ${command}: --store must be one of ${STORES.join(', ')}, got '${value}'`,
    );
  }
  return value as StoreKind;
}

/** The shell command that re-runs a seed of a scenario exactly. */
export function replayCommand(file: string, seed: number, store: StoreKind): string {
  return `npx cloudbed run ${file} --seed ${seed} --store ${store}`;
}
