/**
 * A chaos run taken back into the simulator. {@link exportRun} turns a run directory into a
 * scenario: the staging file's hosts become the topology (compute hosts in file order are
 * compute-1, compute-2, …, storage nodes storage-1, …; sizes of the first of each kind), the
 * calls the runner sent become plain workload steps at the times they were sent (an id a call
 * created becomes a saved name, and later paths and bodies use the name), and the faults as
 * injected — with the times they struck, not the times planned, and without those that found no
 * process — become its fault schedule, healing when the real run healed.
 *
 * {@link compareRun} runs that scenario and sets the simulated end state beside the real one (the
 * event log of the run folded by the same projector): per VM, volume and snapshot, matched by
 * type and name, the final state and placement (up to a renaming of hosts) and the attempts the
 * last goal took. A difference that is the simulator being unfaithful is a contract case to write.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projector } from '../model/projector.ts';
import { anyRowOf, isRemoved, RECONCILED_TYPES, type Row } from '../model/resources.ts';
import type { Projection, StoredEvent } from '../ports/event-store.ts';
import { runScenario } from '../sim/run-scenario.ts';
import { scenarioYaml, toScenario } from '../sim/scenario.ts';
import type { RunResult } from '../sim/simulation.ts';
import { parseStagingConfig, type StagingConfig } from '../staging/config.ts';
import { targetsOf, toExperiment } from './experiment.ts';
import type { ChaosResult, WorkloadCall } from './runner.ts';
import type { TimedRecord } from './real-faults.ts';
import { parse as parseYaml } from 'yaml';

/** A run directory that cannot be read as one. */
export class RunDirError extends Error {
  override name = 'RunDirError';
}

function readText(runDir: string, file: string): string {
  try {
    return readFileSync(join(runDir, file), 'utf8');
  } catch (error) {
    throw new RunDirError(
      `${runDir} is not a chaos run directory: cannot read ${file} (${(error as Error).message})`,
    );
  }
}

function readLines<T>(runDir: string, file: string): T[] {
  return readText(runDir, file)
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);
}

/** What a run directory holds, read. */
interface RunFiles {
  readonly config: StagingConfig;
  readonly name: string;
  readonly accounts: readonly string[];
  readonly settleWithinMs: number;
  readonly calls: readonly WorkloadCall[];
  readonly faults: readonly TimedRecord[];
  readonly result: ChaosResult;
}

function readRun(runDir: string): RunFiles {
  const config = parseStagingConfig(readText(runDir, 'staging.yaml'), join(runDir, 'staging.yaml'));
  const experiment = toExperiment(
    parseYaml(readText(runDir, 'experiment.yaml')),
    targetsOf(config),
  );
  return {
    config,
    name: experiment.name,
    accounts: experiment.accounts,
    settleWithinMs: experiment.settleWithinMs,
    calls: readLines<WorkloadCall>(runDir, 'workload.jsonl').sort((a, b) => a.t - b.t),
    faults: readLines<TimedRecord>(runDir, 'faults.jsonl'),
    result: JSON.parse(readText(runDir, 'result.json')) as ChaosResult,
  };
}

/** Staging host names → the simulator's (compute-1…, storage-1…, in file order). */
export function simHostNames(config: StagingConfig): Map<string, string> {
  const names = new Map<string, string>();
  let compute = 0;
  let storage = 0;
  for (const host of config.hosts)
    names.set(host.name, host.kind === 'compute' ? `compute-${++compute}` : `storage-${++storage}`);
  return names;
}

/** Scenario data for a run directory (see the header). */
export function exportData(runDir: string): Record<string, unknown> {
  return scenarioOf(readRun(runDir));
}

/**
 * The process faults a run exports, each with the outcomes RealFaults records after carrying it out
 * (or missing it).
 */
