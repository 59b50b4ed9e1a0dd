/**
 * What both simulated hosts (the compute host and the storage node) share: power state (up, down),
 * hangs, latencies, and the one delivery path of their operations — an operation takes effect in a
 * world event after its latency, while its reply reaches the caller only through the caller's
 * incarnation. {@link SimHost} gives each host its faults; {@link HostHandle} carries the calls of
 * the port handles they bind to incarnations.
 */
import { assert } from '../../lib/assert.ts';
import type { Prng } from '../../lib/prng.ts';
import type { PortError, PortErrorOptions } from '../../ports/errors.ts';
import type { Incarnation } from '../process.ts';
import type { Simulation } from '../simulation.ts';
import { drawLatencyMs, withOverrides, type LatencyTable } from './latency.ts';

/** Power state of a simulated host. */
export type HostStatus = 'up' | 'down';

/** The operation whose latency is the reply of any operation issued while the host is down. */
export type RefusedOperation = 'refused';

/** What sets a kind of host (compute host, storage node) apart in its core. */
export interface HostKind<Op extends string> {
  /** Names the host's PRNG fork: `<forkPrefix>-<id>`. */
  readonly forkPrefix: string;
  /** Prefix of event labels and trace record kinds, e.g. `hypervisor` (`hypervisor.start`). */
  readonly labelPrefix: string;
  /** Default latencies, which a host's own override. */
  readonly latency: LatencyTable<Op | RefusedOperation>;
  /**
   * The port's error class. Its instances are what a host reports as data (anything else an
   * effect throws is a bug); `unavailable` is what an operation gets when the host is down or went
   * down while it was in flight.
   */
  readonly error: new (
    reason: 'unavailable',
    message: string,
    options: PortErrorOptions,
  ) => PortError;
}

/** Options for {@link HostCore}. */
export interface HostCoreOptions<Op extends string> extends HostKind<Op> {
  readonly sim: Simulation;
  /** The host's id, used in the trace and in its PRNG fork's name. */
  readonly id: string;
  /** Called when the host crashes, after it is marked down. */
  readonly onCrash: () => void;
}

/**
 * Power state, hangs, latencies and delivery of one host.
 *
 * An operation is one world event (owned by no process) at `now + latency`. When it runs:
 * - if the host is down, or has crashed since the operation was issued, the operation has no
 *   effect and rejects with the host's `unavailable` error (the connection broke; a caller on a
 *   live process sees a retryable failure when its reply was due);
 * - if the host is hung, the event is deferred to the end of the hang (and again if the hang was
 *   extended): the operation completes late;
 * - otherwise the effect runs and its result or typed error is the reply.
 * The reply reaches the caller through `caller.guard`, so a caller that crashed meanwhile never
 * sees it while the effect stands — "succeeded, reply lost".
 */
export class HostCore<Op extends string> {
  readonly random: Prng;
  private current: HostStatus = 'up';
  /** Incremented on every crash and boot: an operation issued in another epoch finds the host gone. */
  private epochCount = 0;
  private hungUntil = 0;
  private pendingBoot: { cancel(): void } | null = null;

  constructor(private readonly options: HostCoreOptions<Op>) {
    assert(options.id.length > 0 && !options.id.includes('/'), `bad host id '${options.id}'`);
    this.random = options.sim.random.fork(`${options.forkPrefix}-${options.id}`);
  }

  get status(): HostStatus {
    return this.current;
  }

  /** Changes with every crash and boot; lets callers tell one uptime from the next. */
  get epoch(): number {
    return this.epochCount;
  }

  /** True while a hang is in progress. */
  get hung(): boolean {
    return this.options.sim.scheduler.now < this.hungUntil;
  }

  /** Virtual time (ms since the run's start) until which operations stall; 0 if never hung. */
  get hungUntilMs(): number {
    return this.hungUntil;
  }

  /** Draws a latency for `op` from this host's fork. */
  latencyOf(op: Op | RefusedOperation): number {
    return drawLatencyMs(this.random, this.options.latency[op]);
  }

  /** Appends a trace record attributed to this host. */
  record(kind: string, fields: Record<string, unknown> = {}): void {
    this.options.sim.record({
      kind: `${this.options.labelPrefix}.${kind}`,
      host: this.options.id,
      ...fields,
    });
  }

  /** Crashes the host now; it stays down until {@link boot}. A no-op while down (a pending boot is still cancelled). */
  crash(): void {
    if (!this.power('down')) return;
    this.hungUntil = 0;
    this.record('crash');
    this.options.onCrash();
  }

  /** Powers a down host on now; a no-op when it is up. */
  boot(): void {
    if (this.power('up')) this.record('boot');
  }

  /** Crashes the host now (if up) and boots it `afterMs` (>= 0) later. */
  reboot(afterMs: number): void {
    assert(Number.isFinite(afterMs) && afterMs >= 0, `reboot delay must be >= 0, got ${afterMs}`);
    this.crash();
    this.pendingBoot = this.options.sim.schedule({
      delayMs: afterMs,
      label: `${this.options.labelPrefix}.boot`,
      run: () => this.boot(),
    });
  }

