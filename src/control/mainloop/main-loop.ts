/**
 * The main loop: the crash-only process that reconciles every VM, volume and snapshot toward what
 * its users asked for. Level-triggered: a change notice on `CHANNELS.changes` or the periodic sweep
 * wakes it, and it re-derives what to do from the store every time, so a lost, duplicated or late
 * notice, a crash at any await, or a second instance running the same code only repeats or skips
 * steps. Recovery is a normal start: the first thing it does is a sweep.
 *
 * A resource whose plan on the rows at hand has nothing to do is skipped without a lock or a read
 * (a sweep lists the world in one read, hosts first). Otherwise, per resource: tryAcquire its
 * lock (skip when another instance holds it) → re-read its row →
 * `plan` (pure, src/model/plan.ts) → append the step's events with `fence: {resource, token}` →
 * publish the command with the same token on `CHANNELS.agent(hostId)` → release the lock. A
 * ConcurrencyError or StaleTokenError means someone else moved first: move on, the next wake looks
 * again. Up to `concurrency` resources are reconciled at once, each under its own lock; a
 * placement is assumed in the loop's world while it is written, so the ones planned meanwhile
 * choose other hosts. Work per wake is bounded; what is left waits for the next wake, which comes
 * at once.
 *
 * Only ports: the same code runs in the simulator and in staging.
 */
import { assert } from '../../lib/assert.ts';
import { MinHeap } from '../../lib/heap.ts';
import {
  DEFAULT_RETRY_POLICY,
  assertRetryPolicy,
  retryDelayMs,
  type RetryPolicy,
} from '../../model/backoff.ts';
import { plan, relatedIds, stepWrite, type Step } from '../../model/plan.ts';
import {
  RECONCILED_TYPES,
  anyRowOf,
  rowOf,
  type HostRow,
  type ReconciledRow,
  type Row,
  type SnapshotRow,
  type VmRow,
  type VolumeRow,
} from '../../model/resources.ts';
import { World } from '../../model/world.ts';
import { CHANNELS, type Bus, type BusMessage, type Subscription } from '../../ports/bus.ts';
import { PortError } from '../../ports/errors.ts';
import {
  ConcurrencyError,
  StaleTokenError,
  type EventStore,
  type Projection,
} from '../../ports/event-store.ts';
import type { Lease, LockSession, Locks } from '../../ports/locks.ts';
import type { Runtime } from '../../ports/runtime.ts';

/** Tuning of the main loop. */
export interface MainLoopOptions {
  /** Period of the full sweep over every resource, ms. Default 5000. */
  readonly sweepIntervalMs: number;
  /** Lock session timeout, ms (ZooKeeper's negotiated timeout). Default 10000. */
  readonly lockSessionTimeoutMs: number;
  /** Backoff and attempt limit of every goal. Default {@link DEFAULT_RETRY_POLICY}. */
  readonly retry: RetryPolicy;
  /** Most resources reconciled per wake. Default 200. */
  readonly maxResourcesPerWake: number;
  /**
   * Most resources reconciled at once, each under its own lock. A reconcile is a handful of round
   * trips (lock, read, write, publish, release); one at a time, they cap how many resources a loop
   * moves per second however idle the store is. Default 8.
   */
  readonly concurrency: number;
  /** Most steps taken for one resource under one lock grant (e.g. place, then send). Default 4. */
  readonly maxStepsPerResource: number;
  /** Most change notices remembered between wakes; beyond, the next wake sweeps. Default 10000. */
  readonly maxPendingNotices: number;
  /** Pause after a failed store, bus or lock call before the next wake, ms. Default 1000. */
  readonly errorBackoffMs: number;
  /** Name of this instance in the `actor` of its events and in logs. Default `mainloop`. */
  readonly instance: string;
}

export const DEFAULT_MAIN_LOOP_OPTIONS: MainLoopOptions = {
  sweepIntervalMs: 5_000,
  lockSessionTimeoutMs: 10_000,
  retry: DEFAULT_RETRY_POLICY,
  maxResourcesPerWake: 200,
  concurrency: 8,
  maxStepsPerResource: 4,
  maxPendingNotices: 10_000,
  errorBackoffMs: 1_000,
  instance: 'mainloop',
};

/** What the main loop runs on: ports only. */
export interface MainLoopDeps {
  readonly runtime: Runtime;
  readonly store: EventStore;
  readonly bus: Bus;
  readonly locks: Locks;
  readonly options?: Partial<MainLoopOptions>;
  /** Checked between wakes; the loop returns once it is true. Production runs until killed. */
  readonly shouldStop?: () => boolean;
}