const OUTCOMES: Readonly<Record<string, readonly string[]>> = {
  'fault.crash': ['fault.killed', 'fault.missed'],
  'fault.pause': ['fault.stopped', 'fault.missed'],
  'fault.bus-disconnect': ['fault.bus-killed', 'fault.missed'],
  'fault.session-expire': ['fault.session-expired', 'fault.missed'],
  'fault.db-disconnect': ['fault.db-terminated', 'fault.missed'],
};

function scenarioOf(run: RunFiles): Record<string, unknown> {
  const hosts = simHostNames(run.config);
  const computes = run.config.hosts.filter((h) => h.kind === 'compute');
  const storages = run.config.hosts.filter((h) => h.kind === 'storage');
  const processName = (name: string): string =>
    name.startsWith('agent-') ? `agent-${hosts.get(name.slice('agent-'.length)) ?? name}` : name;

  // Ids a call created, in the order they were answered, become saved names r1, r2, …
  const saved = new Map<string, string>();
  const named = (value: unknown): unknown => {
    if (typeof value === 'string') {
      let out = value;
      for (const [id, name] of saved) out = out.split(id).join(`{${name}}`);
      return out;
    }
    if (Array.isArray(value)) return value.map(named);
    if (value !== null && typeof value === 'object')
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, named(v)]));
    return value;
  };
  const workload = run.calls.map((call) => {
    const step: Record<string, unknown> = {
      at: `${call.t}ms`,
      as: call.as,
      request: `${call.method} ${named(call.path) as string}`,
    };
    if (call.body !== undefined) step['body'] = named(call.body);
    const created =
      call.method === 'POST' &&
      call.id !== null &&
      !saved.has(call.id) &&
      !call.path.includes(call.id);
    if (created && call.id !== null) {
      const name = `r${saved.size + 1}`;
      saved.set(call.id, name);
      step['save'] = name;
    }
    return step;
  });

  // A fault found no process when the next outcome recorded for its target is a miss (or, for a
  // session expiry, when it reached no session).
  const wasMissed = (f: TimedRecord, index: number): boolean =>
    f['sessions'] === 0 ||
    run.faults
      .slice(index + 1)
      .find((g) => g['target'] === f['target'] && OUTCOMES[f.kind]?.includes(g.kind) === true)
      ?.kind === 'fault.missed';
  const schedule: Record<string, unknown>[] = [];
  for (const [index, f] of run.faults.entries()) {
    const target = String(f['target']);
    const at = `${f.t}ms`;
    const restartAfter = f['restartAfterMs'];
    const forMs = f['forMs'];
    if (f.kind in OUTCOMES) {
      // A process fault, as the scenario writes it: its kind, and its restartAfter or for.
      if (!wasMissed(f, index))
        schedule.push({
          at,
          kind: f.kind.slice('fault.'.length),
          target: processName(target),
          ...(typeof restartAfter === 'number' ? { restartAfter: `${restartAfter}ms` } : {}),
          ...(typeof forMs === 'number' ? { for: `${forMs}ms` } : {}),
        });
    } else if (f.kind === 'fault.host-crash') {
      schedule.push({
        at,
        kind: 'host-crash',
        target: hosts.get(target) ?? target,
        ...(typeof forMs === 'number' ? { for: `${forMs}ms` } : {}),
      });
    } else if (f.kind === 'fault.pause-holder-armed') {
      // Armed here; it struck (and for how long) where the process stopped itself, if it did.
      const fired = run.faults.find(
        (g) => g.kind === 'fault.pause-holder' && g['target'] === target && g.t >= f.t,
      );
      if (fired !== undefined)
        schedule.push({
          at,
          kind: 'pause-holder',
          target,
          point: f['point'],
          for: `${String(fired['forMs'])}ms`,
        });
    }
  }
  const healed = run.faults.find((f) => f.kind === 'fault.heal');
  const lastCall = run.calls.at(-1)?.t ?? 0;
  return {
    name: `${run.name}-staging`,
    description: `the chaos run ${run.result.runDir} (verdict ${run.result.verdict}) as a scenario`,
    seed: 1,
    topology: {
      compute: {
        count: computes.length,
        ...(computes[0]?.kind === 'compute'
          ? { vcpus: computes[0].vcpus, memoryMb: computes[0].memoryMb }
          : {}),
      },
      storage: {
        count: storages.length,
        ...(storages[0]?.kind === 'storage' ? { poolSizeGb: storages[0].poolSizeGb } : {}),
      },
      mainLoops: run.config.mainLoop.instances,
      accounts: [...run.accounts],
    },
    workload,
    faults: { schedule, healAt: `${Math.max(healed?.t ?? 0, lastCall + 1)}ms` },
    budgets: { settleWithin: `${run.settleWithinMs}ms` },
  };
}

