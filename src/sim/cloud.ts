/**
 * The simulated cloud: the real control plane — API, main loops, background service, one compute
 * agent per compute host and one storage agent per storage node — wired onto simulated hosts, the
 * simulated Redis bus, the simulated lock service and one event store (in memory or SQL on
 * pg-mem), all inside one {@link Simulation}. Every process gets port handles bound to its
 * incarnation, so crashing it freezes it at whatever await it is parked on.
 *
 * The cloud is set up the way an operator would: the admin account is bootstrapped, then accounts,
 * their keys and the hosts are created through the API itself before any process starts.
 */
import { assert } from '../lib/assert.ts';
import type { Prng } from '../lib/prng.ts';
import { createMemoryEventStore } from '../adapters/memory-event-store.ts';
import { createSqlEventStore } from '../adapters/sql-event-store.ts';
import { createApi } from '../control/api/api.ts';
import { bootstrapAdmin } from '../control/api/bootstrap.ts';
import type { ApiRequest, ApiResponse } from '../control/api/types.ts';
import { runComputeAgent } from '../control/agents/compute-agent.ts';
import { runStorageAgent } from '../control/agents/storage-agent.ts';
import { runBackground } from '../control/background/background.ts';
import { runMainLoop } from '../control/mainloop/main-loop.ts';
import { projector } from '../model/projector.ts';
import type { SecretKdf } from '../model/resources.ts';
import { upcast } from '../model/events.ts';
import type { Bus, BusMessage, Subscription } from '../ports/bus.ts';
import type { AppendBatch, EventStore, StoredEvent } from '../ports/event-store.ts';
import type { Hypervisor } from '../ports/hypervisor.ts';
import type { Locks } from '../ports/locks.ts';
import type { Storage } from '../ports/storage.ts';
import type { Random, Runtime } from '../ports/runtime.ts';
import { bindStore } from './bind-store.ts';
import { SimComputeHost } from './hosts/compute-host.ts';
import { SimStorageNode } from './hosts/storage-node.ts';
import type { Incarnation, SimProcess } from './process.ts';
import type { StoreKind } from './scenario.ts';
import { SimBus } from './sim-bus.ts';
import { SimLockService } from './sim-locks.ts';
import type { Simulation } from './simulation.ts';

/** The shape of the cloud to build. */
export interface CloudTopology {
  readonly compute: { readonly count: number; readonly vcpus: number; readonly memoryMb: number };
  readonly storage: { readonly count: number; readonly poolSizeGb: number };
  readonly mainLoops: number;
  /** User accounts to create, each with one key pair. */
  readonly accounts: readonly string[];
}

/** Options for {@link createCloud}. */
export interface CloudOptions {
  readonly topology: CloudTopology;
  readonly store: StoreKind;
  /**
   * The admin's key pair; default `admin` / `admin-secret` (a simulated cloud needs no secrets).
   * `secretKdf`: the slow hash for a secret a person chose (see bootstrapAdmin).
   */
  readonly admin?: {
    readonly accessKey: string;
    readonly secretKey: string;
    readonly secretKdf?: SecretKdf;
  };
  /** Called with every committed batch and its stored events, in commit order (checkers). */
  readonly onCommit?: (batch: AppendBatch, events: readonly StoredEvent[]) => void;
  /** Wraps the port handles each process incarnation gets (fault injection, observation). */
  readonly decorate?: PortDecorators;
  /**
   * Where the API draws access keys, secrets and salts. Default: the run's seeded forks, so a run
   * replays exactly; `cloudbed serve` passes the system's CSPRNG (its seed is no secret).
   */
  readonly secrets?: Random;
  /** Origins whose browser scripts may call the API (CORS); default none. */
  readonly corsOrigins?: readonly string[];
}

/**
 * Decorators over the port handles of one incarnation, applied where the cloud binds them. Each gets
 * the process name (`api`, `mainloop-1`, `agent-compute-2`), the incarnation and the handle, and
 * returns the handle the process uses. Missing ones leave handles as they are.
 */
