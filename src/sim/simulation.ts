/**
 * A simulation: one virtual clock, one root seed, one trace, a table of processes, and the run loop
 * that enforces budgets and turns what happened into a verdict. Worlds (the control plane wired onto
 * simulated hosts, or small test worlds) are built on top of this; the kernel knows nothing about
 * clouds.
 */
import { assert } from '../lib/assert.ts';
import { Prng } from '../lib/prng.ts';
import type { Ids } from '../ports/runtime.ts';
import { describeError, SimProcess, type ProcessHost, type ProcessMain } from './process.ts';
import { Quiescence } from './quiesce.ts';
import {
  Scheduler,
  type EventHandle,
  type ScheduledEvent,
  type ScheduleOptions,
} from './scheduler.ts';
import { Trace, type TraceOptions, type TraceRecord } from './trace.ts';
import type { Verdict } from './verdict.ts';

/** Virtual time 0 of every run: 2026-01-01T00:00:00Z, so dates in a run look like real dates. */
export const SIM_EPOCH_MS = 1_767_225_600_000;

/** Options for {@link Simulation}. */
export interface SimulationOptions {
  /** The root seed, a non-negative safe integer. */
  readonly seed: number;
  readonly trace?: TraceOptions;
  /** Trace every executed event (label and owner), not only explicit records. Default true. */
  readonly traceEvents?: boolean;
  /**
   * The wall-clock instant virtual time 0 stands for, ms since the epoch. Default
   * {@link SIM_EPOCH_MS}, so runs are reproducible; `cloudbed serve` passes the real start time.
   */
  readonly epochMs?: number;
}

/** Budgets: every run ends within them. */
export interface Budget {
  /** Maximum number of events to run. */
  readonly maxSteps: number;
  /** Maximum virtual time in ms since the start. */
  readonly maxSimTimeMs: number;
}

/** Options for {@link Simulation.run}. */
export interface RunOptions {
  readonly budget: Budget;
  /** Safety check after every step: a message names the broken invariant (verdict `correctness`). */
  readonly check?: () => string | undefined;
  /**
   * The run's goal. When given, the run ends `ok` as soon as it returns true, and `liveness` if the
   * budget or the queue runs out first. Without a goal, a run that stays safe until its budget or
   * an empty queue ends `ok`.
   */
  readonly goal?: () => boolean;
}

/** How a run ended. */
export interface RunResult {
  readonly verdict: Verdict;
  /** Why, in one line, for anything but a plain `ok`. */
  readonly reason: string;
  readonly steps: number;
  readonly simTimeMs: number;
  readonly traceHash: string;
}

export class Simulation implements ProcessHost {
  readonly random: Prng;
  readonly scheduler: Scheduler;
  readonly trace: Trace;
  readonly ids: Ids;
  private readonly processes = new Map<string, SimProcess>();
  private failure: { verdict: 'crash' | 'correctness'; reason: string } | null = null;
  private endedCount = 0;

  constructor(readonly options: SimulationOptions) {
    this.random = new Prng(options.seed);
    this.trace = new Trace(options.trace);
    const traceEvents = options.traceEvents ?? true;
    this.scheduler = new Scheduler(options.epochMs ?? SIM_EPOCH_MS, {
      ...(traceEvents
        ? {
            observe: (event: ScheduledEvent) =>
              this.trace.appendStep(event.time, event.label, event.owner?.label),
          }
        : {}),
      onError: (error, event) => this.fail(error, event.owner?.label ?? event.label),
    });
    this.ids = createSimIds(this.random.fork('ids'));
  }

  get seed(): number {
    return this.options.seed;
  }

  /**
   * How many process incarnations have ended so far. World state that holds per-incarnation
   * resources (bus connections) looks for dead ones only when this changed.
   */
  get ended(): number {
    return this.endedCount;
  }

  incarnationEnded(): void {
    this.endedCount++;
  }

  /** Appends a record to the trace at the current virtual time. */
  record(record: TraceRecord): void {
    this.trace.append(this.scheduler.now, record);
  }

  /** The first failure recorded so far (`crash` or `correctness`), as `verdict: reason`, or undefined. */
  failureReason(): string | undefined {
    return this.failure === null ? undefined : `${this.failure.verdict}: ${this.failure.reason}`;
  }

