/**
 * Scenario files: the data that describes one simulated run — topology, workload (API calls over
 * simulated time), faults, budgets and the expected verdict. Parsed from YAML and validated here
 * with errors that name the file, the field (with its line) and the problem; nothing in a scenario
 * is executable code.
 */
import {
  doc,
  duration,
  int,
  list,
  object,
  oneOf,
  optional,
  probability,
  required,
  ShapeError,
  str,
  suggest,
  type FieldPath,
  type JsonSchema,
} from '../lib/shape.ts';
import { SEED_MAX } from '../lib/prng.ts';
import {
  NAME,
  NAME_HINT,
  toWorkload,
  workloadEntryShape,
  type WorkloadEntry,
} from './scenario-workload.ts';
import { stringify } from 'yaml';
import { DataFileError, parseDataFile } from '../lib/data-file.ts';
import { VERDICTS, type Verdict } from './verdict.ts';
import {
  HOLDER_POINTS,
  SCHEDULED_FAULT_KINDS,
  SWARM_DEFAULTS,
  SWARM_KINDS,
  isProcessFault,
  type FaultPlan,
  type ScheduledFault,
  type SwarmOptions,
} from '../faults/plan.ts';

export type {
  ArrivalsGenerator,
  CallTemplate,
  GeneratedCall,
  Method,
  PoolUse,
  RepeatGenerator,
  WaitFor,
  WorkloadEntry,
  WorkloadStep,
} from './scenario-workload.ts';
export type {
  AdapterFaults,
  BusFaults,
  DatabaseFaults,
  FaultPlan,
  LockFaults,
  ScheduledFault,
  SwarmOptions,
} from '../faults/plan.ts';

/** Stores a run can use: the in-memory store (fast) or the SQL store on pg-mem (SQL fidelity). */
export const STORES = ['memory', 'pgmem'] as const;
export type StoreKind = (typeof STORES)[number];

const computeShape = object({
  count: optional(doc(int({ min: 0, max: 10_000 }), 'Compute hosts, named compute-1, …'), 3),
  vcpus: optional(doc(int({ min: 1, max: 1024 }), 'vCPUs of each compute host.'), 16),
  memoryMb: optional(
    doc(int({ min: 256, max: 4_194_304 }), 'Memory of each compute host, MiB.'),
    65_536,
  ),
});

const storageShape = object({
  count: optional(doc(int({ min: 0, max: 1000 }), 'Storage nodes, named storage-1, …'), 1),
  poolSizeGb: optional(
    doc(int({ min: 1, max: 1_048_576 }), 'Pool size of each storage node, GiB.'),
    8192,
  ),
});

const topologyShape = object({
  compute: optional(computeShape, { count: 3, vcpus: 16, memoryMb: 65_536 }),
  storage: optional(storageShape, { count: 1, poolSizeGb: 8192 }),
  mainLoops: optional(int({ min: 1, max: 16 }), 2),
  accounts: optional(list(str({ pattern: NAME, patternHint: NAME_HINT }), { maxLength: 100 }), [
    'user',
  ]),
});

/** One explicit fault; see {@link ScheduledFault} for the kinds. Chaos experiments use it too. */
export const scheduledFaultShape = object({
  at: required(duration()),
  kind: required(oneOf(SCHEDULED_FAULT_KINDS)),
  target: required(str({ pattern: NAME, patternHint: NAME_HINT })),
  restartAfter: optional(duration()),
  for: optional(duration()),
  point: optional(oneOf(HOLDER_POINTS)),
});

/** A fault's probability per operation: off unless given. */
const faultProbability = optional(probability(), 0);

/** A fault's time in ms, from none up to an hour, with its default. */
function faultMs(defaultMs: number) {
  return optional(int({ min: 0, max: 3_600_000 }), defaultMs);
}

const busFaultShape = object({
  dropProbability: faultProbability,
  duplicateProbability: faultProbability,
  delayProbability: faultProbability,
  delayMsMax: faultMs(0),
  reorderProbability: faultProbability,
});

const adapterFaultShape = object({
  failProbability: faultProbability,
  timeoutProbability: faultProbability,
  timeoutMs: faultMs(10_000),
  slowProbability: faultProbability,
  slowMsMax: faultMs(1_000),
  lostReplyProbability: faultProbability,
});

