/**
 * Shrinking scenario data that did not come from an arbitrary (a scenario file used as the base of
 * a fuzz run): delta debugging over the workload steps and the scheduled faults, then dropping the
 * per-operation fault blocks one by one, keeping every change after which the run still fails the same way. Generated cases
 * are shrunk by fast-check itself; this covers files, where there is no generator to shrink.
 *
 * A candidate that is not a valid scenario any more (a step removed whose saved id a later step
 * uses) is simply not taken; it costs no run.
 */
import { RATE_BLOCKS } from './cases.ts';

/** Scenario data as read from YAML: only `workload` and `faults` are touched. */
export type RawScenario = Record<string, unknown>;

/**
 * Runs a candidate: `fails` when it still fails the same way, `passes` otherwise, `invalid` when it
 * is not a valid scenario (nothing ran).
 */
export type StillFails = (candidate: RawScenario) => Promise<'fails' | 'passes' | 'invalid'>;

/** Options of {@link shrinkScenarioData}. */
export interface ShrinkDataOptions {
  /** Most candidate runs. Default 200. */
  readonly maxRuns?: number;
}

/** The result: the smallest failing data found and the runs spent. */
export interface ShrinkDataResult {
  readonly data: RawScenario;
  readonly runs: number;
}

function listAt(data: RawScenario, path: readonly string[]): unknown[] {
  let node: unknown = data;
  for (const key of path) node = (node as Record<string, unknown> | undefined)?.[key];
  return Array.isArray(node) ? node : [];
}

function withList(data: RawScenario, path: readonly string[], list: unknown[]): RawScenario {
  const [head, ...rest] = path;
  if (head === undefined) return data;
  if (rest.length === 0) return { ...data, [head]: list };
  const child = (data[head] ?? {}) as RawScenario;
  return { ...data, [head]: withList(child, rest, list) };
}

/**
 * Delta debugging (ddmin without complements): remove chunks of a list, halving the chunk size
 * down to single items, keeping every removal after which the run still fails.
 */
async function shrinkList(
  data: RawScenario,
  path: readonly string[],
  tryCandidate: (candidate: RawScenario) => Promise<boolean>,
  budget: { left: number },
): Promise<RawScenario> {
  let current = data;
  let chunk = Math.ceil(listAt(current, path).length / 2);
  while (chunk >= 1 && budget.left > 0 && listAt(current, path).length > 0) {
    let removed = false;
    let start = 0;
    while (start < listAt(current, path).length && budget.left > 0) {
      const list = listAt(current, path);
      const candidate = withList(current, path, [
        ...list.slice(0, start),
        ...list.slice(start + chunk),
      ]);
      if (await tryCandidate(candidate)) {
        current = candidate;
        removed = true;
      } else {
        start += chunk;
      }
    }
    // At single items, repeat while something went: a removal can make an earlier item removable.
    if (chunk === 1 && !removed) break;
    chunk = Math.ceil(chunk / 2);
  }
  return current;
}

/** Shrinks `data`, which fails, to a smaller scenario that fails the same way. */
export async function shrinkScenarioData(
  data: RawScenario,
  stillFails: StillFails,
  options: ShrinkDataOptions = {},
): Promise<ShrinkDataResult> {
  const maxRuns = options.maxRuns ?? 200;
  const budget = { left: maxRuns };
  const tryCandidate = async (candidate: RawScenario): Promise<boolean> => {
    const outcome = await stillFails(candidate);
    if (outcome !== 'invalid') budget.left--;
    return outcome === 'fails';
  };
  let current = data;
  // Two rounds: removing faults can make workload steps removable and the other way round.
  for (let round = 0; round < 2 && budget.left > 0; round++) {
    const before = JSON.stringify(current);
    current = await shrinkList(current, ['faults', 'schedule'], tryCandidate, budget);
    current = await shrinkList(current, ['workload'], tryCandidate, budget);
    for (const name of RATE_BLOCKS) {
      const faults = current['faults'] as RawScenario | undefined;
      if (faults?.[name] === undefined || budget.left <= 0) continue;
      const rest = { ...faults };
      delete rest[name];
      const candidate = { ...current, faults: rest };
      if (await tryCandidate(candidate)) current = candidate;
    }
    if (JSON.stringify(current) === before) break;
  }
  return { data: current, runs: maxRuns - budget.left };
}