/** Counters for tests and logs. */
export interface MainLoopStats {
  wakes: number;
  sweeps: number;
  reconciled: number;
  writes: number;
  commandsSent: number;
  conflicts: number;
  lockBusy: number;
  portErrors: number;
  sessionsOpened: number;
}

/** Runs the main loop until `shouldStop` (never, in production). The process body. */
export async function runMainLoop(deps: MainLoopDeps): Promise<void> {
  const loop = new MainLoop(deps);
  await loop.run();
}

/** What the world is made of, in the order it is listed: hosts first (see loadWorld). */
const WORLD_TYPES = ['host', 'virtualMachine', 'volume', 'snapshot'] as const;

/** What a host's capacity counts: the VMs on a compute host, the volumes on a storage node. */
const HOST_ROW_TYPES = ['virtualMachine', 'volume'] as const;

/**
 * Most hosts a wake re-reads one by one (a host and its rows, two reads each); more host notices
 * than this since the last wake reload the whole world in one listing instead.
 */
const HOSTS_REFRESHED_MAX = 16;

/** True for a row the main loop reconciles. */
function isReconciled(row: Row): row is ReconciledRow {
  return (RECONCILED_TYPES as readonly string[]).includes(row.type);
}

/** True when a step has something to write (or a message to show). */
function isActionable(step: Step, row: ReconciledRow): boolean {
  switch (step.kind) {
    case 'none':
      return false;
    case 'wait':
      return step.message !== null && step.message !== row.transitioningMessage;
    default:
      return true;
  }
}

/** `row` as placed on `hostId`, for the rows whose placement takes room (VMs, volumes). */
function assumePlaced(row: ReconciledRow, hostId: string): ReconciledRow | null {
  if (row.type === 'virtualMachine') return { ...row, hostId };
  if (row.type === 'volume') return { ...row, storageNodeId: hostId };
  return null;
}

/** The VM, volume or snapshot row `world` holds for `id`. */
function worldRow(world: World, id: string): ReconciledRow | undefined {
  return world.vm(id) ?? world.volume(id) ?? world.snapshot(id);
}

/**
 * One main loop instance. {@link MainLoop.run} is the process body; {@link MainLoop.wakeOnce} runs
 * a single wake, for tests that drive the loop step by step.
 */
export class MainLoop {
  readonly options: MainLoopOptions;
  readonly stats: MainLoopStats = {
    wakes: 0,
    sweeps: 0,
    reconciled: 0,
    writes: 0,
    commandsSent: 0,
    conflicts: 0,
    lockBusy: 0,
    portErrors: 0,
    sessionsOpened: 0,
  };
  private readonly runtime: Runtime;
  private readonly store: EventStore;
  private readonly bus: Bus;
  private readonly locks: Locks;
  private readonly shouldStop: () => boolean;
  private readonly actor: string;

  private session: LockSession | null = null;
  private sessionExpired = false;
  private subscription: Subscription | null = null;
  /** Streams named by change notices since the last wake; their related rows are looked at too. */
  private readonly noticed = new Set<string>();
  /** Resources to reconcile, in arrival order (bounded work: the rest waits for the next wake). */
  private readonly queue = new Set<string>();
  private overflow = false;
  /** The rows planning looks at, kept between wakes; reloaded in full on every sweep. */
  private world: World | null = null;
  private nextSweepAtMs = Number.NEGATIVE_INFINITY;
  /** Deadlines plans asked to be looked at again (attempt deadlines), earliest first. */
  private readonly due = new MinHeap<{ readonly atMs: number; readonly id: string }>((a, b) =>
    a.atMs !== b.atMs ? a.atMs - b.atMs : a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
  );
  /** The earliest reminder per resource, so a resource is in {@link due} once per deadline. */
  private readonly reminded = new Map<string, number>();
  private timerAtMs = Number.POSITIVE_INFINITY;
  private waiter: (() => void) | null = null;

