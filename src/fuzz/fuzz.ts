/**
 * The fuzzer: runs many scenarios — random ones (src/fuzz/cases.ts), or one scenario file
 * under many seeds, optionally with random fault plans — and at the first run that does not end
 * with its expected verdict, stops and shrinks it to a small scenario that fails the same way.
 * The result carries the shrunk scenario as data, ready to be written as a regression file that
 * `cloudbed run` replays with the same trace hash.
 *
 * A campaign is its options; run r of it (1-based) is a function of the campaign and r alone:
 * fast-check's case at path `r - 1` under the root seed for drawn cases (fast-check derives the
 * case of its run i from the seed by i + 1 jumps of its generator, whatever ran before), seed
 * `seed + r - 1` for a scenario file run as it is. That is what lets the runs be split — over
 * worker processes, over machines (shards) — and still be the runs one process would have done:
 * the engine exposes the pieces (plan some runs, run one, shrink one) and {@link fuzz} is the
 * single-process loop over them.
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
 * (the CLI, a test) measures time, writes files and runs processes.
 */
import fc from 'fast-check';
import { assert } from '../lib/assert.ts';
import { runScenario } from '../sim/run-scenario.ts';
import { scenarioYaml, toScenario, type StoreKind } from '../sim/scenario.ts';
import type { RunResult } from '../sim/simulation.ts';
import { VERDICTS, type Verdict } from '../sim/verdict.ts';
import {
  fuzzCaseArb,
  sizeOf,
  toScenarioData,
  type FuzzCase,
  type FuzzCaseOptions,
  type ScenarioSize,
} from './cases.ts';
import {
  compileFaults,
  faultPlanArb,
  type FaultPlan,
  type FaultPlanOptions,
} from './fault-plans.ts';
import { shrinkScenarioData, type RawScenario } from './shrink.ts';
import {
  describeShrink,
  isFailing,
  resultOf,
  summarize,
  type FuzzFailure,
  type FuzzReport,
  type RunRecord,
  type ShrinkOutcome,
} from './results.ts';
import { minBlockSize, type RunRange } from './campaign.ts';
import { SEED_MAX } from '../lib/prng.ts';

export type { RunRange } from './campaign.ts';
export { describeShrink } from './results.ts';
export type { FuzzFailure, FuzzReport, RunRecord, ShrinkOutcome } from './results.ts';

/** One finished run, as reported to {@link FuzzOptions.onRun}. */
export interface FuzzRunInfo {
  /** `search` until the first failure, then `shrink`. */
  readonly phase: 'search' | 'shrink';
  /** Search: the run's 1-based number in its campaign. Shrink: 1-based number of the shrink run. */
  readonly index: number;
  readonly seed: number;
  readonly result: RunResult;
  readonly size: ScenarioSize;
}

/**
 * What defines a campaign: which case every run gets and how a failure shrinks. Plain data, so a
 * worker process can receive it as JSON.
 */
export interface FuzzCampaign {
  /** How many runs the campaign has (>= 1). */
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
}

