/**
 * Small worlds for the kernel's property tests. A world is a random *program* — a few processes,
 * each running a list of instructions (sleep, send and receive through a mailbox, slow I/O, awaits
 * that resolve via setImmediate or process.nextTick, trace records) — plus random world faults
 * (crash with or without restart, pause with or without resume, explicit resume) at random times.
 *
 * Everything a process does is also written to the trace through `sim.record` as a `w.fx` entry
 * with `by: <incarnation>`. `sim.record` is not gated by the kernel, unlike `Incarnation.record`,
 * so these entries are an independent witness: if a dead or paused incarnation's continuation runs,
 * it shows up. Runs keep every trace entry and also capture, through the scheduler's observe hook,
 * the `(time, seq)` of every executed event.
 */
import fc from 'fast-check';
import type { Incarnation, ProcessStatus } from '../../src/sim/process.ts';
import type { EventHandle, ScheduledEvent, SchedulerHooks } from '../../src/sim/scheduler.ts';
import { Simulation, type Budget, type RunResult } from '../../src/sim/simulation.ts';

/** One instruction of a simulated process. Times are virtual ms. */
export type Instr =
  | { readonly op: 'sleep'; readonly ms: number }
  /** Sleeps a duration drawn from the incarnation's PRNG fork, in [0, maxMs]. */
  | { readonly op: 'sleep.random'; readonly maxMs: number }
  /** Sends a message to process `to` (an index, taken modulo the number of processes). */
  | { readonly op: 'send'; readonly to: number; readonly latencyMs: number }
  /** Waits for a message, at most `timeoutMs`. */
  | { readonly op: 'recv'; readonly timeoutMs: number }
  /** Awaits a reply that a world event delivers after `latencyMs`, like a database round trip. */
  | { readonly op: 'io'; readonly latencyMs: number }
  /** Awaits a promise resolved after a chain of `depth + 1` setImmediate callbacks. */
  | { readonly op: 'immediate'; readonly depth: number }
  /** Awaits a promise resolved after a chain of `depth + 1` process.nextTick callbacks. */
  | { readonly op: 'tick'; readonly depth: number }
  /** Appends a trace record through the incarnation (`w.rec`). */
  | { readonly op: 'record'; readonly tag: number }
  /** Throws: an uncaught error in the process. */
  | { readonly op: 'throw' };

/** A process: its body, run once or forever. */
export interface ProcSpec {
  readonly body: readonly Instr[];
  /** Run the body forever. Generated looping bodies always contain a sleep. */
  readonly loop: boolean;
}

/** A world fault, applied by a world event at `atMs` to process `proc` (index modulo count). */
export type Fault =
  | {
      readonly kind: 'crash';
      readonly atMs: number;
      readonly proc: number;
      readonly restartAfterMs: number | null;
    }
  | {
      readonly kind: 'pause';
      readonly atMs: number;
      readonly proc: number;
      readonly resumeAfterMs: number | null;
    }
  | { readonly kind: 'resume'; readonly atMs: number; readonly proc: number };

export interface Program {
  readonly procs: readonly ProcSpec[];
  readonly faults: readonly Fault[];
}

/** A parsed trace entry. Kernel entries carry `proc`; world effects carry `by`. */
export interface Entry {
  readonly i: number;
  readonly t: number;
  readonly kind: string;
  readonly proc?: string;
  readonly by?: string;
  readonly ev?: string;
  readonly what?: string;
  readonly [field: string]: unknown;
}

/** An executed event as the scheduler's observe hook saw it. */
export interface Observed {
  readonly time: number;
  readonly seq: number;
  readonly step: number;
  readonly label: string;
  readonly owner: string | null;
}

/** What `check` and `goal` may look at while the run goes on. */
export interface WorldState {
  /** Number of `w.rec` records made so far (by live incarnations). */
  records: number;
}

export interface WorldOptions {
  readonly seed: number;
  readonly program: Program;
  /** Default: 5,000 steps and 100,000 ms. */
  readonly budget?: Budget;
  readonly check?: (state: WorldState) => string | undefined;
  readonly goal?: (state: WorldState) => boolean;
  /** Called on every incarnation as it starts: lets a test break the kernel on purpose. */
  readonly tamper?: (incarnation: Incarnation) => void;
  /** Draws the duration of a `sleep.random`; default the incarnation's PRNG fork. */
  readonly draw?: (incarnation: Incarnation, maxMs: number) => number;
  /** When set, a world event at this time throws synchronously. */
  readonly worldThrowAtMs?: number | null;
  /**
   * Adds a process `dice` (never a fault target) that sleeps a duration drawn from its PRNG fork in
   * [0, 2^30] ms and then records it, so two seeds almost surely give different traces.
   */
  readonly dice?: boolean;
}

