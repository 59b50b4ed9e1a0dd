// Goal: prove the simulation kernel's contract — determinism per seed, a total (time, seq) order,
// crashed incarnations inert, paused ones stalled and then continuing, budgets that end every run,
// and verdicts that say what happened — and prove that these properties have teeth.
// Method: fast-check generates small worlds (test/property/kernel-world.ts): random programs of a
// few processes (sleeps, PRNG-drawn sleeps, mailbox send/receive, slow I/O, awaits resolved through
// setImmediate or process.nextTick, trace records) plus random crashes, restarts, pauses and
// resumes. Every run keeps its trace entries; the checkers below read them. The scheduler alone is
// also tested against a reference model (a linear scan over pending events). Known-broken variants
// (a queue that ignores seq, a guard that delivers after death, a dead incarnation whose timers
// still fire, a pause that does not stall, a world drawing from Math.random) are built here by
// monkey-patching instances and must make the properties fail. Examples at the end pin the kernel
// bugs these properties found.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MinHeap } from '../../src/lib/heap.ts';
import {
  Scheduler,
  type EventHandle,
  type EventOwner,
  type ScheduledEvent,
} from '../../src/sim/scheduler.ts';
import type { Incarnation } from '../../src/sim/process.ts';
import { Simulation } from '../../src/sim/simulation.ts';
import {
  DICE_MS_MAX,
  programArb,
  runWorld,
  seedArb,
  type Entry,
  type Program,
  type WorldOptions,
  type WorldRun,
} from './kernel-world.ts';

// ---------------------------------------------------------------------------------------------
// Checkers: each returns a description of the first violation, or undefined.

/** Fails with the violation's full description (matchers would truncate it). */
function holds(violation: string | undefined): void {
  if (violation !== undefined) throw new Error(violation);
}

/** Labels an entry is attributed to: `proc` for kernel entries, `by` for world effects. */
function actors(entry: Entry): string[] {
  return [entry.proc, entry.by].filter((label): label is string => typeof label === 'string');
}

/** No entry of an incarnation after its `proc.crash`, and no cancelled event ran. */
function crashViolation(entries: readonly Entry[]): string | undefined {
  const dead = new Set<string>();
  for (const entry of entries) {
    if (entry.kind === 'w.bug') return `entry ${entry.i}: ${String(entry.what)}`;
    if (entry.kind === 'proc.crash' && entry.proc !== undefined) {
      dead.add(entry.proc);
      continue;
    }
    for (const label of actors(entry))
      if (dead.has(label)) return `entry ${entry.i} (${entry.kind}) of ${label} after its crash`;
  }
  return undefined;
}

/** No entry of an incarnation between its `proc.pause` and its `proc.resume` (or crash). */
function pauseViolation(entries: readonly Entry[]): string | undefined {
  const paused = new Set<string>();
  for (const entry of entries) {
    if (entry.kind === 'proc.pause' && entry.proc !== undefined) {
      paused.add(entry.proc);
      continue;
    }
    if ((entry.kind === 'proc.resume' || entry.kind === 'proc.crash') && entry.proc !== undefined) {
      paused.delete(entry.proc);
      continue;
    }
    for (const label of actors(entry))
      if (paused.has(label)) return `entry ${entry.i} (${entry.kind}) of ${label} while paused`;
  }
  return undefined;
}

/**
 * The order is total and time never goes backwards: executed events' (time, seq) strictly
 * increase and are numbered 1, 2, 3…; trace indices count up and trace times never decrease;
 * deliveries due at the same instant arrive in send order, which is their scheduling order.
 */
function orderViolation(run: WorldRun): string | undefined {
  const { observed, entries, result } = run;
  if (observed.length !== result.steps)
    return `${observed.length} events observed, ${result.steps} steps`;
  for (const [k, event] of observed.entries()) {
    if (event.step !== k + 1) return `event ${k} numbered step ${event.step}`;
    const previous = observed[k - 1];
    if (previous === undefined) continue;
    const increasing =
      event.time > previous.time || (event.time === previous.time && event.seq > previous.seq);
    if (!increasing)
      return `step ${event.step} (${event.time}, ${event.seq}) after (${previous.time}, ${previous.seq})`;
  }
  let lastDelivery: Entry | undefined;
  for (const [k, entry] of entries.entries()) {
    if (entry.i !== k) return `entry ${k} has index ${entry.i}`;
    const previous = entries[k - 1];
    if (previous !== undefined && entry.t < previous.t)
      return `entry ${k} at ${entry.t} after ${previous.t}`;
    if (entry.kind === 'w.deliver') {
      if (lastDelivery !== undefined && lastDelivery.t === entry.t && !(entry.n! > lastDelivery.n!))
        return `message ${String(entry.n)} delivered after ${String(lastDelivery.n)} at ${entry.t}`;
      lastDelivery = entry;
    }
  }
  return undefined;
}

