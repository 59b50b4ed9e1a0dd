/** Reading scenario files from disk for the CLI, with one-line errors naming the file. */
import { readFile } from 'node:fs/promises';
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

export async function loadScenario(file: string): Promise<LoadedScenario> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const problem =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory, not a scenario file'
          : `cannot read (${code ?? String(error)})`;
    throw new ScenarioError(file, undefined, undefined, problem);
  }
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
