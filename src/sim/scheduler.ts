/**
 * The scheduler: a virtual clock and one event queue ordered by `(time, seq)`. `seq` is a global
 * counter, so the order is total — two events never compare equal — and ties at the same instant
 * run in the order they were scheduled. After each event the scheduler drains Node's own queues
 * (see quiesce.ts), so a step runs to completion before the clock moves.
 *
 * Events may be owned by a process incarnation. An event whose owner has died is discarded; one
 * whose owner is paused is handed to the owner and re-queued on resume. This is how a crashed
 * process's timers and replies stop reaching the world, and how a pause stalls a process while
 * everything else moves on.
 */
import { AssertionError, assert } from '../lib/assert.ts';
import { MinHeap } from '../lib/heap.ts';
import { quiesce } from './quiesce.ts';

/** What an event's owner must offer the scheduler: liveness and a place to hold events while paused. */
export interface EventOwner {
  /** False once the owner has crashed or exited: its events are discarded. */
  readonly alive: boolean;
  /** True while the owner is paused: its events are handed to {@link EventOwner.hold}. */
  readonly paused: boolean;
  /** Keeps an event that fired while paused, to be re-queued on resume. */
  hold(event: ScheduledEvent): void;
  /** A short name for the trace, e.g. `mainloop#2`. */
  readonly label: string;
}

/** An entry of the event queue. */
export interface ScheduledEvent {
  /** Virtual time in ms since the run's start. */
  readonly time: number;
  /** Global scheduling order, the tie-breaker that makes the order total. */
  readonly seq: number;
  /** A dotted lowercase label for the trace, e.g. `timer` or `bus.deliver`. */
  readonly label: string;
  readonly owner: EventOwner | null;
  readonly run: () => void;
  cancelled: boolean;
}

/** Options for {@link Scheduler.schedule}. */
export interface ScheduleOptions {
  /** Delay from now in virtual ms, >= 0. Fractions are allowed; the trace shows them as they are. */
  readonly delayMs: number;
  readonly label: string;
  /** The incarnation whose liveness and pause state gate this event; null for world events. */
  readonly owner?: EventOwner | null;
  readonly run: () => void;
}

/** A handle to cancel a scheduled event before it runs. */
export interface EventHandle {
  cancel(): void;
}

/** Hooks the simulation uses to watch the scheduler. */
export interface SchedulerHooks {
  /** Called for every event that runs, before it runs: the hook that feeds the trace. */
  readonly observe?: (event: ScheduledEvent, step: number) => void;
  /** Called when an event's callback throws synchronously. */
  readonly onError?: (error: unknown, event: ScheduledEvent) => void;
}

export class Scheduler {
  private readonly queue = new MinHeap<ScheduledEvent>(compareEvents);
  private current = 0;
  private nextSeq = 0;
  private executed = 0;
  /**
   * Cancels since the queue was last compacted (some of those events may have run already: it is
   * only the trigger). Cancelled events stay queued until their time comes — a port call's timeout
   * is cancelled by nearly every reply — so when they could be half the queue, it is compacted.
   */
  private cancelsSinceCompaction = 0;

  /**
   * @param epochMs the wall-clock instant that virtual time 0 stands for (what `Clock.nowMs()`
   *   reports at the start of a run)
   */
  constructor(
    readonly epochMs: number,
    private readonly hooks: SchedulerHooks = {},
  ) {
    assert(Number.isSafeInteger(epochMs) && epochMs >= 0, `epochMs must be a non-negative integer`);
  }

  /** Virtual time in ms since the run's start. */
  get now(): number {
    return this.current;
  }

  /** Number of events run so far. */
  get steps(): number {
    return this.executed;
  }

  /** Number of queued events, including cancelled ones not yet popped. */
  get queued(): number {
    return this.queue.size;
  }

  /** Queues `run` at `now + delayMs`. The event is its own handle: nothing else is allocated. */
  schedule(options: ScheduleOptions): EventHandle {
    const { delayMs } = options;
    // Not `assert(…, message)`: its message would be built on every call of the hottest path.
    if (!(delayMs >= 0 && delayMs < Infinity))
      throw new AssertionError(`delayMs must be finite and >= 0, got ${delayMs}`);
    const event = new QueuedEvent(
      this,
      this.current + delayMs,
      this.nextSeq++,
      options.label,
      options.owner ?? null,
      options.run,
    );
    this.queue.push(event);
    return event;
  }

  /** Counts a cancel (called by {@link QueuedEvent.cancel}); compacts when cancels could be half the queue. */
  noteCancel(): void {
    if (++this.cancelsSinceCompaction > COMPACT_AFTER_CANCELS + (this.queue.size >> 1))
      this.compact();
  }

