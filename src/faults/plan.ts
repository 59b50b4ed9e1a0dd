/**
 * Fault plans: the data that says which faults a run injects — explicit events at given times (a
 * schedule), per-operation fault rates for the bus, the adapters, the database and the lock
 * service, and the time the faults heal. A scenario file's `faults` section becomes a plan (see
 * src/sim/scenario.ts), and swarm mode draws one per seed (swarm.ts). Plans are plain data so a
 * failing run can be written out, shrunk and replayed.
 */
import type { Prng } from '../lib/prng.ts';

/** Explicit faults that target a process, by process name (`api`, `mainloop-1`, `agent-compute-2`). */
export const PROCESS_FAULT_KINDS = [
  'crash',
  'pause',
  'pause-holder',
  'bus-disconnect',
  'session-expire',
  'db-disconnect',
] as const;

/** Explicit faults that target a host, by host name (`compute-1`, `storage-1`). */
export const HOST_FAULT_KINDS = ['host-crash', 'host-hang', 'host-isolate'] as const;

export type ProcessFaultKind = (typeof PROCESS_FAULT_KINDS)[number];
export type HostFaultKind = (typeof HOST_FAULT_KINDS)[number];
export type ScheduledFaultKind = ProcessFaultKind | HostFaultKind;

/** Every kind of explicit fault. */
export const SCHEDULED_FAULT_KINDS: readonly ScheduledFaultKind[] = [
  ...PROCESS_FAULT_KINDS,
  ...HOST_FAULT_KINDS,
];

/** True when `kind` targets a process (otherwise a host). */
export function isProcessFault(kind: ScheduledFaultKind): kind is ProcessFaultKind {
  return (PROCESS_FAULT_KINDS as readonly string[]).includes(kind);
}

/** Where a `pause-holder` fault stops its main loop: right after a lock grant, or after a fenced write. */
export const HOLDER_POINTS = ['acquire', 'write', 'send'] as const;
export type HolderPoint = (typeof HOLDER_POINTS)[number];

/**
 * One explicit fault at a virtual time. Kinds:
 * - `crash`: the process dies at whatever await it is parked on; with `restartAfterMs` a new
 *   incarnation starts that much later, otherwise at heal time.
 * - `pause`: the process stops (timers and I/O replies held) for `forMs` and
 *   resumes with the beliefs it had.
 * - `pause-holder`: from `atMs` on, the next time the main loop `target` holds a lock (`point`
 *   `acquire`: the grant arrived; `write`: a fenced append succeeded, before it publishes the
 *   command; `send`: it has just confirmed it still holds the lock and is about to publish) it is
 *   paused for `forMs`. Longer than the lock session timeout, its session expires
 *   and it resumes acting with a stale token: fencing must stop it.
 * - `bus-disconnect`: for `forMs`, every bus message on its way to the process's subscriptions is
 *   lost (the subscriber's connection dropped and ioredis resubscribed later).
 * - `session-expire`: the lock service expires every open session of the process now.
 * - `db-disconnect`: for `forMs`, the process's database connection is gone and will not come
 *   back: every call fails with `store.unavailable` (a call already sent completes or not as the
 *   database had it), as when its backend is terminated and reconnects are refused.
 * - `host-crash`: the host loses power (domains die, operations fail) and boots after `forMs`
 *   (default: at heal time).
 * - `host-hang`: libvirtd / ZFS stall for `forMs`: operations complete late, guests run on.
 * - `host-isolate`: for `forMs` the host's agent cannot reach the bus or the database (publishes and
 *   queries fail, deliveries are lost) while its domains keep running; long enough, the background
 *   declares the host down, and it comes back with its old domains when the link heals.
 */
export interface ScheduledFault {
  /** Virtual ms since the run's start. */
  readonly atMs: number;
  readonly kind: ScheduledFaultKind;
  /** A process name for process faults, a host name for host faults. */
  readonly target: string;
  /** `crash` only: restart after this many ms; undefined: restart at heal time. */
  readonly restartAfterMs: number | undefined;
  /**
   * Duration of every kind but `crash` and `session-expire`, ms. Scenario files always give it;
   * plans built in code may leave it undefined: the fault then lasts until the heal.
   */
  readonly forMs: number | undefined;
  /** `pause-holder` only; default `acquire`. */
  readonly point?: HolderPoint | undefined;
}

/** Bus faults per delivery of one message to one subscriber. Probabilities in [0, 1]. */
export interface BusFaults {
  readonly dropProbability: number;
  readonly duplicateProbability: number;
  /** The copy arrives up to `delayMsMax` late: later messages overtake it (a reorder). */
  readonly delayProbability: number;
  readonly delayMsMax: number;
  /** The copy overtakes messages already in flight to the same subscriber (a reorder). */
  readonly reorderProbability: number;
}

/** Faults of the hypervisor and storage port handles the agents use, per operation. */
export interface AdapterFaults {
  /** The operation fails at once with a retryable `unavailable`, without effect. */
  readonly failProbability: number;
  /** The operation hangs, has no effect, and fails with a timeout after `timeoutMs`. */
  readonly timeoutProbability: number;
  readonly timeoutMs: number;
  /** The operation starts up to `slowMsMax` late. */
  readonly slowProbability: number;
  readonly slowMsMax: number;
  /** The operation takes effect but its reply is lost: the caller gets `unavailable`. */
  readonly lostReplyProbability: number;
}

