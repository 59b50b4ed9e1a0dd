// Test harness for the API suites: createApi over the in-memory event store (with the real
// projector), a recording fake bus, a fixed clock and seeded ids; helpers to call the API as the
// seeded admin or as user accounts, and to play the main loop's and the agents' part by appending
// the events they would write (placement, observations), so that states such as "stopped" or
// "available" can be reached without running the control plane.

import { timerFromSleep } from '../../../src/lib/timer.ts';
import { Prng } from '../../../src/lib/prng.ts';
import { createMemoryEventStore } from '../../../src/adapters/memory-event-store.ts';
import { projector } from '../../../src/model/projector.ts';
import { newEvent, type EventDataMap, type EventType } from '../../../src/model/events.ts';
import { BYTES_PER_GB } from '../../../src/model/resources.ts';
import { createApi, bootstrapAdmin } from '../../../src/control/api/index.ts';
import type { Api, ApiLimits, ApiResponse } from '../../../src/control/api/index.ts';
import type { Bus, BusMessage } from '../../../src/ports/bus.ts';
import type { EventStore, StoredEvent } from '../../../src/ports/event-store.ts';
import type { Runtime } from '../../../src/ports/runtime.ts';

export const BASE = 'http://api.test:8080';
export const EPOCH_MS = 1_700_000_000_000;

/** A bus that records what is published; `failing` makes publish reject. */
export interface FakeBus extends Bus {
  readonly published: { channel: string; message: BusMessage }[];
  failing: boolean;
}

export function createFakeBus(): FakeBus {
  const published: { channel: string; message: BusMessage }[] = [];
  const bus: FakeBus = {
    published,
    failing: false,
    publish(channel, message) {
      if (bus.failing) return Promise.reject(new Error('bus down'));
      published.push({ channel, message });
      return Promise.resolve(0);
    },
    subscribe() {
      return Promise.resolve({ unsubscribe: () => Promise.resolve() });
    },
    close: () => Promise.resolve(),
  };
  return bus;
}

export interface TestRuntime extends Runtime {
  readonly logs: { level: string; message: string; fields?: Record<string, unknown> }[];
  advance(ms: number): void;
}

export function createTestRuntime(seed = 1): TestRuntime {
  const random = new Prng(seed).fork('api-test');
  const idRandom = new Prng(seed).fork('ids');
  let now = EPOCH_MS;
  const issued = new Set<string>();
  const logs: TestRuntime['logs'] = [];
  return {
    logs,
    advance(ms) {
      now += ms;
    },
    clock: {
      nowMs: () => now,
      sleep: () => Promise.resolve(),
      timer: (ms) => timerFromSleep(() => Promise.resolve(), ms),
    },
    random,
    ids: {
      next(prefix) {
        for (;;) {
          const id = `${prefix}-${idRandom.nextUint32().toString(16).padStart(8, '0')}`;
          if (!issued.has(id)) {
            issued.add(id);
            return id;
          }
        }
      },
    },
    log: {
      info: (message, fields) =>
        logs.push({ level: 'info', message, ...(fields ? { fields } : {}) }),
      warn: (message, fields) =>
        logs.push({ level: 'warn', message, ...(fields ? { fields } : {}) }),
    },
  };
}

/** Credentials of an account. */
export interface Credentials {
  readonly accountId: string;
  readonly accessKey: string;
  readonly secretKey: string;
}

/** A parsed response. */
export interface Reply extends ApiResponse {
  /** The JSON body (undefined for HTML or empty bodies). */
  readonly json: any;
}

export interface CallOptions {
  readonly body?: unknown;
  /** Raw body: sent as is (no JSON encoding). */
  readonly raw?: string | Uint8Array;
  readonly headers?: Record<string, string>;
  /** Who calls: credentials, null for no Authorization header. Default: the admin. */
  readonly as?: Credentials | null;
}

export function basic(accessKey: string, secretKey: string): string {
  return `Basic ${Buffer.from(`${accessKey}:${secretKey}`).toString('base64')}`;
}

export interface World {
  readonly api: Api;
  readonly store: EventStore;
  readonly bus: FakeBus;
  readonly runtime: TestRuntime;
  readonly admin: Credentials;
  call(method: string, path: string, options?: CallOptions): Promise<Reply>;
  /** Creates a user account and a key pair for it, as the admin. */
  newUser(name: string): Promise<Credentials>;
  /** Appends events to a stream at its current version, as the main loop or background would. */
  append(stream: string, ...events: { type: EventType; data: unknown }[]): Promise<void>;
  /** Every stored event, in order. */
  events(): Promise<readonly StoredEvent[]>;
  /** Makes a VM reach `stopped` or `running` (places it and reports its domain), volumes included. */
  settleVm(vmId: string, domain: 'shutoff' | 'running'): Promise<void>;
  /** Makes a volume `available`/`attached`: placed on a storage node and observed present. */
  settleVolume(volumeId: string): Promise<void>;
  /** Makes a snapshot `available`. */
  settleSnapshot(snapshotId: string): Promise<void>;
}