export interface PortDecorators {
  readonly store?: (process: string, incarnation: Incarnation, handle: EventStore) => EventStore;
  readonly bus?: (process: string, incarnation: Incarnation, handle: Bus) => Bus;
  readonly locks?: (process: string, incarnation: Incarnation, handle: Locks) => Locks;
  readonly hypervisor?: (
    process: string,
    incarnation: Incarnation,
    handle: Hypervisor,
  ) => Hypervisor;
  readonly storage?: (process: string, incarnation: Incarnation, handle: Storage) => Storage;
}

/** Credentials of one account, for the workload's HTTP Basic auth. */
export interface AccountKeys {
  readonly accountId: string;
  readonly accessKey: string;
  readonly secretKey: string;
}

/** Base URL the simulated clients address; links in responses are built on it. */
export const SIM_API_ORIGIN = 'http://api.cloudbed.sim';

/** A simulated cloud, ready to run. */
export interface Cloud {
  readonly sim: Simulation;
  /** The database: world state shared by every process. */
  readonly store: EventStore;
  readonly bus: SimBus;
  readonly locks: SimLockService;
  readonly computeHosts: ReadonlyMap<string, SimComputeHost>;
  readonly storageNodes: ReadonlyMap<string, SimStorageNode>;
  /** Host names (`compute-1`, `storage-1`) to host ids. */
  readonly hostIds: ReadonlyMap<string, string>;
  /** Account names (`admin` and the topology's) to keys. */
  readonly accounts: ReadonlyMap<string, AccountKeys>;
  /** Every control-plane process by name: api, mainloop-N, background, agent-<host name>. */
  readonly processes: ReadonlyMap<string, SimProcess>;
  /** Starts every process (once, at the current virtual time). */
  start(): void;
  /**
   * Sends a request to the API process as a client would. Resolves with the response, or with
   * null when the API is down or does not answer within `timeoutMs` (a lost connection).
   */
  request(request: ApiRequest, timeoutMs?: number): Promise<ApiResponse | null>;
  close(): Promise<void>;
}

/** Default client timeout of {@link Cloud.request}, virtual ms. */
export const CLIENT_TIMEOUT_MS = 30_000;