export interface WorldRun {
  readonly result: RunResult;
  readonly lines: readonly string[];
  readonly entries: readonly Entry[];
  readonly observed: readonly Observed[];
  readonly statuses: Readonly<Record<string, ProcessStatus>>;
  readonly state: WorldState;
}

/** Largest duration of a `dice` sleep, ms. */
export const DICE_MS_MAX = 2 ** 30;

const DEFAULT_BUDGET: Budget = { maxSteps: 5_000, maxSimTimeMs: 100_000 };

/**
 * Mailboxes, one per process name, built on world events: a sent message is in flight on its own
 * (a crash of the sender does not recall it); a receive registers a waiter and a timeout owned by
 * the receiving incarnation, which the delivery cancels. The mailbox knows nothing of liveness: a
 * message delivered to the waiter of a dead incarnation is lost with it, and only `guard` keeps
 * that dead incarnation from seeing it.
 */
class Mailboxes {
  private readonly queued = new Map<string, number[]>();
  private readonly waiting = new Map<string, (message: number) => void>();
  private sent = 0;

  constructor(private readonly sim: Simulation) {}

  /** Sends a message numbered in send order (= scheduling order of the deliveries). */
  send(from: Incarnation, to: string, latencyMs: number): number {
    const n = this.sent++;
    this.sim.schedule({
      delayMs: latencyMs,
      label: 'w.deliver',
      run: () => this.deliver(from.label, to, n),
    });
    return n;
  }

  receive(incarnation: Incarnation, timeoutMs: number): Promise<number | null> {
    const name = incarnation.process.name;
    const queue = this.queue(name);
    const first = queue.shift();
    if (first !== undefined) return incarnation.guard(Promise.resolve(first));
    return incarnation.guard(
      new Promise<number | null>((resolve) => {
        let cancelled = false;
        const timeout: EventHandle = this.sim.schedule({
          delayMs: timeoutMs,
          label: 'w.recv-timeout',
          owner: incarnation,
          run: () => {
            // A cancelled event must never run; leave evidence for the properties if it does.
            if (cancelled) this.sim.record({ kind: 'w.bug', what: 'cancelled event ran' });
            if (this.waiting.get(name) === waiter) this.waiting.delete(name);
            resolve(null);
          },
        });
        const waiter = (message: number): void => {
          cancelled = true;
          timeout.cancel();
          resolve(message);
        };
        this.waiting.set(name, waiter);
      }),
    );
  }

  private deliver(from: string, to: string, n: number): void {
    this.sim.record({ kind: 'w.deliver', from, to, n });
    const waiter = this.waiting.get(to);
    if (waiter === undefined) {
      this.queue(to).push(n);
    } else {
      this.waiting.delete(to);
      waiter(n);
    }
  }

  private queue(name: string): number[] {
    let queue = this.queued.get(name);
    if (queue === undefined) {
      queue = [];
      this.queued.set(name, queue);
    }
    return queue;
  }
}

/** A promise resolved with `value` after `depth + 1` chained setImmediate callbacks. */
function viaImmediates<T>(depth: number, value: T): Promise<T> {
  return new Promise((resolve) => {
    const go = (left: number): void => {
      setImmediate(() => (left === 0 ? resolve(value) : go(left - 1)));
    };
    go(depth);
  });
}

/** A promise resolved with `value` after `depth + 1` chained process.nextTick callbacks. */
function viaTicks<T>(depth: number, value: T): Promise<T> {
  return new Promise((resolve) => {
    const go = (left: number): void => {
      process.nextTick(() => (left === 0 ? resolve(value) : go(left - 1)));
    };
    go(depth);
  });
}

/** Process name of index `index`. */
export function procName(index: number): string {
  return `p${index}`;
}

