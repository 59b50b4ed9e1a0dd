/**
 * Runs one scenario with one seed: builds the simulated cloud, schedules the workload's API calls
 * and injects the scenario's faults (its explicit plan, plus a plan drawn for this seed in swarm
 * mode), runs the safety phase (faults on) and the liveness phase (faults healed, a budget to
 * converge), checking the safety invariants after every step. The result is a verdict and the
 * run's trace hash; same scenario, seed, store and code ⇒ same hash.
 *
 * Faults reach the control plane only as decorators over the port handles the cloud gives each
 * process (src/faults) and as events on processes and hosts; the same decorators tap what the
 * checkers need to see (commands on the bus, agents' operations on their hosts).
 */
import { assert } from '../lib/assert.ts';
import { Checkers, type CheckMode } from './checkers.ts';
import {
  basicAuth,
  createCloud,
  SIM_API_ORIGIN,
  type Cloud,
  type PortDecorators,
} from './cloud.ts';
import type { Bus, BusMessage } from '../ports/bus.ts';
import type { EventStore } from '../ports/event-store.ts';
import type { Hypervisor } from '../ports/hypervisor.ts';
import type { Locks } from '../ports/locks.ts';
import type { Storage } from '../ports/storage.ts';
import type { Scenario, StoreKind } from './scenario.ts';
import type { Row } from '../model/resources.ts';
import { scheduleWorkload, type ClientWorld, type WorkloadStats } from './workload-driver.ts';
import { Simulation, type RunResult } from './simulation.ts';
import type { Incarnation } from './process.ts';
import { createBusFaults, createDeliveryFaults, cuttableBus } from '../faults/bus-faults.ts';
import { faultyHypervisor, faultyStorage } from '../faults/adapter-faults.ts';
import { faultyStore } from '../faults/store-faults.ts';
import { createNoticeFaults } from '../faults/lock-faults.ts';
import { FaultInjector, type FaultWorld } from '../faults/injector.ts';
import { drawSwarm, mergePlans } from '../faults/swarm.ts';
import type { FaultPlan, RecordFault } from '../faults/plan.ts';

/** Options for {@link runScenario}. */
export interface ScenarioRunOptions {
  readonly seed: number;
  readonly store: StoreKind;
  /** Keep every trace entry (for trace files and divergence reports). Default false. */
  readonly keepTrace?: boolean;
  /**
   * Extra decorators, applied outermost — between the run's own fault and checker decorators and
   * the process. For broken variants of the control plane (a decorator that strips what an agent
   * needs to refuse a stale command, say) and extra observation; the checkers still see the world
   * as the run's own decorators do.
   */
  readonly decorate?: PortDecorators;
  /**
   * How the invariants are checked: `incremental` (default) from what each step touched, or
   * `full`, which also recomputes them over the whole world after every step and asserts that both
   * agree (a disagreement ends the run as a crash). Same verdicts and trace either way.
   */
  readonly check?: CheckMode;
  /**
   * Called every {@link PROGRESS_EVERY_STEPS} steps with how far the run is, for a heartbeat on
   * long runs. It only reads: the run is the same with or without it.
   */
  readonly progress?: (progress: RunProgress) => void;
  /** Steps between two calls of `progress`. Default {@link PROGRESS_EVERY_STEPS}. */
  readonly progressEverySteps?: number;
}

/** Steps between two calls of {@link ScenarioRunOptions.progress}, by default. */
export const PROGRESS_EVERY_STEPS = 1 << 16;

/** How far a run is: see {@link ScenarioRunOptions.progress}. */
export interface RunProgress {
  readonly steps: number;
  readonly simTimeMs: number;
  /** VMs, volumes and snapshots not settled (observed differs from desired, and no error). */
  readonly unsettled: number;
  /** Calls the workload's generators have made so far. */
  readonly generated: number;
}

/** A finished run. */
export interface ScenarioRun {
  readonly result: RunResult;
  /** The faults injected: the scenario's plan, with the seed's swarm draw merged in. */
  readonly plan: FaultPlan;
  /** Kept trace entries (empty unless `keepTrace`). */
  readonly trace: { readonly lines: readonly string[]; readonly dropped: number };
  /** What the workload did: generated calls, skipped calls, empty pools, `waitFor` timeouts. */
  readonly workload: WorkloadStats;
  /** Every row as the log left it at the end of the run (computed when asked). */
  finalRows(): Row[];
}

