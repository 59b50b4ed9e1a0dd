// A small simulated world for the agent and background tests: one Simulation, the in-memory event
// store with the model's projector, a SimBus, simulated compute hosts and storage nodes, and a
// `driver` process that stands in for the main loop (it appends `*.command-sent` with a fence and
// publishes the command) and records every report and change notice. The tests step the scheduler
// themselves (`runFor`, `runUntil`) and look at world state through the hosts' synchronous
// inspection and the store.
import { expect } from 'vitest';
import { createMemoryEventStore } from '../../../src/adapters/memory-event-store.ts';
import { assert } from '../../../src/lib/assert.ts';
import type { AgentCommand, VmEnsureCommand } from '../../../src/model/commands.ts';
import { commandResource } from '../../../src/model/commands.ts';
import { newEvent, type EventDataMap, type EventType } from '../../../src/model/events.ts';
import { projector } from '../../../src/model/projector.ts';
import { BYTES_PER_GB, diskSource } from '../../../src/model/resources.ts';
import { CHANNELS, type Bus, type BusMessage } from '../../../src/ports/bus.ts';
import type { EventStore, NewEvent, Projection } from '../../../src/ports/event-store.ts';
import type { Hypervisor } from '../../../src/ports/hypervisor.ts';
import type { Storage } from '../../../src/ports/storage.ts';
import { bindStore } from '../../../src/sim/bind-store.ts';
import { SimComputeHost } from '../../../src/sim/hosts/compute-host.ts';
import type {
  HypervisorOperation,
  LatencyTable,
  StorageOperation,
} from '../../../src/sim/hosts/latency.ts';
import { SimStorageNode } from '../../../src/sim/hosts/storage-node.ts';
import type { Incarnation, SimProcess } from '../../../src/sim/process.ts';
import { quiesce } from '../../../src/sim/quiesce.ts';
import { SimBus, type DeliveryFilter } from '../../../src/sim/sim-bus.ts';
import { SIM_EPOCH_MS, Simulation } from '../../../src/sim/simulation.ts';
import {
  runComputeAgent,
  type ComputeAgentOptions,
} from '../../../src/control/agents/compute-agent.ts';
import {
  runStorageAgent,
  type StorageAgentOptions,
} from '../../../src/control/agents/storage-agent.ts';
import {
  runBackground,
  type BackgroundOptions,
} from '../../../src/control/background/background.ts';

export const ACCOUNT = 'acct-00000001';
export const POOL_BYTES = 2048 * BYTES_PER_GB;

/** A report or notice as the driver received it, with the virtual time (ms since the start). */
export interface Received {
  readonly t: number;
  readonly message: BusMessage;
}

/** Counts of port calls per operation, across incarnations. */
export type CallCounts = Record<string, number>;

export interface WorldOptions {
  readonly seed: number;
  readonly compute?: readonly string[];
  readonly storage?: readonly string[];
  readonly computeMemoryMb?: number;
  readonly hypervisorLatency?: Partial<LatencyTable<HypervisorOperation>>;
  readonly storageLatency?: Partial<LatencyTable<StorageOperation>>;
  readonly deliveryFilter?: DeliveryFilter;
}

export type AgentWorld = ReturnType<typeof createAgentWorld>;

