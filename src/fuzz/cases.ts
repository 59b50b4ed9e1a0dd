/**
 * Random scenarios as data: a small topology, a random workload (src/fuzz/workload.ts) and a
 * random fault plan (src/fuzz/fault-plans.ts), drawn together by one fast-check arbitrary and
 * compiled to the plain object a scenario YAML file holds. The object is what runs (through
 * `toScenario`) and what is written out when a case fails, so a written file replays the run
 * exactly.
 *
 * Cases are small on purpose: one to three compute hosts, one or two storage nodes, one to three
 * main loops, a handful of calls spread over a few minutes, and a liveness budget that ends the
 * run as soon as everything has settled. Small cases run in tens of milliseconds, so thousands of
 * them fit in a test run, and they shrink to counterexamples a person can read.
 */
import fc from 'fast-check';
import type { Verdict } from '../sim/verdict.ts';
import type { StoreKind } from '../sim/scenario.ts';
import { SEED_MAX } from '../lib/prng.ts';
import {
  compileWorkload,
  workloadArb,
  type WorkloadArbOptions,
  type WorkloadOp,
  type WorkloadStepData,
} from './workload.ts';
import {
  compileFaults,
  faultPlanArb,
  type FaultPlan,
  type FaultPlanOptions,
  type FaultsData,
} from './fault-plans.ts';
import type { ScenarioSize } from './results.ts';

export { describeSize, type ScenarioSize } from './results.ts';

/** A drawn topology. */
export interface TopologyDraw {
  readonly computeCount: number;
  readonly vcpus: number;
  readonly memoryMb: number;
  readonly storageCount: number;
  readonly poolSizeGb: number;
  readonly mainLoops: number;
}

/** One random case: everything a run needs, before compilation. */
export interface FuzzCase {
  /** The simulation's root seed. */
  readonly seed: number;
  readonly topology: TopologyDraw;
  readonly ops: readonly WorkloadOp[];
  readonly faults: FaultPlan;
}

/** Options of {@link fuzzCaseArb}. */
export interface FuzzCaseOptions extends WorkloadArbOptions, FaultPlanOptions {
  /** Most compute hosts. Default 3. */
  readonly maxCompute?: number;
  /** Most storage nodes. Default 2. */
  readonly maxStorage?: number;
  /** Most main loop instances. Default 3. */
  readonly maxMainLoops?: number;
  /** Least main loop instances (races between instances need 2). Default 1. */
  readonly minMainLoops?: number;
  /** Liveness budget after the heal, ms. Default {@link FUZZ_SETTLE_WITHIN_MS}. */
  readonly settleWithinMs?: number;
}

/**
 * The named fuzz properties the test suites and the mutants run use — one definition, so a mutant
 * is caught by exactly what `npm test` runs:
 * - `convergence`: every fault kind may strike, at modest rates;
 * - `swarm`: each case switches whole fault kinds on or off (swarm testing);
 * - `fencing`: two main loops whose lock holders freeze past their session (and sessions that
 *   expire), with flaky agent ports so work stays open long enough for a stale holder to act.
 */
export const FUZZ_PROPERTIES = {
  convergence: { swarm: false, generator: {} },
  swarm: { swarm: true, generator: {} },
  fencing: {
    swarm: true,
    generator: {
      minMainLoops: 2,
      maxMainLoops: 2,
      kinds: ['pause-holder', 'session-expire', 'adapters'],
      // More frozen holders per case: a stale write needs one to freeze on a resource the other
      // loop then takes over (measured: about twice as many cases catch a store without fencing).
      maxFaults: 8,
    },
  },
} as const satisfies Record<string, { swarm: boolean; generator: FuzzCaseOptions }>;

export type FuzzPropertyName = keyof typeof FUZZ_PROPERTIES;

/**
 * Liveness budget after the faults heal, ms: every attempt budget (8 attempts, about 4 minutes of
 * backoff) fits twice, so a resource stuck in a retry cycle when the faults heal still settles.
 */
export const FUZZ_SETTLE_WITHIN_MS = 10 * 60_000;

/**
 * Step budget of a fuzz run. A run that settles needs a few thousand steps (about 25 per simulated
 * second with every process idle); one that needs this many is spinning (a wake-up loop that makes
 * no progress) and ends `liveness` in a few seconds of wall-clock time instead of minutes.
 */
