/**
 * Random fault plans for the fuzzer and the property suites, as fast-check arbitraries that compile
 * to the `faults` section of a scenario (scenarios/README.md): explicit faults — process crashes,
 * pauses, lock holders frozen past their session, bus disconnects, forced session expiry, host
 * crashes, hangs and isolation — and per-operation rates for the bus, the agents' adapters, the
 * database and the lock service's expiry notices.
 *
 * Fault times are drawn relative to the workload's calls ("50 ms after the 3rd call") rather than
 * uniformly over the run: a crash or pause matters most while the control plane is busy with a
 * change, and uniform times would almost always land in idle stretches.
 *
 * Swarm mode (as in TigerBeetle's VOPR and FoundationDB's BUGGIFY): each case also draws which
 * fault kinds are on at all, so some runs see only frozen lock holders, others only a lossy bus,
 * and so on — combinations a uniform mix would dilute. The switches shrink to "off", which removes
 * whole kinds of faults from a counterexample at once. The faults are explicit data either way (not
 * the runner's own `faults.swarm` draw), so fast-check can shrink them one by one.
 */
import fc from 'fast-check';
import {
  HOLDER_POINTS,
  type HolderPoint,
  type ScheduledFaultKind as PlanFaultKind,
} from '../faults/plan.ts';

/** Every kind of explicit fault (the `kind` of `faults.schedule[]`). */
export const SCHEDULED_FAULT_KINDS = [
  'crash',
  'pause',
  'pause-holder',
  'bus-disconnect',
  'session-expire',
  'host-crash',
  'host-hang',
  'host-isolate',
  'db-disconnect',
] as const;
export type ScheduledFaultKind = (typeof SCHEDULED_FAULT_KINDS)[number];

/** Kinds of per-operation fault rates (the blocks `faults.bus`, `.adapters`, `.database`, `.locks`). */
export const RATE_FAULT_KINDS = ['bus', 'adapters', 'database', 'locks'] as const;
export type RateFaultKind = (typeof RATE_FAULT_KINDS)[number];

/** Every fault kind a case can switch on or off. */
export type FaultKind = ScheduledFaultKind | RateFaultKind;
export const FAULT_KINDS: readonly FaultKind[] = [...SCHEDULED_FAULT_KINDS, ...RATE_FAULT_KINDS];

/**
 * Who a scheduled fault strikes: any process, a main loop (a lock holder), or a host. Keyed by the
 * fault layer's own list of kinds (src/faults/plan.ts), so a kind added there fails the type check
 * here until the generator draws it too.
 */
const TARGETS: Readonly<Record<PlanFaultKind, 'process' | 'mainloop' | 'host'>> = {
  crash: 'process',
  pause: 'process',
  'pause-holder': 'mainloop',
  'bus-disconnect': 'process',
  'session-expire': 'mainloop',
  'host-crash': 'host',
  'host-hang': 'host',
  'host-isolate': 'host',
  'db-disconnect': 'process',
};

/**
 * How long each fault lasts, ms (`restartAfter` of a crash, `for` of the others; none for an
 * expiry). Short ones and ones past the control plane's timeouts: lock sessions expire after 10 s,
 * hosts are declared down after 30 s without reports, agent port calls time out after 30 s.
 */
const DURATIONS_MS: Readonly<Record<ScheduledFaultKind, readonly [number, number] | null>> = {
  crash: [0, 20_000],
  pause: [100, 30_000],
  'pause-holder': [2_000, 40_000],
  'bus-disconnect': [100, 30_000],
  'session-expire': null,
  'host-crash': [0, 60_000],
  'host-hang': [100, 60_000],
  'host-isolate': [1_000, 90_000],
  'db-disconnect': [100, 30_000],
};