  constructor(deps: MainLoopDeps) {
    this.options = { ...DEFAULT_MAIN_LOOP_OPTIONS, ...deps.options };
    const o = this.options;
    assert(o.sweepIntervalMs > 0, 'sweepIntervalMs must be > 0');
    assert(o.lockSessionTimeoutMs > 0, 'lockSessionTimeoutMs must be > 0');
    assert(
      Number.isInteger(o.maxResourcesPerWake) && o.maxResourcesPerWake >= 1,
      'maxResourcesPerWake must be >= 1',
    );
    assert(
      Number.isInteger(o.concurrency) && o.concurrency >= 1,
      'concurrency must be an integer >= 1',
    );
    assert(
      Number.isInteger(o.maxStepsPerResource) && o.maxStepsPerResource >= 1,
      'maxStepsPerResource must be >= 1',
    );
    assert(o.maxPendingNotices >= 1, 'maxPendingNotices must be >= 1');
    assert(o.errorBackoffMs >= 0, 'errorBackoffMs must be >= 0');
    assertRetryPolicy(o.retry);
    this.runtime = deps.runtime;
    this.store = deps.store;
    this.bus = deps.bus;
    this.locks = deps.locks;
    this.shouldStop = deps.shouldStop ?? (() => false);
    this.actor = o.instance === 'mainloop' ? 'mainloop' : `mainloop:${o.instance}`;
  }

  /** The process body: wake, work, sleep until the next notice, deadline or sweep. */
  async run(): Promise<void> {
    try {
      while (!this.shouldStop()) {
        const healthy = await this.wakeOnce();
        if (this.shouldStop()) break;
        if (!healthy) {
          await this.runtime.clock.sleep(this.options.errorBackoffMs);
          continue;
        }
        if (this.queue.size > 0 || this.overflow || this.noticed.size > 0) {
          // More work is queued (or rows to re-read after a lost race): yield to the rest of the
          // world, then continue at once.
          await this.runtime.clock.sleep(0);
          continue;
        }
        await this.sleepUntil(Math.min(this.nextSweepAtMs, this.due.peek()?.atMs ?? Infinity));
      }
    } finally {
      await this.shutdown();
    }
  }

  /**
   * One wake: make sure the subscription and the lock session exist, sweep if due, then reconcile
   * up to `maxResourcesPerWake` queued resources. False when a port failed (the caller backs off).
   */
  async wakeOnce(): Promise<boolean> {
    this.stats.wakes++;
    try {
      await this.ensureSubscribed();
      const session = await this.ensureSession();
      const now = this.runtime.clock.nowMs();
      const sweep = now >= this.nextSweepAtMs || this.overflow;
      // A full listing on sweeps (and when many hosts changed at once); in between, the cached
      // world plus fresh copies of the rows notices and lost races name. Plans re-read their own
      // row under the lock. A host row is never refreshed alone: a placement must see the host's
      // version from before the VM and volume rows it counts (see loadWorld), so a host notice
      // re-reads that host's rows after it.
      let world = this.world;
      if (world === null || sweep || this.hostsNoticed(world) > HOSTS_REFRESHED_MAX) {
        world = await this.loadWorld();
        this.world = world;
      } else {
        for (const stream of this.noticed) {
          const fresh = await this.store.get(stream);
          if (fresh === null) continue;
          const row = anyRowOf(fresh);
          if (row.type === 'host') await this.refreshHost(row, world);
          else world.put(row);
        }
      }
      if (sweep) {
        this.stats.sweeps++;
        this.overflow = false;
        this.nextSweepAtMs = now + this.options.sweepIntervalMs;
        for (const row of world.reconciled()) this.consider(row, world, now);
      }
      // Deadlines that passed: look at those resources again.
      for (
        let next = this.due.peek();
        next !== undefined && next.atMs <= now;
        next = this.due.peek()
      ) {
        this.due.pop();
        if (this.reminded.get(next.id) === next.atMs) this.reminded.delete(next.id);
        this.queue.add(next.id);
      }
      // Notices name a stream; what depends on it may have work now as well.
      for (const stream of this.noticed) {
        this.queue.add(stream);
        const row = worldRow(world, stream) ?? world.host(stream);
        if (row !== undefined) for (const id of relatedIds(row, world)) this.queue.add(id);
      }
      this.noticed.clear();
      await this.reconcileQueued(session, world);
      return true;
    } catch (error) {
      if (!(error instanceof PortError)) throw error;
      this.stats.portErrors++;
      this.runtime.log.warn('mainloop: port failure, backing off', {
        code: error.code,
        message: error.message,
      });
      return false;
    }
  }