/** Runs `scenario` with `options.seed` to its verdict. */
export async function runScenario(
  scenario: Scenario,
  options: ScenarioRunOptions,
): Promise<ScenarioRun> {
  const sim = new Simulation({
    seed: options.seed,
    trace: { keepEntries: options.keepTrace === true },
  });
  sim.record({ kind: 'scenario', name: scenario.name, seed: options.seed });
  const record: RecordFault = (entry) => sim.record(entry);
  let checkers: Checkers | null = null;
  // The injector needs the cloud's names (swarm targets) and the decorators need the injector;
  // decorators run only when processes start, after both exist.
  let injector: FaultInjector | null = null;
  const faults = (): FaultInjector => {
    assert(injector !== null, 'ports decorated before the faults were set up');
    return injector;
  };
  const sessions = new Map<string, string[]>();
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
    decorate: compose(
      decorators(sim, {
        faults,
        checkers: () => {
          assert(checkers !== null, 'ports decorated before the checkers were set up');
          return checkers;
        },
        sessions,
        record,
      }),
      options.decorate ?? {},
    ),
  });
  checkers = new Checkers(cloud, { mode: options.check ?? 'incremental' });
  // Setup wrote before the checkers existed: feed them the log so far.
  for (const event of await cloud.store.readAll(0, 1_000_000))
    checkers.onCommit({ appends: [] }, [event]);

  const plan = planFor(scenario, cloud, sim, record);
  injector = new FaultInjector(plan, faultWorld(cloud, sessions, record));
  const { healAtMs } = plan;
  const phase = injector.phase;
  cloud.bus.setDeliveryFilter(
    createDeliveryFaults({
      phase,
      ...(plan.bus === undefined
        ? {}
        : { random: createBusFaults(plan.bus, sim.random.fork('faults-bus'), record) }),
      cuts: [injector.disconnects, injector.isolation],
      record,
    }),
  );
  if (plan.locks !== undefined) {
    cloud.locks.setExpiryNoticeFilter(
      createNoticeFaults(plan.locks, phase, sim.random.fork('faults-locks'), record),
    );
  }
  // The workload's own fork: generators draw from it, and a fork takes nothing from its parent.
  const workload = scheduleWorkload(
    clientWorld(cloud, checkers),
    scenario.workload,
    sim.random.fork('workload'),
  );
  injector.start();
  cloud.start();

  const checked = checkers;
  const maxSimTimeMs = Math.min(
    scenario.budgets.maxSimTimeMs,
    healAtMs + scenario.budgets.settleWithinMs,
  );
  const nowMs = (): number => sim.scheduler.epochMs + Math.floor(sim.scheduler.now);
  let goalAsked = false;
  const progress = options.progress;
  const progressEvery = options.progressEverySteps ?? PROGRESS_EVERY_STEPS;
  let progressAt = 0;
  assert(
    Number.isSafeInteger(progressEvery) && progressEvery >= 1,
    'progressEverySteps must be >= 1',
  );
  const result = await sim.run({
    budget: { maxSteps: scenario.budgets.maxSteps, maxSimTimeMs },
    check: () => {
      const steps = sim.scheduler.steps;
      if (progress !== undefined && steps !== progressAt && steps % progressEvery === 0) {
        progressAt = steps;
        progress({
          steps,
          simTimeMs: sim.scheduler.now,
          unsettled: checked.unsettledCount,
          generated: workload.stats().generated,
        });
      }
      return checked.checkSafety() ?? workload.violation();
    },
    goal: () => {
      if (sim.scheduler.now < healAtMs || !workload.done()) return false;
      goalAsked = true;
      return checked.converged(nowMs());
    },
  });
  // What was still open when the run gave up, as of its last step.
  const lastUnconverged =
    result.verdict === 'liveness' && goalAsked ? checked.unconverged(nowMs()) : undefined;
  await cloud.close();
  const explained =
    lastUnconverged !== undefined
      ? { ...result, reason: `${result.reason}: ${lastUnconverged}` }
      : result;
  return {
    result: explained,
    plan,
    trace: sim.trace.entries(),
    workload: workload.stats(),
    finalRows: () => checked.rows(),
  };
}