const databaseFaultShape = object({
  abortProbability: faultProbability,
  connectionLossProbability: faultProbability,
  slowProbability: faultProbability,
  slowMsMax: faultMs(100),
});

const lockFaultShape = object({
  expiryNoticeLossProbability: faultProbability,
  expiryNoticeDelayProbability: faultProbability,
  expiryNoticeDelayMsMax: faultMs(5_000),
});

const swarmShape = object({
  kinds: optional(list(oneOf(SWARM_KINDS), { maxLength: SWARM_KINDS.length * 4 })),
  kindProbability: optional(probability()),
  eventsMax: optional(int({ min: 0, max: 1000 })),
  rateMax: optional(probability()),
});

const faultsShape = object({
  schedule: optional(
    doc(list(scheduledFaultShape, { maxLength: 10_000 }), 'Explicit faults at given times.'),
    [],
  ),
  bus: optional(busFaultShape),
  adapters: optional(adapterFaultShape),
  database: optional(databaseFaultShape),
  locks: optional(lockFaultShape),
  swarm: optional(doc(swarmShape, 'Draw more faults per seed (swarm mode).')),
  /** Faults stop at this time; the liveness phase starts. Default: the end of the workload. */
  healAt: optional(
    doc(
      duration(),
      'The safety phase ends here. Default: the end of the workload or of the last scheduled fault.',
    ),
  ),
});

const budgetsShape = object({
  maxSteps: optional(
    doc(int({ min: 1, max: 1_000_000_000 }), 'Events the run may execute.'),
    2_000_000,
  ),
  maxSimTime: optional(
    doc(duration({ min: 1 }), 'Simulated time the run may take.'),
    6 * 3_600_000,
  ),
  settleWithin: optional(
    doc(duration({ min: 1 }), 'After the heal, time to converge before the verdict is liveness.'),
    30 * 60_000,
  ),
});

const scenarioShape = object({
  name: required(doc(str({ pattern: NAME, patternHint: NAME_HINT }), 'The scenario name.')),
  description: optional(doc(str({ maxLength: 4000 }), 'One line for listings.')),
  seed: optional(doc(int({ min: 0, max: SEED_MAX }), 'The root seed when --seed is not given.')),
  store: optional(
    doc(oneOf(STORES), 'The event store: in memory, or the SQL store on pg-mem. Default memory.'),
  ),
  topology: optional(doc(topologyShape, 'The cloud to build.')),
  workload: optional(
    doc(
      list(workloadEntryShape, { maxLength: 100_000 }),
      'API calls over simulated time: plain calls and generators (repeat, arrivals).',
    ),
    [],
  ),
  faults: optional(doc(faultsShape, 'What to inject, and when the faults heal.')),
  budgets: optional(doc(budgetsShape, 'Limits that end the run.')),
  expect: optional(
    object({
      verdict: optional(doc(oneOf(VERDICTS), 'The verdict the run must reach.'), 'ok'),
    }),
  ),
});

/**
 * The scenario format as JSON Schema (draft 2020-12), from the same shapes that validate scenario
 * files: what `npm run schema` writes to scenario.schema.json for editors. Checks that span fields
 * (times that go back, placeholders saved earlier, pools filled before they are drawn from, fault
 * targets of the topology) are the validator's alone.
 */
export function scenarioJsonSchema(): JsonSchema {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://cloudbed.dev/scenario.schema.json',
    title: 'cloudbed scenario',
    description:
      'One simulated run: topology, workload, faults, budgets and the expected verdict. See scenarios/README.md. Generated by npm run schema from src/sim/scenario.ts; do not edit.',
    ...scenarioShape.jsonSchema(),
  };
}

/** The text of scenario.schema.json: two-space JSON and a final newline. */
export function scenarioSchemaText(): string {
  return `${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`;
}