  /**
   * Reconciles queued resources, up to `maxResourcesPerWake`, with `concurrency` of them in flight
   * at once. Each worker takes the next queued resource that has work; the first port failure stops
   * every worker from taking more, and is thrown once all are done (nothing runs on past the wake).
   */
  private async reconcileQueued(session: LockSession, world: World): Promise<void> {
    let budget = this.options.maxResourcesPerWake;
    const failures: unknown[] = [];
    // One iterator for all workers: it walks the queue once, as new entries join at its end.
    const queued = this.queue.values();
    const next = (): string | undefined => {
      if (failures.length > 0) return undefined;
      for (let entry = queued.next(); entry.done !== true; entry = queued.next()) {
        const id = entry.value;
        if (this.sessionExpired || session.expired) return undefined;
        // Nothing to do by the rows at hand: no lock, no read (as on a sweep). A row that changed
        // unseen (a lost notice) is caught by its next notice, its deadline or the sweep.
        if (this.idle(id, world)) {
          this.queue.delete(id);
          continue;
        }
        if (budget-- <= 0) return undefined;
        this.queue.delete(id);
        return id;
      }
      return undefined;
    };
    const worker = async (): Promise<void> => {
      for (let id = next(); id !== undefined; id = next()) {
        try {
          await this.reconcile(id, session, world);
        } catch (error) {
          failures.push(error);
        }
      }
    };
    await Promise.all(Array.from({ length: this.options.concurrency }, worker));
    if (failures.length > 0) throw failures[0];
  }

  /** Queues a row if its plan has something to do; remembers its next deadline. */
  private consider(row: ReconciledRow, world: World, now: number): void {
    if (this.actionable(row, world, now)) this.queue.add(row.id);
  }

  /** True when `row`'s plan on `world` has something to do; remembers its next deadline. */
  private actionable(row: ReconciledRow, world: World, now: number): boolean {
    const step = plan(row, { nowMs: now, world, policy: this.options.retry });
    if (step.kind === 'wait' && step.untilMs !== null) this.remind(row.id, step.untilMs);
    return isActionable(step, row);
  }

  /**
   * True when the world this wake holds shows nothing to do for `id`: a host (the main loop does
   * not reconcile hosts), or a VM, volume or snapshot whose plan is idle. Unknown ids are not idle:
   * they are read under their lock.
   */
  private idle(id: string, world: World): boolean {
    if (world.host(id) !== undefined) return true;
    const row = worldRow(world, id);
    return row !== undefined && !this.actionable(row, world, this.runtime.clock.nowMs());
  }

  /**
   * Remembers to look at `id` again at `atMs` (bounded: beyond the bound the sweep covers it). A
   * deadline already past is no reason to look again: the resource is being looked at now, and a
   * plan that kept answering a past deadline would have the loop wake at the same instant forever.
   */
  private remind(id: string, atMs: number): void {
    if (atMs <= this.runtime.clock.nowMs()) return;
    if ((this.reminded.get(id) ?? Number.POSITIVE_INFINITY) <= atMs) return;
    if (this.due.size >= this.options.maxPendingNotices) return;
    this.reminded.set(id, atMs);
    this.due.push({ atMs, id });
  }

  /**
   * Every host, then every VM, volume and snapshot. Hosts come first: a placement expects the host
   * version read here, and every placement after this read bumps it, so capacity computed from the
   * later (fresher) VM and volume lists can only be conservative or conflict, never overcommit.
   */
  private async loadWorld(): Promise<World> {
    const listed = await this.store.list({ type: WORLD_TYPES });
    const hosts: HostRow[] = [];
    const vms: VmRow[] = [];
    const volumes: VolumeRow[] = [];
    const snapshots: SnapshotRow[] = [];
    for (const p of listed) {
      if (p.type === 'host') hosts.push(rowOf(p, 'host'));
      else if (p.type === 'virtualMachine') vms.push(rowOf(p, 'virtualMachine'));
      else if (p.type === 'volume') volumes.push(rowOf(p, 'volume'));
      else snapshots.push(rowOf(p, 'snapshot'));
    }
    // The previous world, with every listed row put over it in the same order, is the world these
    // lists build — rows are never deleted — but costs only what changed (an unchanged row is the
    // same object again). Should a row have vanished, the lists alone build it afresh.
    const previous = this.world;
    if (previous !== null) {
      for (const rows of [hosts, vms, volumes, snapshots])
        for (const row of rows) previous.put(row);
      if (previous.size === hosts.length + vms.length + volumes.length + snapshots.length)
        return previous;
    }
    return new World({ hosts, vms, volumes, snapshots });
  }

