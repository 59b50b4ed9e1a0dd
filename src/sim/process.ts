/**
 * Simulated processes with incarnations. A process is a named `main` function; each start runs it
 * as a new incarnation with its own runtime (clock, random fork, ids, log). Crashing an incarnation
 * freezes it at whatever await it is parked on: its timers are discarded, and every promise it
 * obtained through {@link Incarnation.guard} never settles, so no continuation of a dead
 * incarnation can reach the world. Restart is a normal start (crash-only design). Pause holds the
 * incarnation's events until resume, when they fire with whatever stale beliefs it had.
 */
import { assert } from '../lib/assert.ts';
import type { Prng } from '../lib/prng.ts';
import type { Clock, Ids, Log, Random, Runtime, Timer } from '../ports/runtime.ts';
import type { EventOwner, Scheduler, ScheduledEvent } from './scheduler.ts';
import type { TraceRecord } from './trace.ts';

/** The body of a process. It receives its incarnation and runs until it returns or is crashed. */
export type ProcessMain = (incarnation: Incarnation) => Promise<void>;

/** Lifecycle of a process, as the trace and checkers see it. */
export type ProcessStatus = 'running' | 'paused' | 'crashed' | 'exited' | 'failed';

/** What processes need from the simulation around them. */
export interface ProcessHost {
  readonly scheduler: Scheduler;
  readonly random: Prng;
  readonly ids: Ids;
  record(record: TraceRecord): void;
  /** Reports an uncaught error of a live incarnation: a bug, ends the run with verdict `crash`. */
  fail(error: unknown, where: string): void;
  /** Counts an incarnation that ended (crashed, exited, failed), for {@link Simulation.ended}. */
  incarnationEnded?(): void;
}

/** One run of a process's `main`. Owns its events; inert once dead. */
export class Incarnation implements EventOwner {
  private isAlive = true;
  private isPaused = false;
  private held: ScheduledEvent[] = [];
  private readonly deferred: (() => void)[] = [];
  readonly runtime: Runtime;
  /** `name#number`, for the trace. */
  readonly label: string;

  constructor(
    readonly process: SimProcess,
    readonly number: number,
    private readonly host: ProcessHost,
  ) {
    this.label = `${process.name}#${number}`;
    const random = host.random.fork(`proc-${process.name}-${number}`);
    const clock: Clock = {
      nowMs: () => host.scheduler.epochMs + Math.floor(host.scheduler.now),
      sleep: (delayMs) => this.sleep(delayMs),
      timer: (delayMs) => this.timer(delayMs),
    };
    const log: Log = {
      // Fields first, so a field named `kind`, `level` or `message` cannot disguise the entry.
      info: (message, fields) => this.record({ ...fields, kind: 'log', level: 'info', message }),
      warn: (message, fields) => this.record({ ...fields, kind: 'log', level: 'warn', message }),
    };
    this.runtime = { clock, random: random satisfies Random, ids: host.ids, log };
  }

  get alive(): boolean {
    return this.isAlive;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  hold(event: ScheduledEvent): void {
    this.held.push(event);
  }

  /** Appends a trace record attributed to this incarnation, if it is alive. */
  record(record: TraceRecord): void {
    if (this.isAlive) this.host.record({ ...record, proc: this.label });
  }

  /** Resolves after `delayMs` of virtual time; never resolves if the incarnation dies first. */
  sleep(delayMs: number): Promise<void> {
    return new Promise((resolve) => {
      this.host.scheduler.schedule({ delayMs, label: 'timer', owner: this, run: resolve });
    });
  }

  /**
   * {@link sleep}, cancellable: a cancelled timer's event is dropped from the queue without
   * running — no step, nothing traced.
   */
  timer(delayMs: number): Timer {
    let cancel = (): void => {};
    const fired = new Promise<void>((resolve) => {
      const handle = this.host.scheduler.schedule({
        delayMs,
        label: 'timer',
        owner: this,
        run: resolve,
      });
      cancel = () => handle.cancel();
    });
    return { fired, cancel: () => cancel() };
  }

  /** Schedules `run` as an event owned by this incarnation. */
  schedule(delayMs: number, label: string, run: () => void): void {
    this.host.scheduler.schedule({ delayMs, label, owner: this, run });
  }

  /**
   * Binds a promise to this incarnation: the result settles only if the incarnation is alive at
   * settle time, is delayed until resume if it is paused, and never settles if it has died. Port
   * handles wrap every operation with this, which is what makes them inert after a crash.
   */
  guard<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      promise.then(
        (value) => this.deliver(() => resolve(value)),
        (error: unknown) => this.deliver(() => reject(error)),
      );
    });
  }

  /** Runs `fn` now if alive and running, later if paused, never if dead. */
  deliver(fn: () => void): void {
    if (!this.isAlive) return;
    if (this.isPaused) this.deferred.push(fn);
    else fn();
  }

  /** Marks the incarnation dead. Its events are discarded as they come up. */
  kill(): void {
    if (this.isAlive) this.host.incarnationEnded?.();
    this.isAlive = false;
    this.held = [];
    this.deferred.length = 0;
  }

  pause(): void {
    assert(this.isAlive && !this.isPaused, `cannot pause ${this.label}`);
    this.isPaused = true;
  }

  resume(): void {
    assert(this.isAlive && this.isPaused, `cannot resume ${this.label}`);
    this.isPaused = false;
    const held = this.held;
    this.held = [];
    this.host.scheduler.requeue(held);
    const deferred = this.deferred.splice(0);
    for (const fn of deferred) fn();
  }
}