/** Runs the same world twice; describes the first difference. */
async function determinismViolation(options: WorldOptions): Promise<string | undefined> {
  const a = await runWorld(options);
  const b = await runWorld(options);
  if (a.result.traceHash !== b.result.traceHash)
    return `hashes ${a.result.traceHash} and ${b.result.traceHash}`;
  const k = a.lines.findIndex((line, index) => line !== b.lines[index]);
  if (k >= 0 || a.lines.length !== b.lines.length) return `entries differ from ${k}`;
  if (JSON.stringify(a.result) !== JSON.stringify(b.result)) return 'results differ';
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The scheduler against a reference model.

const OWNERS = 2;

type Action =
  /** Cancels the `nth` (modulo their number) event of `owner` scheduled so far, if any. */
  | { readonly kind: 'cancel'; readonly owner: number; readonly nth: number }
  | { readonly kind: 'pause' | 'resume' | 'kill'; readonly owner: number };

/** An event: scheduled at the start (parent -1) or when its parent runs, after `delayMs`. */
interface EventSpec {
  readonly delayMs: number;
  readonly parent: number;
  readonly owner: number | null;
  /** What the event does when it runs, in order, before scheduling its children. */
  readonly actions: readonly Action[];
}

const ownerArb = fc.integer({ min: 0, max: OWNERS - 1 });

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({ kind: fc.constant('cancel' as const), owner: ownerArb, nth: fc.nat() }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constantFrom('pause' as const, 'resume' as const),
      owner: ownerArb,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('kill' as const), owner: ownerArb }) },
);

// Small delays, few owners and several actions per event make ties, holds, requeues and cancels
// of requeued events common; cancelling among one owner's events (not among all) makes hitting a
// held event likely.
const eventSpecsArb: fc.Arbitrary<EventSpec[]> = fc
  .array(
    fc.record({
      delayMs: fc.integer({ min: 0, max: 2 }),
      parentDraw: fc.nat(),
      owner: fc.option(ownerArb, { nil: null, freq: 3 }),
      actions: fc.array(actionArb, { maxLength: 3 }),
    }),
    { minLength: 1, maxLength: 50 },
  )
  .map((drawn) =>
    drawn.map(({ parentDraw, ...rest }, index) => ({
      ...rest,
      // Parents come earlier in the list, so every event is scheduled at most once.
      parent: (parentDraw % (index + 1)) - 1,
    })),
  );

function childrenOf(specs: readonly EventSpec[], parent: number): number[] {
  return specs.flatMap((spec, id) => (spec.parent === parent ? [id] : []));
}

/**
 * The id a cancel action targets: among the owner's events scheduled so far (in scheduling order)
 * that have not run yet, the `nth` modulo their number.
 */
function cancelTarget(
  specs: readonly EventSpec[],
  scheduledIds: readonly number[],
  ran: ReadonlySet<number>,
  action: { readonly owner: number; readonly nth: number },
): number | undefined {
  const owned = scheduledIds.filter((id) => specs[id]!.owner === action.owner && !ran.has(id));
  return owned.length === 0 ? undefined : owned[action.nth % owned.length];
}

/** Owner state shared by the model and the fake owners of the real run. */
interface OwnerState<E> {
  alive: boolean;
  paused: boolean;
  held: E[];
}

/**
 * Applies one action. `cancel` and `requeue` are the only things the model and the real run do
 * differently.
 */
function act<E>(
  action: Action,
  owners: readonly OwnerState<E>[],
  cancel: (action: { readonly owner: number; readonly nth: number }) => void,
  requeue: (held: E[]) => void,
): void {
  if (action.kind === 'cancel') return cancel(action);
  const owner = owners[action.owner]!;
  switch (action.kind) {
    case 'pause':
      if (owner.alive) owner.paused = true;
      break;
    case 'resume':
      if (owner.alive && owner.paused) {
        owner.paused = false;
        requeue(owner.held.splice(0));
      }
      break;
    case 'kill':
      owner.alive = false;
      owner.held = [];
      break;
  }
}