/** The scenario file of a run directory. */
export function exportRun(runDir: string): string {
  const data = exportData(runDir);
  // Validated as any scenario file is: an export that does not load is a bug here.
  toScenario(data);
  return scenarioYaml(data, [
    `Goal: the chaos run in ${runDir}, replayed in the simulator.`,
    'Method: the calls as they were sent (times in ms since the run started; ids the run created',
    'are saved names), the faults as they struck, the same heal and budget. Written by',
    '`cloudbed chaos export`; `cloudbed chaos compare` runs it and compares the end states.',
  ]);
}

/** One resource's end, real or simulated. */
export interface ResourceEnd {
  readonly state: string;
  /** The host's simulator name (compute-1, …), or null. */
  readonly host: string | null;
  readonly attempts: number;
}

/** One line of the comparison. */
export interface ResourceComparison {
  /** `virtualMachine vm-3`. */
  readonly resource: string;
  readonly real: ResourceEnd | null;
  readonly sim: ResourceEnd | null;
  /** Differences: `state`, `host` (beyond a renaming), `missing`. Empty when the ends agree. */
  readonly differs: readonly string[];
}

/** A comparison of a run with its export. */
export interface Comparison {
  readonly scenario: string;
  readonly sim: RunResult;
  readonly resources: readonly ResourceComparison[];
  /** Real host name (as the simulator names it) → simulated host, the renaming that fits best. */
  readonly renaming: ReadonlyMap<string, string>;
  readonly same: boolean;
  /** From the real heal to convergence, ms; null when the real run never converged. */
  readonly realConvergedInMs: number | null;
}

/** The rows of the real run: its event log folded by the projector. */
function realRows(runDir: string): Row[] {
  const projections = new Map<string, Projection>();
  for (const event of readLines<StoredEvent>(runDir, 'events.jsonl')) {
    const next = projector(projections.get(event.stream) ?? null, event);
    if (next === null) projections.delete(event.stream);
    else projections.set(event.stream, next);
  }
  return [...projections.values()].map(anyRowOf);
}

function ends(rows: readonly Row[], hostName: (id: string) => string | null) {
  const byKey = new Map<string, ResourceEnd>();
  for (const row of rows) {
    if (!(RECONCILED_TYPES as readonly string[]).includes(row.type)) continue;
    const r = row as Row & { name?: string; hostId?: string | null; storageNodeId?: string | null };
    const hostId = r.hostId ?? r.storageNodeId ?? null;
    byKey.set(`${row.type} ${r.name ?? row.id}`, {
      state: isRemoved(row) ? 'removed' : row.state,
      host: hostId === null ? null : hostName(hostId),
      attempts: (row as { attempts?: number }).attempts ?? 0,
    });
  }
  return byKey;
}

function hostNamer(rows: readonly Row[], rename: (name: string) => string | undefined) {
  const names = new Map<string, string>();
  for (const row of rows) if (row.type === 'host') names.set(row.id, rename(row.name) ?? row.name);
  return (id: string): string | null => names.get(id) ?? id;
}