/** Builds the world, runs it and returns what happened. */
export async function runWorld(options: WorldOptions): Promise<WorldRun> {
  const { program } = options;
  const sim = new Simulation({ seed: options.seed, trace: { keepEntries: true } });
  const observed: Observed[] = [];
  observeEvents(sim, (event, step) =>
    observed.push({
      time: event.time,
      seq: event.seq,
      step,
      label: event.label,
      owner: event.owner?.label ?? null,
    }),
  );
  const mail = new Mailboxes(sim);
  const state: WorldState = { records: 0 };
  const count = program.procs.length;
  const draw = options.draw ?? ((incarnation, maxMs) => incarnation.runtime.random.int(0, maxMs));

  program.procs.forEach((spec, index) => {
    sim.spawn(procName(index), async (incarnation) => {
      options.tamper?.(incarnation);
      const fx = (what: string, fields: Record<string, unknown> = {}): void =>
        sim.record({ kind: 'w.fx', by: incarnation.label, what, ...fields });
      // Every guarded promise reports its settlement: a dead incarnation's must never settle.
      const guarded = async <T>(promise: Promise<T>): Promise<T> => {
        const value = await incarnation.guard(promise);
        fx('settled');
        return value;
      };
      do {
        for (const [pc, instr] of spec.body.entries()) {
          switch (instr.op) {
            case 'sleep':
              await incarnation.sleep(instr.ms);
              fx('woke', { pc, ms: instr.ms });
              break;
            case 'sleep.random': {
              const ms = draw(incarnation, instr.maxMs);
              await incarnation.sleep(ms);
              fx('woke', { pc, ms });
              break;
            }
            case 'send': {
              const n = mail.send(incarnation, procName(instr.to % count), instr.latencyMs);
              fx('sent', { pc, n });
              break;
            }
            case 'recv': {
              const n = await mail.receive(incarnation, instr.timeoutMs);
              fx('received', { pc, n });
              break;
            }
            case 'io': {
              const reply = new Promise<number>((resolve) => {
                sim.schedule({ delayMs: instr.latencyMs, label: 'w.io', run: () => resolve(pc) });
              });
              await guarded(reply);
              fx('io', { pc, ms: instr.latencyMs });
              break;
            }
            case 'immediate':
              await guarded(viaImmediates(instr.depth, pc));
              fx('immediate', { pc });
              break;
            case 'tick':
              await guarded(viaTicks(instr.depth, pc));
              fx('tick', { pc });
              break;
            case 'record':
              incarnation.record({ kind: 'w.rec', tag: instr.tag });
              state.records++;
              fx('recorded', { pc });
              break;
            case 'throw':
              fx('throw', { pc });
              throw new Error(`${incarnation.label} throws at ${pc}`);
          }
        }
      } while (spec.loop);
      fx('done');
    });
  });

  if (options.dice === true) {
    sim.spawn('dice', async (incarnation) => {
      const ms = incarnation.runtime.random.int(0, DICE_MS_MAX);
      await incarnation.sleep(ms);
      incarnation.record({ kind: 'w.dice', ms });
    });
  }

  for (const process of sim.allProcesses()) process.start();

  for (const fault of program.faults) {
    sim.schedule({
      delayMs: fault.atMs,
      label: 'w.fault',
      run: () => {
        const process = sim.process(procName(fault.proc % count));
        const afterMs =
          fault.kind === 'crash'
            ? fault.restartAfterMs
            : fault.kind === 'pause'
              ? fault.resumeAfterMs
              : null;
        sim.record({ kind: 'w.fault', fault: fault.kind, target: process.name, afterMs });
        switch (fault.kind) {
          case 'crash':
            process.crash(
              fault.restartAfterMs === null ? {} : { restartAfterMs: fault.restartAfterMs },
            );
            break;
          case 'pause':
            process.pause(
              fault.resumeAfterMs === null ? {} : { resumeAfterMs: fault.resumeAfterMs },
            );
            break;
          case 'resume':
            process.resume();
            break;
        }
      },
    });
  }

  if (options.worldThrowAtMs !== undefined && options.worldThrowAtMs !== null) {
    sim.schedule({
      delayMs: options.worldThrowAtMs,
      label: 'w.boom',
      run: () => {
        throw new Error('boom');
      },
    });
  }

  const { check, goal } = options;
  const result = await sim.run({
    budget: options.budget ?? DEFAULT_BUDGET,
    ...(check === undefined ? {} : { check: () => check(state) }),
    ...(goal === undefined ? {} : { goal: () => goal(state) }),
  });
  const lines = sim.trace.entries().lines;
  const statuses: Record<string, ProcessStatus> = {};
  for (const process of sim.allProcesses()) statuses[process.name] = process.status;
  return {
    result,
    lines,
    entries: lines.map((line) => JSON.parse(line) as Entry),
    observed,
    statuses,
    state,
  };
}

/**
 * Taps the scheduler's observe hook. The hooks are private to the scheduler; a test may reach
 * them to watch `(time, seq)` without adding an API that only tests would use.
 */