  /** How many of the streams noticed since the last wake are hosts `world` knows. */
  private hostsNoticed(world: World): number {
    let hosts = 0;
    for (const stream of this.noticed) if (world.host(stream) !== undefined) hosts++;
    return hosts;
  }

  /**
   * Puts a host row read just now into `world`, then every VM and volume row on that host, listed
   * after it: the same order as loadWorld, for one host. Every placement on the host bumps its
   * version, so what the world counts on it is complete as of the version it holds, and a placement
   * that expects that version either sees all of it or conflicts. A row that has left the host since
   * is not listed and stays counted there until its own notice or the sweep: conservative. Costs the
   * host's rows, not the world's.
   */
  private async refreshHost(host: HostRow, world: World): Promise<void> {
    const listed = await this.store.list({ type: HOST_ROW_TYPES, host: host.id });
    world.put(host);
    for (const p of listed) world.put(anyRowOf(p));
  }

  /** Reconciles one resource under its lock: up to `maxStepsPerResource` steps. */
  private async reconcile(id: string, session: LockSession, world: World): Promise<void> {
    let lease: Lease | null;
    try {
      lease = await session.tryAcquire(id);
    } catch (error) {
      // The lock service is unreachable: keep the resource queued and let the wake back off.
      if (error instanceof PortError) this.noteSessionTrouble(session);
      this.queue.add(id);
      throw error;
    }
    if (lease === null) {
      // Another instance holds it and will do the work (or its session expires and we come back).
      this.stats.lockBusy++;
      return;
    }
    this.stats.reconciled++;
    try {
      for (let i = 0; i < this.options.maxStepsPerResource; i++) {
        const more = await this.step(id, session, lease, world);
        if (!more) break;
      }
    } catch (error) {
      if (error instanceof ConcurrencyError || error instanceof StaleTokenError) {
        // Someone else wrote first (an api request, the background, another instance with a newer
        // lock): the next wake re-reads what lost the race — the resource, and the stream the write
        // conflicted on (a host: with the rows on it, as for a notice) — and looks at the resource
        // again. Level-triggered, nothing lost; the rest of the world is as good as it was (a full
        // reload here cost every lost placement race a listing of the whole cloud).
        this.stats.conflicts++;
        this.noticed.add(error instanceof ConcurrencyError ? error.stream : error.resource);
        this.noticed.add(id);
        this.runtime.log.info('mainloop: write lost a race', { resource: id, code: error.code });
        if (error instanceof StaleTokenError) this.noteSessionTrouble(session);
      } else if (error instanceof PortError) {
        this.stats.portErrors++;
        this.runtime.log.warn('mainloop: port failure', {
          resource: id,
          code: error.code,
          message: error.message,
        });
      } else {
        throw error;
      }
    } finally {
      await session.release(lease).catch((error: unknown) => {
        if (!(error instanceof PortError)) throw error;
        this.runtime.log.warn('mainloop: release failed', { resource: id, code: error.code });
      });
    }
  }

  /** One step for a locked resource. True when another step may follow at once. */
  private async step(
    id: string,
    session: LockSession,
    lease: Lease,
    world: World,
  ): Promise<boolean> {
    const projection = await this.store.get(id);
    if (projection === null) return false;
    const row = anyRowOf(projection);
    if (!isReconciled(row)) return false;
    world.put(row);
    const nowMs = this.runtime.clock.nowMs();
    const step = plan(row, { nowMs, world, policy: this.options.retry });
    if (step.kind === 'wait' && step.untilMs !== null) this.remind(id, step.untilMs);
    if (!isActionable(step, row)) return false;
    const write = stepWrite(row, step, {
      nowMs,
      commandId: step.kind === 'send' ? this.runtime.ids.next('cmd') : '',
      token: lease.token,
      policy: this.options.retry,
      actor: this.actor,
    });
    if (write.appends.length === 0) return false;
    // Assume the placement while it is written, as a scheduler's cache assumes a binding: the
    // resources planned meanwhile see the room it takes and choose elsewhere, instead of all
    // choosing the same best host and all but one losing the race on its version. Counting a
    // placement that then fails only makes the world conservative, and it is undone here.
    const assumed = step.kind === 'place' ? assumePlaced(row, step.hostId) : null;
    if (assumed !== null) world.put(assumed);
    try {
      await this.store.append({
        appends: write.appends,
        fence: { resource: id, token: lease.token },
      });
    } catch (error) {
      if (assumed !== null && worldRow(world, id) === assumed) world.put(row);
      throw error;
    }
    this.stats.writes++;
    // Keep the world current for the next steps and resources of this wake.
    for (const append of write.appends) {
      const fresh: Projection | null = await this.store.get(append.stream);
      if (fresh !== null) world.put(anyRowOf(fresh));
    }
    if (write.command !== null && write.hostId !== null) {
      // The write above was fenced, but a newer holder may not have written anything yet (a user
      // request is not fenced): if this instance was paused until its session expired, the
      // command would undo what was asked since. Only a current holder sends; the next holder
      // re-sends whatever is still needed.
      if (session.expired || !(await session.holds(lease))) {
        this.noteSessionTrouble(session);
        this.runtime.log.info('mainloop: lock lost before sending; leaving it to the next holder', {
          resource: id,
        });
        return false;
      }
      await this.publish(CHANNELS.agent(write.hostId), write.command as unknown as BusMessage);
      this.stats.commandsSent++;
      this.remind(id, nowMs + retryDelayMs(this.options.retry, row.attempts + 1));
      // The deadline of this attempt is when to look again.
      return false;
    }
    if (step.kind === 'place' || step.kind === 'finish' || step.kind === 'fail') {
      // Dependents (a VM's volumes, a volume's snapshots, another instance) may act on this now.
      await this.publish(CHANNELS.changes, { type: 'changed', stream: id, resourceType: row.type });
    }
    return step.kind === 'place' || step.kind === 'finish';
  }