/**
 * The reference: pending events in a plain array, the minimum (time, order) found by a linear
 * scan; events of paused owners are held and come back at the resume instant in held order;
 * events of dead owners and cancelled events never run.
 */
function runModel(specs: readonly EventSpec[]): string[] {
  interface Pending {
    readonly id: number;
    time: number;
    order: number;
    cancelled: boolean;
  }
  const pending: Pending[] = [];
  const scheduled = new Map<number, Pending>();
  const scheduledIds: number[] = [];
  const owners: OwnerState<Pending>[] = Array.from({ length: OWNERS }, () => ({
    alive: true,
    paused: false,
    held: [],
  }));
  const ran: string[] = [];
  const ranIds = new Set<number>();
  let now = 0;
  let order = 0;
  const schedule = (id: number): void => {
    const entry = { id, time: now + specs[id]!.delayMs, order: order++, cancelled: false };
    pending.push(entry);
    scheduled.set(id, entry);
    scheduledIds.push(id);
  };
  const cancel = (action: { readonly owner: number; readonly nth: number }): void => {
    const id = cancelTarget(specs, scheduledIds, ranIds, action);
    if (id !== undefined) scheduled.get(id)!.cancelled = true;
  };
  const requeue = (held: Pending[]): void => {
    for (const entry of held) {
      entry.time = now;
      entry.order = order++;
      pending.push(entry);
    }
  };
  childrenOf(specs, -1).forEach(schedule);
  while (pending.length > 0) {
    let best = 0;
    for (let k = 1; k < pending.length; k++) {
      const a = pending[k]!;
      const b = pending[best]!;
      if (a.time < b.time || (a.time === b.time && a.order < b.order)) best = k;
    }
    const next = pending.splice(best, 1)[0]!;
    const spec = specs[next.id]!;
    const owner = spec.owner === null ? null : owners[spec.owner]!;
    if (next.cancelled || (owner !== null && !owner.alive)) continue;
    if (owner !== null && owner.paused) {
      owner.held.push(next);
      continue;
    }
    now = next.time;
    ran.push(`${next.id}@${now}`);
    ranIds.add(next.id);
    for (const action of spec.actions) act(action, owners, cancel, requeue);
    childrenOf(specs, next.id).forEach(schedule);
  }
  return ran;
}

class FakeOwner implements EventOwner, OwnerState<ScheduledEvent> {
  alive = true;
  paused = false;
  held: ScheduledEvent[] = [];
  constructor(readonly label: string) {}
  hold(event: ScheduledEvent): void {
    this.held.push(event);
  }
}

/** Runs the specs on a real Scheduler; `tamper` may break it first. */
async function runScheduler(
  specs: readonly EventSpec[],
  tamper?: (scheduler: Scheduler) => void,
): Promise<{ ran: string[]; order: string | undefined }> {
  const seen: ScheduledEvent[] = [];
  let order: string | undefined;
  const scheduler = new Scheduler(0, {
    observe: (event, step) => {
      const previous = seen.at(-1);
      if (step !== seen.length + 1) order ??= `step ${step} after ${seen.length} steps`;
      if (
        previous !== undefined &&
        !(event.time > previous.time || (event.time === previous.time && event.seq > previous.seq))
      )
        order ??= `(${event.time}, ${event.seq}) after (${previous.time}, ${previous.seq})`;
      // Copies: a requeued event is the same object with a new (time, seq).
      seen.push({ ...event });
    },
  });
  tamper?.(scheduler);
  const owners = Array.from({ length: OWNERS }, (_, k) => new FakeOwner(`o${k}`));
  const handles = new Map<number, EventHandle>();
  const scheduledIds: number[] = [];
  const ran: string[] = [];
  const ranIds = new Set<number>();
  const cancel = (action: { readonly owner: number; readonly nth: number }): void => {
    const id = cancelTarget(specs, scheduledIds, ranIds, action);
    if (id !== undefined) handles.get(id)!.cancel();
  };
  const requeue = (held: ScheduledEvent[]): void => scheduler.requeue(held);
  const schedule = (id: number): void => {
    const spec = specs[id]!;
    const handle = scheduler.schedule({
      delayMs: spec.delayMs,
      label: `e${id}`,
      owner: spec.owner === null ? null : owners[spec.owner]!,
      run: () => {
        ran.push(`${id}@${scheduler.now}`);
        ranIds.add(id);
        for (const action of spec.actions) act(action, owners, cancel, requeue);
        childrenOf(specs, id).forEach(schedule);
      },
    });
    handles.set(id, handle);
    scheduledIds.push(id);
  };
  childrenOf(specs, -1).forEach(schedule);
  while (await scheduler.step()) {
    // Each step runs one event to quiescence.
  }
  if (scheduler.steps !== ran.length) order ??= `${scheduler.steps} steps, ${ran.length} ran`;
  return { ran, order };
}