export function createAgentWorld(options: WorldOptions) {
  const sim = new Simulation({
    seed: options.seed,
    trace: { keepEntries: true },
    traceEvents: false,
  });
  const store: EventStore = createMemoryEventStore({ projector });
  const bus = new SimBus({
    sim,
    ...(options.deliveryFilter === undefined ? {} : { deliveryFilter: options.deliveryFilter }),
  });
  const dbRandom = sim.random.fork('db');
  const compute = new Map<string, SimComputeHost>();
  for (const id of options.compute ?? []) {
    compute.set(
      id,
      new SimComputeHost({
        sim,
        id,
        capacity: { vcpus: 16, memoryMb: options.computeMemoryMb ?? 16_384 },
        ...(options.hypervisorLatency === undefined ? {} : { latency: options.hypervisorLatency }),
      }),
    );
  }
  const storage = new Map<string, SimStorageNode>();
  for (const id of options.storage ?? []) {
    storage.set(
      id,
      new SimStorageNode({
        sim,
        id,
        pool: 'cloudbed',
        sizeBytes: POOL_BYTES,
        ...(options.storageLatency === undefined ? {} : { latency: options.storageLatency }),
      }),
    );
  }
  const hypervisorCalls: CallCounts = {};
  const storageCalls: CallCounts = {};
  const reports: Received[] = [];
  const changes: Received[] = [];
  let driverBus: Bus | null = null;

  const driver = sim.spawn('driver', async (inc) => {
    const b = bus.busFor(inc);
    await b.subscribe(CHANNELS.reports, (message) =>
      reports.push({ t: sim.scheduler.now, message }),
    );
    await b.subscribe(CHANNELS.changes, (message) =>
      changes.push({ t: sim.scheduler.now, message }),
    );
    driverBus = b;
    await new Promise<void>(() => {});
  });
  driver.start();

  const storeFor = (inc: Incarnation): EventStore =>
    bindStore(inc, { sim, store, random: dbRandom });

  /** Runs events until virtual time `t` (ms since the start) has been reached. */
  async function runUntilTime(t: number): Promise<void> {
    // Work started outside a step (a process started by the test) settles before we look ahead.
    await quiesce();
    for (let steps = 0; ; steps++) {
      assert(steps < 2_000_000, 'too many steps');
      const next = sim.scheduler.peekTime();
      if (next === undefined || next > t) break;
      await sim.scheduler.step();
      checkHealthy();
    }
    // Let the clock reach t even if nothing happens until then.
    if (sim.scheduler.now < t) {
      sim.schedule({ delayMs: t - sim.scheduler.now, label: 'test.until', run: () => {} });
      await sim.scheduler.step();
    }
  }

  function checkHealthy(): void {
    const crash = sim.trace.entries().lines.find((line) => line.includes('"sim.crash"'));
    expect(crash).toBeUndefined();
  }

  return {
    sim,
    store,
    bus,
    compute,
    storage,
    hypervisorCalls,
    storageCalls,
    reports,
    changes,
    driver,

    now: (): number => sim.scheduler.now,

    /** Runs for `ms` of virtual time. */
    runFor: (ms: number): Promise<void> => runUntilTime(sim.scheduler.now + ms),

    /** Runs until `predicate` holds (checked after every step); fails after `maxMs` of virtual time. */
    async runUntil(predicate: () => boolean, maxMs: number, what = 'condition'): Promise<void> {
      const deadline = sim.scheduler.now + maxMs;
      await quiesce();
      for (let steps = 0; !predicate(); steps++) {
        assert(steps < 2_000_000, 'too many steps');
        const next = sim.scheduler.peekTime();
        if (next === undefined || next > deadline)
          throw new Error(`${what}: not reached in ${maxMs} ms`);
        await sim.scheduler.step();
        checkHealthy();
      }
    },

    /** Appends events outside the simulation (seeding), one stream at a time. */
    async append(
      stream: string,
      events: readonly NewEvent[],
      fence?: { resource: string; token: number },
    ): Promise<void> {
      const current = await store.get(stream);
      await store.append({
        appends: [{ stream, expectedVersion: current?.version ?? 0, events }],
        ...(fence === undefined ? {} : { fence }),
      });
    },

    /** Publishes `message` from the driver at the current virtual time (or after `delayMs`). */
    publish(channel: string, message: BusMessage, delayMs = 0): void {
      sim.schedule({
        delayMs,
        label: 'test.publish',
        run: () => {
          assert(driverBus !== null, 'driver not ready');
          void driverBus.publish(channel, message);
        },
      });
    },

    spawnCompute(hostId: string, agentOptions: Partial<ComputeAgentOptions> = {}): SimProcess {
      const host = compute.get(hostId);
      assert(host !== undefined, `no compute host ${hostId}`);
      return sim.spawn(`agent-${hostId}`, (inc) =>
        runComputeAgent({
          runtime: inc.runtime,
          hostId,
          hypervisor: countCalls(host.hypervisorFor(inc), hypervisorCalls),
          bus: bus.busFor(inc),
          store: storeFor(inc),
          options: agentOptions,
        }),
      );
    },

    spawnStorage(nodeId: string, agentOptions: Partial<StorageAgentOptions> = {}): SimProcess {
      const node = storage.get(nodeId);
      assert(node !== undefined, `no storage node ${nodeId}`);
      return sim.spawn(`agent-${nodeId}`, (inc) =>
        runStorageAgent({
          runtime: inc.runtime,
          hostId: nodeId,
          storage: countCalls(node.storageFor(inc), storageCalls),
          bus: bus.busFor(inc),
          store: storeFor(inc),
          options: agentOptions,
        }),
      );
    },

    spawnBackground(name: string, backgroundOptions: Partial<BackgroundOptions> = {}): SimProcess {
      return sim.spawn(name, (inc) =>
        runBackground({
          runtime: inc.runtime,
          store: storeFor(inc),
          bus: bus.busFor(inc),
          options: backgroundOptions,
        }),
      );
    },

    /** Results received for `commandId`. */
    resultsFor(commandId: string): BusMessage[] {
      return reports
        .map((r) => r.message)
        .filter((m) => m.type === 'result' && m['commandId'] === commandId);
    },

    inventoriesOf(hostId: string): Received[] {
      return reports.filter(
        (r) => r.message.type === 'inventory' && r.message['hostId'] === hostId,
      );
    },

    async row(id: string): Promise<Projection> {
      const row = await store.get(id);
      assert(row !== null, `no row ${id}`);
      return row;
    },

    async eventTypes(stream: string): Promise<string[]> {
      return (await store.readStream(stream)).map((e) => e.type);
    },

    checkHealthy,
  };
}

/** Wraps a port so every call counts under its method name. */
function countCalls<T extends Hypervisor | Storage>(port: T, counts: CallCounts): T {
  return new Proxy(port, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      return (...args: unknown[]) => {
        counts[property] = (counts[property] ?? 0) + 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

// ---- events and commands the tests seed ----

export function ev<T extends EventType>(
  type: T,
  data: EventDataMap[T],
  atMs = SIM_EPOCH_MS,
): NewEvent {
  return newEvent(type, data, { atMs, actor: 'test' });
}

export function hostCreated(kind: 'compute' | 'storage'): NewEvent {
  return ev('host.created', {
    name: `a ${kind} host`,
    kind,
    vcpus: kind === 'compute' ? 16 : null,
    memoryMb: kind === 'compute' ? 16_384 : null,
    poolSizeGb: kind === 'storage' ? 2048 : null,
  });
}

export function vmCreated(
  rootVolumeId: string,
  desired: 'running' | 'stopped' = 'running',
): NewEvent {
  return ev('vm.created', {
    accountId: ACCOUNT,
    name: 'web',
    imageId: 'img-00000001',
    vcpus: 1,
    memoryMb: 512,
    rootDiskGb: 10,
    rootVolumeId,
    volumeIds: [],
    desired,
  });
}

export function volumeCreated(options: {
  virtualMachineId?: string | null;
  storageNodeId?: string | null;
  sizeGb?: number;
  root?: boolean;
}): NewEvent {
  return ev('volume.created', {
    accountId: ACCOUNT,
    name: 'disk',
    sizeGb: options.sizeGb ?? 10,
    root: options.root ?? false,
    imageId: options.root === true ? 'img-00000001' : null,
    sourceSnapshotId: null,
    virtualMachineId: options.virtualMachineId ?? null,
    storageNodeId: options.storageNodeId ?? null,
  });
}

export function snapshotCreated(volumeId: string, storageNodeId: string | null): NewEvent {
  return ev('snapshot.created', {
    accountId: ACCOUNT,
    name: 'snap',
    volumeId,
    sizeGb: 10,
    storageNodeId,
  });
}

let commandCounter = 0;

export function vmEnsure(
  vmId: string,
  power: 'running' | 'stopped' | 'absent',
  token: number,
  options: { commandId?: string; memoryMb?: number; volumeId?: string } = {},
): VmEnsureCommand {
  const volumeId = options.volumeId ?? 'vol-00000001';
  return {
    type: 'vm.ensure',
    commandId: options.commandId ?? `cmd-${++commandCounter}`,
    token,
    vmId,
    spec: {
      vcpus: 1,
      memoryMb: options.memoryMb ?? 512,
      disks: [{ target: 'vda', volumeId, source: diskSource(volumeId), storageNodeId: 'stor-1' }],
    },
    power,
  };
}

/** What the main loop does to send a command: record it with a fence, then publish it. */
export async function sendCommand(
  world: AgentWorld,
  hostId: string,
  command: AgentCommand,
  attempt = 1,
): Promise<void> {
  const resource = commandResource(command);
  const prefix = command.type.startsWith('vm.')
    ? 'vm'
    : command.type === 'snapshot.ensure'
      ? 'snapshot'
      : 'volume';
  await world.append(
    resource,
    [
      ev(
        `${prefix}.command-sent`,
        {
          commandId: command.commandId,
          command: command.type,
          hostId,
          attempt,
          nextAttemptAtMs: SIM_EPOCH_MS + world.now() + 10_000,
          token: command.token,
          goal: 'test',
        },
        SIM_EPOCH_MS + world.now(),
      ),
    ],
    { resource, token: command.token },
  );
  world.publish(CHANNELS.agent(hostId), command as unknown as BusMessage);
}
