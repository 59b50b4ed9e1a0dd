/**
 * Harnesses for promise-interleaving races inside one process, explored with fast-check's
 * scheduler (`fc.scheduler`): the port calls of the code under test (store, lock service,
 * hypervisor) resolve in an order fast-check chooses and shrinks, so two requests or commands that
 * run concurrently in one process are interleaved at every await — orders the step-level simulator
 * rarely or never produces, because it delivers a process's replies in its own latency order.
 *
 * - {@link settledWorld}: a cloud brought to rest in the simulator (VMs stopped, volumes attached
 *   and free, a snapshot), whose event log then seeds fresh stores for each race.
 * - {@link scheduledStore}: an EventStore whose calls take effect and answer at scheduled points.
 * - {@link apiOver}: the real API over such a store, as a client would call it.
 */
import { timerFromSleep } from '../lib/timer.ts';
import fc from 'fast-check';
import { createMemoryEventStore } from '../adapters/memory-event-store.ts';
import { createApi } from '../control/api/api.ts';
import { runComputeAgent } from '../control/agents/compute-agent.ts';
import { MainLoop } from '../control/mainloop/main-loop.ts';
import type { ApiResponse } from '../control/api/types.ts';
import { Prng } from '../lib/prng.ts';
import { upcast } from '../model/events.ts';
import { projector } from '../model/projector.ts';
import type { Bus, BusHandler, BusMessage, Subscription } from '../ports/bus.ts';
import { UnavailableError } from '../ports/errors.ts';
import { HypervisorError, type DomainInfo, type Hypervisor } from '../ports/hypervisor.ts';
import type { Lease, LockSession, Locks } from '../ports/locks.ts';
import type { EventStore, StoredEvent } from '../ports/event-store.ts';
import type { Runtime } from '../ports/runtime.ts';
import { basicAuth, SIM_API_ORIGIN } from '../sim/cloud.ts';
import type { SimDomainInfo } from '../sim/hosts/compute-host.ts';
import { withCloud } from './model-based.ts';

/** A settled cloud's log and the ids of what its setup created, by name. */
export interface SettledWorld {
  readonly events: readonly StoredEvent[];
  readonly ids: ReadonlyMap<string, string>;
  /** HTTP Basic credentials of the `user` account. */
  readonly authorization: string;
  /** Virtual time at which the world settled, ms since the epoch. */
  readonly nowMs: number;
}

/** One call of a setup: `name` saves the answer's id. */
export interface SetupCall {
  readonly method: 'POST' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
  readonly name?: string;
  /** Let everything converge after this call. */
  readonly settle?: boolean;
}

/**
 * Runs `calls` against a simulated cloud (placeholders `{name}` in paths and string bodies refer
 * to ids saved by earlier calls), lets it settle, and returns its log. Throws if a call fails or
 * the cloud does not settle.
 */
export async function settledWorld(
  seed: number,
  calls: readonly SetupCall[],
): Promise<SettledWorld> {
  const ids = new Map<string, string>();
  const fill = (text: string): string =>
    text.replace(/\{([A-Za-z0-9_-]+)\}/g, (_, name: string) => ids.get(name) ?? `{${name}}`);
  const { result, failure, real } = await withCloud(seed, {}, async (cloud) => {
    for (const call of calls) {
      const body =
        call.body === undefined
          ? undefined
          : (JSON.parse(fill(JSON.stringify(call.body))) as unknown);
      const { status, json } = await cloud.call(call.method, fill(call.path), body);
      if (status >= 300)
        throw new Error(`setup ${call.method} ${call.path}: ${status} ${JSON.stringify(json)}`);
      if (call.name !== undefined) ids.set(call.name, String(json['id']));
      if (call.settle === true) await cloud.settle(20 * 60_000);
    }
    await cloud.settle(20 * 60_000);
  });
  if (result.verdict !== 'ok' || failure !== undefined)
    throw new Error(`the setup did not settle: ${failure ?? result.reason}`);
  const events = await real.cloud.store.readAll(0, 1_000_000);
  // Resources created as parts of others (a VM's extra volumes) are found by name.
  for (const type of ['virtualMachine', 'volume', 'snapshot']) {
    for (const row of await real.cloud.store.list({ type })) {
      const name = row.data['name'];
      if (typeof name === 'string' && !ids.has(name)) ids.set(name, row.stream);
    }
  }
  const keys = real.cloud.accounts.get('user');
  const nowMs = real.nowMs();
  await real.cloud.close();
  if (keys === undefined) throw new Error('the setup has no user account');
  return { events, ids, authorization: basicAuth(keys.accessKey, keys.secretKey), nowMs };
}

