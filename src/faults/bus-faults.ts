/**
 * Bus faults. Redis pub/sub promises none of these away — messages are not queued, a slow or
 * reconnecting subscriber loses them, a partitioned client cannot publish — so the control plane
 * must converge anyway:
 * - {@link createBusFaults}: a delivery filter that drops, duplicates, delays and reorders
 *   messages on their way from the Redis server to a subscriber. A delay larger than the gap to
 *   later messages lets them overtake it; a reorder makes a message overtake those in flight.
 * - {@link LinkCuts}: windows in which one process's links are cut. {@link createDeliveryFaults}
 *   drops every delivery to a cut subscriber (a subscriber disconnect: ioredis reconnects and
 *   resubscribes by itself, losing what was published meanwhile), and {@link cuttableBus} makes a
 *   cut process's publishes and subscribes fail (a partition between a host and the bus).
 */
import { assert, assertProbability } from '../lib/assert.ts';
import type { Prng } from '../lib/prng.ts';
import type { Bus } from '../ports/bus.ts';
import { UnavailableError } from '../ports/errors.ts';
import { flip, type BusFaults, type FaultPhase, type RecordFault } from './plan.ts';

/** Probabilities of each fault per delivery; all in [0, 1]. `reorderProbability` defaults to 0. */
export type BusFaultOptions = Omit<BusFaults, 'reorderProbability'> & {
  readonly reorderProbability?: number;
};

/** One delivery as the fault sees it (a structural subset of the simulated bus's delivery). */
export interface Delivery {
  /** The delay the healthy network would apply, ms (>= 0, FIFO per connection). */
  readonly delayMs: number;
  /** The subscribing incarnation's label, `<process>#<n>`. */
  readonly subscriber?: string;
  readonly channel?: string;
}

/** Returns the delays at which to deliver copies of one message: `[]` drops it. */
export type DeliveryFaults = (delivery: Delivery) => readonly number[];

/**
 * A deterministic delivery filter drawing from `random`. Every draw happens on every delivery, so
 * changing one probability does not shift the others. With `record`, each injected fault is traced.
 */
export function createBusFaults(
  options: BusFaultOptions,
  random: Prng,
  record?: RecordFault,
): DeliveryFaults {
  assertProbability(options.dropProbability, 'dropProbability');
  assertProbability(options.duplicateProbability, 'duplicateProbability');
  assertProbability(options.delayProbability, 'delayProbability');
  const reorderProbability = options.reorderProbability ?? 0;
  assertProbability(reorderProbability, 'reorderProbability');
  assert(
    Number.isFinite(options.delayMsMax) && options.delayMsMax >= 0,
    `delayMsMax must be >= 0, got ${options.delayMsMax}`,
  );
  return (delivery) => {
    const drop = flip(random, options.dropProbability);
    const duplicate = flip(random, options.duplicateProbability);
    const delays = [drawDelay(), drawDelay()];
    const reorder = flip(random, reorderProbability);
    // A reordered copy leaves at a fresh time before its FIFO slot, overtaking what is in flight.
    const overtake = Math.round(random.float() * delivery.delayMs * 1000) / 1000;
    const who = { subscriber: delivery.subscriber, channel: delivery.channel };
    if (drop) {
      record?.({ kind: 'fault.bus', fault: 'drop', ...who });
      return [];
    }
    const first = reorder ? overtake : delivery.delayMs + (delays[0] ?? 0);
    if (reorder) record?.({ kind: 'fault.bus', fault: 'reorder', ...who, delayMs: first });
    else if (first !== delivery.delayMs)
      record?.({ kind: 'fault.bus', fault: 'delay', ...who, delayMs: first });
    if (!duplicate) return [first];
    const second = delivery.delayMs + (delays[1] ?? 0);
    record?.({ kind: 'fault.bus', fault: 'duplicate', ...who, delayMs: second });
    return [first, second];
  };

  function drawDelay(): number {
    const delayed = flip(random, options.delayProbability);
    const extra = random.float() * options.delayMsMax;
    // Whole microseconds keep trace lines short and identical across platforms.
    return delayed ? Math.round(extra * 1000) / 1000 : 0;
  }
}

/**
 * Processes whose links are cut, by process name. Windows may overlap: a process stays cut until
 * every window that cut it has ended.
 */
export class LinkCuts {
  private readonly open = new Map<string, number>();

  /** Starts a window for `process`. */
  begin(process: string): void {
    this.open.set(process, (this.open.get(process) ?? 0) + 1);
  }

  /** Ends one window for `process`; a no-op when none is open (a heal ended it already). */
  end(process: string): void {
    const count = this.open.get(process) ?? 0;
    if (count <= 1) this.open.delete(process);
    else this.open.set(process, count - 1);
  }

  /** True while a window for `process` is open. */
  isCut(process: string): boolean {
    return this.open.has(process);
  }

  /** Ends every window (the run heals). */
  clear(): void {
    this.open.clear();
  }
}

/** `agent-compute-1#3` → `agent-compute-1`. */
export function processOf(incarnationLabel: string): string {
  const hash = incarnationLabel.lastIndexOf('#');
  return hash < 0 ? incarnationLabel : incarnationLabel.slice(0, hash);
}

/** Options for {@link createDeliveryFaults}. */
export interface DeliveryFaultsOptions {
  readonly phase: FaultPhase;
  /** Per-delivery faults while the phase is active; none: only cuts apply. */
  readonly random?: DeliveryFaults;
  /** Processes whose subscriptions lose everything (disconnects and isolated hosts). */
  readonly cuts: readonly LinkCuts[];
  readonly record: RecordFault;
}

/**
 * The bus's delivery filter for a run: a cut subscriber loses the message; otherwise, while the
 * phase is active, the per-delivery faults decide; once healed, the healthy network.
 */
export function createDeliveryFaults(options: DeliveryFaultsOptions): DeliveryFaults {
  return (delivery) => {
    const process = processOf(delivery.subscriber ?? '');
    if (options.cuts.some((cuts) => cuts.isCut(process))) {
      options.record({
        kind: 'fault.bus',
        fault: 'disconnected',
        subscriber: delivery.subscriber,
        channel: delivery.channel,
      });
      return [];
    }
    if (!options.phase.active || options.random === undefined) return [delivery.delayMs];
    return options.random(delivery);
  };
}

/**
 * A Bus whose connection is cut while `isCut()` holds: publish and subscribe fail with a retryable
 * `bus.unavailable` after `clock.sleep(refusedMs)` (a refused connection), as they would for a
 * process partitioned from Redis. Deliveries to it are cut by {@link createDeliveryFaults}.
 */
export function cuttableBus(
  inner: Bus,
  options: {
    readonly isCut: () => boolean;
    readonly sleep: (ms: number) => Promise<void>;
    readonly record: RecordFault;
    readonly who: string;
    readonly refusedMs?: number;
  },
): Bus {
  const refused = async (operation: string): Promise<never> => {
    options.record({ kind: 'fault.bus', fault: 'refused', who: options.who, operation });
    await options.sleep(options.refusedMs ?? 1);
    throw new UnavailableError('bus', `${operation}: the connection to the bus is lost`);
  };
  return {
    publish: (channel, message) =>
      options.isCut() ? refused('publish') : inner.publish(channel, message),
    subscribe: (channel, handler) =>
      options.isCut() ? refused('subscribe') : inner.subscribe(channel, handler),
    close: () => inner.close(),
  };
}