/** Builds the cloud inside `sim`. Setup runs outside the scheduler, before any process starts. */
export async function createCloud(sim: Simulation, options: CloudOptions): Promise<Cloud> {
  const { topology } = options;
  const raw = await openStore(sim, options.store);
  const store = observeCommits(raw, options.onCommit);
  const dbRandom = sim.random.fork('db');
  const bus = new SimBus({ sim });
  const locks = new SimLockService({ sim });

  // Setup goes through the API with a runtime on the virtual clock and a bus nobody listens to.
  const setupRuntime = worldRuntime(sim, sim.random.fork('setup'));
  const secrets = options.secrets === undefined ? {} : { secrets: options.secrets };
  const setupApi = createApi({ runtime: setupRuntime, store, bus: silentBus, ...secrets });
  const admin = await bootstrapAdmin({
    store,
    runtime: setupRuntime,
    ...secrets,
    ...(options.admin?.secretKdf === undefined ? {} : { secretKdf: options.admin.secretKdf }),
    accessKey: options.admin?.accessKey ?? 'admin',
    secretKey: options.admin?.secretKey ?? 'admin-secret',
  });
  assert(admin.secretKey !== null, 'bootstrap must create the admin key');
  const accounts = new Map<string, AccountKeys>([
    [
      'admin',
      { accountId: admin.accountId, accessKey: admin.accessKey, secretKey: admin.secretKey },
    ],
  ]);
  const adminAuth = basicAuth(admin.accessKey, admin.secretKey);
  const setup = async (
    method: string,
    path: string,
    body: unknown,
  ): Promise<Record<string, unknown>> => {
    const response = await setupApi.handle({
      method,
      url: `${SIM_API_ORIGIN}${path}`,
      headers: {
        authorization: adminAuth,
        'content-type': 'application/json',
        accept: 'application/json',
      },
      body: JSON.stringify(body),
    });
    assert(
      response.status < 300,
      `cloud setup: ${method} ${path} answered ${response.status}: ${response.body}`,
    );
    return JSON.parse(response.body) as Record<string, unknown>;
  };
  for (const name of topology.accounts) {
    const account = await setup('POST', '/v1/accounts', { name, kind: 'user' });
    const key = await setup('POST', '/v1/apikeys', {
      accountId: account['id'],
      name: `${name}-key`,
    });
    accounts.set(name, {
      accountId: String(account['id']),
      accessKey: String(key['publicValue']),
      secretKey: String(key['secretValue']),
    });
  }
  const hostIds = new Map<string, string>();
  const computeHosts = new Map<string, SimComputeHost>();
  const storageNodes = new Map<string, SimStorageNode>();
  // Hosts are declared through the API as an operator would; the row's id names the simulated host.
  const addHost = async (name: string, declared: Record<string, unknown>): Promise<string> => {
    const row = await setup('POST', '/v1/hosts', { name, ...declared });
    const id = String(row['id']);
    hostIds.set(name, id);
    return id;
  };
  const capacity = { vcpus: topology.compute.vcpus, memoryMb: topology.compute.memoryMb };
  for (let i = 1; i <= topology.compute.count; i++) {
    const id = await addHost(`compute-${i}`, { kind: 'compute', ...capacity });
    computeHosts.set(id, new SimComputeHost({ sim, id, capacity }));
  }
  for (let i = 1; i <= topology.storage.count; i++) {
    const id = await addHost(`storage-${i}`, {
      kind: 'storage',
      poolSizeGb: topology.storage.poolSizeGb,
    });
    storageNodes.set(
      id,
      new SimStorageNode({
        sim,
        id,
        pool: 'cloudbed',
        sizeBytes: topology.storage.poolSizeGb * 1024 ** 3,
      }),
    );
  }

  const decorate = options.decorate ?? {};
  const dbFor = (name: string, incarnation: Incarnation): EventStore => {
    const handle = bindStore(incarnation, { sim, store, random: dbRandom });
    return decorate.store?.(name, incarnation, handle) ?? handle;
  };
  const busFor = (name: string, incarnation: Incarnation): Bus => {
    const handle = bus.busFor(incarnation);
    return decorate.bus?.(name, incarnation, handle) ?? handle;
  };
  const locksFor = (name: string, incarnation: Incarnation): Locks => {
    const handle = locks.locksFor(incarnation);
    return decorate.locks?.(name, incarnation, handle) ?? handle;
  };
  const processes = new Map<string, SimProcess>();
  let api: ReturnType<typeof createApi> | null = null;
  processes.set(
    'api',
    sim.spawn('api', (incarnation) => {
      api = createApi({
        runtime: incarnation.runtime,
        ...secrets,
        ...(options.corsOrigins === undefined ? {} : { corsOrigins: options.corsOrigins }),
        store: dbFor('api', incarnation),
        bus: busFor('api', incarnation),
      });
      // The API serves requests until it is crashed; its work happens in `request` below.
      return new Promise<void>(() => {});
    }),
  );
  for (let i = 1; i <= topology.mainLoops; i++) {
    const name = `mainloop-${i}`;
    processes.set(
      name,
      sim.spawn(name, (incarnation) =>
        runMainLoop({
          runtime: incarnation.runtime,
          store: dbFor(name, incarnation),
          bus: busFor(name, incarnation),
          locks: locksFor(name, incarnation),
          options: { instance: name },
        }),
      ),
    );
  }
  processes.set(
    'background',
    sim.spawn('background', (incarnation) =>
      runBackground({
        runtime: incarnation.runtime,
        store: dbFor('background', incarnation),
        bus: busFor('background', incarnation),
      }),
    ),
  );
  for (const [name, id] of hostIds) {
    const compute = computeHosts.get(id);
    const node = storageNodes.get(id);
    const processName = `agent-${name}`;
    processes.set(
      processName,
      sim.spawn(processName, (incarnation) => {
        // The order of binding is part of a run's identity: the host's port, then the bus, the store.
        const shared = () => ({
          runtime: incarnation.runtime,
          hostId: id,
          bus: busFor(processName, incarnation),
          store: dbFor(processName, incarnation),
        });
        if (compute !== undefined) {
          const handle = compute.hypervisorFor(incarnation);
          const hypervisor = decorate.hypervisor?.(processName, incarnation, handle) ?? handle;
          return runComputeAgent({ hypervisor, ...shared() });
        }
        assert(node !== undefined, `host ${name} is neither a compute host nor a storage node`);
        const handle = node.storageFor(incarnation);
        const storage = decorate.storage?.(processName, incarnation, handle) ?? handle;
        return runStorageAgent({ storage, ...shared() });
      }),
    );
  }

  let started = false;
  return {
    sim,
    store,
    bus,
    locks,
    computeHosts,
    storageNodes,
    hostIds,
    accounts,
    processes,
    start() {
      assert(!started, 'the cloud is already started');
      started = true;
      for (const process of processes.values()) process.start();
    },
    request(request, timeoutMs = CLIENT_TIMEOUT_MS) {
      const incarnation = processes.get('api')?.current ?? null;
      if (incarnation === null || api === null) return Promise.resolve(null);
      const handler = api;
      return new Promise<ApiResponse | null>((resolve) => {
        let settled = false;
        // Cancelled with the reply: the timeout's closure shares this scope, request body and all,
        // which would otherwise stay alive for the whole timeout after the answer.
        const timeout = sim.schedule({
          delayMs: timeoutMs,
          label: 'client.timeout',
          run: () => finish(null),
        });
        const finish = (response: ApiResponse | null): void => {
          if (settled) return;
          settled = true;
          timeout.cancel();
          resolve(response);
        };
        // The request reaches the API process after a network hop, and so does the reply.
        incarnation.schedule(0.2, 'api.request', () => {
          void incarnation.guard(handler.handle(request)).then((response) => {
            sim.schedule({ delayMs: 0.2, label: 'api.reply', run: () => finish(response) });
          });
        });
      });
    },
    async close() {
      bus.close();
      await raw.close();
    },
  };
}