  /** Stalls the management plane for `forMs` (>= 0) from now; overlapping hangs extend it. */
  hang(forMs: number): void {
    assert(Number.isFinite(forMs) && forMs >= 0, `hang duration must be >= 0, got ${forMs}`);
    const now = this.options.sim.scheduler.now;
    this.hungUntil = Math.max(this.hungUntil, now + forMs);
    this.record('hang', { untilMs: this.hungUntil });
  }

  /**
   * Cancels a pending boot (a crash or boot now overrides it) and moves to `status`; false when
   * the host was already there. A change starts a new epoch.
   */
  private power(status: HostStatus): boolean {
    this.pendingBoot?.cancel();
    this.pendingBoot = null;
    if (this.current === status) return false;
    this.current = status;
    this.epochCount++;
    return true;
  }

  /**
   * Issues operation `op` for `caller`. `effect` runs in the completing world event; it returns the
   * reply or throws a host error. A dead caller issues nothing and gets a promise that never settles.
   */
  request<T>(caller: Incarnation, op: Op, target: string, effect: () => T): Promise<T> {
    if (!caller.alive) return new Promise<T>(() => {});
    const { sim, labelPrefix } = this.options;
    const epoch = this.epochCount;
    const delayMs = this.latencyOf(this.current === 'up' ? op : 'refused');
    const reply = new Promise<T>((resolve, reject) => {
      const complete = (): void => {
        if (this.current === 'down' || this.epochCount !== epoch) {
          this.record('op', { op, target, outcome: 'unavailable' });
          const message = `host ${this.options.id} is unavailable`;
          reject(new this.options.error('unavailable', message, { retryable: true }));
          return;
        }
        const now = sim.scheduler.now;
        if (now < this.hungUntil) {
          sim.schedule({
            delayMs: this.hungUntil - now,
            label: `${labelPrefix}.${op}`,
            run: complete,
          });
          return;
        }
        let result: T;
        try {
          result = effect();
        } catch (error) {
          if (!(error instanceof this.options.error)) throw error;
          this.record('op', { op, target, outcome: error.code });
          reject(error);
          return;
        }
        this.record('op', { op, target, outcome: 'ok' });
        resolve(result);
      };
      sim.schedule({ delayMs, label: `${labelPrefix}.${op}`, run: complete });
    });
    return caller.guard(reply);
  }
}

/**
 * A simulated host: world state that outlives every process holding one of its port handles, with
 * the faults fault injection calls. A subclass says what a crash does to its state.
 */
export abstract class SimHost<Op extends string> {
  /** The host's id: non-empty, no `/`. */
  readonly id: string;
  protected readonly core: HostCore<Op>;

  constructor(
    options: {
      readonly sim: Simulation;
      /** The host's id: non-empty, no `/`. */
      readonly id: string;
      /** Latencies replacing the kind's defaults. */
      readonly latency?: Partial<LatencyTable<Op | RefusedOperation>> | undefined;
    },
    kind: HostKind<Op>,
  ) {
    this.id = options.id;
    this.core = new HostCore({
      ...kind,
      latency: withOverrides<Op | RefusedOperation>(kind.latency, options.latency),
      sim: options.sim,
      id: options.id,
      onCrash: () => this.onCrash(),
    });
  }

  /** `up` or `down`. A hung host is `up`. */
  get status(): HostStatus {
    return this.core.status;
  }

  /** True while a {@link hang} is in progress. */
  get hung(): boolean {
    return this.core.hung;
  }

  /** Powers the host off hard; it stays down until {@link boot} (see {@link onCrash}). */
  crash(): void {
    this.core.crash();
  }

  /** Powers a down host on. No-op when up. */
  boot(): void {
    this.core.boot();
  }

  /** Crashes the host now and boots it `afterMs` (>= 0) later. */
  reboot(afterMs: number): void {
    this.core.reboot(afterMs);
  }

  /** Stalls the host's management plane for `forMs` (>= 0): operations complete late. */
  hang(forMs: number): void {
    this.core.hang(forMs);
  }

  /** What a crash does to the host's state, once it is marked down. */
  protected abstract onCrash(): void;
}

/**
 * The delivery of one incarnation's port handle: every call goes through the host's delivery
 * ({@link HostCore.request}) on behalf of that incarnation, and is inert once it dies.
 */
export class HostHandle<Op extends string> {
  private closed = false;

  constructor(
    private readonly caller: Incarnation,
    private readonly core: HostCore<Op>,
    /** The port, for messages: `hypervisor`, `storage`. */
    private readonly port: string,
  ) {}

  /** Closes the handle locally: no round trip, succeeds even when the host is down. */
  close(): Promise<void> {
    this.closed = true;
    return this.caller.guard(Promise.resolve());
  }

  /** Runs `effect` on the host after `op`'s latency, replying to this handle's incarnation. */
  call<T>(op: Op, target: string, effect: () => T): Promise<T> {
    assert(!this.closed, `${this.port} handle of ${this.caller.label} used after close`);
    return this.core.request(this.caller, op, target, effect);
  }
}