/** Options of {@link fuzz}. */
export interface FuzzOptions extends FuzzCampaign {
  /** The runs to search (a shard of the campaign). Default every run, 1 to `runs`. */
  readonly range?: RunRange;
  /** Called after every run (search and shrink), for progress reports. */
  readonly onRun?: (info: FuzzRunInfo) => void;
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

/** Checks a campaign's options (programmer errors: the CLI validates what users type). */
export function assertCampaign(campaign: FuzzCampaign): void {
  assert(Number.isInteger(campaign.runs) && campaign.runs >= 1, 'runs must be >= 1');
  assert(
    Number.isInteger(campaign.seed) && campaign.seed >= 0 && campaign.seed <= SEED_MAX,
    'seed must be a valid seed',
  );
}

function storeOf(campaign: FuzzCampaign): StoreKind {
  return campaign.store ?? 'memory';
}

/** One search run, planned: its number, scenario data and simulation seed. */
export interface PlannedRun {
  readonly run: number;
  readonly data: RawScenario;
  readonly seed: number;
}

/**
 * Cases drawn by a fast-check arbitrary: generated scenarios, or fault plans on a base scenario.
 * `compile` turns a drawn value into scenario data; `name` is the failing run's scenario name while
 * shrinking, so every candidate keeps it.
 */
interface DrawnCases<T> {
  readonly arbitrary: fc.Arbitrary<T>;
  readonly compile: (
    value: T,
    run: number,
    name: string | undefined,
  ) => { data: RawScenario; seed: number };
}

/** The arbitrary of a campaign's cases; undefined for a base scenario run as it is under seeds. */
function drawnCases(campaign: FuzzCampaign): DrawnCases<unknown> | undefined {
  if (campaign.base === undefined) return generatedCases(campaign) as DrawnCases<unknown>;
  if (campaign.swarm === true)
    return baseFaultCases(campaign, campaign.base) as DrawnCases<unknown>;
  return undefined;
}

/** Generated cases: topology, workload and faults all drawn. */
function generatedCases(campaign: FuzzCampaign): DrawnCases<FuzzCase> {
  const prefix = campaign.namePrefix ?? 'fuzz';
  const store = storeOf(campaign);
  return {
    arbitrary: fuzzCaseArb({ ...campaign.generator, swarm: campaign.swarm === true }),
    compile: (value, run, name) => {
      const data = toScenarioData(
        value,
        name ?? `${prefix}-s${campaign.seed}-r${run}`,
        campaign.generator ?? {},
      ) as unknown as RawScenario;
      if (store !== 'memory') data['store'] = store;
      return { data, seed: value.seed };
    },
  };
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

/** A scenario file under drawn fault plans (and a drawn simulation seed). */
function baseFaultCases(
  campaign: FuzzCampaign,
  base: RawScenario,
): DrawnCases<{ seed: number; faults: FaultPlan }> {
  const facts = baseFacts(base);
  const faultOptions: FaultPlanOptions = { ...campaign.generator, swarm: true };
  // Under faults a call may legitimately go unanswered or answer 503: the workload's status
  // expectations are dropped, the checkers and the liveness goal judge the run.
  const workload = Array.isArray(base['workload'])
    ? (base['workload'] as Record<string, unknown>[]).map((step) => {
        const { expectStatus: _dropped, ...rest } = step;
        return rest;
      })
    : base['workload'];
  const arbitrary = fc.record({
    seed: fc.noShrink(fc.integer({ min: 1, max: SEED_MAX })),
    faults: faultPlanArb(faultOptions),
  });
  return {
    arbitrary,
    compile: (value) => {
      const faults = compileFaults(value.faults, facts.topology, facts.opTimesMs, 0);
      return { data: { ...base, workload, seed: value.seed, faults }, seed: value.seed };
    },
  };
}

/**
 * The cases of runs `first` to `first + count - 1` of a campaign. Drawn cases come from
 * `fc.sample` at path `first - 1`: the values `fc.check` would have reached there, with the same
 * bias. Getting there costs `first` jumps of fast-check's generator (about a microsecond each), so
 * callers plan consecutive runs in blocks of at least {@link minBlockSize}.
 */
export function planRuns(campaign: FuzzCampaign, first: number, count: number): PlannedRun[] {
  assert(Number.isInteger(first) && first >= 1, 'runs are numbered from 1');
  assert(
    Number.isInteger(count) && count >= 0 && first + count - 1 <= campaign.runs,
    'past the last run',
  );
  if (count === 0) return [];
  const drawn = drawnCases(campaign);
  if (drawn === undefined) {
    const base = campaign.base;
    assert(base !== undefined, 'only a base scenario runs without drawn cases');
    return Array.from({ length: count }, (_, i) => {
      const seed = Math.min(campaign.seed + first - 1 + i, SEED_MAX);
      return { run: first + i, data: { ...base, seed }, seed };
    });
  }
  const values = fc.sample(drawn.arbitrary, {
    seed: campaign.seed,
    path: String(first - 1),
    numRuns: count,
  });
  return values.map((value, i) => ({
    run: first + i,
    ...drawn.compile(value, first + i, undefined),
  }));
}

/** Runs one planned search run and reports it to `onRun`. */
export async function runPlanned(
  campaign: FuzzCampaign,
  planned: PlannedRun,
  onRun?: (info: FuzzRunInfo) => void,
): Promise<RunRecord> {
  const outcome = await runData(planned.data, { seed: planned.seed, store: storeOf(campaign) });
  assert(
    outcome.kind === 'ran',
    `the scenario of run ${planned.run} must be valid: ${outcome.kind === 'invalid' ? outcome.problem : ''}`,
  );
  const { result, expected } = outcome;
  onRun?.({
    phase: 'search',
    index: planned.run,
    seed: planned.seed,
    result,
    size: sizeOf(planned.data),
  });
  // Fields in a fixed order, the order reports are read back in, so a report written from these
  // records and one merged from read reports are the same text.
  return {
    run: planned.run,
    seed: planned.seed,
    verdict: result.verdict,
    expected,
    reason: result.reason,
    steps: result.steps,
    simTimeMs: result.simTimeMs,
    traceHash: result.traceHash,
  };
}

/** Runs a fuzz session in this process; resolves with totals and the shrunk first failure, if any. */
export async function fuzz(options: FuzzOptions): Promise<FuzzReport> {
  assertCampaign(options);
  const { first, last } = options.range ?? { first: 1, last: options.runs };
  assert(first >= 1 && first <= last && last <= options.runs, 'the range must lie in the campaign');
  const results: RunRecord[] = [];
  let start = first;
  while (start <= last) {
    // One process takes the runs in order: blocks only bound how many cases are planned ahead.
    const count = Math.min(Math.max(64, minBlockSize(start)), last - start + 1);
    for (const planned of planRuns(options, start, count)) {
      const record = await runPlanned(options, planned, options.onRun);
      results.push(record);
      if (isFailing(record))
        return summarize(results, await shrinkRun(options, record, options.onRun));
    }
    start += count;
  }
  return summarize(results, undefined);
}

/** A candidate under shrinking and what it gave, kept to report the final counterexample. */
interface Failing {
  readonly data: RawScenario;
  readonly seed: number;
  readonly result: RunResult;
  readonly expected: Verdict;
}

/** Bookkeeping of shrink runs. */
class Shrinker {
  runs = 0;
  steps = 0;
  simTimeMs = 0;
  constructor(
    readonly campaign: FuzzCampaign,
    private readonly onRun: ((info: FuzzRunInfo) => void) | undefined,
  ) {}

  /** The whole budget of shrink runs. */
  get budget(): number {
    return this.campaign.shrinkRuns ?? 300;
  }

  /** Runs a candidate with `seed`; reports it. Returns undefined for invalid data. */
  async run(
    data: unknown,
    seed: number,
  ): Promise<{ result: RunResult; expected: Verdict } | undefined> {
    const outcome = await runData(data, { seed, store: storeOf(this.campaign) });
    if (outcome.kind === 'invalid') return undefined;
    const { result } = outcome;
    this.runs++;
    this.steps += result.steps;
    this.simTimeMs += result.simTimeMs;
    this.onRun?.({ phase: 'shrink', index: this.runs, seed, result, size: sizeOf(data) });
    return outcome;
  }
}

/**
 * Shrinks the failing search run `failing` of a campaign, exactly as a single process that found
 * it would: fast-check replays the run's case (path `run - 1`) and shrinks it, then delta
 * debugging. Its own outcome is not run again: `failing` is what it gave.
 */
export async function shrinkRun(
  campaign: FuzzCampaign,
  failing: RunRecord,
  onRun?: (info: FuzzRunInfo) => void,
): Promise<ShrinkOutcome> {
  assertCampaign(campaign);
  assert(isFailing(failing), `run ${failing.run} did not fail`);
  const shrinker = new Shrinker(campaign, onRun);
  const [planned] = planRuns(campaign, failing.run, 1);
  assert(planned !== undefined && planned.seed === failing.seed, 'the run must plan as recorded');
  const first: Failing = {
    data: planned.data,
    seed: planned.seed,
    result: resultOf(failing),
    expected: failing.expected,
  };
  const drawn = drawnCases(campaign);
  let last = first;
  let fastCheck: FuzzFailure['fastCheck'];
  if (drawn !== undefined) {
    const shrunk = await shrinkWithFastCheck(shrinker, drawn, failing.run, first);
    last = shrunk.last;
    fastCheck = { seed: campaign.seed, path: shrunk.path };
  }
  // Then delta debugging on the compiled scenario: removing a call or a fault there keeps every
  // other time exactly where it was, where removing it from the case re-anchors later faults.
  last = await shrinkData(shrinker, last);
  return {
    failure: {
      runIndex: failing.run,
      seed: last.seed,
      store: storeOf(campaign),
      expected: last.expected,
      result: last.result,
      original: { result: first.result, size: sizeOf(first.data) },
      data: last.data,
      size: sizeOf(last.data),
      shrinkRuns: shrinker.runs,
      fastCheck,
    },
    steps: shrinker.steps,
    simTimeMs: shrinker.simTimeMs,
  };
}

/** The part of the shrink budget fast-check gets when delta debugging follows: 60 %. */
function fastCheckShare(shrinker: Shrinker): number {
  return Math.ceil(shrinker.budget * 0.6);
}

/**
 * Replays run `run`'s case in fast-check (its first value, known to fail as `first` did) and lets
 * fast-check shrink it within its share of the budget.
 */
async function shrinkWithFastCheck(
  shrinker: Shrinker,
  drawn: DrawnCases<unknown>,
  run: number,
  first: Failing,
): Promise<{ last: Failing; path: string }> {
  const budget = fastCheckShare(shrinker);
  const name = typeof first.data['name'] === 'string' ? first.data['name'] : undefined;
  let replayed = false;
  let last = first;
  const property = fc.asyncProperty(drawn.arbitrary, async (value) => {
    if (!replayed) {
      replayed = true;
      assert(drawn.compile(value, run, name).seed === first.seed, 'fast-check must replay the run');
      return false;
    }
    // Past the budget every candidate "passes" without running, which ends the shrinking.
    if (shrinker.runs >= budget) return true;
    const { data, seed } = drawn.compile(value, run, name);
    const ran = await shrinker.run(data, seed);
    if (ran === undefined || ran.result.verdict !== first.result.verdict) return true;
    last = { data, seed, ...ran };
    return false;
  });
  const details = await fc.check(property, {
    seed: shrinker.campaign.seed,
    path: String(run - 1),
    numRuns: 1,
    endOnFailure: false,
  });
  assert(details.failed && details.counterexamplePath !== null, 'the replayed run must fail');
  return { last, path: details.counterexamplePath };
}

/** Delta-debugs a failing scenario's workload and faults within what is left of the budget. */
async function shrinkData(shrinker: Shrinker, failing: Failing): Promise<Failing> {
  const budget = shrinker.budget - shrinker.runs;
  if (budget <= 0) return failing;
  let last = failing;
  await shrinkScenarioData(
    failing.data,
    async (candidate) => {
      const ran = await shrinker.run(candidate, failing.seed);
      if (ran === undefined) return 'invalid';
      if (ran.result.verdict !== failing.result.verdict) return 'passes';
      last = { data: candidate, seed: failing.seed, ...ran };
      return 'fails';
    },
    { maxRuns: budget },
  );
  return last;
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
