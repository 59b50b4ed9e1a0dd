/**
 * The fuzzer: runs many scenarios — random ones (src/fuzz/cases.ts), or one scenario file
 * under many seeds, optionally with random fault plans — and at the first run that does not end
 * with its expected verdict, stops and shrinks it to a small scenario that fails the same way.
 * The result carries the shrunk scenario as data, ready to be written as a regression file that
 * `cloudbed run` replays with the same trace hash.
 *
 * Generated cases shrink with fast-check (over the case arbitrary: fewer calls, fewer faults,
 * smaller topology, smaller numbers), then by delta debugging over the compiled scenario
 * (src/fuzz/shrink.ts), which removes single calls and faults while every other time stays
 * put; scenario files shrink by delta debugging alone (their faults first by fast-check when
 * drawn). fast-check's seed and path reproduce the case as fast-check left it. "Fails the
 * same way" means the same verdict as the first failure, so shrinking cannot slide from one bug
 * into another of a different kind. Shrinking has a budget of runs; past it the smallest failure so
 * far is the result.
 *
 * Nothing here reads the wall clock or the file system: progress goes to `onRun`, and the caller
 * (the CLI, a test) measures time and writes files.
 */
import fc from 'fast-check';
import { assert } from '../lib/assert.ts';
import { runScenario } from '../sim/run-scenario.ts';
import { toScenario, type StoreKind } from '../sim/scenario.ts';
import type { RunResult } from '../sim/simulation.ts';
import { VERDICTS, type Verdict } from '../sim/verdict.ts';
import {
  describeSize,
  fuzzCaseArb,
  scenarioYaml,
  sizeOf,
  toScenarioData,
  type FuzzCaseOptions,
  type ScenarioSize,
} from './cases.ts';
import { compileFaults, faultPlanArb, type FaultPlanOptions } from './fault-plans.ts';
import { shrinkScenarioData, type RawScenario } from './shrink.ts';
import { SEED_MAX } from '../lib/prng.ts';

/** One finished run, as reported to {@link FuzzOptions.onRun}. */
export interface FuzzRunInfo {
  /** `search` until the first failure, then `shrink`. */
  readonly phase: 'search' | 'shrink';
  /** 1-based number of the run within its phase. */
  readonly index: number;
  readonly seed: number;
  readonly result: RunResult;
  readonly size: ScenarioSize;
}

/** Options of {@link fuzz}. */
export interface FuzzOptions {
  /** How many runs to search with (>= 1). */
  readonly runs: number;
  /**
   * The root seed: fast-check's seed for generated cases and for fault plans drawn on a base
   * scenario; the first simulation seed when a base scenario runs without drawn faults.
   */
  readonly seed: number;
  /** Swarm testing: each case draws which fault kinds are on. Default false. */
  readonly swarm?: boolean;
  /** Event store of every run. Default `memory`. */
  readonly store?: StoreKind;
  /**
   * A scenario file's data to run instead of generated cases: with `swarm`, its workload and
   * topology under drawn fault plans (its own faults are replaced, and its steps' `expectStatus`
   * dropped: under faults a call may go unanswered or get 503); without, as it is under seeds
   * `seed`, `seed + 1`, ….
   */
  readonly base?: RawScenario;
  /** Sizes of generated cases. */
  readonly generator?: FuzzCaseOptions;
  /** Most runs spent shrinking a failure. Default 300. */
  readonly shrinkRuns?: number;
  /** Name prefix of generated scenarios. Default `fuzz`. */
  readonly namePrefix?: string;
  /** Called after every run (search and shrink), for progress reports. */
  readonly onRun?: (info: FuzzRunInfo) => void;
}

/** A failure, shrunk. */
export interface FuzzFailure {
  /** The search run that failed first (1-based). */
  readonly runIndex: number;
  /** Simulation seed of the shrunk scenario (also its `seed` field). */
  readonly seed: number;
  readonly store: StoreKind;
  readonly expected: Verdict;
  /** Outcome of the shrunk scenario. */
  readonly result: RunResult;
  /** Outcome of the first failing run, before shrinking. */
  readonly original: { readonly result: RunResult; readonly size: ScenarioSize };
  /** The shrunk scenario as data: write it as YAML and `cloudbed run` replays it. */
  readonly data: RawScenario;
  readonly size: ScenarioSize;
  /** Runs spent shrinking. */
  readonly shrinkRuns: number;
  /**
   * fast-check's seed and path of its counterexample (generated cases and drawn fault plans):
   * the case as fast-check left it, before the final delta debugging.
   */
  readonly fastCheck: { readonly seed: number; readonly path: string } | undefined;
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
  readonly failure: FuzzFailure | undefined;
}