  /** Publishes, treating a bus failure as a lost message (the attempt deadline resends). */
  private async publish(channel: string, message: BusMessage): Promise<void> {
    try {
      await this.bus.publish(channel, message);
    } catch (error) {
      if (!(error instanceof PortError)) throw error;
      this.stats.portErrors++;
      this.runtime.log.warn('mainloop: publish failed', { channel, code: error.code });
    }
  }

  private onNotice(message: BusMessage): void {
    if (message.type !== 'changed' || typeof message['stream'] !== 'string') return;
    if (this.noticed.size >= this.options.maxPendingNotices) this.overflow = true;
    else this.noticed.add(message['stream']);
    this.wake();
  }

  private async ensureSubscribed(): Promise<void> {
    if (this.subscription !== null) return;
    this.subscription = await this.bus.subscribe(CHANNELS.changes, (message) =>
      this.onNotice(message),
    );
  }

  /** The current lock session; a new one once the old one expired (its leases are void). */
  private async ensureSession(): Promise<LockSession> {
    const current = this.session;
    if (current !== null && !current.expired && !this.sessionExpired) return current;
    if (current !== null) {
      this.runtime.log.info('mainloop: lock session expired, opening a new one', {
        session: current.id,
      });
      this.session = null;
      await current.close().catch((error: unknown) => {
        if (!(error instanceof PortError)) throw error;
      });
    }
    const session = await this.locks.openSession({ timeoutMs: this.options.lockSessionTimeoutMs });
    this.stats.sessionsOpened++;
    this.session = session;
    this.sessionExpired = false;
    session.onExpired(() => {
      if (this.session === session) {
        this.sessionExpired = true;
        this.wake();
      }
    });
    return session;
  }

  /** A lock call failed or a write was fenced off: check whether the session is still alive. */
  private noteSessionTrouble(session: LockSession): void {
    if (session.expired && this.session === session) this.sessionExpired = true;
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }

  /**
   * Sleeps until `atMs` or until a notice or session expiry wakes it. Keeps at most one pending
   * clock sleep for the earliest deadline, so notice storms do not pile up timers.
   */
  private async sleepUntil(atMs: number): Promise<void> {
    const now = this.runtime.clock.nowMs();
    // Due already: still yield to the rest of the world (as between wakes with work queued), so no
    // sequence of wakes can keep the process busy at one instant.
    if (atMs <= now) return this.runtime.clock.sleep(0);
    if (this.noticed.size > 0 || this.overflow || this.sessionExpired) return;
    return new Promise<void>((resolve) => {
      this.waiter = resolve;
      if (atMs < this.timerAtMs && Number.isFinite(atMs)) {
        this.timerAtMs = atMs;
        void this.runtime.clock.sleep(atMs - now).then(() => {
          if (this.timerAtMs === atMs) this.timerAtMs = Number.POSITIVE_INFINITY;
          this.wake();
        });
      }
    });
  }

  private async shutdown(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = null;
    const session = this.session;
    this.session = null;
    await subscription?.unsubscribe().catch(() => undefined);
    await session?.close().catch(() => undefined);
  }
}
