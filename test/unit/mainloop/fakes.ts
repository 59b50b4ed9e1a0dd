/**
 * Small deterministic fakes of the ports the main loop uses, for its unit tests: a manual clock,
 * a bus that delivers on the next microtask and records what was published, a lock service with
 * sessions, re-entrant leases, strictly increasing tokens and forced expiry, and agents that turn
 * commands into observations in the store (as agents plus the background service would).
 */
import type { AgentCommand } from '../../../src/model/commands.ts';
import { newEvent, type EventDataMap, type EventType } from '../../../src/model/events.ts';
import { anyRowOf, BYTES_PER_GB, volumeIdOfDiskSource } from '../../../src/model/resources.ts';
import {
  CHANNELS,
  type Bus,
  type BusHandler,
  type BusMessage,
  type Subscription,
} from '../../../src/ports/bus.ts';
import { PortError } from '../../../src/ports/errors.ts';
import type { EventStore } from '../../../src/ports/event-store.ts';
import type { Lease, LockSession, Locks, SessionOptions } from '../../../src/ports/locks.ts';
import type { Clock, Log, Runtime, Timer } from '../../../src/ports/runtime.ts';
import { CountingIds } from '../model/harness.ts';

/** Lets every pending microtask and immediate run. */
export async function flush(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

export class ManualClock implements Clock {
  now = 1_000_000;
  private timers: { atMs: number; seq: number; resolve: () => void }[] = [];
  private seq = 0;
  nowMs(): number {
    return this.now;
  }
  sleep(delayMs: number): Promise<void> {
    return new Promise((resolve) =>
      this.timers.push({ atMs: this.now + delayMs, seq: this.seq++, resolve }),
    );
  }
  timer(delayMs: number): Timer {
    let entry: { atMs: number; seq: number; resolve: () => void } | undefined;
    const fired = new Promise<void>((resolve) => {
      entry = { atMs: this.now + delayMs, seq: this.seq++, resolve };
      this.timers.push(entry);
    });
    return { fired, cancel: () => (this.timers = this.timers.filter((t) => t !== entry)) };
  }
  get pending(): number {
    return this.timers.length;
  }
  /** Moves time forward, firing due sleeps in order and letting their continuations run. */
  async advance(ms: number): Promise<void> {
    const target = this.now + ms;
    for (;;) {
      await flush();
      this.timers.sort((a, b) => a.atMs - b.atMs || a.seq - b.seq);
      const next = this.timers[0];
      if (next === undefined || next.atMs > target) break;
      this.timers.shift();
      this.now = Math.max(this.now, next.atMs);
      next.resolve();
    }
    this.now = target;
    await flush();
  }
}

export function runtime(
  clock: ManualClock,
  ids = new CountingIds(),
): Runtime & { lines: string[] } {
  const lines: string[] = [];
  const log: Log = {
    info: (m, f) => lines.push(`info ${m} ${JSON.stringify(f ?? {})}`),
    warn: (m, f) => lines.push(`warn ${m} ${JSON.stringify(f ?? {})}`),
  };
  return {
    clock,
    ids,
    log,
    random: {
      float: () => 0.5,
      int: (a) => a,
      chance: () => false,
      exponential: (m) => m,
      logNormal: (m) => m,
    },
    lines,
  };
}

export class FakeBus implements Bus {
  readonly published: { channel: string; message: BusMessage }[] = [];
  private readonly handlers = new Map<string, Set<BusHandler>>();
  /** When set, publishes fail with a retryable PortError. */
  down = false;
  async publish(channel: string, message: BusMessage): Promise<number> {
    if (this.down) throw new PortError('bus.unavailable', 'bus down', { retryable: true });
    this.published.push({ channel, message });
    const handlers = [...(this.handlers.get(channel) ?? [])];
    queueMicrotask(() => handlers.forEach((h) => h(message, channel)));
    return Promise.resolve(handlers.length);
  }
  async subscribe(channel: string, handler: BusHandler): Promise<Subscription> {
    let set = this.handlers.get(channel);
    if (set === undefined) this.handlers.set(channel, (set = new Set()));
    set.add(handler);
    return Promise.resolve({
      unsubscribe: () => {
        set.delete(handler);
        return Promise.resolve();
      },
    });
  }
  async close(): Promise<void> {
    this.handlers.clear();
    return Promise.resolve();
  }
  commands(): AgentCommand[] {
    return this.published
      .filter((p) => p.channel.startsWith('cloudbed.agent.'))
      .map((p) => p.message as unknown as AgentCommand);
  }
}

export class FakeLocks implements Locks {
  private token = 0;
  readonly holders = new Map<string, { session: FakeSession; token: number }>();
  readonly sessions: FakeSession[] = [];
  async openSession(_options: SessionOptions): Promise<LockSession> {
    const session = new FakeSession(this, `s${this.sessions.length + 1}`);
    this.sessions.push(session);
    return Promise.resolve(session);
  }
  nextToken(): number {
    return ++this.token;
  }
  async close(): Promise<void> {
    return Promise.resolve();
  }
}

export class FakeSession implements LockSession {
  expired = false;
  private readonly handlers: (() => void)[] = [];
  constructor(
    private readonly service: FakeLocks,
    readonly id: string,
  ) {}
  async tryAcquire(name: string): Promise<Lease | null> {
    if (this.expired) throw new PortError('locks.session-expired', 'session expired');
    const holder = this.service.holders.get(name);
    if (holder !== undefined) return holder.session === this ? { name, token: holder.token } : null;
    const token = this.service.nextToken();
    this.service.holders.set(name, { session: this, token });
    return Promise.resolve({ name, token });
  }
  async release(lease: Lease): Promise<void> {
    if (this.service.holders.get(lease.name)?.session === this)
      this.service.holders.delete(lease.name);
    return Promise.resolve();
  }
  async holds(lease: Lease): Promise<boolean> {
    const h = this.service.holders.get(lease.name);
    return Promise.resolve(h?.session === this && h.token === lease.token);
  }
  onExpired(handler: () => void): void {
    this.handlers.push(handler);
  }
  async close(): Promise<void> {
    for (const [name, h] of this.service.holders)
      if (h.session === this) this.service.holders.delete(name);
    return Promise.resolve();
  }
  /** The service expires the session: its locks vanish and its handlers hear about it. */
  expire(): void {
    this.expired = true;
    for (const [name, h] of this.service.holders)
      if (h.session === this) this.service.holders.delete(name);
    this.handlers.forEach((h) => h());
  }
}

/**
 * Agents plus background in one: applies each command to in-memory hosts and appends the changed
 * observation (and restore results) to the store, then publishes a change notice. Rejects stale
 * tokens per resource. `paused` hosts ignore commands.
 */
export class StoreAgents {
  readonly domains = new Map<string, Map<string, { running: boolean; disks: string[] }>>();
  readonly datasets = new Map<string, Map<string, number>>();
  readonly snapshots = new Map<string, Set<string>>();
  readonly paused = new Set<string>();
  readonly applied: AgentCommand[] = [];
  private readonly newest = new Map<string, number>();

  constructor(
    private readonly store: EventStore,
    private readonly bus: Bus,
    private readonly clock: Clock,
  ) {}

  async start(hostId: string, kind: 'compute' | 'storage'): Promise<void> {
    if (kind === 'compute') this.domains.set(hostId, new Map());
    else {
      this.datasets.set(hostId, new Map());
      this.snapshots.set(hostId, new Set());
    }
    await this.bus.subscribe(
      CHANNELS.agent(hostId),
      (m) => void this.handle(hostId, m as unknown as AgentCommand),
    );
  }

  private async emit<T extends EventType>(
    stream: string,
    type: T,
    data: EventDataMap[T],
  ): Promise<void> {
    const current = await this.store.get(stream);
    await this.store.append({
      appends: [
        {
          stream,
          expectedVersion: current?.version ?? 0,
          events: [newEvent(type, data, { atMs: this.clock.nowMs(), actor: 'background' })],
        },
      ],
    });
    await this.bus.publish(CHANNELS.changes, {
      type: 'changed',
      stream,
      resourceType: current?.type ?? '',
    });
  }

  private async handle(hostId: string, c: AgentCommand): Promise<void> {
    if (this.paused.has(hostId)) return;
    const resource =
      c.type === 'vm.ensure' ? c.vmId : c.type === 'snapshot.ensure' ? c.snapshotId : c.volumeId;
    if (c.token < (this.newest.get(resource) ?? 0)) return;
    this.newest.set(resource, c.token);
    this.applied.push(c);
    switch (c.type) {
      case 'vm.ensure': {
        const d = this.domains.get(hostId)!;
        if (c.power === 'absent') d.delete(c.vmId);
        else
          d.set(c.vmId, {
            running: c.power === 'running',
            disks: c.spec.disks.map((x) => volumeIdOfDiskSource(x.source) ?? '?'),
          });
        const now = d.get(c.vmId);
        const row = anyRowOf((await this.store.get(c.vmId))!);
        const next = {
          hostId,
          domain:
            now === undefined
              ? ('absent' as const)
              : now.running
                ? ('running' as const)
                : ('shutoff' as const),
          disks: now?.disks ?? null,
        };
        const o = row.type === 'virtualMachine' ? row.observed : null;
        if (
          o?.hostId !== next.hostId ||
          o.domain !== next.domain ||
          JSON.stringify(o.disks) !== JSON.stringify(next.disks)
        )
          await this.emit(c.vmId, 'vm.observed', next);
        return;
      }
      case 'volume.ensure': {
        const d = this.datasets.get(hostId)!;
        if (c.present) d.set(c.volumeId, Math.max(d.get(c.volumeId) ?? 0, c.sizeBytes));
        else d.delete(c.volumeId);
        const size = d.get(c.volumeId);
        await this.emit(c.volumeId, 'volume.observed', {
          storageNodeId: hostId,
          present: size !== undefined,
          sizeBytes: size ?? null,
          origin: c.origin,
        });
        return;
      }
      case 'snapshot.ensure': {
        const s = this.snapshots.get(hostId)!;
        if (c.present) s.add(c.snapshotId);
        else s.delete(c.snapshotId);
        await this.emit(c.snapshotId, 'snapshot.observed', {
          storageNodeId: hostId,
          present: c.present,
          sizeBytes: c.present ? BYTES_PER_GB : null,
        });
        return;
      }
      case 'volume.restore':
        await this.emit(c.volumeId, 'volume.command-reported', {
          commandId: c.commandId,
          ok: true,
          error: null,
        });
        return;
    }
  }
}
