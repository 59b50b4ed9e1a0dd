/**
 * The fault injector: turns a fault plan into events of a run. Explicit faults fire at their times
 * through a {@link FaultWorld} — the few things a world lets a fault do to it (crash or pause a
 * process, crash or hang a host, expire lock sessions) — and cut links through {@link LinkCuts}
 * that the bus and database decorators consult. At `healAtMs` it heals everything at once: the
 * {@link FaultPhase} ends (every decorator passes calls straight through), links are restored,
 * paused processes resume, crashed ones restart and hosts that are down boot. What follows is the
 * liveness phase.
 *
 * The control plane never learns it is faulted: every fault acts on ports, processes and hosts.
 */
import { assert, assertNever } from '../lib/assert.ts';
import { LinkCuts } from './bus-faults.ts';
import {
  FaultPhase,
  type FaultPlan,
  type HolderPoint,
  type RecordFault,
  type ScheduledFault,
} from './plan.ts';

/** What faults may do to a world; implemented by the simulator. Names are those of the plan. */
export interface FaultWorld {
  /** Runs `run` as a world event at virtual time `atMs` (>= now), labelled `label`. */
  at(atMs: number, label: string, run: () => void): void;
  readonly record: RecordFault;
  /** Crashes the process; restarts it after `restartAfterMs` when given. */
  crashProcess(name: string, restartAfterMs: number | undefined): void;
  /** Pauses the process; resumes it after `forMs` when given. */
  pauseProcess(name: string, forMs: number | undefined): void;
  /** Expires every open lock session of the process; returns how many. */
  expireSessions(name: string): number;
  /** Crashes the host; boots it after `forMs` when given. */
  crashHost(name: string, forMs: number | undefined): void;
  /** Stalls the host's hypervisor or pool for `forMs`. */
  hangHost(name: string, forMs: number): void;
  /** The name of the agent process of a host. */
  agentOf(host: string): string;
  /** Resumes paused processes, restarts crashed ones, boots hosts that are down. */
  healWorld(): void;
  /**
   * Arms a `pause-holder` fault in a main loop that runs elsewhere (a real process), which then
   * stops itself at its next hold at `point`. Without it the injector arms the fault itself and the
   * world's decorators report holds through {@link FaultInjector.noteHold}.
   */
  armHolder?(name: string, point: HolderPoint, forMs: number | undefined): void;
  /**
   * Cuts the bus subscriptions of a process that runs elsewhere (a real process) for `forMs`, or
   * until the heal. Without it the world's bus decorators consult {@link FaultInjector.disconnects}.
   */
  disconnectBus?(name: string, forMs: number | undefined): void;
  /** As {@link disconnectBus}, for the process's database connection (`db-disconnect`). */
  disconnectDatabase?(name: string, forMs: number | undefined): void;
}

/** Injects one plan into one world. */
export class FaultInjector {
  readonly phase = new FaultPhase();
  /** Processes whose subscriptions lose every message (`bus-disconnect`). */
  readonly disconnects = new LinkCuts();
  /** Processes cut off from the bus and the database (`host-isolate`). */
  readonly isolation = new LinkCuts();
  /** Processes whose database connection is gone (`db-disconnect`). */
  readonly dbCuts = new LinkCuts();
  /** Main loops to pause at their next lock hold, by process name. */
  private readonly holders = new Map<string, { point: HolderPoint; forMs: number | undefined }>();
  private started = false;

  constructor(
    readonly plan: FaultPlan,
    private readonly world: FaultWorld,
  ) {}

  /** Schedules every explicit fault and the heal. Call once, before the run. */
  start(): void {
    assert(!this.started, 'the fault injector is already started');
    this.started = true;
    for (const fault of this.plan.schedule) {
      assert(fault.atMs < this.plan.healAtMs, `fault at ${fault.atMs} ms is not before the heal`);
      this.world.at(fault.atMs, `fault.${fault.kind}`, () => this.fire(fault));
    }
    this.world.at(this.plan.healAtMs, 'faults.heal', () => this.heal());
  }