/** The run's fault plan: the scenario's, plus this seed's swarm draw. Traced as `fault.plan`. */
function planFor(
  scenario: Scenario,
  cloud: Cloud,
  sim: Simulation,
  record: RecordFault,
): FaultPlan {
  const { swarm, ...explicit } = scenario.faults;
  let plan: FaultPlan = explicit;
  if (swarm !== undefined) {
    const processes = [...cloud.processes.keys()];
    const draw = drawSwarm(
      swarm,
      {
        processes,
        mainLoops: processes.filter((name) => name.startsWith('mainloop-')),
        hosts: [...cloud.hostIds.keys()],
      },
      explicit.healAtMs,
      sim.random.fork('faults-swarm'),
    );
    record({ kind: 'fault.swarm', on: draw.on });
    plan = mergePlans(explicit, draw.plan);
  }
  record({ kind: 'fault.plan', plan });
  return plan;
}

/** How faults act on the simulated cloud. */
function faultWorld(
  cloud: Cloud,
  sessions: ReadonlyMap<string, readonly string[]>,
  record: RecordFault,
): FaultWorld {
  const { sim } = cloud;
  return {
    at(atMs, label, run) {
      assert(atMs >= sim.scheduler.now, `fault event ${label} at ${atMs} ms is in the past`);
      sim.schedule({ delayMs: atMs - sim.scheduler.now, label, run });
    },
    record,
    crashProcess(name, restartAfterMs) {
      processNamed(cloud, name).crash(restartAfterMs === undefined ? {} : { restartAfterMs });
    },
    pauseProcess(name, forMs) {
      processNamed(cloud, name).pause(forMs === undefined ? {} : { resumeAfterMs: forMs });
    },
    expireSessions(name) {
      let expired = 0;
      for (const id of sessions.get(name) ?? []) {
        if (cloud.locks.sessionInfo(id)?.state !== 'open') continue;
        cloud.locks.expireSession(id);
        expired++;
      }
      return expired;
    },
    crashHost(name, forMs) {
      const host = hostNamed(cloud, name);
      if (forMs === undefined) host.crash();
      else host.reboot(forMs);
    },
    hangHost(name, forMs) {
      hostNamed(cloud, name).hang(forMs);
    },
    agentOf: (host) => `agent-${host}`,
    healWorld() {
      cloud.bus.setDeliveryFilter(null);
      cloud.locks.setExpiryNoticeFilter(null);
      for (const [name, process] of cloud.processes) {
        if (process.status === 'paused') {
          process.resume();
        } else if (process.status === 'crashed') {
          record({ kind: 'fault.heal-restart', target: name });
          process.start();
        }
      }
      for (const name of cloud.hostIds.keys()) {
        const host = hostNamed(cloud, name);
        if (host.status === 'down') host.boot();
      }
    },
  };
}

/** What the port decorators reach. */
interface DecoratorContext {
  readonly faults: () => FaultInjector;
  readonly checkers: () => Checkers;
  /** Lock sessions opened, by process name (for `session-expire`). */
  readonly sessions: Map<string, string[]>;
  readonly record: RecordFault;
}

/**
 * The decorators over every process's port handles: faults (the injector's phase, rates and cuts)
 * and taps for the checkers and for `pause-holder` faults. Taps sit outermost on the bus and the
 * database (they see what the process asked) and innermost on hypervisors and pools (they see only
 * the operations that reached the host).
 */
function decorators(sim: Simulation, context: DecoratorContext): PortDecorators {
  const { faults, checkers, record } = context;
  // One fork per kind of port, drawn in the global step order.
  const adapterRandom = sim.random.fork('faults-adapters');
  const dbRandom = sim.random.fork('faults-db');
  const isAgent = (process: string): boolean => process.startsWith('agent-');
  const isMainLoop = (process: string): boolean => process.startsWith('mainloop-');
  const adapterContext = (incarnation: Incarnation) => {
    const injector = faults();
    return injector.plan.adapters === undefined
      ? undefined
      : {
          options: injector.plan.adapters,
          phase: injector.phase,
          random: adapterRandom,
          clock: incarnation.runtime.clock,
          record,
          who: incarnation.label,
        };
  };
  return {
    store: (process, incarnation, handle) => {
      const injector = faults();
      const faulty = faultyStore(handle, {
        options: injector.plan.database,
        phase: injector.phase,
        random: dbRandom,
        clock: incarnation.runtime.clock,
        record,
        who: incarnation.label,
        isCut: () => injector.isDatabaseCut(process),
      });
      if (isAgent(process)) return tapAgentStore(faulty, incarnation, checkers);
      if (isMainLoop(process)) {
        return {
          ...faulty,
          append: async (batch) => {
            const events = await faulty.append(batch);
            if (batch.fence !== undefined) injector.noteHold(process, 'write');
            return events;
          },
        };
      }
      return faulty;
    },
    bus: (process, incarnation, handle) => {
      const injector = faults();
      const cut = cuttableBus(handle, {
        isCut: () => injector.isIsolated(process),
        sleep: (ms) => incarnation.runtime.clock.sleep(ms),
        record,
        who: incarnation.label,
      });
      return tapBus(cut, process, incarnation, checkers);
    },
    locks: (process, incarnation, handle) =>
      tapLocks(handle, process, context, () => incarnation.sleep(0)),
    hypervisor: (_process, incarnation, handle) => {
      const tapped = tapHypervisor(handle, operationNotes(incarnation, checkers));
      const adapter = adapterContext(incarnation);
      return adapter === undefined ? tapped : faultyHypervisor(tapped, adapter);
    },
    storage: (_process, incarnation, handle) => {
      const tapped = tapStorage(handle, operationNotes(incarnation, checkers));
      const adapter = adapterContext(incarnation);
      return adapter === undefined ? tapped : faultyStorage(tapped, adapter);
    },
  };
}