/** One abstract scheduled fault; `anchor` and `target` are resolved modulo what exists. */
export interface FaultOp {
  readonly kind: ScheduledFaultKind;
  /** Index of the workload call the fault's time is relative to. */
  readonly anchor: number;
  /** Time after the anchor call, ms. */
  readonly offsetMs: number;
  /** Index into the processes, main loops or hosts the kind targets. */
  readonly target: number;
  /** Restart delay (crash) or length (every other kind but session-expire), ms. */
  readonly durationMs: number;
  /** `pause-holder` only: where the holder freezes (after the grant, the write, or before the send). */
  readonly point: HolderPoint;
}

/** Per-operation fault rates in percent (whole numbers keep scenario files readable). */
export interface RateDraw {
  readonly bus: {
    readonly drop: number;
    readonly duplicate: number;
    readonly delay: number;
    readonly delayMsMax: number;
    readonly reorder: number;
  };
  readonly adapters: {
    readonly fail: number;
    readonly timeout: number;
    readonly timeoutMs: number;
    readonly slow: number;
    readonly slowMsMax: number;
    readonly lostReply: number;
  };
  readonly database: {
    readonly abort: number;
    readonly connectionLoss: number;
    readonly slow: number;
    readonly slowMsMax: number;
  };
  readonly locks: {
    readonly noticeLoss: number;
    readonly noticeDelay: number;
    readonly noticeDelayMsMax: number;
  };
}

/** A drawn fault plan, before it is resolved against a topology and workload. */
export interface FaultPlan {
  readonly schedule: readonly FaultOp[];
  /** Which kinds are on. Everything allowed is on outside swarm mode. */
  readonly on: Readonly<Record<FaultKind, boolean>>;
  readonly rates: RateDraw;
  /** The safety phase lasts this long after the last call or fault ends, ms (>= 1). */
  readonly healExtraMs: number;
}

/** Options of {@link faultPlanArb}. */
export interface FaultPlanOptions {
  /** Draw per case which fault kinds are on (swarm testing). Default false: all allowed are on. */
  readonly swarm?: boolean;
  /** Most scheduled faults. Default 4. */
  readonly maxFaults?: number;
  /** The kinds to draw from. Default: every kind. */
  readonly kinds?: readonly FaultKind[];
}

function durationArb(kind: ScheduledFaultKind): fc.Arbitrary<number> {
  const range = DURATIONS_MS[kind];
  if (range === null) return fc.constant(0);
  const [min, max] = range;
  // Half the time short, so both sides of every timeout are drawn often.
  return fc.oneof(fc.integer({ min, max: Math.min(max, min + 3_000) }), fc.integer({ min, max }));
}

function faultOpArb(kinds: readonly ScheduledFaultKind[]): fc.Arbitrary<FaultOp> {
  return fc.constantFrom(...kinds).chain((kind) =>
    fc.record({
      kind: fc.constant(kind),
      anchor: fc.nat({ max: 15 }),
      offsetMs: fc.oneof(
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 0, max: 1_000 }),
        fc.integer({ min: 0, max: 20_000 }),
      ),
      target: fc.nat({ max: 15 }),
      durationMs: durationArb(kind),
      point: fc.constantFrom(...HOLDER_POINTS),
    }),
  );
}

/** A rate in percent: off half the time, else 1..`max`. Shrinks to off. */
function percentArb(max: number): fc.Arbitrary<number> {
  return fc.oneof(fc.constant(0), fc.integer({ min: 1, max }));
}

const rateArb: fc.Arbitrary<RateDraw> = fc.record({
  bus: fc.record({
    drop: percentArb(30),
    duplicate: percentArb(30),
    delay: percentArb(50),
    delayMsMax: fc.integer({ min: 0, max: 5_000 }),
    reorder: percentArb(30),
  }),
  adapters: fc.record({
    fail: percentArb(40),
    timeout: percentArb(10),
    timeoutMs: fc.integer({ min: 1_000, max: 30_000 }),
    slow: percentArb(30),
    slowMsMax: fc.integer({ min: 0, max: 2_000 }),
    lostReply: percentArb(20),
  }),
  database: fc.record({
    abort: percentArb(20),
    connectionLoss: percentArb(10),
    slow: percentArb(30),
    slowMsMax: fc.integer({ min: 0, max: 200 }),
  }),
  locks: fc.record({
    noticeLoss: percentArb(100),
    noticeDelay: percentArb(100),
    noticeDelayMsMax: fc.integer({ min: 0, max: 10_000 }),
  }),
});