async function openStore(sim: Simulation, kind: StoreKind): Promise<EventStore> {
  switch (kind) {
    case 'memory':
      return createMemoryEventStore({ projector, upcast });
    case 'pgmem': {
      // Loaded on first use: pg-mem and its SQL parser take about half a second to load, which
      // every fuzz worker on the memory store would otherwise pay for nothing.
      const { createPgMemDriver } = await import('./pgmem-driver.ts');
      const driver = createPgMemDriver({
        nowMs: () => sim.scheduler.epochMs + Math.floor(sim.scheduler.now),
      });
      return createSqlEventStore({ driver, schema: 'cloudbed', projector, upcast });
    }
  }
}

/** Reports every committed batch to `onCommit`, in commit order. */
function observeCommits(
  store: EventStore,
  onCommit: ((batch: AppendBatch, events: readonly StoredEvent[]) => void) | undefined,
): EventStore {
  if (onCommit === undefined) return store;
  return {
    ...store,
    append: async (batch) => {
      const events = await store.append(batch);
      onCommit(batch, events);
      return events;
    },
    readStream: (stream, from) => store.readStream(stream, from),
    readAll: (after, limit) => store.readAll(after, limit),
    get: (stream) => store.get(stream),
    list: (query) => store.list(query),
    fenceOf: (resource) => store.fenceOf(resource),
    close: () => store.close(),
  };
}

/** A runtime on the virtual clock for work done outside any process (cloud setup). */
function worldRuntime(sim: Simulation, random: Prng): Runtime {
  return {
    clock: {
      nowMs: () => sim.scheduler.epochMs + Math.floor(sim.scheduler.now),
      sleep: () => Promise.reject(new Error('setup code must not sleep')),
      timer: () => {
        throw new Error('setup code must not sleep');
      },
    },
    random,
    ids: sim.ids,
    log: {
      info: (message, fields) =>
        sim.record({ ...fields, kind: 'log', level: 'info', message, proc: 'setup' }),
      warn: (message, fields) =>
        sim.record({ ...fields, kind: 'log', level: 'warn', message, proc: 'setup' }),
    },
  };
}

/** A bus that reaches nobody: setup runs before any subscriber exists. */
const silentBus: Bus = {
  publish: (_channel: string, _message: BusMessage) => Promise.resolve(0),
  subscribe: (): Promise<Subscription> => Promise.resolve({ unsubscribe: () => Promise.resolve() }),
  close: () => Promise.resolve(),
};

/** The `Authorization` header value for HTTP Basic auth. */
export function basicAuth(accessKey: string, secretKey: string): string {
  return `Basic ${Buffer.from(`${accessKey}:${secretKey}`, 'utf8').toString('base64')}`;
}
