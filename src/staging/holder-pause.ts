/**
 * The staging counterpart of the simulator's `pause-holder` fault: a main loop process that stops
 * itself (SIGSTOP) the next time it holds a lock at a given point, so a chaos run can keep a lock
 * holder frozen past its ZooKeeper session and watch fencing stop it when it resumes.
 *
 * A chaos runner arms it by writing the point (`acquire`: the lock was just granted; `write`: a
 * fenced append just succeeded, before the command is published; `send`: the loop has just
 * confirmed it still holds the lock and is about to publish) to `<state>/<name>.pause-holder` and
 * sending SIGUSR2. The process reads and removes the file, and at the next hold at that point logs
 * `chaos.pause-holder` and stops; the runner sees it stopped and sends SIGCONT later. Any other
 * content (`none`) disarms. Without SIGUSR2 nothing changes: the wrappers pass every call through.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { EventStore } from '../ports/event-store.ts';
import type { Lease, Locks, LockSession } from '../ports/locks.ts';
import type { Log } from '../ports/runtime.ts';

/** Where a main loop may be stopped holding a lock (the simulator's points). */
export const HOLDER_PAUSE_POINTS = ['acquire', 'write', 'send'] as const;
export type HolderPausePoint = (typeof HOLDER_PAUSE_POINTS)[number];

/** The file a runner writes the point to before SIGUSR2. */
export function holderPauseFile(stateDir: string, name: string): string {
  return join(stateDir, `${name}.pause-holder`);
}

/** The armed point of one process, and the wrappers that stop it there. */
export class HolderPause {
  private armed: HolderPausePoint | null = null;
  private readonly onSignal = (): void => this.arm();

  constructor(
    private readonly file: string,
    private readonly log: Pick<Log, 'warn'>,
    /** Stops this process (SIGSTOP to itself); replaced in tests. */
    private readonly stop: () => void = () => process.kill(process.pid, 'SIGSTOP'),
  ) {}

  /** Listens for SIGUSR2; returns a function that stops listening. */
  listen(): () => void {
    process.on('SIGUSR2', this.onSignal);
    return () => process.off('SIGUSR2', this.onSignal);
  }

  /** Reads the point the runner wrote (and removes the file); anything else disarms. */
  arm(): void {
    if (!existsSync(this.file)) return;
    const point = readFileSync(this.file, 'utf8').trim();
    rmSync(this.file, { force: true });
    this.armed = (HOLDER_PAUSE_POINTS as readonly string[]).includes(point)
      ? (point as HolderPausePoint)
      : null;
  }

  /** A lock is held at `point`: stops the process here if that is the armed point. */
  hold(point: HolderPausePoint, resource: string): void {
    if (this.armed !== point) return;
    this.armed = null;
    this.log.warn('chaos.pause-holder', { point, resource });
    this.stop();
  }

  /** The store, stopping after a fenced append when armed at `write`. */
  store(inner: EventStore): EventStore {
    return {
      ...inner,
      append: async (batch) => {
        const events = await inner.append(batch);
        if (batch.fence !== undefined) this.hold('write', batch.fence.resource);
        return events;
      },
    };
  }

  /** The lock service, its sessions stopping at `acquire` and `send` when armed. */
  locks(inner: Locks): Locks {
    return {
      openSession: async (options) => new PausingSession(await inner.openSession(options), this),
      close: () => inner.close(),
    };
  }
}

class PausingSession implements LockSession {
  constructor(
    private readonly inner: LockSession,
    private readonly pause: HolderPause,
  ) {}

  get id(): string {
    return this.inner.id;
  }

  get expired(): boolean {
    return this.inner.expired;
  }

  async tryAcquire(name: string): Promise<Lease | null> {
    const lease = await this.inner.tryAcquire(name);
    if (lease !== null) this.pause.hold('acquire', name);
    return lease;
  }

  release(lease: Lease): Promise<void> {
    return this.inner.release(lease);
  }

  async holds(lease: Lease): Promise<boolean> {
    const held = await this.inner.holds(lease);
    if (held) this.pause.hold('send', lease.name);
    return held;
  }

  onExpired(handler: () => void): void {
    this.inner.onExpired(handler);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