  /**
   * Drops the queued events that can never run — cancelled, or owned by a dead incarnation — so
   * the queue holds what is live. The order of what is left is untouched (see {@link MinHeap.retain}).
   */
  private compact(): void {
    this.cancelsSinceCompaction = 0;
    this.queue.retain((e) => !e.cancelled && (e.owner === null || e.owner.alive));
  }

  /**
   * Moves the clock forward to `time` while nothing is due before it. A driver that paces the
   * simulation to the wall clock calls this when idle, so work injected from outside (an HTTP
   * request) is stamped with the right time. Never moves time backwards or past a queued event.
   */
  advanceTo(time: number): void {
    assert(Number.isFinite(time), `advanceTo: time must be finite, got ${time}`);
    if (time <= this.current) return;
    const next = this.peekTime();
    this.current = next === undefined ? time : Math.min(time, next);
  }

  /** Puts held events back at the current instant, keeping their relative order. */
  requeue(events: readonly ScheduledEvent[]): void {
    for (const held of events) {
      // The same object goes back, with a new place in the order: the handle returned by
      // `schedule` refers to it, so the event stays cancellable after a pause.
      const event = held as { time: number; seq: number };
      event.time = this.current;
      event.seq = this.nextSeq++;
      this.queue.push(held);
    }
  }

  /**
   * Time of the next event that will run, or undefined if there is none. On the way it discards
   * cancelled events and those of dead owners, and hands events of paused owners over to them:
   * a paused owner's event is not the next step, and treating it as one would let a run's budget
   * check look at the wrong time. Handing over does not move the clock; a resume happens inside a
   * later event, at or after the held event's time.
   */
  peekTime(): number | undefined {
    for (;;) {
      const next = this.queue.peek();
      if (next === undefined) return undefined;
      if (next.cancelled || (next.owner !== null && !next.owner.alive)) {
        this.queue.pop();
      } else if (next.owner !== null && next.owner.paused) {
        this.queue.pop();
        next.owner.hold(next);
      } else {
        return next.time;
      }
    }
  }

  /**
   * Runs the next event's callback, and only that: what it sets off on Node's queues is still
   * pending when this returns, and the caller must let it settle (quiesce.ts) before the next.
   * Returns false when no event is left to run. Events of paused owners are handed over without
   * counting as a step.
   */
  runNext(): boolean {
    if (this.peekTime() === undefined) return false;
    this.runPeeked();
    return true;
  }

  /**
   * Runs the event at the head of the queue, which {@link peekTime} has just found runnable (a run
   * loop that peeks for its budgets anyway need not peek twice). Nothing may happen in between.
   */
  runPeeked(): void {
    const event = this.queue.pop() as ScheduledEvent;
    assert(event.time >= this.current, 'virtual time must never go backwards');
    this.current = event.time;
    this.executed++;
    this.hooks.observe?.(event, this.executed);
    try {
      event.run();
    } catch (error) {
      if (this.hooks.onError === undefined) throw error;
      this.hooks.onError(error, event);
    }
  }

  /**
   * Runs the next event and everything it sets off, to quiescence. Returns false when no event is
   * left to run. Events of paused owners are handed over without counting as a step.
   */
  async step(): Promise<boolean> {
    if (!this.runNext()) return false;
    await quiesce();
    return true;
  }
}

/** What a cancelled event runs: nothing (it never runs; its callback is let go). */
const NOTHING = (): void => {};

/** A queued event, and the handle that cancels it. */
class QueuedEvent implements ScheduledEvent, EventHandle {
  cancelled = false;

  constructor(
    private readonly scheduler: Scheduler,
    readonly time: number,
    readonly seq: number,
    readonly label: string,
    readonly owner: EventOwner | null,
    public run: () => void,
  ) {}

  /**
   * Marks the event cancelled and lets go of its callback at once: a cancelled event stays queued
   * until its time or the next compaction, and its callback's closure (a client's request and
   * body, say) must not live that long with it.
   */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.run = NOTHING;
    this.scheduler.noteCancel();
  }
}

/** Cancels, beyond half the queue, that trigger a compaction: small queues are never compacted. */
const COMPACT_AFTER_CANCELS = 1024;

function compareEvents(a: ScheduledEvent, b: ScheduledEvent): number {
  // seq is unique, so this never returns 0 for two different events. Times are fractional: compare
  // them rather than subtract, so the answer is a small integer and not a fresh heap number.
  if (a.time !== b.time) return a.time < b.time ? -1 : 1;
  return a.seq < b.seq ? -1 : 1;
}
