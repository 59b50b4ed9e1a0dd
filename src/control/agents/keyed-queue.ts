/**
 * A per-resource serial work queue for agents. Work on one resource (a domain, a dataset) runs one
 * item at a time, so two ensure commands for the same VM never interleave their define/start/destroy
 * calls; work on different resources runs concurrently. Each resource keeps at most one pending
 * item: a newer item replaces the pending one (ensure commands are level-triggered, the newest
 * intent wins, and a replaced command is simply re-sent by the main loop if it still matters).
 *
 * The queue is in memory only and losing it in a crash is harmless: nothing in it is acknowledged,
 * and the main loop re-sends until it observes the effect.
 */
import { assert } from '../../lib/assert.ts';

/** One unit of work on a resource. */
export interface QueuedWork {
  /** What kind of work: commands replace anything pending; housekeeping never replaces a command. */
  readonly kind: 'command' | 'housekeeping';
  /** Runs the work. Must not reject: callers catch and report their own errors. */
  readonly run: () => Promise<void>;
  /** Called instead of `run` when a newer item replaced this one before it started. */
  readonly onReplaced?: () => void;
}

/** What {@link KeyedQueue.enqueue} did with an item. */
export type EnqueueOutcome = 'started' | 'queued' | 'replaced-pending' | 'skipped' | 'full';

interface Slot {
  pending: QueuedWork | null;
}

/** Options for {@link KeyedQueue}. */
export interface KeyedQueueOptions {
  /** At most this many resources with work in flight or pending; more is refused (`full`). Default 10 000. */
  readonly resourcesMax?: number;
  /** Called when a work item rejects despite the contract, so the error is never lost. */
  readonly onError: (error: unknown, key: string) => void;
}

export class KeyedQueue {
  private readonly slots = new Map<string, Slot>();
  private readonly resourcesMax: number;

  constructor(private readonly options: KeyedQueueOptions) {
    this.resourcesMax = options.resourcesMax ?? 10_000;
    assert(this.resourcesMax >= 1, 'resourcesMax must be >= 1');
  }

  /** Number of resources with work in flight or pending. */
  get size(): number {
    return this.slots.size;
  }

  /** True when work for `key` is running or pending. */
  busy(key: string): boolean {
    return this.slots.has(key);
  }

  /**
   * Queues `work` for `key`. Housekeeping is skipped when the resource already has work (the
   * command in flight or pending carries newer intent, and housekeeping re-checks later anyway).
   */
  enqueue(key: string, work: QueuedWork): EnqueueOutcome {
    const slot = this.slots.get(key);
    if (slot === undefined) {
      if (this.slots.size >= this.resourcesMax) return 'full';
      const fresh: Slot = { pending: null };
      this.slots.set(key, fresh);
      void this.drain(key, fresh, work);
      return 'started';
    }
    if (work.kind === 'housekeeping') return 'skipped';
    const previous = slot.pending;
    slot.pending = work;
    if (previous === null) return 'queued';
    previous.onReplaced?.();
    return 'replaced-pending';
  }

  private async drain(key: string, slot: Slot, first: QueuedWork): Promise<void> {
    let next: QueuedWork | null = first;
    while (next !== null) {
      try {
        await next.run();
      } catch (error) {
        this.options.onError(error, key);
      }
      next = slot.pending;
      slot.pending = null;
    }
    this.slots.delete(key);
  }
}