/** A named process: its main function and its current incarnation. */
export class SimProcess {
  private incarnationCount = 0;
  private pauseCount = 0;
  private currentIncarnation: Incarnation | null = null;
  private state: ProcessStatus = 'exited';

  constructor(
    readonly name: string,
    private readonly main: ProcessMain,
    private readonly host: ProcessHost,
  ) {}

  get status(): ProcessStatus {
    return this.state;
  }

  /** The live incarnation, or null when crashed, exited or failed. */
  get current(): Incarnation | null {
    return this.currentIncarnation !== null && this.currentIncarnation.alive
      ? this.currentIncarnation
      : null;
  }

  /** Number of incarnations started so far. */
  get incarnations(): number {
    return this.incarnationCount;
  }

  /** Starts a new incarnation now. The process must not be running. */
  start(): Incarnation {
    assert(this.current === null, `process ${this.name} is already running`);
    const incarnation = new Incarnation(this, ++this.incarnationCount, this.host);
    this.currentIncarnation = incarnation;
    this.state = 'running';
    this.host.record({ kind: 'proc.start', proc: incarnation.label });
    let result: Promise<void>;
    try {
      result = this.main(incarnation);
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      () => {
        if (!incarnation.alive) return;
        incarnation.kill();
        this.state = 'exited';
        this.host.record({ kind: 'proc.exit', proc: incarnation.label });
      },
      (error: unknown) => {
        if (!incarnation.alive) return;
        incarnation.kill();
        this.state = 'failed';
        this.host.record({
          kind: 'proc.fail',
          proc: incarnation.label,
          error: describeError(error),
        });
        this.host.fail(error, incarnation.label);
      },
    );
    return incarnation;
  }

  /**
   * Crashes the live incarnation at whatever await it is parked on. With `restartAfterMs`, a new
   * incarnation starts after that delay. Crashing a process that is not running is a no-op, so
   * fault schedules need not track state.
   */
  crash(options: { readonly restartAfterMs?: number } = {}): void {
    const incarnation = this.current;
    if (incarnation === null) return;
    incarnation.kill();
    this.state = 'crashed';
    this.host.record({ kind: 'proc.crash', proc: incarnation.label });
    if (options.restartAfterMs !== undefined) this.restartAfter(options.restartAfterMs);
  }

  /** Starts a new incarnation after `delayMs`, unless one is running by then. */
  restartAfter(delayMs: number): void {
    this.host.scheduler.schedule({
      delayMs,
      label: `proc.restart`,
      run: () => {
        if (this.current === null) this.start();
      },
    });
  }

  /**
   * Pauses the live incarnation; with `resumeAfterMs`, resumes it after that delay — unless this
   * pause has ended by then (an explicit resume or a crash), so a stale resume never cuts a later
   * pause, of this or a later incarnation, short.
   */
  pause(options: { readonly resumeAfterMs?: number } = {}): void {
    const incarnation = this.current;
    if (incarnation === null || incarnation.paused) return;
    incarnation.pause();
    const pause = ++this.pauseCount;
    this.state = 'paused';
    this.host.record({ kind: 'proc.pause', proc: incarnation.label });
    if (options.resumeAfterMs !== undefined) {
      this.host.scheduler.schedule({
        delayMs: options.resumeAfterMs,
        label: 'proc.resume',
        run: () => {
          if (this.pauseCount === pause) this.resume();
        },
      });
    }
  }

  /** Resumes a paused incarnation; a no-op if it is not paused (it may have crashed meanwhile). */
  resume(): void {
    const incarnation = this.current;
    if (incarnation === null || !incarnation.paused) return;
    this.state = 'running';
    this.host.record({ kind: 'proc.resume', proc: incarnation.label });
    incarnation.resume();
  }
}

/** A one-line description of an error for the trace: name and message, no stack (stacks differ by path). */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
