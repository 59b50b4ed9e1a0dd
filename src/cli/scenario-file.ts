/** Reading scenario files from disk for the CLI, with one-line errors naming the file. */
import { readDataFile } from '../lib/read-data-file.ts';
import {
  parseScenario,
  ScenarioError,
  STORES,
  type Scenario,
  type StoreKind,
} from '../sim/scenario.ts';
import { UsageError } from './args.ts';

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