  /** True while `process` may not reach the bus or the database. */
  isIsolated(process: string): boolean {
    return this.isolation.isCut(process);
  }

  /** True while `process` may not reach the database (isolated, or its connection gone). */
  isDatabaseCut(process: string): boolean {
    return this.isolation.isCut(process) || this.dbCuts.isCut(process);
  }

  /**
   * Tells the injector that main loop `process` holds a lock at `point`: an armed `pause-holder`
   * fault fires now (the process stops at its next await, lease in hand). True when it fired.
   */
  noteHold(process: string, point: HolderPoint): boolean {
    const armed = this.holders.get(process);
    if (armed === undefined || armed.point !== point || !this.phase.active) return false;
    this.holders.delete(process);
    this.world.record({ kind: 'fault.pause-holder', target: process, point, forMs: armed.forMs });
    this.world.pauseProcess(process, armed.forMs);
    return true;
  }

  private fire(fault: ScheduledFault): void {
    const { world } = this;
    const { target, forMs } = fault;
    // Most faults last `forMs` (until the heal when undefined): recorded as such, then applied.
    const lasting = (apply: () => void): void => {
      world.record({ kind: `fault.${fault.kind}`, target, forMs });
      apply();
    };
    switch (fault.kind) {
      case 'crash':
        world.record({ kind: 'fault.crash', target, restartAfterMs: fault.restartAfterMs });
        world.crashProcess(target, fault.restartAfterMs);
        return;
      case 'pause':
        return lasting(() => world.pauseProcess(target, forMs));
      case 'pause-holder':
        world.record({ kind: 'fault.pause-holder-armed', target, point: fault.point ?? 'acquire' });
        if (world.armHolder !== undefined) world.armHolder(target, fault.point ?? 'acquire', forMs);
        else this.holders.set(target, { point: fault.point ?? 'acquire', forMs });
        return;
      case 'bus-disconnect':
        return lasting(() => {
          this.window(this.disconnects, target, fault.atMs, forMs, 'fault.bus-reconnect');
          world.disconnectBus?.(target, forMs);
        });
      case 'db-disconnect':
        return lasting(() => {
          this.window(this.dbCuts, target, fault.atMs, forMs, 'fault.db-reconnect');
          world.disconnectDatabase?.(target, forMs);
        });
      case 'session-expire': {
        const sessions = world.expireSessions(target);
        world.record({ kind: 'fault.session-expire', target, sessions });
        return;
      }
      case 'host-crash':
        return lasting(() => world.crashHost(target, forMs));
      case 'host-hang':
        assert(forMs !== undefined, 'host-hang needs a duration');
        return lasting(() => world.hangHost(target, forMs));
      case 'host-isolate': {
        const agent = world.agentOf(target);
        return lasting(() =>
          this.window(this.isolation, agent, fault.atMs, forMs, 'fault.host-rejoin'),
        );
      }
      default:
        assertNever(fault.kind, 'fault kind');
    }
  }

  /** Cuts `process` in `cuts` from `atMs` for `forMs` (until heal when undefined). */
  private window(
    cuts: LinkCuts,
    process: string,
    atMs: number,
    forMs: number | undefined,
    end: `fault.${string}`,
  ): void {
    cuts.begin(process);
    if (forMs === undefined) return;
    // A window that outlives the heal was ended by it: the heal cleared every cut.
    this.world.at(atMs + forMs, end, () => {
      if (!this.phase.active) return;
      this.world.record({ kind: end, target: process });
      cuts.end(process);
    });
  }

  private heal(): void {
    this.phase.heal();
    this.disconnects.clear();
    this.isolation.clear();
    this.dbCuts.clear();
    this.holders.clear();
    this.world.record({ kind: 'fault.heal' });
    this.world.healWorld();
  }
}