const schedulerMatchesModel = (tamper?: (scheduler: Scheduler) => void) =>
  fc.asyncProperty(eventSpecsArb, async (specs) => {
    const { ran, order } = await runScheduler(specs, tamper);
    holds(order);
    expect(ran).toEqual(runModel(specs));
  });

/** A queue that orders by time only: equal times come out in whatever order the heap leaves them. */
const ignoreSeq = (scheduler: Scheduler): void => {
  (scheduler as unknown as { queue: MinHeap<ScheduledEvent> }).queue = new MinHeap<ScheduledEvent>(
    (a, b) => a.time - b.time,
  );
};

describe('scheduler', () => {
  it('runs events exactly as the reference model: (time, seq) order, holds, requeues, cancels', async () => {
    await fc.assert(schedulerMatchesModel(), { numRuns: 800 });
  });
});

// ---------------------------------------------------------------------------------------------
// Properties of whole simulations.

/** Fault-free programs without receives: every delay a process waits for is known in advance. */
const timedProgramArb: fc.Arbitrary<Program> = programArb({ faults: 'none' }).map((program) => ({
  ...program,
  procs: program.procs.map((spec) => ({
    ...spec,
    body: spec.body.map((instr) =>
      instr.op === 'recv' ? { op: 'sleep' as const, ms: instr.timeoutMs } : instr,
    ),
  })),
}));

const crashProperty = (tamper?: (incarnation: Incarnation) => void) =>
  fc.asyncProperty(seedArb, programArb({ loops: true }), async (seed, program) => {
    const run = await runWorld({
      seed,
      program,
      budget: { maxSteps: 600, maxSimTimeMs: 400 },
      ...(tamper === undefined ? {} : { tamper }),
    });
    holds(crashViolation(run.entries));
  });

const pauseProperty = (tamper?: (incarnation: Incarnation) => void) =>
  fc.asyncProperty(seedArb, programArb({ loops: true }), async (seed, program) => {
    const run = await runWorld({
      seed,
      program,
      budget: { maxSteps: 600, maxSimTimeMs: 400 },
      ...(tamper === undefined ? {} : { tamper }),
    });
    holds(pauseViolation(run.entries));
  });

const determinismProperty = (draw?: WorldOptions['draw']) =>
  fc.asyncProperty(seedArb, programArb({ loops: true }), async (seed, program) => {
    const violation = await determinismViolation({
      seed,
      program,
      budget: { maxSteps: 400, maxSimTimeMs: 300 },
      ...(draw === undefined ? {} : { draw }),
    });
    holds(violation);
  });

/**
 * Every pause made with `resumeAfterMs` ends with a resume exactly that much later, or with a
 * crash no later than that, or is still on when the run ends no later than that. Few processes and
 * many healing faults make pauses, crashes and restarts of the same process overlap.
 */
const pauseLengthProperty = fc.asyncProperty(
  seedArb,
  programArb({ faults: 'healing', loops: true, procsMax: 2, faultsMax: 12, faultAtMsMax: 60 }),
  async (seed, program) => {
    const { entries } = await runWorld({
      seed,
      program,
      budget: { maxSteps: 600, maxSimTimeMs: 400 },
    });
    const end = entries.at(-1)!;
    for (const [k, fault] of entries.entries()) {
      const pause = entries[k + 1];
      if (fault.kind !== 'w.fault' || fault.fault !== 'pause' || pause?.kind !== 'proc.pause')
        continue;
      const due = fault.t + (fault.afterMs as number);
      const over = entries
        .slice(k + 2)
        .find(
          (e) => e.proc === pause.proc && (e.kind === 'proc.resume' || e.kind === 'proc.crash'),
        );
      const ended =
        over === undefined
          ? end.t <= due
          : over.kind === 'proc.crash'
            ? over.t <= due
            : over.t === due;
      if (!ended)
        throw new Error(
          `pause of ${String(pause.proc)} at ${fault.t} for ${String(fault.afterMs)} ms ended by ` +
            `${over === undefined ? 'the run end' : over.kind} at ${over?.t ?? end.t}`,
        );
    }
  },
);