/** A fresh in-memory store holding `events` (same streams, versions and projections). */
export async function storeWith(events: readonly StoredEvent[]): Promise<EventStore> {
  const store = createMemoryEventStore({ projector, upcast });
  for (const event of events) {
    await store.append({
      appends: [
        {
          stream: event.stream,
          expectedVersion: event.version - 1,
          events: [
            {
              type: event.type,
              data: event.data,
              schemaVersion: event.schemaVersion,
              meta: event.meta,
            },
          ],
        },
      ],
    });
  }
  return store;
}

/**
 * A call split at two points that `s` schedules: `effect` runs when `<label> request` is released,
 * and its caller sees the value at `<label> reply` (or the failure at `<label> error`).
 */
function scheduledCall<T>(
  s: fc.Scheduler,
  label: string,
  effect: () => T | Promise<T>,
): Promise<T> {
  return s
    .schedule(Promise.resolve(), `${label} request`)
    .then(effect)
    .then(
      (value) => s.schedule(Promise.resolve(value), `${label} reply`),
      (error: unknown) =>
        s.schedule(Promise.resolve(), `${label} error`).then(() => Promise.reject(error)),
    );
}

/**
 * `store` with every call split at two scheduled points: the call reaches the database (and takes
 * effect) when the scheduler releases its request, and its caller sees the answer when the
 * scheduler releases its reply. Calls made with no scheduler step in between can so commit in
 * any order and answer in any other.
 */
export function scheduledStore(store: EventStore, s: fc.Scheduler, who: string): EventStore {
  const call = <T>(name: string, effect: () => Promise<T>): Promise<T> =>
    scheduledCall(s, `${who} ${name}`, effect);
  return {
    append: (batch) => call('append', () => store.append(batch)),
    readStream: (stream, from) => call('readStream', () => store.readStream(stream, from)),
    readAll: (after, limit) => call('readAll', () => store.readAll(after, limit)),
    get: (stream) => call(`get ${stream}`, () => store.get(stream)),
    list: (query) => call(`list ${String(query.type)}`, () => store.list(query)),
    fenceOf: (resource) => call('fenceOf', () => store.fenceOf(resource)),
    close: () => store.close(),
  };
}

/** A bus nobody listens to (change notices of the API under test go nowhere). */
export const silentBus: Bus = {
  publish: () => Promise.resolve(0),
  subscribe: (): Promise<Subscription> => Promise.resolve({ unsubscribe: () => Promise.resolve() }),
  close: () => Promise.resolve(),
};

/** A runtime for code run outside the simulator: a fixed clock, a seeded PRNG, unique ids. */
export function fixedRuntime(
  nowMs: number,
  seed: number,
  options: { readonly tag?: string; readonly sleep?: (ms: number) => Promise<void> } = {},
): Runtime {
  const random = new Prng(seed);
  const sleep = options.sleep ?? (() => Promise.resolve());
  const tag = options.tag ?? 'r';
  let next = 0;
  return {
    clock: {
      nowMs: () => nowMs,
      sleep,
      timer: (ms) => timerFromSleep(sleep, ms),
    },
    random,
    ids: { next: (prefix) => `${prefix}-${tag}${(next++).toString(16).padStart(7, '0')}` },
    log: { info: () => undefined, warn: () => undefined },
  };
}