export function observeEvents(
  sim: Simulation,
  tap: (event: ScheduledEvent, step: number) => void,
): void {
  const scheduler = sim.scheduler as unknown as { hooks: SchedulerHooks };
  const inner = scheduler.hooks;
  scheduler.hooks = {
    ...inner,
    observe: (event, step) => {
      tap(event, step);
      inner.observe?.(event, step);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Generators. Times are small integers so that events often coincide and ties are exercised.

/** Largest delay drawn for sleeps, latencies and timeouts, ms. */
const DELAY_MS_MAX = 30;

const delay = fc.integer({ min: 0, max: DELAY_MS_MAX });

function instrArb(procs: number, throws: boolean): fc.Arbitrary<Instr> {
  const plain: fc.Arbitrary<Instr>[] = [
    fc.record({ op: fc.constant('sleep' as const), ms: delay }),
    fc.record({ op: fc.constant('sleep.random' as const), maxMs: delay }),
    fc.record({
      op: fc.constant('send' as const),
      to: fc.integer({ min: 0, max: procs - 1 }),
      latencyMs: delay,
    }),
    fc.record({ op: fc.constant('recv' as const), timeoutMs: delay }),
    fc.record({ op: fc.constant('io' as const), latencyMs: delay }),
    fc.record({ op: fc.constant('immediate' as const), depth: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ op: fc.constant('tick' as const), depth: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ op: fc.constant('record' as const), tag: fc.integer({ min: 0, max: 9 }) }),
  ];
  if (!throws) return fc.oneof(...plain);
  return fc.oneof(
    { weight: 12, arbitrary: fc.oneof(...plain) },
    { weight: 1, arbitrary: fc.constant({ op: 'throw' as const }) },
  );
}

/** Which faults a generated program may contain. */
export type FaultMode =
  /** None. */
  | 'none'
  /** Crashes with or without restart, pauses with or without resume, explicit resumes. */
  | 'any'
  /** Only faults that heal: every crash restarts, every pause resumes after a delay. */
  | 'healing';

function faultArb(procs: number, mode: FaultMode, atMsMax: number): fc.Arbitrary<Fault> {
  const atMs = fc.integer({ min: 0, max: atMsMax });
  const proc = fc.integer({ min: 0, max: procs - 1 });
  const after = fc.integer({ min: 0, max: 60 });
  const maybeAfter = mode === 'healing' ? after : fc.option(after, { nil: null });
  const kinds: fc.Arbitrary<Fault>[] = [
    fc.record({
      kind: fc.constant('crash' as const),
      atMs,
      proc,
      restartAfterMs: maybeAfter,
    }),
    fc.record({
      kind: fc.constant('pause' as const),
      atMs,
      proc,
      resumeAfterMs: maybeAfter,
    }),
  ];
  if (mode === 'any') kinds.push(fc.record({ kind: fc.constant('resume' as const), atMs, proc }));
  return fc.oneof(...kinds);
}

/** Shape of generated programs. */
export interface ProgramShape {
  /** Largest number of processes, >= 1. Default 4. */
  readonly procsMax?: number;
  /** Longest body. Default 8. */
  readonly bodyMax?: number;
  /** Allow bodies that run forever (each gets a trailing sleep). Default false. */
  readonly loops?: boolean;
  /** Default 'any'. */
  readonly faults?: FaultMode;
  /** Allow `throw` instructions. Default false. */
  readonly throws?: boolean;
  /** Most faults. Default 6. */
  readonly faultsMax?: number;
  /** Latest time of a fault, ms; restart and resume delays are drawn in [0, 60]. Default 150. */
  readonly faultAtMsMax?: number;
}

/** Random programs of the given shape. */
export function programArb(shape: ProgramShape = {}): fc.Arbitrary<Program> {
  const procsMax = shape.procsMax ?? 4;
  const bodyMax = shape.bodyMax ?? 8;
  const mode = shape.faults ?? 'any';
  return fc.integer({ min: 1, max: procsMax }).chain((procs) => {
    const spec: fc.Arbitrary<ProcSpec> = fc
      .record({
        body: fc.array(instrArb(procs, shape.throws ?? false), { maxLength: bodyMax }),
        loop: shape.loops === true ? fc.boolean() : fc.constant(false),
        loopSleepMs: fc.integer({ min: 0, max: 10 }),
      })
      .map(({ body, loop, loopSleepMs }) => ({
        // A loop without a sleep would never yield to the scheduler: not a workload, a hang.
        body: loop ? [...body, { op: 'sleep' as const, ms: loopSleepMs }] : body,
        loop,
      }));
    return fc.record({
      procs: fc.array(spec, { minLength: procs, maxLength: procs }),
      faults:
        mode === 'none'
          ? fc.constant([])
          : fc.array(faultArb(procs, mode, shape.faultAtMsMax ?? 150), {
              maxLength: shape.faultsMax ?? 6,
            }),
    });
  });
}

/** Root seeds. */
export const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });
