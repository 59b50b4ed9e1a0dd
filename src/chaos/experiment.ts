/**
 * Chaos experiment files: a scenario's workload and a fault plan, run against a staging deployment
 * on the wall clock. The vocabulary is the scenario format's wherever a fault has a real
 * counterpart — the workload entries are the same (validated by the same code), and explicit
 * faults are the same `{at, kind, target, for, restartAfter}` records — plus a `storm`, a
 * generator of faults drawn from the experiment's seed (as `repeat` and `arrivals` generate calls),
 * compiled to explicit faults before the run so the run directory records exactly what was done.
 *
 * Only faults with a real counterpart are accepted: a kind that exists only in the simulator is a
 * validation error naming it, never silently dropped. Targets are checked against the staging
 * file's processes and hosts.
 */
import { DataFileError, parseDataFile } from '../lib/data-file.ts';
import { Prng, SEED_MAX } from '../lib/prng.ts';
import {
  doc,
  duration,
  int,
  list,
  object,
  oneOf,
  optional,
  required,
  ShapeError,
  str,
  suggest,
  type FieldPath,
} from '../lib/shape.ts';
import type { ScheduledFault } from '../faults/plan.ts';
import { scheduledFaultShape } from '../sim/scenario.ts';
import {
  NAME,
  NAME_HINT,
  toWorkload,
  workloadEntryShape,
  type WorkloadEntry,
} from '../sim/scenario-workload.ts';
import { VERDICTS, type Verdict } from '../sim/verdict.ts';
import type { StagingConfig } from '../staging/config.ts';
import { processSpecs } from '../staging/supervisor.ts';

/** Fault kinds a staging deployment can suffer for real, and what each does there. */
export const REAL_FAULT_KINDS = {
  crash: 'SIGKILL the process; the runner starts it again after restartAfter (else at the heal)',
  pause: 'SIGSTOP the process for `for`, then SIGCONT',
  'pause-holder':
    'the main loop stops itself at its next lock hold at `point` (acquire, write, send) for `for`',
  'host-crash':
    "destroy the host's domains and SIGKILL its agent; the agent starts again after `for` (else at the heal)",
  'session-expire':
    "end the main loop's ZooKeeper session on the server (joined with the id and password it recorded, then closed): its locks go, and it learns the session expired",
  'db-disconnect':
    "pg_terminate_backend of the process's PostgreSQL connections (found by their application_name), and again whenever it reconnects, for `for`",
  'bus-disconnect':
    "CLIENT KILL the process's Redis subscriber connection, and again whenever it is back, for `for`: what is published meanwhile never reaches it",
} as const;
export type RealFaultKind = keyof typeof REAL_FAULT_KINDS;
const REAL_KINDS = Object.keys(REAL_FAULT_KINDS) as RealFaultKind[];

/** Kinds of the scenario format a storm can generate. */
const STORM_KINDS = ['crash', 'pause'] as const;

/** Most faults a storm may generate. */
export const STORM_FAULTS_MAX = 100_000;

const stormShape = object({
  kind: optional(doc(oneOf(STORM_KINDS), 'crash (default) or pause.')),
  targets: optional(
    doc(
      list(str({ pattern: NAME, patternHint: NAME_HINT }), { maxLength: 1000 }),
      'Processes to strike, drawn uniformly. Default: every control-plane process.',
    ),
  ),
  from: optional(doc(duration(), 'When the storm starts. Default 0.')),
  until: required(doc(duration(), 'When it stops (before faults.healAt).')),
  every: required(doc(duration({ min: 1 }), 'Mean time between two faults (exponential).')),
  restartAfter: optional(
    doc(duration(), 'crash: how long a killed process stays down. Default 1s.'),
  ),
  for: optional(doc(duration(), 'pause: how long a paused process stays stopped. Default 2s.')),
});

const experimentShape = object({
  name: required(doc(str({ pattern: NAME, patternHint: NAME_HINT }), 'The experiment name.')),
  description: optional(doc(str({ maxLength: 4000 }), 'One line for listings.')),
  seed: optional(doc(int({ min: 0, max: SEED_MAX }), 'Root seed of the storm and generators.')),
  accounts: optional(
    doc(
      list(str({ pattern: NAME, patternHint: NAME_HINT }), { maxLength: 100 }),
      'User accounts the runner creates (each with a key pair) for the workload.',
    ),
  ),
  workload: optional(
    doc(
      list(workloadEntryShape, { maxLength: 100_000 }),
      'API calls at wall-clock offsets from the start, as in scenarios.',
    ),
    [],
  ),
  faults: optional(
    object({
      schedule: optional(list(scheduledFaultShape, { maxLength: 100_000 }), []),
      storm: optional(doc(stormShape, 'Faults drawn from the seed over a window.')),
      healAt: optional(doc(duration(), 'The safety phase ends here. Default: the last fault.')),
    }),
  ),
  budgets: optional(
    object({
      settleWithin: optional(
        doc(duration({ min: 1 }), 'After the heal, time to converge. Default 5m.'),
      ),
    }),
  ),
  expect: optional(object({ verdict: optional(oneOf(VERDICTS), 'ok') })),
});

/** A validated experiment, its faults compiled. */
export interface Experiment {
  readonly name: string;
  readonly description: string | undefined;
  readonly seed: number;
  readonly accounts: readonly string[];
  readonly workload: readonly WorkloadEntry[];
  /** Every fault, storm included, by time. */
  readonly schedule: readonly ScheduledFault[];
  readonly healAtMs: number;
  readonly settleWithinMs: number;
  readonly expect: Verdict;
}

/** What an experiment's faults may target: the staging file's processes and hosts. */
export interface ExperimentTargets {
  /** Control-plane process names (`api`, `mainloop-1`, `background`, `agent-<host>`). */
  readonly processes: readonly string[];
  /** Host names of the staging file. */
  readonly hosts: readonly string[];
}

/** What experiments on the deployment of `config` may target. */
export function targetsOf(config: StagingConfig): ExperimentTargets {
  return {
    processes: processSpecs(config).map((s) => s.name),
    hosts: config.hosts.map((h) => h.name),
  };
}

export class ExperimentError extends DataFileError {
  override name = 'ExperimentError';
}

/** Parses and validates experiment YAML against a deployment's targets; `file` names it in errors. */
export function parseExperiment(
  text: string,
  file: string,
  targets: ExperimentTargets,
  seed?: number,
): Experiment {
  return parseDataFile(text, file, (data) => toExperiment(data, targets, seed), ExperimentError);
}

/** Validates parsed experiment data; `seed` overrides the file's. */
export function toExperiment(
  data: unknown,
  targets: ExperimentTargets,
  seedOverride?: number,
): Experiment {
  const raw = experimentShape(data, []);
  const accounts = raw.accounts ?? ['user'];
  const seed = seedOverride ?? raw.seed ?? 1;
  const { entries: workload, endMs: workloadEndMs } = toWorkload(raw.workload ?? [], accounts);
  const explicit = (raw.faults?.schedule ?? []).map((f, index) =>
    scheduledFault(f, ['faults', 'schedule', index], targets),
  );
  const storm =
    raw.faults?.storm === undefined
      ? []
      : stormFaults(raw.faults.storm, ['faults', 'storm'], targets, new Prng(seed).fork('storm'));
  const schedule = [...explicit, ...storm].sort((a, b) => a.atMs - b.atMs);
  const lastFaultMs = Math.max(
    0,
    ...schedule.map((f) => f.atMs + (f.forMs ?? 0) + (f.restartAfterMs ?? 0)),
  );
  const explicitHeal = raw.faults?.healAt;
  const healAtMs = explicitHeal ?? Math.max(workloadEndMs, lastFaultMs) + 1;
  schedule.forEach((f) => {
    if (f.atMs >= healAtMs)
      throw new ShapeError(
        ['faults', 'healAt'],
        `is ${healAtMs} ms, not after every fault (one at ${f.atMs} ms): faults belong to the safety phase`,
      );
  });
  return {
    name: raw.name,
    description: raw.description,
    seed,
    accounts,
    workload,
    schedule,
    healAtMs,
    settleWithinMs: raw.budgets?.settleWithin ?? 5 * 60_000,
    expect: raw.expect?.verdict ?? 'ok',
  };
}

type RawScheduled = ReturnType<typeof scheduledFaultShape>;