/** Arbitrary of a fault plan. Key order is shrink order: fewer faults first. */
export function faultPlanArb(options: FaultPlanOptions = {}): fc.Arbitrary<FaultPlan> {
  const allowed = new Set<FaultKind>(options.kinds ?? FAULT_KINDS);
  const scheduled = SCHEDULED_FAULT_KINDS.filter((kind) => allowed.has(kind));
  const maxFaults = scheduled.length === 0 ? 0 : (options.maxFaults ?? 4);
  const switchArb = (kind: FaultKind): fc.Arbitrary<boolean> =>
    !allowed.has(kind)
      ? fc.constant(false)
      : options.swarm === true
        ? fc.boolean()
        : fc.constant(true);
  return fc.record({
    schedule:
      maxFaults === 0 ? fc.constant([]) : fc.array(faultOpArb(scheduled), { maxLength: maxFaults }),
    on: fc.record(
      Object.fromEntries(FAULT_KINDS.map((kind) => [kind, switchArb(kind)])) as Record<
        FaultKind,
        fc.Arbitrary<boolean>
      >,
    ),
    rates: rateArb,
    healExtraMs: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 60_000 })),
  });
}

/** The topology facts fault targets are resolved against. */
export interface FaultTopology {
  readonly computeCount: number;
  readonly storageCount: number;
  readonly mainLoops: number;
}

/** Host names of a topology, as src/sim/cloud.ts names them. */
export function hostNames(topology: FaultTopology): string[] {
  return [
    ...Array.from({ length: topology.computeCount }, (_, i) => `compute-${i + 1}`),
    ...Array.from({ length: topology.storageCount }, (_, i) => `storage-${i + 1}`),
  ];
}

/** Process names of a topology, as src/sim/cloud.ts names them. */
export function processNames(topology: FaultTopology): string[] {
  return [
    'api',
    ...mainLoopNames(topology),
    'background',
    ...hostNames(topology).map((host) => `agent-${host}`),
  ];
}

function mainLoopNames(topology: FaultTopology): string[] {
  return Array.from({ length: topology.mainLoops }, (_, i) => `mainloop-${i + 1}`);
}

/** A scheduled fault as scenario data (`faults.schedule[]`). */
export interface ScheduledFaultData {
  at: number;
  kind: ScheduledFaultKind;
  target: string;
  restartAfter?: number;
  for?: number;
  point?: HolderPoint;
}