export async function createWorld(
  options: {
    seed?: number;
    limits?: Partial<ApiLimits>;
    store?: EventStore;
    corsOrigins?: readonly string[];
  } = {},
): Promise<World> {
  const runtime = createTestRuntime(options.seed ?? 1);
  const store = options.store ?? createMemoryEventStore({ projector });
  const bus = createFakeBus();
  const api = createApi({
    runtime,
    store,
    bus,
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.corsOrigins ? { corsOrigins: options.corsOrigins } : {}),
  });
  const seeded = await bootstrapAdmin({ store, runtime });
  const admin: Credentials = {
    accountId: seeded.accountId,
    accessKey: seeded.accessKey,
    secretKey: seeded.secretKey!,
  };

  async function call(method: string, path: string, o: CallOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...o.headers };
    const who = o.as === undefined ? admin : o.as;
    if (who !== null && headers['authorization'] === undefined)
      headers['authorization'] = basic(who.accessKey, who.secretKey);
    let body: string | Uint8Array = '';
    if (o.raw !== undefined) body = o.raw;
    else if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers['content-type'] ??= 'application/json';
    }
    const url = path.startsWith('http') ? path : `${BASE}${path}`;
    const response = await api.handle({ method, url, headers, body });
    let json: unknown;
    if (response.headers['content-type']?.startsWith('application/json') && response.body !== '')
      json = JSON.parse(response.body);
    return { ...response, json };
  }

  async function append(
    stream: string,
    ...events: { type: EventType; data: unknown }[]
  ): Promise<void> {
    const current = await store.get(stream);
    await store.append({
      appends: [
        {
          stream,
          expectedVersion: current?.version ?? 0,
          events: events.map((e) =>
            newEvent(e.type, e.data as EventDataMap[typeof e.type], {
              atMs: runtime.clock.nowMs(),
              actor: 'test',
            }),
          ),
        },
      ],
    });
  }

  async function settleVolume(volumeId: string): Promise<void> {
    const row = (await store.get(volumeId))!.data as any;
    const node = 'host-0000aaaa';
    if (row.storageNodeId === null)
      await append(volumeId, { type: 'volume.placed', data: { storageNodeId: node } });
    await append(volumeId, {
      type: 'volume.observed',
      data: {
        storageNodeId: row.storageNodeId ?? node,
        present: true,
        sizeBytes: row.sizeGb * BYTES_PER_GB,
        origin: null,
      },
    });
  }

  return {
    api,
    store,
    bus,
    runtime,
    admin,
    call,
    append,
    async newUser(name) {
      const account = await call('POST', '/v1/accounts', { body: { name } });
      if (account.status !== 201) throw new Error(`account: ${account.status} ${account.body}`);
      const key = await call('POST', '/v1/apikeys', { body: { accountId: account.json.id } });
      if (key.status !== 201) throw new Error(`key: ${key.status} ${key.body}`);
      return {
        accountId: account.json.id,
        accessKey: key.json.publicValue,
        secretKey: key.json.secretValue,
      };
    },
    async events() {
      return store.readAll(0, 1_000_000);
    },
    async settleVm(vmId, domain) {
      const vm = (await store.get(vmId))!.data as any;
      for (const volumeId of [vm.rootVolumeId, ...vm.volumeIds]) await settleVolume(volumeId);
      const host = 'host-0000bbbb';
      if (vm.hostId === null) await append(vmId, { type: 'vm.placed', data: { hostId: host } });
      await append(vmId, {
        type: 'vm.observed',
        data: { hostId: vm.hostId ?? host, domain, disks: null },
      });
    },
    settleVolume,
    async settleSnapshot(snapshotId) {
      const snap = (await store.get(snapshotId))!.data as any;
      const node = snap.storageNodeId ?? 'host-0000aaaa';
      if (snap.storageNodeId === null)
        await append(snapshotId, { type: 'snapshot.placed', data: { storageNodeId: node } });
      await append(snapshotId, {
        type: 'snapshot.observed',
        data: { storageNodeId: node, present: true, sizeBytes: snap.sizeGb * BYTES_PER_GB },
      });
    },
  };
}
