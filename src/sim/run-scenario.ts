/**
 * Runs one scenario with one seed: builds the simulated cloud, schedules the workload's API calls
 * and the fault schedule, runs the safety phase (faults on) and the liveness phase (faults healed,
 * a budget to converge), checking the safety invariants after every step. The result is a verdict
 * and the run's trace hash; same scenario, seed, store and code ⇒ same hash.
 */
import { assertNever } from '../lib/assert.ts';
import { Checkers } from './checkers.ts';
import { basicAuth, createCloud, SIM_API_ORIGIN, type Cloud } from './cloud.ts';
import type { ApiResponse } from '../control/api/types.ts';
import {
  substitute,
  type Scenario,
  type ScheduledFault,
  type StoreKind,
  type WorkloadStep,
} from './scenario.ts';
import { Simulation, type RunResult } from './simulation.ts';
import { createBusFaults } from '../faults/bus-faults.ts';

/** Options for {@link runScenario}. */
export interface ScenarioRunOptions {
  readonly seed: number;
  readonly store: StoreKind;
  /** Keep every trace entry (for trace files and divergence reports). Default false. */
  readonly keepTrace?: boolean;
}

/** A finished run. */
export interface ScenarioRun {
  readonly result: RunResult;
  /** Kept trace entries (empty unless `keepTrace`). */
  readonly trace: { readonly lines: readonly string[]; readonly dropped: number };
}

export async function runScenario(
  scenario: Scenario,
  options: ScenarioRunOptions,
): Promise<ScenarioRun> {
  const sim = new Simulation({
    seed: options.seed,
    trace: { keepEntries: options.keepTrace === true },
  });
  sim.record({ kind: 'scenario', name: scenario.name, seed: options.seed });
  let checkers: Checkers | null = null;
  const cloud = await createCloud(sim, {
    topology: scenario.topology,
    store: options.store,
    onCommit: (batch, events) => {
      checkers?.onCommit(batch, events);
      sim.record({
        kind: 'db.commit',
        events: events.map((e) => `${e.stream}/${e.version}/${e.type}`),
      });
    },
  });
  checkers = new Checkers(cloud);
  // Setup wrote before the checkers existed: feed them the log so far.
  for (const event of await cloud.store.readAll(0, 1_000_000))
    checkers.onCommit({ appends: [] }, [event]);

  const { healAtMs } = scenario.faults;
  const workload = scheduleWorkload(cloud, scenario.workload, checkers);
  scheduleFaults(cloud, scenario.faults.schedule);
  if (scenario.faults.bus !== undefined) {
    cloud.bus.setDeliveryFilter(
      createBusFaults(scenario.faults.bus, sim.random.fork('faults-bus')),
    );
    sim.schedule({
      delayMs: healAtMs,
      label: 'faults.heal',
      run: () => cloud.bus.setDeliveryFilter(null),
    });
  }
  cloud.start();

  const checked = checkers;
  const maxSimTimeMs = Math.min(
    scenario.budgets.maxSimTimeMs,
    healAtMs + scenario.budgets.settleWithinMs,
  );
  let lastUnconverged: string | undefined;
  const result = await sim.run({
    budget: { maxSteps: scenario.budgets.maxSteps, maxSimTimeMs },
    check: () => checked.checkSafety() ?? workload.violation(),
    goal: () => {
      if (sim.scheduler.now < healAtMs || !workload.done()) return false;
      lastUnconverged = checked.unconverged(sim.scheduler.epochMs + Math.floor(sim.scheduler.now));
      return lastUnconverged === undefined;
    },
  });
  await cloud.close();
  const explained =
    result.verdict === 'liveness' && lastUnconverged !== undefined
      ? { ...result, reason: `${result.reason}: ${lastUnconverged}` }
      : result;
  return { result: explained, trace: sim.trace.entries() };
}

interface WorkloadProgress {
  /** True once every step has been answered (or timed out). */
  done(): boolean;
  /** A broken expectation of the workload (`expectStatus`), if any. */
  violation(): string | undefined;
}