  /** Ends the run with verdict `crash`: an uncaught error or a failed assertion. First failure wins. */
  fail(error: unknown, where: string): void {
    if (this.failure !== null) return;
    const reason = `${where}: ${describeError(error)}`;
    this.failure = { verdict: 'crash', reason };
    this.record({ kind: 'sim.crash', reason });
  }

  /** Ends the run with verdict `correctness`: a safety invariant broke. First failure wins. */
  violate(reason: string): void {
    if (this.failure !== null) return;
    this.failure = { verdict: 'correctness', reason };
    this.record({ kind: 'sim.violation', reason });
  }

  /** Queues a world event (not owned by any process). */
  schedule(options: ScheduleOptions): EventHandle {
    return this.scheduler.schedule(options);
  }

  /** Registers a process; it starts when {@link SimProcess.start} is called. Names are unique. */
  spawn(name: string, main: ProcessMain): SimProcess {
    assert(!this.processes.has(name), `duplicate process name ${name}`);
    const process = new SimProcess(name, main, this);
    this.processes.set(name, process);
    return process;
  }

  /** The process called `name`; asserts it exists. */
  process(name: string): SimProcess {
    const process = this.processes.get(name);
    assert(process !== undefined, `no process named ${name}`);
    return process;
  }

  /** All processes in registration order. */
  allProcesses(): readonly SimProcess[] {
    return [...this.processes.values()];
  }

  /**
   * Runs events until the goal, a failure, the budget or an empty queue. Call once per simulation.
   *
   * The loop is driven by callbacks, not `await`s: each step's event runs, then a quiescence wait
   * (quiesce.ts) calls the loop back once everything the event set off has settled. A step so costs
   * a tick and a microtask, not a promise chain and a turn of the event loop.
   */
  run(options: RunOptions): Promise<RunResult> {
    const { budget, check, goal } = options;
    assert(budget.maxSteps >= 0 && budget.maxSimTimeMs >= 0, 'budgets must be >= 0');
    const end = (verdict: Verdict, reason: string): RunResult => {
      this.record({ kind: 'sim.end', verdict, reason });
      return {
        verdict,
        reason,
        steps: this.scheduler.steps,
        simTimeMs: this.scheduler.now,
        traceHash: this.trace.digest(),
      };
    };
    const scheduler = this.scheduler;
    return new Promise<RunResult>((resolve, reject) => {
      const quiescence = new Quiescence((error) => {
        this.fail(error, 'scheduler');
        loop();
      });
      // One step per call: decide whether the run goes on, run one event, wait for quiescence.
      const loop = (): void => {
        try {
          for (;;) {
            if (this.failure !== null) {
              resolve(end(this.failure.verdict, this.failure.reason));
              return;
            }
            const message = check?.();
            if (message !== undefined) {
              this.violate(message);
              continue;
            }
            if (goal?.() === true) {
              resolve(end('ok', 'goal reached'));
              return;
            }
            const nextTime = scheduler.peekTime();
            if (nextTime === undefined) {
              resolve(
                goal === undefined
                  ? end('ok', 'no events left')
                  : end('liveness', 'no events left before the goal'),
              );
              return;
            }
            const exhausted =
              scheduler.steps >= budget.maxSteps
                ? `step budget of ${budget.maxSteps} exhausted`
                : nextTime > budget.maxSimTimeMs
                  ? `sim-time budget of ${budget.maxSimTimeMs} ms exhausted`
                  : undefined;
            if (exhausted !== undefined) {
              resolve(
                goal === undefined
                  ? end('ok', exhausted)
                  : end('liveness', `${exhausted} before the goal`),
              );
              return;
            }
            try {
              scheduler.runPeeked();
            } catch (error) {
              this.fail(error, 'scheduler');
            }
            quiescence.wait(loop);
            return;
          }
        } catch (error) {
          reject(error);
        }
      };
      // Processes started before the run have begun their work outside any event: let it settle
      // first, as after a step, or it would spill into the first event or past the run's end.
      quiescence.wait(loop);
    });
  }
}

/** Ids drawn from a dedicated PRNG fork: opaque, URL-safe, unique within the run. */
function createSimIds(random: Prng): Ids {
  const issued = new Set<string>();
  return {
    next(prefix: string): string {
      for (;;) {
        const id = `${prefix}-${random.nextUint32().toString(16).padStart(8, '0')}`;
        if (!issued.has(id)) {
          issued.add(id);
          return id;
        }
      }
    },
  };
}