/** `inner`'s decorators, then `outer`'s over them. */
function compose(inner: PortDecorators, outer: PortDecorators): PortDecorators {
  const chain =
    <H>(
      a: ((p: string, i: Incarnation, h: H) => H) | undefined,
      b: ((p: string, i: Incarnation, h: H) => H) | undefined,
    ) =>
    (process: string, incarnation: Incarnation, handle: H): H => {
      const first = a === undefined ? handle : a(process, incarnation, handle);
      return b === undefined ? first : b(process, incarnation, first);
    };
  return {
    store: chain(inner.store, outer.store),
    bus: chain(inner.bus, outer.bus),
    locks: chain(inner.locks, outer.locks),
    hypervisor: chain(inner.hypervisor, outer.hypervisor),
    storage: chain(inner.storage, outer.storage),
  };
}

/** The prefix of agent command channels; the rest is the host id. */
const AGENT_CHANNEL_PREFIX = 'cloudbed.agent.';

/** Shows the checkers what a process publishes and what an agent's handler receives. */
function tapBus(
  inner: Bus,
  process: string,
  incarnation: Incarnation,
  checkers: () => Checkers,
): Bus {
  const agent = process.startsWith('agent-');
  return {
    publish: (channel, message) => {
      if (incarnation.alive) {
        if (channel.startsWith(AGENT_CHANNEL_PREFIX)) {
          checkers().onCommand(
            channel.slice(AGENT_CHANNEL_PREFIX.length),
            message,
            incarnation.label,
          );
        }
        if (agent) {
          checkers().agents.published(incarnation.label, message);
          if (message.type === 'result' && message['error'] === 'stale-token') {
            // Fencing at work: worth seeing in the trace.
            incarnation.record({
              kind: 'check.stale-refused',
              commandId: message['commandId'],
              resource: message['resource'],
            });
          }
        }
      }
      return inner.publish(channel, message);
    },
    subscribe: (channel, handler) => {
      if (!agent) return inner.subscribe(channel, handler);
      return inner.subscribe(channel, (message: BusMessage, ch: string) => {
        const fencing = checkers().agents;
        fencing.delivered(incarnation.label, message);
        try {
          handler(message, ch);
        } finally {
          fencing.handled(incarnation.label, message);
        }
      });
    },
    close: () => inner.close(),
  };
}

/** Shows the checkers an agent's fencing checks (`fenceOf`) and orphan checks (`get`). */
function tapAgentStore(
  inner: EventStore,
  incarnation: Incarnation,
  checkers: () => Checkers,
): EventStore {
  return {
    ...inner,
    fenceOf: (resource) => {
      if (incarnation.alive) checkers().agents.storeCall(incarnation.label, 'fence', resource);
      return inner.fenceOf(resource);
    },
    get: (stream) => {
      if (incarnation.alive) checkers().agents.storeCall(incarnation.label, 'get', stream);
      return inner.get(stream);
    },
  };
}

/** Records lock sessions per process and tells the injector when a main loop holds a lock. */
function tapLocks(
  inner: Locks,
  process: string,
  context: DecoratorContext,
  yieldToScheduler: () => Promise<void>,
): Locks {
  return {
    openSession: async (options) => {
      const session = await inner.openSession(options);
      const list = context.sessions.get(process) ?? [];
      list.push(session.id);
      context.sessions.set(process, list);
      return {
        get id() {
          return session.id;
        },
        get expired() {
          return session.expired;
        },
        tryAcquire: async (name) => {
          const lease = await session.tryAcquire(name);
          if (lease !== null) context.faults().noteHold(process, 'acquire');
          return lease;
        },
        release: (lease) => session.release(lease),
        holds: async (lease) => {
          const held = await session.holds(lease);
          if (held && context.faults().noteHold(process, 'send')) {
            // Paused between the check and the send: the answer goes stale while it waits.
            await yieldToScheduler();
          }
          return held;
        },
        onExpired: (handler) => session.onExpired(handler),
        close: () => session.close(),
      };
    },
    close: () => inner.close(),
  };
}

/**
 * Tells the checkers that an agent's operation `op` on `keys` (the resources it acts for) reached
 * its host, unless the agent's incarnation is dead.
 */
type NoteOperation = (op: string, keys: readonly string[]) => void;

/** The {@link NoteOperation} of one incarnation. */
function operationNotes(incarnation: Incarnation, checkers: () => Checkers): NoteOperation {
  return (op, keys) => {
    if (incarnation.alive) checkers().agents.operation(incarnation.label, op, keys);
  };
}

/** Shows the checkers the mutating hypervisor operations that reach the host. */
function tapHypervisor(inner: Hypervisor, note: NoteOperation): Hypervisor {
  return {
    capacity: () => inner.capacity(),
    listDomains: () => inner.listDomains(),
    getDomain: (name) => inner.getDomain(name),
    define: (spec) => (note('define', [spec.name]), inner.define(spec)),
    start: (name) => (note('start', [name]), inner.start(name)),
    shutdown: (name) => (note('shutdown', [name]), inner.shutdown(name)),
    destroy: (name) => (note('destroy', [name]), inner.destroy(name)),
    undefine: (name) => (note('undefine', [name]), inner.undefine(name)),
    close: () => inner.close(),
  };
}

/** Shows the checkers the mutating storage operations that reach the node. */
function tapStorage(inner: Storage, note: NoteOperation): Storage {
  // `vol@snap` may be on behalf of the snapshot's command or of its volume's.
  const keysOf = (name: string): readonly string[] => {
    const at = name.indexOf('@');
    return at < 0 ? [name] : [name.slice(at + 1), name.slice(0, at)];
  };
  return {
    pool: () => inner.pool(),
    list: () => inner.list(),
    get: (name) => inner.get(name),
    createVolume: (name, size) => (note('create', [name]), inner.createVolume(name, size)),
    resizeVolume: (name, size) => (note('resize', [name]), inner.resizeVolume(name, size)),
    snapshot: (volume, snapshot) => (
      note('snapshot', [snapshot, volume]),
      inner.snapshot(volume, snapshot)
    ),
    clone: (snapshot, target) => (note('clone', [target]), inner.clone(snapshot, target)),
    // A rollback is on behalf of its volume's restore command.
    rollback: (snapshot) => (
      note('rollback', keysOf(snapshot).slice(-1)),
      inner.rollback(snapshot)
    ),
    destroy: (name) => (note('destroy', keysOf(name)), inner.destroy(name)),
    diskPath: (volume) => inner.diskPath(volume),
    close: () => inner.close(),
  };
}

/** The simulated cloud as the workload's clients reach it: its API, clock, trace and checkers. */
function clientWorld(cloud: Cloud, checkers: Checkers): ClientWorld {
  const { sim } = cloud;
  return {
    schedule: (delayMs, label, run) => {
      sim.schedule({ delayMs, label, run });
    },
    nowMs: () => sim.scheduler.now,
    send: (request) => {
      const keys = cloud.accounts.get(request.as);
      const headers: Record<string, string> = { accept: 'application/json' };
      if (keys !== undefined) headers['authorization'] = basicAuth(keys.accessKey, keys.secretKey);
      if (request.body !== undefined) headers['content-type'] = 'application/json';
      return cloud.request({
        method: request.method,
        url: `${SIM_API_ORIGIN}${request.path}`,
        headers,
        body: request.body === undefined ? '' : JSON.stringify(request.body),
      });
    },
    record: (entry) => sim.record(entry),
    acknowledge: (ack) => checkers.acknowledge(ack),
  };
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