/** Schedules each workload step as a client request at its time. */
function scheduleWorkload(
  cloud: Cloud,
  steps: readonly WorkloadStep[],
  checkers: Checkers,
): WorkloadProgress {
  const saved = new Map<string, string>();
  let pending = steps.length;
  let broken: string | undefined;
  steps.forEach((step, index) => {
    cloud.sim.schedule({
      delayMs: step.atMs,
      label: 'client.request',
      run: () => {
        void send(cloud, step, index, saved).then((outcome) => {
          pending--;
          if (outcome.response === null) return;
          const { response } = outcome;
          if (step.expectStatus !== undefined && response.status !== step.expectStatus) {
            broken ??= `workload[${index}] ${step.method} ${outcome.path}: expected status ${step.expectStatus}, got ${response.status}: ${response.body.slice(0, 300)}`;
          }
          if (response.status >= 200 && response.status < 300 && step.method !== 'GET') {
            const body = parseJson(response.body);
            const id = typeof body?.['id'] === 'string' ? body['id'] : undefined;
            const rev = typeof body?.['rev'] === 'number' ? body['rev'] : undefined;
            if (id !== undefined && rev !== undefined) {
              checkers.acknowledge({
                stream: id,
                version: rev,
                what: `workload[${index}] ${step.method} ${outcome.path}`,
              });
            }
            if (step.save !== undefined && id !== undefined) saved.set(step.save, id);
          }
        });
      },
    });
  });
  return { done: () => pending === 0, violation: () => broken };
}

async function send(
  cloud: Cloud,
  step: WorkloadStep,
  index: number,
  saved: ReadonlyMap<string, string>,
): Promise<{ path: string; response: ApiResponse | null }> {
  const missing: string[] = [];
  const path = substitute(step.path, saved, missing) as string;
  const body = substitute(step.body, saved, missing);
  if (missing.length > 0) {
    cloud.sim.record({
      kind: 'client.skip',
      step: index,
      reason: `{${missing[0]}} was never saved (its request failed)`,
    });
    return { path, response: null };
  }
  const keys = cloud.accounts.get(step.as);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (keys !== undefined) headers['authorization'] = basicAuth(keys.accessKey, keys.secretKey);
  if (step.body !== undefined) headers['content-type'] = 'application/json';
  const response = await cloud.request({
    method: step.method,
    url: `${SIM_API_ORIGIN}${path}`,
    headers,
    body: body === undefined ? '' : JSON.stringify(body),
  });
  cloud.sim.record({
    kind: 'client.response',
    step: index,
    request: `${step.method} ${path}`,
    status: response?.status ?? 'no-answer',
  });
  return { path, response };
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object'
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Schedules the scenario's explicit faults. */
function scheduleFaults(cloud: Cloud, faults: readonly ScheduledFault[]): void {
  for (const fault of faults) {
    cloud.sim.schedule({
      delayMs: fault.atMs,
      label: `fault.${fault.kind}`,
      run: () => {
        switch (fault.kind) {
          case 'crash':
            processNamed(cloud, fault.target).crash(
              fault.restartAfterMs === undefined ? {} : { restartAfterMs: fault.restartAfterMs },
            );
            return;
          case 'pause':
            processNamed(cloud, fault.target).pause({ resumeAfterMs: fault.forMs ?? 0 });
            return;
          case 'host-crash': {
            const host = hostNamed(cloud, fault.target);
            host.crash();
            cloud.sim.schedule({
              delayMs: fault.forMs ?? 0,
              label: 'fault.host-boot',
              run: () => host.boot(),
            });
            return;
          }
          case 'host-hang':
            hostNamed(cloud, fault.target).hang(fault.forMs ?? 0);
            return;
          default:
            assertNever(fault.kind, 'fault kind');
        }
      },
    });
  }
}

function processNamed(cloud: Cloud, name: string) {
  const process = cloud.processes.get(name);
  if (process === undefined) {
    throw new Error(
      `fault target '${name}' names no process; processes: ${[...cloud.processes.keys()].join(', ')}`,
    );
  }
  return process;
}

function hostNamed(cloud: Cloud, name: string) {
  const id = cloud.hostIds.get(name);
  const host =
    id === undefined ? undefined : (cloud.computeHosts.get(id) ?? cloud.storageNodes.get(id));
  if (host === undefined) {
    throw new Error(
      `fault target '${name}' names no host; hosts: ${[...cloud.hostIds.keys()].join(', ')}`,
    );
  }
  return host;
}