/** Faults of every process's database handle, per operation. */
export interface DatabaseFaults {
  /** An append is aborted (serialization failure): retryable error, nothing written. */
  readonly abortProbability: number;
  /**
   * The connection drops during the operation: the caller gets `store.unavailable`; for an append,
   * half of the time it was committed before the drop and half of the time not.
   */
  readonly connectionLossProbability: number;
  /** The query starts up to `slowMsMax` late (a slow query, a lock wait). */
  readonly slowProbability: number;
  readonly slowMsMax: number;
}

/** Faults of the lock service's session-expiry notices. */
export interface LockFaults {
  /** A notice is lost: the client learns of the expiry only at its next request or heartbeat. */
  readonly expiryNoticeLossProbability: number;
  /** A notice arrives up to `expiryNoticeDelayMsMax` late. */
  readonly expiryNoticeDelayProbability: number;
  readonly expiryNoticeDelayMsMax: number;
}

/** Kinds swarm mode may switch on for a seed. */
export const SWARM_KINDS = [
  'bus',
  'bus-disconnect',
  'crash',
  'pause',
  'pause-holder',
  'session-expire',
  'lock-notices',
  'host-crash',
  'host-hang',
  'host-isolate',
  'adapters',
  'database',
] as const;
export type SwarmKind = (typeof SWARM_KINDS)[number];

/** Swarm mode: which fault kinds may be drawn, and how much of each. */
export interface SwarmOptions {
  /** The kinds each seed chooses from. Default: all of {@link SWARM_KINDS}. */
  readonly kinds: readonly SwarmKind[];
  /** Chance that one allowed kind is on for a seed, in [0, 1]. Default 0.5. */
  readonly kindProbability: number;
  /** Most explicit events drawn per kind that is on (at least 1 each). Default 3. */
  readonly eventsMax: number;
  /** Upper bound of every drawn per-operation probability, in [0, 1]. Default 0.2. */
  readonly rateMax: number;
}

/** Defaults of {@link SwarmOptions}. */
export const SWARM_DEFAULTS: SwarmOptions = {
  kinds: SWARM_KINDS,
  kindProbability: 0.5,
  eventsMax: 3,
  rateMax: 0.2,
};

/** Everything a run injects. Absent rate blocks mean no such faults. */
export interface FaultPlan {
  readonly schedule: readonly ScheduledFault[];
  readonly bus: BusFaults | undefined;
  readonly adapters: AdapterFaults | undefined;
  readonly database: DatabaseFaults | undefined;
  readonly locks: LockFaults | undefined;
  /** Faults stop here, in virtual ms: the liveness phase starts. */
  readonly healAtMs: number;
}

/** A trace record describing one injected fault; `kind` starts with `fault.`. */
export interface FaultRecord {
  readonly kind: `fault.${string}`;
  readonly [field: string]: unknown;
}

/** Appends a fault record to the run's trace. */
export type RecordFault = (record: FaultRecord) => void;

/**
 * Whether faults are on. Decorators consult it on every operation: once the run heals, they pass
 * every call straight through (the liveness phase), without drawing.
 */
export class FaultPhase {
  private healed = false;

  /** True during the safety phase. */
  get active(): boolean {
    return !this.healed;
  }

  /** Ends the safety phase for good. */
  heal(): void {
    this.healed = true;
  }
}

/** An empty plan healing at `healAtMs`. */
export function emptyPlan(healAtMs: number): FaultPlan {
  return {
    schedule: [],
    bus: undefined,
    adapters: undefined,
    database: undefined,
    locks: undefined,
    healAtMs,
  };
}

/**
 * True with probability `p` (in [0, 1]), always consuming exactly one draw — unlike `Prng.chance`,
 * which skips the draw for 0 and 1 — so setting one fault's probability to 0 or 1 never shifts the
 * draws that follow it.
 */
export function flip(random: Prng, p: number): boolean {
  return random.float() < p;
}

/**
 * A plan as the `faults` section of scenario data (times in ms), so a run's plan — a swarm draw
 * included — can be written out as an explicit scenario, shrunk and replayed without swarm mode.
 * `toScenario({ …, faults: toFaultsData(plan) })` gives back the same plan.
 */
export function toFaultsData(plan: FaultPlan): Record<string, unknown> {
  const data: Record<string, unknown> = {
    schedule: plan.schedule.map((f) => ({
      at: f.atMs,
      kind: f.kind,
      target: f.target,
      ...(f.restartAfterMs === undefined ? {} : { restartAfter: f.restartAfterMs }),
      ...(f.forMs === undefined ? {} : { for: f.forMs }),
      ...(f.kind === 'pause-holder' ? { point: f.point ?? 'acquire' } : {}),
    })),
    healAt: plan.healAtMs,
  };
  if (plan.bus !== undefined) data['bus'] = { ...plan.bus };
  if (plan.adapters !== undefined) data['adapters'] = { ...plan.adapters };
  if (plan.database !== undefined) data['database'] = { ...plan.database };
  if (plan.locks !== undefined) data['locks'] = { ...plan.locks };
  return data;
}