/** A validated scenario with defaults filled in. Times are in ms of virtual time. */
export interface Scenario {
  readonly name: string;
  readonly description: string | undefined;
  readonly seed: number | undefined;
  readonly store: StoreKind | undefined;
  readonly topology: {
    readonly compute: { readonly count: number; readonly vcpus: number; readonly memoryMb: number };
    readonly storage: { readonly count: number; readonly poolSizeGb: number };
    readonly mainLoops: number;
    readonly accounts: readonly string[];
  };
  /** Plain calls and generators, in file order. */
  readonly workload: readonly WorkloadEntry[];
  /** The explicit plan, plus swarm settings when each seed draws more faults of its own. */
  readonly faults: FaultPlan & { readonly swarm: SwarmOptions | undefined };
  readonly budgets: {
    readonly maxSteps: number;
    readonly maxSimTimeMs: number;
    readonly settleWithinMs: number;
  };
  readonly expect: { readonly verdict: Verdict };
}

/** A scenario file that cannot be used: names the file, the field, its line and the problem. */
export class ScenarioError extends DataFileError {
  override name = 'ScenarioError';
}

/** Parses and validates scenario YAML. `file` is used in error messages only. */
export function parseScenario(text: string, file: string): Scenario {
  return parseDataFile(text, file, toScenario, ScenarioError);
}