/** The `faults` section of a scenario. */
export interface FaultsData {
  schedule: ScheduledFaultData[];
  bus?: {
    dropProbability: number;
    duplicateProbability: number;
    delayProbability: number;
    delayMsMax: number;
    reorderProbability: number;
  };
  adapters?: {
    failProbability: number;
    timeoutProbability: number;
    timeoutMs: number;
    slowProbability: number;
    slowMsMax: number;
    lostReplyProbability: number;
  };
  database?: {
    abortProbability: number;
    connectionLossProbability: number;
    slowProbability: number;
    slowMsMax: number;
  };
  locks?: {
    expiryNoticeLossProbability: number;
    expiryNoticeDelayProbability: number;
    expiryNoticeDelayMsMax: number;
  };
  healAt: number;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A rate block when any of its probabilities is on, else undefined. */
function block<T extends Record<string, number>>(
  on: boolean,
  probabilities: readonly number[],
  value: T,
): T | undefined {
  return on && probabilities.some((p) => p > 0) ? value : undefined;
}

/**
 * Resolves a plan against a topology and the workload's call times (`opTimesMs`; `startMs` stands
 * in when there are none). Faults of kinds switched off are dropped, and so are rate blocks with
 * every probability at zero. `healAt` is set explicitly: after the last call and the end of the
 * last fault, plus the plan's extra window, so the rates strike while the calls are reconciled.
 */
export function compileFaults(
  plan: FaultPlan,
  topology: FaultTopology,
  opTimesMs: readonly number[],
  startMs = 1_000,
): FaultsData {
  const targets = {
    process: processNames(topology),
    mainloop: mainLoopNames(topology),
    host: hostNames(topology),
  };
  const schedule: ScheduledFaultData[] = [];
  for (const op of plan.schedule) {
    if (!plan.on[op.kind]) continue;
    const anchorMs =
      opTimesMs.length === 0 ? startMs : (opTimesMs[op.anchor % opTimesMs.length] ?? startMs);
    const choices = targets[TARGETS[op.kind]];
    const target = choices[op.target % Math.max(1, choices.length)];
    if (target === undefined) continue;
    const at = anchorMs + op.offsetMs;
    switch (op.kind) {
      case 'crash':
        schedule.push({ at, kind: op.kind, target, restartAfter: op.durationMs });
        break;
      case 'session-expire':
        schedule.push({ at, kind: op.kind, target });
        break;
      case 'pause-holder':
        schedule.push({ at, kind: op.kind, target, for: op.durationMs, point: op.point });
        break;
      default:
        schedule.push({ at, kind: op.kind, target, for: op.durationMs });
    }
  }
  // In time order, which is how people read a schedule; ties in a fixed order.
  schedule.sort(
    (a, b) =>
      a.at - b.at ||
      compareText(a.target, b.target) ||
      compareText(a.kind, b.kind) ||
      (a.for ?? a.restartAfter ?? 0) - (b.for ?? b.restartAfter ?? 0),
  );
  const lastMs = Math.max(
    startMs,
    ...opTimesMs,
    ...schedule.map((f) => f.at + (f.for ?? 0) + (f.restartAfter ?? 0)),
  );
  const pct = (n: number): number => n / 100;
  const { bus: b, adapters: a, database: d, locks: l } = plan.rates;
  const faults: FaultsData = { schedule, healAt: lastMs + plan.healExtraMs };
  const bus = block(plan.on.bus, [b.drop, b.duplicate, b.delay, b.reorder], {
    dropProbability: pct(b.drop),
    duplicateProbability: pct(b.duplicate),
    delayProbability: pct(b.delay),
    delayMsMax: b.delayMsMax,
    reorderProbability: pct(b.reorder),
  });
  const adapters = block(plan.on.adapters, [a.fail, a.timeout, a.slow, a.lostReply], {
    failProbability: pct(a.fail),
    timeoutProbability: pct(a.timeout),
    timeoutMs: a.timeoutMs,
    slowProbability: pct(a.slow),
    slowMsMax: a.slowMsMax,
    lostReplyProbability: pct(a.lostReply),
  });
  const database = block(plan.on.database, [d.abort, d.connectionLoss, d.slow], {
    abortProbability: pct(d.abort),
    connectionLossProbability: pct(d.connectionLoss),
    slowProbability: pct(d.slow),
    slowMsMax: d.slowMsMax,
  });
  const locks = block(plan.on.locks, [l.noticeLoss, l.noticeDelay], {
    expiryNoticeLossProbability: pct(l.noticeLoss),
    expiryNoticeDelayProbability: pct(l.noticeDelay),
    expiryNoticeDelayMsMax: l.noticeDelayMsMax,
  });
  return {
    schedule: faults.schedule,
    ...(bus === undefined ? {} : { bus }),
    ...(adapters === undefined ? {} : { adapters }),
    ...(database === undefined ? {} : { database }),
    ...(locks === undefined ? {} : { locks }),
    healAt: faults.healAt,
  };
}
