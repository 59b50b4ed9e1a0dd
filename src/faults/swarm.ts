/**
 * Swarm mode: each seed draws its own fault plan — which fault kinds are on, how often explicit
 * faults strike, and how likely per-operation faults are — as TigerBeetle's VOPR and FoundationDB's
 * BUGGIFY do. Runs differ in kind, not only in timing, so one seed exercises a lossy bus with slow
 * disks and the next crashing main loops with expiring lock sessions; a bug that needs a particular
 * mix is found by some seed instead of being drowned by every fault at once.
 *
 * Every kind draws from its own fork of the swarm's PRNG, and every kind is drawn whether it is
 * allowed or not, so allowing one more kind does not change what the others draw. Every explicit
 * fault falls in the safety phase: windows are clipped to end by `healAtMs`.
 */
import { assert } from '../lib/assert.ts';
import type { Prng } from '../lib/prng.ts';
import {
  emptyPlan,
  flip,
  HOLDER_POINTS,
  SWARM_KINDS,
  type FaultPlan,
  type ScheduledFault,
  type ScheduledFaultKind,
  type SwarmKind,
  type SwarmOptions,
} from './plan.ts';

/** Who swarm faults may strike. */
export interface SwarmTargets {
  /** Every process name. */
  readonly processes: readonly string[];
  /** The main loops' process names (lock holders). */
  readonly mainLoops: readonly string[];
  /** Every host name. */
  readonly hosts: readonly string[];
}

/** A drawn plan and the kinds that were switched on. */
export interface SwarmDraw {
  readonly plan: FaultPlan;
  readonly on: readonly SwarmKind[];
}

/**
 * Ranges of what explicit faults last, in ms: `[min, max]`. Chosen around the control plane's own
 * timeouts so both sides of each are drawn: lock sessions expire after 10 s, a host is declared
 * down after 30 s without reports, agents time out a port call after 30 s.
 */
export const SWARM_DURATIONS_MS = {
  restartAfter: [0, 20_000],
  pause: [100, 30_000],
  pauseHolder: [2_000, 40_000],
  busDisconnect: [100, 30_000],
  hostCrash: [0, 60_000],
  hostHang: [100, 60_000],
  hostIsolate: [1_000, 90_000],
} as const satisfies Record<string, readonly [number, number]>;

