/**
 * What a fuzz session produces, as plain data: one record per search run, the shrunk first failure,
 * and the totals folded from them. Apart from the engine (fuzz.ts) so that the code that only
 * combines results — the parent of worker processes, the merge of shard reports — loads neither the
 * simulator nor fast-check, and so that totals are computed by one function wherever the runs
 * happened: a report folded from the same records is the same report.
 */
import type { StoreKind } from '../sim/scenario.ts';
import type { RunResult } from '../sim/simulation.ts';
import { VERDICTS, type Verdict } from '../sim/verdict.ts';

/** How big a scenario is: workload steps, scheduled faults and rate blocks (what shrinking minimises). */
export interface ScenarioSize {
  readonly steps: number;
  readonly faults: number;
  /** Per-operation fault blocks present (`bus`, `adapters`, `database`, `locks`, `swarm`). */
  readonly rates: readonly string[];
}

/** "3 workload steps and 1 fault (+ bus, database faults)". */
export function describeSize(size: ScenarioSize): string {
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  const rates = size.rates.length === 0 ? '' : ` (+ ${size.rates.join(', ')} faults)`;
  return `${plural(size.steps, 'workload step')} and ${plural(size.faults, 'fault')}${rates}`;
}

/** One line describing a failure's shrinking: "shrunk from … to … in N runs". */
export function describeShrink(failure: FuzzFailure): string {
  return `shrunk from ${describeSize(failure.original.size)} to ${describeSize(failure.size)} in ${failure.shrinkRuns} runs`;
}

/**
 * One search run of a campaign. Its case is a function of the campaign and `run` alone, so the
 * record is the same whichever process, worker or shard ran it.
 */
export interface RunRecord {
  /** 1-based number of the run in its campaign (fast-check's path of its case is `run - 1`). */
  readonly run: number;
  /** The simulation seed the run used. */
  readonly seed: number;
  readonly verdict: Verdict;
  /** The verdict the scenario expects (`ok` for generated cases). */
  readonly expected: Verdict;
  /** Why, in one line, for anything but a plain `ok`; empty otherwise. */
  readonly reason: string;
  readonly steps: number;
  readonly simTimeMs: number;
  readonly traceHash: string;
}

/** Whether a run did not end with the verdict its scenario expects. */
export function isFailing(record: RunRecord): boolean {
  return record.verdict !== record.expected;
}

/** The simulator's result of a recorded run. */
export function resultOf(record: RunRecord): RunResult {
  return {
    verdict: record.verdict,
    reason: record.reason,
    steps: record.steps,
    simTimeMs: record.simTimeMs,
    traceHash: record.traceHash,
  };
}

/** A failure, shrunk. */
export interface FuzzFailure {
  /** The search run that failed first (1-based run number in its campaign). */
  readonly runIndex: number;
  /** Simulation seed of the shrunk scenario (also its `seed` field). */
  readonly seed: number;
  readonly store: StoreKind;
  readonly expected: Verdict;
  /** Outcome of the shrunk scenario. */
  readonly result: RunResult;
  /** Outcome of the first failing run, before shrinking. */
  readonly original: { readonly result: RunResult; readonly size: ScenarioSize };
  /** The shrunk scenario as data (src/fuzz/shrink.ts `RawScenario`): write it as YAML and `cloudbed run` replays it. */
  readonly data: Record<string, unknown>;
  readonly size: ScenarioSize;
  /** Runs spent shrinking. */
  readonly shrinkRuns: number;
  /**
   * fast-check's seed and path of its counterexample (generated cases and drawn fault plans):
   * the case as fast-check left it, before the final delta debugging.
   */
  readonly fastCheck: { readonly seed: number; readonly path: string } | undefined;
}

/** A shrunk failure with the work shrinking it took. */
export interface ShrinkOutcome {
  readonly failure: FuzzFailure;
  /** Steps and virtual time over every shrink run. */
  readonly steps: number;
  readonly simTimeMs: number;
}

/** Totals of a fuzz session. */
export interface FuzzReport {
  /** Search runs done (the failing one included). */
  readonly runs: number;
  /** Verdicts of the search runs. */
  readonly verdicts: Readonly<Record<Verdict, number>>;
  /** Shrink runs done. */
  readonly shrinkRuns: number;
  /** Steps and virtual time over every run, search and shrink. */
  readonly steps: number;
  readonly simTimeMs: number;
  /** The part of `steps` and `simTimeMs` spent shrinking (0 without a failure). */
  readonly shrinkSteps: number;
  readonly shrinkSimTimeMs: number;
  readonly failure: FuzzFailure | undefined;
  /** Every search run, in run order. */
  readonly results: readonly RunRecord[];
}

/** Zero of every verdict. */
export function noVerdicts(): Record<Verdict, number> {
  return Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;
}

/**
 * The report of search runs `results` (sorted here by run number) and, when one failed, its shrink.
 */
export function summarize(
  results: readonly RunRecord[],
  shrink: ShrinkOutcome | undefined,
): FuzzReport {
  const sorted = [...results].sort((a, b) => a.run - b.run);
  const verdicts = noVerdicts();
  let steps = 0;
  let simTimeMs = 0;
  for (const record of sorted) {
    verdicts[record.verdict]++;
    steps += record.steps;
    simTimeMs += record.simTimeMs;
  }
  return {
    runs: sorted.length,
    verdicts,
    shrinkRuns: shrink?.failure.shrinkRuns ?? 0,
    steps: steps + (shrink?.steps ?? 0),
    simTimeMs: simTimeMs + (shrink?.simTimeMs ?? 0),
    shrinkSteps: shrink?.steps ?? 0,
    shrinkSimTimeMs: shrink?.simTimeMs ?? 0,
    failure: shrink?.failure,
    results: sorted,
  };
}