/** A client of the real API over `store`: `call` sends one request and resolves with the answer. */
export function apiOver(
  store: EventStore,
  world: Pick<SettledWorld, 'authorization' | 'nowMs'>,
  seed = 1,
): (method: 'POST' | 'DELETE' | 'GET', path: string, body?: unknown) => Promise<ApiResponse> {
  const api = createApi({ runtime: fixedRuntime(world.nowMs, seed), store, bus: silentBus });
  return (method, path, body) =>
    api.handle({
      method,
      url: `${SIM_API_ORIGIN}${path}`,
      headers: {
        accept: 'application/json',
        authorization: world.authorization,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? '' : JSON.stringify(body),
    });
}

/**
 * Invariants of what the API records, whatever order concurrent requests ran in: a VM's extra
 * volumes stay within 1229 GB and 25 volumes, a VM's volume list and its volumes' attachments
 * agree, and no live volume is a clone of a snapshot being deleted (the API refuses such a delete).
 * Returns the first violation, or undefined.
 */
export async function desiredStateViolation(store: EventStore): Promise<string | undefined> {
  const rows = async (type: string) =>
    (await store.list({ type })).map((p) => p.data as Record<string, unknown>);
  const vms = await rows('virtualMachine');
  const volumes = await rows('volume');
  const snapshots = new Map((await rows('snapshot')).map((s) => [String(s['id']), s]));
  const live = (row: Record<string, unknown>): boolean =>
    row['removed'] === null && row['desired'] !== 'deleted';
  for (const vm of vms.filter(live)) {
    const id = String(vm['id']);
    const attached = volumes.filter(
      (v) => v['virtualMachineId'] === id && v['root'] !== true && v['removed'] === null,
    );
    const total = attached.reduce((sum, v) => sum + Number(v['sizeGb']), 0);
    if (total > 1229)
      return `VM ${id} has ${total} GB of extra volumes (${attached.map((v) => `${String(v['id'])}: ${Number(v['sizeGb'])} GB`).join(', ')}), over the 1229 GB limit`;
    const listed = (Array.isArray(vm['volumeIds']) ? vm['volumeIds'] : []).map(String).sort();
    const pointing = attached.map((v) => String(v['id'])).sort();
    if (listed.join(',') !== pointing.join(','))
      return `VM ${id} lists volumes [${listed.join(', ')}], but volumes [${pointing.join(', ')}] say they are attached to it`;
  }
  for (const volume of volumes.filter(live)) {
    const source = volume['sourceSnapshotId'];
    if (typeof source !== 'string') continue;
    const snapshot = snapshots.get(source);
    if (snapshot !== undefined && snapshot['desired'] === 'deleted')
      return `volume ${String(volume['id'])} is a live clone of snapshot ${source}, which is being deleted`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Two main loops reconciling the same resources.

/**
 * A lock service for races: ZooKeeper-like sessions, re-entrant locks, fencing tokens that grow
 * with every grant, and sessions the test may expire. Every call takes effect and answers at
 * scheduled points. `heldBy(resource, token)` is the truth the lock-discipline invariant checks.
 */
export class RaceLocks implements Locks {
  private nextToken = 1;
  private nextSession = 1;
  private readonly holders = new Map<string, { session: string; token: number }>();
  /** Token → the session it was granted to. */
  private readonly grants = new Map<number, string>();
  private readonly expired = new Set<string>();
  private readonly handlers = new Map<string, (() => void)[]>();
  /** Ids of the sessions opened so far, in order. */
  readonly sessions: string[] = [];

  constructor(private readonly s: fc.Scheduler) {}

  /** A call that takes effect and answers at two scheduled points. */
  call<T>(label: string, effect: () => T): Promise<T> {
    return this.s
      .schedule(Promise.resolve(), `${label} request`)
      .then(effect)
      .then((value) => this.s.schedule(Promise.resolve(value), `${label} reply`));
  }

  /** True while `token`'s lease on `resource` is held by a live session. */
  heldBy(resource: string, token: number): boolean {
    const holder = this.holders.get(resource);
    return holder !== undefined && holder.token === token && !this.expired.has(holder.session);
  }

  /** True when the session that was granted `token` has been expired. */
  tokenExpired(token: number): boolean {
    const session = this.grants.get(token);
    return session !== undefined && this.expired.has(session);
  }

  isExpired(session: string): boolean {
    return this.expired.has(session);
  }

  /** Expires session `id` now: its locks are gone; its handlers are told. */
  expire(id: string): void {
    if (this.expired.has(id)) return;
    this.expired.add(id);
    this.dropLocksOf(id);
    for (const handler of this.handlers.get(id) ?? []) handler();
  }

  dropLocksOf(session: string): void {
    for (const [name, holder] of [...this.holders])
      if (holder.session === session) this.holders.delete(name);
  }

  /** Grants `name` to `session` if free (re-entrant); null if another session holds it. */
  acquire(session: string, name: string): { name: string; token: number } | null {
    if (this.expired.has(session)) throw new UnavailableError('locks', 'session expired');
    const holder = this.holders.get(name);
    if (holder !== undefined && holder.session !== session) return null;
    if (holder !== undefined) return { name, token: holder.token };
    const token = this.nextToken++;
    this.holders.set(name, { session, token });
    this.grants.set(token, session);
    return { name, token };
  }

  release(session: string, name: string, token: number): void {
    const holder = this.holders.get(name);
    if (holder?.session === session && holder.token === token) this.holders.delete(name);
  }

  onExpired(session: string, handler: () => void): void {
    this.handlers.set(session, [...(this.handlers.get(session) ?? []), handler]);
  }

  openSession(): Promise<LockSession> {
    return this.call('locks.openSession', () => {
      const id = `session-${this.nextSession++}`;
      this.sessions.push(id);
      return new RaceSession(this, id);
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

class RaceSession implements LockSession {
  constructor(
    private readonly locks: RaceLocks,
    readonly id: string,
  ) {}

  get expired(): boolean {
    return this.locks.isExpired(this.id);
  }

  tryAcquire(name: string): Promise<Lease | null> {
    return this.locks.call(`locks.tryAcquire ${name}`, () => this.locks.acquire(this.id, name));
  }

  release(lease: Lease): Promise<void> {
    return this.locks.call(`locks.release ${lease.name}`, () =>
      this.locks.release(this.id, lease.name, lease.token),
    );
  }

  holds(lease: Lease): Promise<boolean> {
    return this.locks.call(`locks.holds ${lease.name}`, () =>
      this.locks.heldBy(lease.name, lease.token),
    );
  }

  onExpired(handler: () => void): void {
    this.locks.onExpired(this.id, handler);
  }

  close(): Promise<void> {
    return this.locks.call('locks.close', () => this.locks.dropLocksOf(this.id));
  }
}

/** A bus that records what is published and delivers nothing (the race is in one wake). */
export function recordingBus(published: { channel: string; message: BusMessage }[]): Bus {
  return {
    publish: (channel, message) => {
      published.push({ channel, message });
      return Promise.resolve(0);
    },
    subscribe: (): Promise<Subscription> =>
      Promise.resolve({ unsubscribe: () => Promise.resolve() }),
    close: () => Promise.resolve(),
  };
}

/**
 * The store as the main loops see it in a race: scheduled like {@link scheduledStore}, and at the
 * moment each fenced append takes effect it is checked — the writer must still hold the lease its
 * token came from (unless the test expired its session: then fencing must refuse it), and no
 * applied write may carry a token older than one already applied for its resource.
 */
export function fencedRaceStore(
  store: EventStore,
  s: fc.Scheduler,
  who: string,
  locks: RaceLocks,
  violations: string[],
  newest: Map<string, number>,
): EventStore {
  const inner = scheduledStore(
    {
      ...store,
      append: async (batch) => {
        const fence = batch.fence;
        if (
          fence !== undefined &&
          !locks.heldBy(fence.resource, fence.token) &&
          !locks.tokenExpired(fence.token)
        )
          violations.push(
            `${who} wrote ${batch.appends.map((a) => a.events.map((e) => e.type).join('+')).join(', ')} to ${fence.resource} with token ${fence.token} after releasing its lock`,
          );
        const events = await store.append(batch);
        if (fence !== undefined) {
          const before = newest.get(fence.resource) ?? 0;
          if (fence.token < before)
            violations.push(
              `${who}'s write with token ${fence.token} was applied to ${fence.resource} after one with token ${before}`,
            );
          newest.set(fence.resource, Math.max(before, fence.token));
        }
        return events;
      },
    },
    s,
    who,
  );
  return inner;
}

/** Requests that leave work for the main loops in the settled world of the race tests. */
export const PENDING_WORK: readonly SetupCall[] = [
  { method: 'POST', path: '/v1/virtualmachines/{vm1}?action=start' },
  { method: 'POST', path: '/v1/volumes', body: { name: 'v5', sizeGb: 10 } },
  { method: 'POST', path: '/v1/volumes/{v4}?action=grow', body: { sizeGb: 300 } },
  { method: 'POST', path: '/v1/volumes/{v4}?action=snapshot', body: { name: 's3' } },
  { method: 'DELETE', path: '/v1/virtualmachines/{vm2}' },
  {
    method: 'POST',
    path: '/v1/virtualmachines',
    body: { name: 'vm3', imageId: 'img-00000001', vcpus: 1, memoryMb: 512 },
  },
];

/** One race of two main loops: which work is pending, which sessions expire, how many wakes. */
export interface MainLoopRace {
  /** Indexes into {@link PENDING_WORK}. */
  readonly pending: readonly number[];
  /** Per main loop: whether its lock session is expired at some scheduled point. */
  readonly expire: readonly boolean[];
  /** Wakes each main loop runs, one after the other. */
  readonly wakes: number;
}

/** Arbitrary of {@link MainLoopRace}. */
export function mainLoopRaceArb(): fc.Arbitrary<MainLoopRace> {
  return fc.record({
    pending: fc.subarray(
      PENDING_WORK.map((_, i) => i),
      { minLength: 1 },
    ),
    expire: fc.array(fc.boolean(), { minLength: 2, maxLength: 2 }),
    wakes: fc.integer({ min: 1, max: 2 }),
  });
}

/** Replaces `{name}` placeholders in a call's path and body with the world's ids. */
export function fillCall(world: SettledWorld, call: SetupCall): { path: string; body: unknown } {
  const fill = (text: string): string =>
    text.replace(/\{([A-Za-z0-9_-]+)\}/g, (_, name: string) => world.ids.get(name) ?? `{${name}}`);
  return {
    path: fill(call.path),
    body:
      call.body === undefined
        ? undefined
        : (JSON.parse(fill(JSON.stringify(call.body))) as unknown),
  };
}

/**
 * Runs two main loops (the real {@link MainLoop}, one wake or two each) over one store, a
 * {@link RaceLocks} and a recording bus, every port call interleaved by `s`, after `race.pending`
 * requests left them work. Returns the first broken invariant: a fenced write by a loop that no
 * longer held its lock (and had not lost its session), an applied write with a stale token, or an
 * error a wake threw.
 */
export async function runMainLoopRace(
  s: fc.Scheduler,
  world: SettledWorld,
  race: MainLoopRace,
): Promise<string | undefined> {
  const store = await storeWith(world.events);
  const client = apiOver(store, world);
  for (const index of race.pending) {
    const call = PENDING_WORK[index];
    if (call === undefined) continue;
    const { path, body } = fillCall(world, call);
    await client(call.method, path, body);
  }
  const locks = new RaceLocks(s);
  const violations: string[] = [];
  const newest = new Map<string, number>();
  const published: { channel: string; message: BusMessage }[] = [];
  const sessionsOf: string[][] = [[], []];
  const loops = [0, 1].map((i) => {
    const who = `mainloop-${i + 1}`;
    const mine = sessionsOf[i] as string[];
    return new MainLoop({
      runtime: fixedRuntime(world.nowMs, i + 1, { tag: `m${i + 1}-` }),
      store: fencedRaceStore(store, s, who, locks, violations, newest),
      bus: recordingBus(published),
      locks: {
        openSession: async (options) => {
          const session = await locks.openSession();
          void options;
          mine.push(session.id);
          return session;
        },
        close: () => Promise.resolve(),
      },
      options: { instance: who },
    });
  });
  const work = loops.map(async (loop, i) => {
    try {
      for (let wake = 0; wake < race.wakes; wake++) await loop.wakeOnce();
    } catch (error) {
      violations.push(
        `mainloop-${i + 1} threw: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  });
  const expiries = race.expire.map((on, i) =>
    on
      ? s.schedule(Promise.resolve(), `expire the session of mainloop-${i + 1}`).then(() => {
          for (const id of sessionsOf[i] ?? []) locks.expire(id);
        })
      : Promise.resolve(),
  );
  await s.waitFor(Promise.all([...work, ...expiries]));
  return violations[0];
}

// ---------------------------------------------------------------------------------------------
// A compute agent handling several commands for one VM.

/**
 * A hypervisor for races: libvirt's rules as the port documents them (start on an active domain is
 * `already-running`, destroy of an inactive one `not-running`, undefine of a running persistent
 * domain makes it transient), a guest that shuts down at once, and every call taking effect and
 * answering at scheduled points.
 */
export interface RaceHypervisor extends Hypervisor {
  /** The host's domains by name, as the simulated host's checkers see them: set up, then read. */
  readonly domains: Map<string, SimDomainInfo>;
}

/** A {@link RaceHypervisor} whose calls are scheduled by `s`. */
export function createRaceHypervisor(s: fc.Scheduler): RaceHypervisor {
  const domains = new Map<string, SimDomainInfo>();
  const call = <T>(label: string, effect: () => T): Promise<T> =>
    scheduledCall(s, `hypervisor.${label}`, effect);
  // What the port shows of a domain: all but whether it is persistent.
  const view = ({ persistent: _, ...info }: SimDomainInfo): DomainInfo => info;
  const existing = (name: string): SimDomainInfo => {
    const d = domains.get(name);
    if (d === undefined) throw new HypervisorError('no-domain', `no domain ${name}`);
    return d;
  };
  // Shutdown and destroy: the guest stops at once, and is gone if it was transient.
  const powerOff = (op: 'shutdown' | 'destroy', name: string): Promise<void> =>
    call(`${op} ${name}`, () => {
      const d = existing(name);
      // ACPI reaches only a running guest; destroy pulls the plug of a paused one too.
      if (op === 'shutdown' ? d.state !== 'running' : !isActive(d))
        throw new HypervisorError('not-running', `domain ${name} is not running`);
      if (d.persistent) domains.set(name, { ...d, state: 'shutoff' });
      else domains.delete(name);
    });
  return {
    domains,
    capacity: () => call('capacity', () => ({ vcpus: 64, memoryMb: 262_144 })),
    listDomains: () =>
      call('listDomains', () => [...domains.keys()].sort().map((name) => view(existing(name)))),
    getDomain: (name) =>
      call(`getDomain ${name}`, () => {
        const d = domains.get(name);
        return d === undefined ? null : view(d);
      }),
    define: (spec) =>
      call(`define ${spec.name}`, () => {
        const d = domains.get(spec.name);
        // An active domain keeps running with its old definition, and is persistent again.
        if (d !== undefined && isActive(d)) domains.set(spec.name, { ...d, persistent: true });
        else domains.set(spec.name, { ...spec, state: d?.state ?? 'shutoff', persistent: true });
      }),
    start: (name) =>
      call(`start ${name}`, () => {
        const d = existing(name);
        if (isActive(d))
          throw new HypervisorError('already-running', `domain ${name} is already active`);
        domains.set(name, { ...d, state: 'running' });
      }),
    shutdown: (name) => powerOff('shutdown', name),
    destroy: (name) => powerOff('destroy', name),
    undefine: (name) =>
      call(`undefine ${name}`, () => {
        const d = existing(name);
        const active = isActive(d);
        if (active && !d.persistent)
          throw new HypervisorError('domain-active', `domain ${name} is transient and active`);
        if (active) domains.set(name, { ...d, persistent: false });
        else domains.delete(name);
      }),
    close: () => Promise.resolve(),
  };
}

/** libvirt's "active": a qemu process exists. */
function isActive(domain: DomainInfo): boolean {
  return domain.state === 'running' || domain.state === 'paused';
}

/** One agent race: the VM's domain before, the commands (token order) and duplicated deliveries. */
export interface AgentRace {
  readonly initial: 'absent' | 'shutoff' | 'running';
  /** Powers of the commands, sent with tokens 1, 2, … in this order. */
  readonly powers: readonly ('running' | 'stopped' | 'absent')[];
  /** Indexes of commands delivered twice (a duplicated bus message). */
  readonly duplicates: readonly number[];
}

/** Arbitrary of {@link AgentRace}. */
export function agentRaceArb(): fc.Arbitrary<AgentRace> {
  const power = fc.constantFrom('running' as const, 'stopped' as const, 'absent' as const);
  return fc.record({
    initial: fc.constantFrom('absent' as const, 'shutoff' as const, 'running' as const),
    powers: fc.array(power, { minLength: 1, maxLength: 3 }),
    duplicates: fc.array(fc.nat({ max: 2 }), { maxLength: 2 }),
  });
}

const RACE_VM = 'vm-00000001';
const RACE_HOST = 'host-00000001';

/**
 * Runs the real compute agent with a {@link RaceHypervisor}, and delivers `race.powers` as
 * `vm.ensure` commands for one VM — each first "written" (the store's fence for the VM rises to
 * its token, as the main loop appends before it publishes) and then delivered, each step at a
 * scheduled point, duplicates delivered again. Returns the first broken invariant: the domain does
 * not end as the newest command asks, the newest command got a failed result, or it got no result
 * at all.
 */
export async function runAgentRace(s: fc.Scheduler, race: AgentRace): Promise<string | undefined> {
  const hypervisor = createRaceHypervisor(s);
  const spec = { name: RACE_VM, vcpus: 1, memoryMb: 512, disks: [] };
  if (race.initial !== 'absent')
    hypervisor.domains.set(RACE_VM, { ...spec, state: race.initial, persistent: true });
  let fence = 0;
  let handler: BusHandler | null = null;
  const results: { commandId: string; ok: boolean; error: unknown }[] = [];
  const bus: Bus = {
    publish: (_channel, message) => {
      if (message.type === 'result')
        results.push({
          commandId: typeof message['commandId'] === 'string' ? message['commandId'] : '?',
          ok: message['ok'] === true,
          error: message['error'],
        });
      return Promise.resolve(1);
    },
    subscribe: (_channel, h): Promise<Subscription> => {
      handler = h;
      return Promise.resolve({ unsubscribe: () => Promise.resolve() });
    },
    close: () => Promise.resolve(),
  };
  const vmRow = {
    stream: RACE_VM,
    type: 'virtualMachine',
    accountId: 'acct-00000001',
    version: 1,
    data: { id: RACE_VM, type: 'virtualMachine', removed: null, hostId: RACE_HOST },
  };
  const scheduledCall = <T>(label: string, effect: () => T): Promise<T> =>
    s
      .schedule(Promise.resolve(), `store.${label} request`)
      .then(effect)
      .then((value) => s.schedule(Promise.resolve(value), `store.${label} reply`));
  const unused = (): Promise<never> => Promise.reject(new Error('not used by the agent'));
  const store: EventStore = {
    append: unused,
    readStream: unused,
    readAll: unused,
    list: unused,
    get: (stream) => scheduledCall(`get ${stream}`, () => (stream === RACE_VM ? vmRow : null)),
    fenceOf: (resource) => scheduledCall('fenceOf', () => (resource === RACE_VM ? fence : 0)),
    close: () => Promise.resolve(),
  };
  const stop = new AbortController();
  const agent = runComputeAgent({
    runtime: fixedRuntime(0, 1, {
      tag: 'a-',
      // Short waits (the shutdown poll) end at a scheduled point; long ones (timeouts, the
      // inventory interval) never end within a race: no operation times out here.
      sleep: (ms) =>
        ms < 5_000
          ? s.schedule(Promise.resolve(), `sleep ${ms} ms`)
          : new Promise<void>(() => undefined),
    }),
    hostId: RACE_HOST,
    hypervisor,
    bus,
    store,
    signal: stop.signal,
  });
  void agent.catch(() => undefined);
  const commands = race.powers.map((power, i) => ({
    type: 'vm.ensure',
    commandId: `cmd-${i + 1}`,
    token: i + 1,
    vmId: RACE_VM,
    spec: { vcpus: spec.vcpus, memoryMb: spec.memoryMb, disks: [] },
    power,
  }));
  const deliveries = commands.flatMap((command, i) => {
    const copies = 1 + race.duplicates.filter((d) => d === i).length;
    const written = s.schedule(Promise.resolve(), `write ${command.commandId}`).then(() => {
      fence = Math.max(fence, command.token);
    });
    return Array.from({ length: copies }, (_, copy) =>
      written
        .then(() =>
          s.schedule(Promise.resolve(), `deliver ${command.commandId}${copy > 0 ? ' again' : ''}`),
        )
        .then(() => {
          handler?.(command, `agent.${RACE_HOST}`);
        }),
    );
  });
  // Wait for every delivery and then for a result per delivery (or the scheduler runs dry).
  await s.waitFor(Promise.all(deliveries));
  await s.waitIdle();
  stop.abort();
  const newest = commands.at(-1);
  if (newest === undefined) return undefined;
  const domain = hypervisor.domains.get(RACE_VM);
  const active = domain !== undefined && isActive(domain);
  const state = domain === undefined ? 'absent' : domain.state;
  if (newest.power === 'running' && !active)
    return `the newest command asks running, the domain is ${state}`;
  if (newest.power === 'stopped' && (domain === undefined || active))
    return `the newest command asks stopped, the domain is ${state}`;
  if (newest.power === 'absent' && domain !== undefined)
    return `the newest command asks absent, the domain is ${state}`;
  const failed = results.find((r) => r.commandId === newest.commandId && !r.ok);
  if (failed !== undefined)
    return `the newest command ${newest.commandId} (${newest.power}) reported a failure: ${String(failed.error)}`;
  // A copy that arrives while another waits replaces it without an answer; one answer is due.
  if (!results.some((r) => r.commandId === newest.commandId))
    return `the newest command ${newest.commandId} was never answered`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The race properties, for the test suite and the mutants run alike.

/** The settled world the API and main-loop races start from (see test/property/scheduler-races.test.ts). */
export const RACE_WORLD_SETUP: readonly SetupCall[] = [
  {
    method: 'POST',
    path: '/v1/virtualmachines',
    body: {
      name: 'vm1',
      imageId: 'img-00000001',
      vcpus: 1,
      memoryMb: 512,
      startOnCreate: false,
      volumes: [
        { name: 'x', sizeGb: 600 },
        { name: 'y', sizeGb: 500 },
      ],
    },
    name: 'vm1',
  },
  {
    method: 'POST',
    path: '/v1/virtualmachines',
    body: { name: 'vm2', imageId: 'img-00000001', vcpus: 1, memoryMb: 512, startOnCreate: false },
    name: 'vm2',
  },
  { method: 'POST', path: '/v1/volumes', body: { name: 'v3', sizeGb: 100 }, name: 'v3' },
  {
    method: 'POST',
    path: '/v1/volumes',
    body: { name: 'v4', sizeGb: 200 },
    name: 'v4',
    settle: true,
  },
  { method: 'POST', path: '/v1/volumes/{v3}?action=snapshot', body: { name: 's1' }, name: 's1' },
];

/** What a race property found. */
export interface RaceReport {
  /** Cases run until the first failure (or all of them). */
  readonly runs: number;
  readonly failure:
    | {
        readonly reason: string;
        /** Size of the shrunk case (pending requests or commands, plus scheduled faults). */
        readonly size: number;
        readonly seed: number;
        readonly path: string;
      }
    | undefined;
}

/**
 * Checks one race property: `mainloop` (two main loops, lock discipline and fencing) or `agent`
 * (one compute agent, several commands for one VM). `world` is needed for `mainloop`.
 */
export async function checkRaces(
  kind: 'mainloop' | 'agent',
  options: { readonly runs: number; readonly seed: number; readonly world?: SettledWorld },
): Promise<RaceReport> {
  let reason: string | undefined;
  let size = 0;
  let runs = 0;
  let failed = false;
  const fail = (violation: string | undefined, caseSize: number): boolean => {
    if (!failed) runs++;
    if (violation === undefined) return true;
    failed = true;
    reason = violation;
    size = caseSize;
    return false;
  };
  let details: {
    failed: boolean;
    seed: number;
    counterexamplePath: string | null;
    errorInstance: unknown;
  };
  if (kind === 'mainloop') {
    const world = options.world ?? (await settledWorld(1, RACE_WORLD_SETUP));
    details = await fc.check(
      fc.asyncProperty(fc.scheduler(), mainLoopRaceArb(), async (s, race) =>
        fail(
          await runMainLoopRace(s, world, race),
          race.pending.length + race.expire.filter(Boolean).length,
        ),
      ),
      { numRuns: options.runs, seed: options.seed },
    );
  } else {
    details = await fc.check(
      fc.asyncProperty(fc.scheduler(), agentRaceArb(), async (s, race) =>
        fail(await runAgentRace(s, race), race.powers.length + race.duplicates.length),
      ),
      { numRuns: options.runs, seed: options.seed },
    );
  }
  if (!details.failed) return { runs, failure: undefined };
  return {
    runs,
    failure: {
      reason: reason ?? String(details.errorInstance),
      size,
      seed: details.seed,
      path: details.counterexamplePath ?? '',
    },
  };
}