/** Draws a fault plan for one seed. `random` should be a fork named `faults-swarm`. */
export function drawSwarm(
  options: SwarmOptions,
  targets: SwarmTargets,
  healAtMs: number,
  random: Prng,
): SwarmDraw {
  assert(healAtMs >= 0, 'healAtMs must be >= 0');
  const allowed = new Set(options.kinds);
  const on: SwarmKind[] = [];
  const schedule: ScheduledFault[] = [];
  let plan = emptyPlan(healAtMs);
  for (const kind of SWARM_KINDS) {
    const r = random.fork(kind);
    const chosen = flip(r, options.kindProbability);
    if (!allowed.has(kind) || !chosen) continue;
    const rate = (): number => round(r.float() * options.rateMax, 1e6);
    const count = r.int(1, Math.max(1, options.eventsMax));
    const events = (
      faultKind: ScheduledFaultKind,
      pool: readonly string[],
      range: readonly [number, number] | null,
      extra: (event: ScheduledFault) => ScheduledFault = (e) => e,
    ): void => {
      if (pool.length === 0 || healAtMs <= 0) return;
      for (let i = 0; i < count; i++) {
        const target = pool[r.int(0, pool.length - 1)] as string;
        const atMs = r.int(0, Math.max(0, healAtMs - 1));
        const drawn = range === null ? undefined : r.int(range[0], range[1]);
        schedule.push(
          extra({
            atMs,
            kind: faultKind,
            target,
            restartAfterMs: undefined,
            // Windows close by the heal: the liveness phase starts with every fault over.
            forMs: drawn === undefined ? undefined : Math.min(drawn, healAtMs - atMs),
          }),
        );
      }
    };
    on.push(kind);
    switch (kind) {
      case 'bus':
        plan = {
          ...plan,
          bus: {
            dropProbability: rate(),
            duplicateProbability: rate(),
            delayProbability: rate(),
            delayMsMax: r.int(10, 2_000),
            reorderProbability: rate(),
          },
        };
        break;
      case 'bus-disconnect':
        events('bus-disconnect', targets.processes, SWARM_DURATIONS_MS.busDisconnect);
        break;
      case 'crash': {
        const [min, max] = SWARM_DURATIONS_MS.restartAfter;
        events('crash', targets.processes, null, (e) => ({
          ...e,
          restartAfterMs: r.int(min, max),
        }));
        break;
      }
      case 'pause':
        events('pause', targets.processes, SWARM_DURATIONS_MS.pause);
        break;
      case 'pause-holder':
        events('pause-holder', targets.mainLoops, SWARM_DURATIONS_MS.pauseHolder, (e) => ({
          ...e,
          point: HOLDER_POINTS[r.int(0, HOLDER_POINTS.length - 1)],
        }));
        break;
      case 'session-expire':
        events('session-expire', targets.mainLoops, null);
        break;
      case 'lock-notices':
        plan = {
          ...plan,
          locks: {
            // Notices are rare (one per expiry): their rates are not bounded by rateMax.
            expiryNoticeLossProbability: round(r.float(), 1e6),
            expiryNoticeDelayProbability: round(r.float(), 1e6),
            expiryNoticeDelayMsMax: r.int(100, 10_000),
          },
        };
        break;
      case 'host-crash':
        events('host-crash', targets.hosts, SWARM_DURATIONS_MS.hostCrash);
        break;
      case 'host-hang':
        events('host-hang', targets.hosts, SWARM_DURATIONS_MS.hostHang);
        break;
      case 'host-isolate':
        events('host-isolate', targets.hosts, SWARM_DURATIONS_MS.hostIsolate);
        break;
      case 'adapters':
        plan = {
          ...plan,
          adapters: {
            failProbability: rate(),
            timeoutProbability: rate() / 4,
            timeoutMs: r.int(1_000, 20_000),
            slowProbability: rate(),
            slowMsMax: r.int(10, 5_000),
            lostReplyProbability: rate(),
          },
        };
        break;
      case 'database':
        plan = {
          ...plan,
          database: {
            abortProbability: rate(),
            connectionLossProbability: rate(),
            slowProbability: rate(),
            slowMsMax: r.int(1, 500),
          },
        };
        break;
    }
  }
  // Time order, ties by kind, target and drawing order, so the plan reads like a schedule.
  const ordered = schedule
    .map((event, index) => ({ event, index }))
    .sort((a, b) =>
      a.event.atMs !== b.event.atMs
        ? a.event.atMs - b.event.atMs
        : a.event.kind !== b.event.kind
          ? a.event.kind < b.event.kind
            ? -1
            : 1
          : a.event.target !== b.event.target
            ? a.event.target < b.event.target
              ? -1
              : 1
            : a.index - b.index,
    )
    .map((entry) => entry.event);
  return { plan: { ...plan, schedule: ordered }, on };
}

/** Merges a drawn plan into an explicit one: schedules concatenate, drawn rates fill absent blocks. */
export function mergePlans(explicit: FaultPlan, drawn: FaultPlan): FaultPlan {
  return {
    schedule: [...explicit.schedule, ...drawn.schedule],
    bus: explicit.bus ?? drawn.bus,
    adapters: explicit.adapters ?? drawn.adapters,
    database: explicit.database ?? drawn.database,
    locks: explicit.locks ?? drawn.locks,
    healAtMs: explicit.healAtMs,
  };
}

function round(value: number, scale: number): number {
  return Math.round(value * scale) / scale;
}