describe('determinism', () => {
  it('same seed and program give the same trace hash, entries and result', async () => {
    await fc.assert(determinismProperty(), { numRuns: 60 });
  });

  it('different seeds give different hashes when the program draws randomness', async () => {
    // The `dice` process sleeps a duration drawn from its PRNG fork in [0, 2^30] ms and records
    // it; two distinct seeds collide on that draw with probability about 1e-9, so this property
    // fails spuriously about once in 10^9 cases. The programs are finite and the budget covers the
    // dice, so the dice's record is always in the trace.
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(seedArb, { minLength: 2, maxLength: 2 }),
        programArb({ procsMax: 2, bodyMax: 4 }),
        async ([a, b], program) => {
          const budget = { maxSteps: 100_000, maxSimTimeMs: 2 * DICE_MS_MAX };
          const runA = await runWorld({ seed: a!, program, budget, dice: true });
          const runB = await runWorld({ seed: b!, program, budget, dice: true });
          expect(runA.entries.some((e) => e.kind === 'w.dice')).toBe(true);
          expect(runB.entries.some((e) => e.kind === 'w.dice')).toBe(true);
          expect(runA.result.traceHash).not.toBe(runB.result.traceHash);
        },
      ),
      { numRuns: 30 },
    );
  });
});

describe('order', () => {
  it('is total: (time, seq) strictly increase, time never goes back, same-time events in scheduling order', async () => {
    await fc.assert(
      fc.asyncProperty(seedArb, programArb({ loops: true }), async (seed, program) => {
        const run = await runWorld({ seed, program, budget: { maxSteps: 600, maxSimTimeMs: 400 } });
        holds(orderViolation(run));
      }),
      { numRuns: 80 },
    );
  });

  it('runs each step to quiescence: a process sees exactly the virtual time it waited for', async () => {
    // Without faults and receives, a process's effects happen at the sum of its sleeps and I/O
    // latencies so far. A continuation left over from a step (say, the tail of a setImmediate
    // chain) would run after the clock moved and show a later time.
    await fc.assert(
      fc.asyncProperty(seedArb, timedProgramArb, async (seed, program) => {
        const run = await runWorld({ seed, program });
        expect(run.result.verdict).toBe('ok');
        const elapsed = new Map<string, number>();
        for (const entry of run.entries) {
          const label = entry.by ?? (entry.kind === 'w.rec' ? entry.proc : undefined);
          // A guard settles just before the effect that reports the wait it ended.
          if (label === undefined || entry.what === 'settled') continue;
          let expected = elapsed.get(label) ?? 0;
          if (entry.what === 'woke' || entry.what === 'io') expected += entry.ms as number;
          elapsed.set(label, expected);
          expect({ entry: entry.i, t: entry.t }).toEqual({ entry: entry.i, t: expected });
        }
        for (const name of Object.keys(run.statuses)) expect(run.statuses[name]).toBe('exited');
      }),
      { numRuns: 60 },
    );
  });
});