/** Validates already-parsed scenario data (e.g. embedded in a trace file). */
export function toScenario(data: unknown): Scenario {
  const raw = scenarioShape(data, []);
  const accounts = raw.topology?.accounts ?? ['user'];
  const { entries: workload, endMs: workloadEndMs } = toWorkload(raw.workload ?? [], accounts);
  const computeCount = raw.topology?.compute?.count ?? 3;
  const storageCount = raw.topology?.storage?.count ?? 1;
  const hostNames = [
    ...Array.from({ length: computeCount }, (_, i) => `compute-${i + 1}`),
    ...Array.from({ length: storageCount }, (_, i) => `storage-${i + 1}`),
  ];
  const processNames = [
    'api',
    ...Array.from({ length: raw.topology?.mainLoops ?? 2 }, (_, i) => `mainloop-${i + 1}`),
    'background',
    ...hostNames.map((h) => `agent-${h}`),
  ];
  const mainLoopNames = processNames.filter((name) => name.startsWith('mainloop-'));
  const schedule: ScheduledFault[] = (raw.faults?.schedule ?? []).map((f, index) => {
    const path: FieldPath = ['faults', 'schedule', index];
    if (f.kind !== 'crash' && f.restartAfter !== undefined) {
      throw new ShapeError([...path, 'restartAfter'], `applies only to kind crash`);
    }
    if ((f.kind === 'crash' || f.kind === 'session-expire') && f.for !== undefined) {
      throw new ShapeError(
        [...path, 'for'],
        f.kind === 'crash'
          ? `does not apply to kind crash (a crash is instant; use restartAfter)`
          : `does not apply to kind session-expire (an expiry is instant)`,
      );
    }
    if (f.kind !== 'crash' && f.kind !== 'session-expire' && f.for === undefined) {
      throw new ShapeError([...path, 'for'], `is required for kind ${f.kind}`);
    }
    if (f.kind !== 'pause-holder' && f.point !== undefined) {
      throw new ShapeError([...path, 'point'], `applies only to kind pause-holder`);
    }
    const lockHolder = f.kind === 'pause-holder' || f.kind === 'session-expire';
    const targets = lockHolder ? mainLoopNames : isProcessFault(f.kind) ? processNames : hostNames;
    if (!targets.includes(f.target)) {
      const hint = suggest(f.target, targets);
      const what = lockHolder ? 'main loop' : isProcessFault(f.kind) ? 'process' : 'host';
      throw new ShapeError(
        [...path, 'target'],
        `names no ${what} of this topology${hint === undefined ? '' : ` (did you mean '${hint}'?)`}; choose from ${targets.join(', ')}`,
      );
    }
    return {
      atMs: f.at,
      kind: f.kind,
      target: f.target,
      restartAfterMs: f.restartAfter,
      forMs: f.for,
      point: f.kind === 'pause-holder' ? (f.point ?? 'acquire') : undefined,
    };
  });
  const lastFaultMs = Math.max(
    0,
    ...schedule.map((f) => f.atMs + (f.forMs ?? 0) + (f.restartAfterMs ?? 0)),
  );
  const explicitHealAt = raw.faults?.healAt;
  const swarm: SwarmOptions | undefined =
    raw.faults?.swarm === undefined
      ? undefined
      : {
          kinds: dedupe(raw.faults.swarm.kinds ?? SWARM_DEFAULTS.kinds),
          kindProbability: raw.faults.swarm.kindProbability ?? SWARM_DEFAULTS.kindProbability,
          eventsMax: raw.faults.swarm.eventsMax ?? SWARM_DEFAULTS.eventsMax,
          rateMax: raw.faults.swarm.rateMax ?? SWARM_DEFAULTS.rateMax,
        };
  const healAtMs = explicitHealAt ?? Math.max(workloadEndMs, lastFaultMs);
  if (explicitHealAt !== undefined) {
    schedule.forEach((f, index) => {
      if (f.atMs >= healAtMs) {
        throw new ShapeError(
          ['faults', 'schedule', index, 'at'],
          `is ${f.atMs} ms, not before faults.healAt (${healAtMs} ms): faults belong to the safety phase`,
        );
      }
      if (f.kind === 'host-hang' && f.atMs + (f.forMs ?? 0) > healAtMs) {
        throw new ShapeError(
          ['faults', 'schedule', index, 'for'],
          `makes the hang end at ${f.atMs + (f.forMs ?? 0)} ms, after faults.healAt (${healAtMs} ms); a hang cannot be healed early`,
        );
      }
    });
  }
  if (swarm !== undefined && healAtMs === 0) {
    throw new ShapeError(
      ['faults', 'healAt'],
      'is needed with faults.swarm when the workload takes no time: swarm faults strike before the heal',
    );
  }
  const budgets = raw.budgets ?? {
    maxSteps: 2_000_000,
    maxSimTime: 6 * 3_600_000,
    settleWithin: 30 * 60_000,
  };
  const maxSimTimeMs = budgets.maxSimTime ?? 6 * 3_600_000;
  if (healAtMs > maxSimTimeMs) {
    throw new ShapeError(
      ['budgets', 'maxSimTime'],
      `is ${maxSimTimeMs} ms, before the faults heal or the workload ends (${healAtMs} ms)`,
    );
  }
  const topology = raw.topology;
  return {
    name: raw.name,
    description: raw.description,
    seed: raw.seed,
    store: raw.store,
    topology: {
      compute: topology?.compute ?? { count: 3, vcpus: 16, memoryMb: 65_536 },
      storage: topology?.storage ?? { count: 1, poolSizeGb: 8192 },
      mainLoops: topology?.mainLoops ?? 2,
      accounts,
    },
    workload,
    faults: {
      schedule,
      bus: raw.faults?.bus,
      adapters: raw.faults?.adapters,
      database: raw.faults?.database,
      locks: raw.faults?.locks,
      swarm,
      healAtMs,
    },
    budgets: {
      maxSteps: budgets.maxSteps ?? 2_000_000,
      maxSimTimeMs,
      settleWithinMs: budgets.settleWithin ?? 30 * 60_000,
    },
    expect: { verdict: raw.expect?.verdict ?? 'ok' },
  } as Scenario;
}

/** The items of `values` in their first order, without repeats. */
function dedupe<T>(values: readonly T[]): readonly T[] {
  return [...new Set(values)];
}

/** Replaces `{name}` placeholders in the strings of a JSON value; pushes names not found to `missing`. */
export function substitute(
  value: unknown,
  saved: { get(name: string): string | undefined },
  missing: string[],
): unknown {
  if (typeof value === 'string') {
    return value.replace(/\{([^}]*)\}/g, (_, name: string) => {
      const id = saved.get(name);
      if (id === undefined) missing.push(name);
      return id ?? '';
    });
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, saved, missing));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substitute(v, saved, missing)]),
    );
  }
  return value;
}

/**
 * Scenario data as YAML with `header` as a comment block on top. Every line of the header gets a
 * `# ` prefix. The YAML parses back to data equal to `data`, so the file replays the same run.
 */
export function scenarioYaml(data: unknown, header: readonly string[]): string {
  const comment = header.map((line) => (line === '' ? '#' : `# ${line}`)).join('\n');
  const body = stringify(data, { lineWidth: 100, flowCollectionPadding: true });
  return `${comment}\n${body}`;
}