function scheduledFault(
  f: RawScheduled,
  path: FieldPath,
  targets: ExperimentTargets,
): ScheduledFault {
  if (!(REAL_KINDS as readonly string[]).includes(f.kind))
    throw new ShapeError(
      [...path, 'kind'],
      `${f.kind} has no real counterpart in a staging deployment yet; chaos experiments take ${REAL_KINDS.join(', ')}`,
    );
  const kind = f.kind as RealFaultKind;
  if (kind !== 'pause-holder' && f.point !== undefined)
    throw new ShapeError([...path, 'point'], 'applies only to kind pause-holder');
  if (kind !== 'crash' && f.restartAfter !== undefined)
    throw new ShapeError([...path, 'restartAfter'], 'applies only to kind crash');
  if (kind === 'crash' && f.for !== undefined)
    throw new ShapeError(
      [...path, 'for'],
      'does not apply to kind crash (a crash is instant; use restartAfter)',
    );
  if (kind === 'session-expire' && f.for !== undefined)
    throw new ShapeError([...path, 'for'], 'does not apply to kind session-expire (it is instant)');
  if ((kind === 'pause' || kind === 'pause-holder') && f.for === undefined)
    throw new ShapeError([...path, 'for'], `is required for kind ${kind}`);
  // Only main loops hold lock sessions.
  const mainLoopOnly = kind === 'pause-holder' || kind === 'session-expire';
  const names =
    kind === 'host-crash'
      ? targets.hosts
      : mainLoopOnly
        ? targets.processes.filter((p) => p.startsWith('mainloop-'))
        : targets.processes;
  const what = kind === 'host-crash' ? 'host' : mainLoopOnly ? 'main loop' : 'process';
  checkTarget(f.target, names, [...path, 'target'], what);
  return {
    atMs: f.at,
    kind,
    target: f.target,
    restartAfterMs: f.restartAfter,
    forMs: f.for,
    ...(kind === 'pause-holder' ? { point: f.point ?? 'acquire' } : {}),
  };
}

function checkTarget(name: string, names: readonly string[], path: FieldPath, what: string): void {
  if (names.includes(name)) return;
  const hint = suggest(name, names);
  throw new ShapeError(
    path,
    `names no ${what} of the staging deployment${hint === undefined ? '' : ` (did you mean '${hint}'?)`}; choose from ${names.join(', ')}`,
  );
}

type RawStorm = ReturnType<typeof stormShape>;

/** A storm's faults: exponential gaps of mean `every` from `from` to `until`, uniform targets. */
export function stormFaults(
  storm: RawStorm,
  path: FieldPath,
  targets: ExperimentTargets,
  random: Prng,
): ScheduledFault[] {
  const kind = storm.kind ?? 'crash';
  const names = storm.targets ?? targets.processes;
  if (names.length === 0) throw new ShapeError([...path, 'targets'], 'must name a process');
  names.forEach((name, i) =>
    checkTarget(name, targets.processes, [...path, 'targets', i], 'process'),
  );
  const from = storm.from ?? 0;
  if (storm.until <= from)
    throw new ShapeError([...path, 'until'], `is ${storm.until} ms, not after from (${from} ms)`);
  if (kind === 'crash' && storm.for !== undefined)
    throw new ShapeError(
      [...path, 'for'],
      'applies to pause storms; a crash storm takes restartAfter',
    );
  if (kind === 'pause' && storm.restartAfter !== undefined)
    throw new ShapeError(
      [...path, 'restartAfter'],
      'applies to crash storms; a pause storm takes for',
    );
  const faults: ScheduledFault[] = [];
  for (let at = from + random.exponential(storm.every); at < storm.until;) {
    if (faults.length >= STORM_FAULTS_MAX)
      throw new ShapeError(
        [...path, 'every'],
        `makes more than ${STORM_FAULTS_MAX} faults between from and until`,
      );
    const target = random.pick(names);
    faults.push({
      atMs: Math.round(at),
      kind,
      target,
      restartAfterMs: kind === 'crash' ? (storm.restartAfter ?? 1_000) : undefined,
      forMs: kind === 'pause' ? (storm.for ?? 2_000) : undefined,
    });
    at += random.exponential(storm.every);
  }
  return faults;
}