describe('crash and pause', () => {
  it('a crashed incarnation has no further effect: no entries, no settled guards, no timers', async () => {
    await fc.assert(crashProperty(), { numRuns: 80 });
  });

  it('a paused incarnation does nothing until it is resumed', async () => {
    await fc.assert(pauseProperty(), { numRuns: 80 });
  });

  it('with healing faults every process resumes or restarts and runs its program to the end', async () => {
    await fc.assert(
      fc.asyncProperty(seedArb, programArb({ faults: 'healing' }), async (seed, program) => {
        const run = await runWorld({
          seed,
          program,
          budget: { maxSteps: 100_000, maxSimTimeMs: 1_000_000 },
        });
        expect(run.result).toMatchObject({ verdict: 'ok', reason: 'no events left' });
        for (const [index] of program.procs.entries()) {
          const name = `p${index}`;
          expect(run.statuses[name]).toBe('exited');
          // The last incarnation ran its body to the end.
          const starts = run.entries.filter(
            (e) => e.kind === 'proc.start' && e.proc?.startsWith(`${name}#`),
          );
          const last = starts.at(-1)!.proc!;
          expect(run.entries.some((e) => e.by === last && e.what === 'done')).toBe(true);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('a pause with resumeAfterMs lasts exactly that long unless the incarnation crashes first', async () => {
    await fc.assert(pauseLengthProperty, { numRuns: 400 });
  });
});

describe('budgets and verdicts', () => {
  it('every run ends within its budgets, and a goal that never holds gives liveness', async () => {
    await fc.assert(
      fc.asyncProperty(
        seedArb,
        programArb({ loops: true }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 200 }),
        async (seed, program, maxSteps, maxSimTimeMs) => {
          const run = await runWorld({
            seed,
            program,
            budget: { maxSteps, maxSimTimeMs },
            goal: () => false,
          });
          const { result } = run;
          expect(result.verdict).toBe('liveness');
          expect(result.steps).toBeLessThanOrEqual(maxSteps);
          expect(result.simTimeMs).toBeLessThanOrEqual(maxSimTimeMs);
          expect(run.observed.length).toBe(result.steps);
          for (const event of run.observed) expect(event.time).toBeLessThanOrEqual(maxSimTimeMs);
          for (const entry of run.entries) expect(entry.t).toBeLessThanOrEqual(maxSimTimeMs);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('an uncaught error gives crash; a failing check gives correctness; a goal decides ok or liveness', async () => {
    await fc.assert(
      fc.asyncProperty(
        seedArb,
        programArb({ loops: true, throws: true }),
        fc.constantFrom('none' as const, 'check' as const, 'goal' as const),
        fc.integer({ min: 1, max: 6 }),
        fc.option(fc.integer({ min: 0, max: 200 }), { nil: null }),
        async (seed, program, mode, limit, worldThrowAtMs) => {
          const run = await runWorld({
            seed,
            program,
            budget: { maxSteps: 600, maxSimTimeMs: 300 },
            worldThrowAtMs,
            ...(mode === 'check'
              ? { check: (s) => (s.records >= limit ? `${s.records} records` : undefined) }
              : {}),
            ...(mode === 'goal' ? { goal: (s) => s.records >= limit } : {}),
          });
          const { result, entries, state } = run;
          const thrower = entries.find((e) => e.what === 'throw');
          const boom = entries.some((e) => e.kind === 'step' && e.ev === 'w.boom');
          if (thrower !== undefined || boom) {
            expect(result.verdict).toBe('crash');
            expect(result.reason).toMatch(
              thrower === undefined ? /^w\.boom: Error: boom$/ : /Error/,
            );
          } else if (mode === 'check') {
            expect(result.verdict).toBe(state.records >= limit ? 'correctness' : 'ok');
          } else if (mode === 'goal') {
            expect(result.verdict).toBe(state.records >= limit ? 'ok' : 'liveness');
          } else {
            expect(result.verdict).toBe('ok');
          }
          expect(entries.at(-1)).toMatchObject({ kind: 'sim.end', verdict: result.verdict });
        },
      ),
      { numRuns: 100 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Teeth: each broken variant must make its property fail. `endOnFailure` skips shrinking.

describe('the properties catch broken kernels', () => {
  const failing = { numRuns: 300, endOnFailure: true, includeErrorInReport: true } as const;

  it('a queue that ignores seq breaks the scheduler property', async () => {
    await expect(fc.assert(schedulerMatchesModel(ignoreSeq), failing)).rejects.toThrow();
  });

  it('a guard that still delivers after death breaks the crash property', async () => {
    const deliverAlways = (incarnation: Incarnation): void => {
      incarnation.deliver = (fn) => fn();
    };
    await expect(fc.assert(crashProperty(deliverAlways), failing)).rejects.toThrow(
      /after its crash/,
    );
  });

  it('timers of a dead incarnation that still fire break the crash property', async () => {
    const immortal = (incarnation: Incarnation): void => {
      Object.defineProperty(incarnation, 'alive', { get: () => true });
    };
    await expect(fc.assert(crashProperty(immortal), failing)).rejects.toThrow(/after its crash/);
  });

  it('a pause that does not hold events breaks the pause property', async () => {
    const restless = (incarnation: Incarnation): void => {
      Object.defineProperty(incarnation, 'paused', { get: () => false });
    };
    await expect(fc.assert(pauseProperty(restless), failing)).rejects.toThrow(/while paused/);
  });

  it('a world drawing from Math.random breaks the determinism property', async () => {
    const wallRandom = (_incarnation: Incarnation, maxMs: number): number =>
      Math.floor(Math.random() * (maxMs + 1));
    await expect(fc.assert(determinismProperty(wallRandom), failing)).rejects.toThrow();
  });
});

// ---------------------------------------------------------------------------------------------
// Regressions: the kernel bugs the properties above found, as minimal examples.

describe('regressions', () => {
  it('a paused process with a pending timer does not let a run step past its time budget', async () => {
    const sim = new Simulation({ seed: 1 });
    const p = sim.spawn('p', async (incarnation) => {
      await incarnation.sleep(5);
    });
    p.start();
    sim.schedule({ delayMs: 0, label: 'pause', run: () => p.pause() });
    sim.schedule({ delayMs: 1_000, label: 'far', run: () => {} });
    const result = await sim.run({ budget: { maxSteps: 100, maxSimTimeMs: 100 } });
    expect(result.simTimeMs).toBeLessThanOrEqual(100);
    expect(result.reason).toBe('sim-time budget of 100 ms exhausted');
  });

  it('an event held during a pause can still be cancelled after the resume', async () => {
    const sim = new Simulation({ seed: 1 });
    let ran = false;
    const p = sim.spawn('p', async (incarnation) => {
      const handle = sim.schedule({
        delayMs: 20,
        label: 'x',
        owner: incarnation,
        run: () => (ran = true),
      });
      // Scheduled after the resume event, for the same instant: runs after the requeue.
      sim.schedule({
        delayMs: 15,
        label: 'later',
        run: () => sim.schedule({ delayMs: 35, label: 'cancel', run: () => handle.cancel() }),
      });
      await incarnation.sleep(100);
    });
    p.start();
    sim.schedule({ delayMs: 10, label: 'pause', run: () => p.pause({ resumeAfterMs: 40 }) });
    await sim.run({ budget: { maxSteps: 100, maxSimTimeMs: 1_000 } });
    expect(ran).toBe(false);
  });

  it("a resume scheduled by an earlier incarnation's pause does not cut a later pause short", async () => {
    const sim = new Simulation({ seed: 1, trace: { keepEntries: true } });
    const p = sim.spawn('p', async (incarnation) => {
      for (;;) await incarnation.sleep(1);
    });
    p.start();
    sim.schedule({ delayMs: 0, label: 'f', run: () => p.pause({ resumeAfterMs: 100 }) });
    sim.schedule({ delayMs: 10, label: 'f', run: () => p.crash({ restartAfterMs: 10 }) });
    sim.schedule({ delayMs: 40, label: 'f', run: () => p.pause({ resumeAfterMs: 500 }) });
    await sim.run({ budget: { maxSteps: 10_000, maxSimTimeMs: 1_000 } });
    const resumes = sim.trace
      .entries()
      .lines.map((line) => JSON.parse(line) as Entry)
      .filter((e) => e.kind === 'proc.resume');
    expect(resumes.map((e) => [e.proc, e.t])).toEqual([['p#2', 540]]);
  });

  it('records and log fields cannot forge the trace index, time, kind or process', async () => {
    const sim = new Simulation({ seed: 1, trace: { keepEntries: true } });
    const p = sim.spawn('p', async (incarnation) => {
      await incarnation.sleep(7);
      sim.record({ kind: 'w.x', i: 99, t: 99 });
      incarnation.runtime.log.info('hello', { kind: 'proc.crash', level: 'x', i: 99, t: 99 });
    });
    p.start();
    await sim.run({ budget: { maxSteps: 100, maxSimTimeMs: 1_000 } });
    const entries = sim.trace.entries().lines.map((line) => JSON.parse(line) as Entry);
    const forged = entries.filter((e) => e.kind === 'w.x' || e.message === 'hello');
    expect(forged.map((e) => [e.kind, e.t, e.i === entries.indexOf(e), e.level ?? null])).toEqual([
      ['w.x', 7, true, null],
      ['log', 7, true, 'info'],
    ]);
  });
});