/** What one run of scenario data gave; `invalid` when the data is not a valid scenario. */
export type DataRun =
  | { readonly kind: 'ran'; readonly result: RunResult; readonly expected: Verdict }
  | { readonly kind: 'invalid'; readonly problem: string };

/** Validates and runs scenario data with `seed`. An exception from the runner counts as `crash`. */
export async function runData(
  data: unknown,
  options: { readonly seed: number; readonly store: StoreKind },
): Promise<DataRun> {
  let scenario;
  try {
    scenario = toScenario(data);
  } catch (error) {
    return { kind: 'invalid', problem: error instanceof Error ? error.message : String(error) };
  }
  try {
    const run = await runScenario(scenario, options);
    return { kind: 'ran', result: run.result, expected: scenario.expect.verdict };
  } catch (error) {
    return {
      kind: 'ran',
      expected: scenario.expect.verdict,
      result: {
        verdict: 'crash',
        reason: `the runner threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
        steps: 0,
        simTimeMs: 0,
        traceHash: '',
      },
    };
  }
}

/** Bookkeeping shared by every mode. */
class Session {
  readonly verdicts: Record<Verdict, number> = Object.fromEntries(
    VERDICTS.map((v) => [v, 0]),
  ) as Record<Verdict, number>;
  runs = 0;
  shrinkRuns = 0;
  steps = 0;
  simTimeMs = 0;
  constructor(readonly options: FuzzOptions) {}

  get store(): StoreKind {
    return this.options.store ?? 'memory';
  }

  /** Runs `data` with `seed` in `phase`; reports it. Returns undefined for invalid data. */
  async run(
    phase: 'search' | 'shrink',
    data: unknown,
    seed: number,
  ): Promise<{ result: RunResult; expected: Verdict } | undefined> {
    const outcome = await runData(data, { seed, store: this.store });
    if (outcome.kind === 'invalid') return undefined;
    const { result } = outcome;
    if (phase === 'search') {
      this.runs++;
      this.verdicts[result.verdict]++;
    } else {
      this.shrinkRuns++;
    }
    this.steps += result.steps;
    this.simTimeMs += result.simTimeMs;
    this.options.onRun?.({
      phase,
      index: phase === 'search' ? this.runs : this.shrinkRuns,
      seed,
      result,
      size: sizeOf(data),
    });
    return outcome;
  }

  report(failure: FuzzFailure | undefined): FuzzReport {
    return {
      runs: this.runs,
      verdicts: { ...this.verdicts },
      shrinkRuns: this.shrinkRuns,
      steps: this.steps,
      simTimeMs: this.simTimeMs,
      failure,
    };
  }
}

/** Runs a fuzz session; resolves with totals and the shrunk first failure, if any. */
export async function fuzz(options: FuzzOptions): Promise<FuzzReport> {
  assert(Number.isInteger(options.runs) && options.runs >= 1, 'runs must be >= 1');
  assert(
    Number.isInteger(options.seed) && options.seed >= 0 && options.seed <= SEED_MAX,
    'seed must be a valid seed',
  );
  const session = new Session(options);
  if (options.base === undefined) return fuzzGenerated(session);
  if (options.swarm === true) return fuzzBaseWithFaults(session, options.base);
  return fuzzBaseSeeds(session, options.base);
}

/** A candidate under shrinking and what it gave, kept to report the final counterexample. */
interface Failing {
  readonly data: RawScenario;
  readonly seed: number;
  readonly result: RunResult;
  readonly expected: Verdict;
}

/**
 * Runs a fast-check property whose values compile to scenario data, shrinking the first failure
 * with fast-check within the shrink budget.
 */
async function searchWithFastCheck<T>(
  session: Session,
  arbitrary: fc.Arbitrary<T>,
  compile: (value: T, name: string | undefined) => { data: RawScenario; seed: number },
  budget: number,
): Promise<{ first: Failing; last: Failing; path: string } | undefined> {
  let first: Failing | undefined;
  let last: Failing | undefined;
  let failingName: string | undefined;
  const property = fc.asyncProperty(arbitrary, async (value) => {
    if (first === undefined) {
      const { data, seed } = compile(value, undefined);
      const ran = await session.run('search', data, seed);
      assert(ran !== undefined, `a generated scenario must be valid: ${JSON.stringify(data)}`);
      if (ran.result.verdict === ran.expected) return true;
      first = { data, seed, ...ran };
      last = first;
      failingName = typeof data['name'] === 'string' ? data['name'] : undefined;
      return false;
    }
    // Shrinking: past the budget every candidate "passes" without running, which ends it.
    if (session.shrinkRuns >= budget) return true;
    const { data, seed } = compile(value, failingName);
    const ran = await session.run('shrink', data, seed);
    if (ran === undefined || ran.result.verdict !== first.result.verdict) return true;
    last = { data, seed, ...ran };
    return false;
  });
  const details = await fc.check(property, {
    seed: session.options.seed,
    numRuns: session.options.runs,
    endOnFailure: false,
  });
  if (!details.failed || first === undefined || last === undefined) {
    if (details.failed)
      throw details.errorInstance instanceof Error
        ? details.errorInstance
        : new Error(String(details.errorInstance));
    return undefined;
  }
  return { first, last, path: details.counterexamplePath ?? '' };
}

function failureOf(
  session: Session,
  runIndex: number,
  first: Failing,
  last: Failing,
  fastCheck: FuzzFailure['fastCheck'],
): FuzzFailure {
  return {
    runIndex,
    seed: last.seed,
    store: session.store,
    expected: last.expected,
    result: last.result,
    original: { result: first.result, size: sizeOf(first.data) },
    data: last.data,
    size: sizeOf(last.data),
    shrinkRuns: session.shrinkRuns,
    fastCheck,
  };
}

/** Generated cases: topology, workload and faults all drawn, shrunk by fast-check. */
async function fuzzGenerated(session: Session): Promise<FuzzReport> {
  const { options } = session;
  const prefix = options.namePrefix ?? 'fuzz';
  const arbitrary = fuzzCaseArb({ ...options.generator, swarm: options.swarm === true });
  const found = await searchWithFastCheck(
    session,
    arbitrary,
    (value, name) => {
      const data = toScenarioData(
        value,
        name ?? `${prefix}-s${options.seed}-r${session.runs + 1}`,
        options.generator ?? {},
      ) as unknown as RawScenario;
      if (session.store !== 'memory') data['store'] = session.store;
      return { data, seed: value.seed };
    },
    fastCheckShare(session),
  );
  if (found === undefined) return session.report(undefined);
  // Then delta debugging on the compiled scenario: removing a call or a fault there keeps every
  // other time exactly where it was, where removing it from the case re-anchors later faults.
  const runIndex = session.runs;
  const last = await shrinkData(session, found.last);
  return session.report(
    failureOf(session, runIndex, found.first, last, {
      seed: options.seed,
      path: found.path,
    }),
  );
}

/** The part of the shrink budget fast-check gets when delta debugging follows: 60 %. */
function fastCheckShare(session: Session): number {
  return Math.ceil((session.options.shrinkRuns ?? 300) * 0.6);
}

/** The base file's topology and call times, which drawn faults are resolved against. */
function baseFacts(base: RawScenario) {
  const scenario = toScenario(base);
  return {
    topology: {
      computeCount: scenario.topology.compute.count,
      storageCount: scenario.topology.storage.count,
      mainLoops: scenario.topology.mainLoops,
    },
    opTimesMs: scenario.workload.map((step) => step.atMs),
  };
}

/** A scenario file under drawn fault plans; faults shrink by fast-check, then the workload by ddmin. */
async function fuzzBaseWithFaults(session: Session, base: RawScenario): Promise<FuzzReport> {
  const { options } = session;
  const facts = baseFacts(base);
  const faultOptions: FaultPlanOptions = { ...options.generator, swarm: true };
  const arbitrary = fc.record({
    seed: fc.noShrink(fc.integer({ min: 1, max: SEED_MAX })),
    faults: faultPlanArb(faultOptions),
  });
  // Under faults a call may legitimately go unanswered or answer 503: the workload's status
  // expectations are dropped, the checkers and the liveness goal judge the run.
  const workload = Array.isArray(base['workload'])
    ? (base['workload'] as Record<string, unknown>[]).map((step) => {
        const { expectStatus: _dropped, ...rest } = step;
        return rest;
      })
    : base['workload'];
  const found = await searchWithFastCheck(
    session,
    arbitrary,
    (value) => {
      const faults = compileFaults(value.faults, facts.topology, facts.opTimesMs, 0);
      return { data: { ...base, workload, seed: value.seed, faults }, seed: value.seed };
    },
    fastCheckShare(session),
  );
  if (found === undefined) return session.report(undefined);
  const runIndex = session.runs;
  const last = await shrinkData(session, found.last);
  return session.report(
    failureOf(session, runIndex, found.first, last, { seed: options.seed, path: found.path }),
  );
}

/** A scenario file as it is, under seeds `seed`, `seed + 1`, …; shrunk by ddmin. */
async function fuzzBaseSeeds(session: Session, base: RawScenario): Promise<FuzzReport> {
  const { options } = session;
  for (let i = 0; i < options.runs; i++) {
    const seed = Math.min(options.seed + i, SEED_MAX);
    const data = { ...base, seed };
    const ran = await session.run('search', data, seed);
    assert(ran !== undefined, 'the base scenario must be valid');
    if (ran.result.verdict === ran.expected) continue;
    const first: Failing = { data, seed, ...ran };
    const last = await shrinkData(session, first);
    return session.report(failureOf(session, session.runs, first, last, undefined));
  }
  return session.report(undefined);
}

/** Delta-debugs a failing scenario's workload and faults within what is left of the budget. */
async function shrinkData(session: Session, failing: Failing): Promise<Failing> {
  const budget = (session.options.shrinkRuns ?? 300) - session.shrinkRuns;
  if (budget <= 0) return failing;
  let last = failing;
  await shrinkScenarioData(
    failing.data,
    async (candidate) => {
      const ran = await session.run('shrink', candidate, failing.seed);
      if (ran === undefined) return 'invalid';
      if (ran.result.verdict !== failing.result.verdict) return 'passes';
      last = { data: candidate, seed: failing.seed, ...ran };
      return 'fails';
    },
    { maxRuns: budget },
  );
  return last;
}

/** One line describing a failure's shrinking: "shrunk from … to … in N runs". */
export function describeShrink(failure: FuzzFailure): string {
  return `shrunk from ${describeSize(failure.original.size)} to ${describeSize(failure.size)} in ${failure.shrinkRuns} runs`;
}

/** How a failure was found, for the header of its regression file. */
export interface FoundBy {
  /** The command (or test) that found it, e.g. `npx cloudbed fuzz --runs 1000 --swarm --seed 1`. */
  readonly command: string;
  /** Where the file is written, for the reproduce line (e.g. `scenarios/regressions/x.yaml`). */
  readonly file: string;
}

/**
 * The regression file of a failure: the shrunk scenario as YAML, expecting what it should have
 * done (its expected verdict, `ok` for generated cases), with a header saying how it was found,
 * the verdict and reason it failed with, and a `recorded:` line (seed, store, verdict, trace hash)
 * that test/regressions.test.ts checks while the verdict is still the recorded one.
 */
export function regressionYaml(failure: FuzzFailure, foundBy: FoundBy): string {
  const { result } = failure;
  const fastCheck =
    failure.fastCheck === undefined
      ? ''
      : `; fast-check seed ${failure.fastCheck.seed}, path "${failure.fastCheck.path}"`;
  const reason = result.reason.replace(/\s+/g, ' ');
  const header = [
    `Goal: a failure found by shrinking a failing run; the scenario must end '${failure.expected}'.`,
    'Method: the shrunk workload and fault schedule below, under the seed that failed.',
    '',
    `Found by: ${foundBy.command} (run ${failure.runIndex}${fastCheck})`,
    `Verdict: ${result.verdict} (expected ${failure.expected})`,
    ...wrap(`Reason: ${reason}`, 98),
    `${capitalize(describeShrink(failure))}.`,
    `recorded: seed=${failure.seed} store=${failure.store} verdict=${result.verdict} trace-hash=${result.traceHash}`,
    `Reproduce: npx cloudbed run ${foundBy.file} --seed ${failure.seed}${failure.store === 'memory' ? '' : ` --store ${failure.store}`}`,
    'Times are virtual milliseconds since the run started.',
  ];
  const data = { ...failure.data, seed: failure.seed, store: failure.store };
  return scenarioYaml(data, header);
}

function capitalize(text: string): string {
  return text.slice(0, 1).toUpperCase() + text.slice(1);
}

/** Splits `text` into lines of at most `width` characters at spaces (continuation indented). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = `  ${word}`;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** The `recorded:` header line of a regression file, parsed; undefined when the file has none. */
export interface RecordedRun {
  readonly seed: number;
  readonly store: StoreKind;
  readonly verdict: Verdict;
  readonly traceHash: string;
}

/** Reads the `# recorded: seed=… store=… verdict=… trace-hash=…` line of a scenario file. */
export function recordedRunOf(text: string): RecordedRun | undefined {
  const match =
    /^#\s*recorded:\s*seed=(\d+)\s+store=(memory|pgmem)\s+verdict=(\w+)\s+trace-hash=([0-9a-f]+)\s*$/m.exec(
      text,
    );
  if (match === null) return undefined;
  const verdict = match[3] as Verdict;
  assert(VERDICTS.includes(verdict), `recorded verdict ${match[3]} is not a verdict`);
  return {
    seed: Number(match[1]),
    store: match[2] as StoreKind,
    verdict,
    traceHash: match[4] as string,
  };
}