export const FUZZ_MAX_STEPS = 100_000;

/** Arbitrary of a topology. Shrinks toward one compute host, one storage node, one main loop. */
export function topologyArb(options: FuzzCaseOptions = {}): fc.Arbitrary<TopologyDraw> {
  return fc.record({
    computeCount: fc.integer({ min: 1, max: options.maxCompute ?? 3 }),
    // Big hosts first: shrinking heads toward a cloud where capacity is never the problem.
    vcpus: fc.constantFrom(16, 8, 4),
    memoryMb: fc.constantFrom(32_768, 16_384, 8_192, 4_096),
    storageCount: fc.integer({ min: 1, max: options.maxStorage ?? 2 }),
    poolSizeGb: fc.constantFrom(4_096, 1_024, 256),
    mainLoops: fc.integer({ min: options.minMainLoops ?? 1, max: options.maxMainLoops ?? 3 }),
  });
}

/** Arbitrary of a whole case. The seed does not shrink: another seed is another run, not a simpler one. */
export function fuzzCaseArb(options: FuzzCaseOptions = {}): fc.Arbitrary<FuzzCase> {
  // Key order is shrink order: fewer calls and faults first (each removal is one run and often
  // halves what is left), then simpler numbers.
  return fc.record({
    ops: workloadArb(options),
    faults: faultPlanArb(options),
    topology: topologyArb(options),
    seed: fc.noShrink(fc.integer({ min: 1, max: SEED_MAX })),
  });
}

/** A scenario as data: the shape of a scenario YAML file (scenarios/README.md). */
export interface ScenarioData {
  name: string;
  description?: string;
  seed: number;
  store?: StoreKind;
  topology: {
    compute: { count: number; vcpus: number; memoryMb: number };
    storage: { count: number; poolSizeGb: number };
    mainLoops: number;
    accounts: string[];
  };
  workload: WorkloadStepData[];
  faults: FaultsData;
  budgets: { settleWithin: number; maxSteps: number };
  expect: { verdict: Verdict };
}

/** Compiles a case to scenario data named `name`. Pure: the same case gives the same data. */
export function toScenarioData(
  fuzzCase: FuzzCase,
  name: string,
  options: Pick<FuzzCaseOptions, 'settleWithinMs' | 'createStatus'> = {},
): ScenarioData {
  const t = fuzzCase.topology;
  const workload = compileWorkload(
    fuzzCase.ops,
    options.createStatus === undefined ? {} : { createStatus: options.createStatus },
  );
  const faults = compileFaults(
    fuzzCase.faults,
    { computeCount: t.computeCount, storageCount: t.storageCount, mainLoops: t.mainLoops },
    workload.opTimesMs,
  );
  return {
    name,
    seed: fuzzCase.seed,
    store: 'memory',
    topology: {
      compute: { count: t.computeCount, vcpus: t.vcpus, memoryMb: t.memoryMb },
      storage: { count: t.storageCount, poolSizeGb: t.poolSizeGb },
      mainLoops: t.mainLoops,
      accounts: ['user'],
    },
    workload: workload.steps,
    faults,
    budgets: {
      settleWithin: options.settleWithinMs ?? FUZZ_SETTLE_WITHIN_MS,
      maxSteps: FUZZ_MAX_STEPS,
    },
    expect: { verdict: 'ok' },
  };
}

/** Blocks of `faults` that are rates or draws rather than a schedule. */
export const RATE_BLOCKS = ['bus', 'adapters', 'database', 'locks', 'swarm'] as const;

/** The size of scenario data of any origin (generated or read from a file). */
export function sizeOf(data: unknown): ScenarioSize {
  const record = (data ?? {}) as { workload?: unknown; faults?: unknown };
  const faults = (record.faults ?? {}) as Record<string, unknown>;
  return {
    steps: Array.isArray(record.workload) ? record.workload.length : 0,
    faults: Array.isArray(faults['schedule']) ? faults['schedule'].length : 0,
    rates: RATE_BLOCKS.filter((name) => faults[name] !== undefined && faults[name] !== null),
  };
}