/** Runs the export of `runDir` in the simulator and compares the end states. */
export async function compareRun(runDir: string): Promise<Comparison> {
  const run = readRun(runDir);
  const data = scenarioOf(run);
  const simRun = await runScenario(toScenario(data), { seed: 1, store: 'memory' });
  const stagingNames = simHostNames(run.config);
  // The deployment's log holds earlier runs too: only this run's accounts (and the hosts) count.
  const mine = new Set(Object.values(run.result.accounts));
  const real = realRows(runDir).filter(
    (row) => row.type === 'host' || mine.has((row as { accountId?: string }).accountId ?? ''),
  );
  const realEnds = ends(
    real,
    hostNamer(real, (name) => stagingNames.get(name)),
  );
  const simRows = simRun.finalRows();
  const simEnds = ends(
    simRows,
    hostNamer(simRows, () => undefined),
  );
  // How many resources each real host shares with each simulated host.
  const votes = new Map<string, Map<string, number>>();
  for (const [key, end] of realEnds) {
    const other = simEnds.get(key);
    if (end.host === null || other?.host === null || other === undefined) continue;
    const tally = votes.get(end.host) ?? new Map<string, number>();
    tally.set(other.host, (tally.get(other.host) ?? 0) + 1);
    votes.set(end.host, tally);
  }
  // A one-to-one renaming: the most shared placements first.
  const pairs = [...votes]
    .flatMap(([host, tally]) => [...tally].map(([other, n]) => ({ host, other, n })))
    .sort((a, b) => b.n - a.n || a.host.localeCompare(b.host) || a.other.localeCompare(b.other));
  const renaming = new Map<string, string>();
  const taken = new Set<string>();
  for (const { host, other } of pairs) {
    if (renaming.has(host) || taken.has(other)) continue;
    renaming.set(host, other);
    taken.add(other);
  }
  const keys = [...new Set([...realEnds.keys(), ...simEnds.keys()])].sort();
  const resources = keys.map((resource): ResourceComparison => {
    const r = realEnds.get(resource) ?? null;
    const s = simEnds.get(resource) ?? null;
    const differs: string[] = [];
    if (r === null || s === null) differs.push('missing');
    else {
      if (r.state !== s.state) differs.push('state');
      const mapped = r.host === null ? null : (renaming.get(r.host) ?? r.host);
      if (r.state !== 'removed' && mapped !== s.host) differs.push('host');
    }
    return { resource, real: r, sim: s, differs };
  });
  return {
    scenario: String(data['name']),
    sim: simRun.result,
    resources,
    renaming,
    same: resources.every((c) => c.differs.length === 0),
    realConvergedInMs: run.result.convergedInMs,
  };
}

/** The comparison as lines of text: one per resource, then a summary. */
export function formatComparison(c: Comparison): string[] {
  const convergedInMs = c.realConvergedInMs;
  const end = (e: ResourceEnd | null): string =>
    e === null ? '—' : `${e.state}${e.host === null ? '' : `@${e.host}`} (${e.attempts})`;
  const width = Math.max(8, ...c.resources.map((r) => r.resource.length));
  const lines = [
    `${'resource'.padEnd(width)}  ${'real: state@host (attempts)'.padEnd(32)}  simulated`,
    ...c.resources.map(
      (r) =>
        `${r.resource.padEnd(width)}  ${end(r.real).padEnd(32)}  ${end(r.sim)}${r.differs.length === 0 ? '' : `   DIFFERS: ${r.differs.join(', ')}`}`,
    ),
  ];
  const differing = c.resources.filter((r) => r.differs.length > 0).length;
  const renaming = [...c.renaming].map(([a, b]) => `${a}→${b}`).join(' ');
  lines.push(
    `hosts: ${renaming === '' ? 'no placements to compare' : renaming}`,
    `simulated: verdict=${c.sim.verdict} steps=${c.sim.steps} sim-time-ms=${Math.round(c.sim.simTimeMs)}; real converged ${convergedInMs === null ? 'never' : `${convergedInMs} ms`} after the heal`,
    c.same
      ? `same end state: ${c.resources.length} resources agree`
      : `different end state: ${differing} of ${c.resources.length} resources differ`,
  );
  return lines;
}
