/**
 * What the agents and the background service share: the fencing check, bounded waits on port
 * calls, the mapping of errors to result codes, publishing reports without ever throwing, coalesced
 * inventories, a bounded memory of applied command ids, and the skeleton of a bus-driven service
 * ({@link Service}: options over defaults, a per-resource work queue whose bugs end the service,
 * and its life — subscribe with retries, tick at start and every interval, stop signal). Nothing
 * here holds state that matters across a crash: fencing falls back on the store's newest token,
 * and everything else is rebuilt by a normal start. The agents' own loop is agent-service.ts.
 */
import { assert, AssertionError } from '../../lib/assert.ts';
import type { Bus, BusHandler, BusMessage, Subscription } from '../../ports/bus.ts';
import { CHANNELS } from '../../ports/bus.ts';
import { PortError, TimeoutError } from '../../ports/errors.ts';
import type { EventStore, Projection } from '../../ports/event-store.ts';
import type { Clock, Runtime } from '../../ports/runtime.ts';
import { isHostError } from '../../ports/host-error.ts';
import type { ResultReport } from '../../model/commands.ts';
import { KeyedQueue } from './keyed-queue.ts';

/** Result error code of a command whose fencing token is older than one already seen. */
export const STALE_TOKEN = 'stale-token';

/**
 * The newest fencing token an agent has seen per resource. Memory covers tokens that reached the
 * agent before the store knew them; the store's `fenceOf` covers everything memory lost in a crash,
 * because the main loop appends with a fence before it sends the command carrying that token.
 */
export class FenceMemory {
  private readonly newest = new Map<string, number>();

  /** The newest token seen for `resource`, or 0. */
  get(resource: string): number {
    return this.newest.get(resource) ?? 0;
  }

  /** Records `token` as seen; keeps the maximum. */
  see(resource: string, token: number): void {
    if (token > this.get(resource)) this.newest.set(resource, token);
  }

  /** Number of resources remembered. */
  get size(): number {
    return this.newest.size;
  }
}

/**
 * Resolves or rejects like `promise`, unless `timeoutMs` of clock time pass first: then rejects with
 * a {@link TimeoutError}. A port call that hangs (a hung host) must not block its resource forever;
 * the late outcome of the call is ignored.
 */
export function withTimeout<T>(
  clock: Clock,
  promise: Promise<T>,
  timeoutMs: number,
  operation: string,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    // The call settling first calls the timeout off, so no dead timer outlives it.
    const timer = clock.timer(timeoutMs);
    promise.then(
      (value) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        reject(error);
      },
    );
    timer.fired.then(
      () => {
        if (settled) return;
        settled = true;
        reject(new TimeoutError(operation, timeoutMs));
      },
      () => undefined,
    );
  });
}

/**
 * The short stable reason a result carries for an error: the libvirt or ZFS condition
 * (`out-of-memory`, `busy`, `unavailable`), another port error's code (`timeout`,
 * `store.conflict`), or `internal` for anything else. Assertion failures are bugs: rethrown.
 */
export function errorReason(error: unknown): string {
  if (error instanceof AssertionError) throw error;
  if (isHostError(error)) return error.reason;
  if (error instanceof PortError) return error.code;
  return 'internal';
}

/** Rethrows assertion failures (bugs); lets port and other runtime errors be handled as data. */
export function rethrowBug(error: unknown): void {
  if (error instanceof AssertionError) throw error;
}

/** A one-line description of an error for the log. */
export function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** True when `error` is a host port's error (hypervisor, storage) with one of `reasons`. */
export function hasReason(error: unknown, ...reasons: readonly string[]): boolean {
  return isHostError(error) && reasons.includes(error.reason);
}

/**
 * Awaits a port call whose failure with one of `reasons` means its goal already holds (destroying
 * what is already gone): that failure resolves; any other rejects as it came.
 */
export async function tolerating(
  call: Promise<void>,
  ...reasons: readonly string[]
): Promise<void> {
  try {
    await call;
  } catch (error) {
    if (!hasReason(error, ...reasons)) throw error;
  }
}

/** Publishes without throwing: the bus may drop anything anyway, so a failed publish is a lost message. */
export async function publishQuietly(
  runtime: Runtime,
  bus: Bus,
  channel: string,
  message: BusMessage,
): Promise<void> {
  try {
    await bus.publish(channel, message);
  } catch (error) {
    runtime.log.warn('agent.publish-failed', {
      channel,
      type: message.type,
      error: describe(error),
    });
  }
}

/** Publishes a result report on {@link CHANNELS.reports}. */
export function publishResult(
  runtime: Runtime,
  bus: Bus,
  result: Omit<ResultReport, 'type'>,
): Promise<void> {
  const message: ResultReport = { type: 'result', ...result };
  return publishQuietly(runtime, bus, CHANNELS.reports, message);
}

/**
 * Fencing at execution time: the command's token must not be older than the newest the agent or
 * the store has seen for the resource. Returns null when the command may run, else the result
 * error (`stale-token`, or the reason the store could not be asked: the command is then refused,
 * as running it unfenced could undo a newer holder's work).
 */
export async function checkFence(
  deps: { readonly runtime: Runtime; readonly store: EventStore },
  fences: FenceMemory,
  resource: string,
  token: number,
  timeoutMs: number,
): Promise<string | null> {
  let stored: number;
  try {
    stored = await withTimeout(
      deps.runtime.clock,
      deps.store.fenceOf(resource),
      timeoutMs,
      'store.fenceOf',
    );
  } catch (error) {
    return errorReason(error);
  }
  fences.see(resource, stored);
  return token < fences.get(resource) ? STALE_TOKEN : null;
}

/**
 * Runs an inventory step at most once at a time: requests while one runs make exactly one more run
 * after it, so a burst of commands costs two inventories, not one per command.
 */
export class InventoryPump {
  private running = false;
  private again = false;

  constructor(private readonly step: () => Promise<void>) {}

  /** Runs or schedules an inventory; resolves when the one covering this request has been sent. */
  async request(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        await this.step();
      } while (this.again);
    } finally {
      this.running = false;
    }
  }
}

/** A bounded set of recently applied command ids with their result (first in, first out). */
export class RecentCommands {
  private readonly results = new Map<string, { ok: boolean; error: string | null }>();

  constructor(private readonly capacity: number) {
    assert(capacity >= 1, 'capacity must be >= 1');
  }

  get(commandId: string): { ok: boolean; error: string | null } | undefined {
    return this.results.get(commandId);
  }

  remember(commandId: string, result: { ok: boolean; error: string | null }): void {
    this.results.delete(commandId);
    this.results.set(commandId, result);
    // Maps iterate in insertion order: the first key is the oldest.
    while (this.results.size > this.capacity) {
      const oldest = this.results.keys().next();
      if (oldest.done === true) break;
      this.results.delete(oldest.value);
    }
  }
}

/**
 * Runs `fn` as housekeeping on `key`'s queue of `queue` and resolves when it is done, or at once
 * when the resource has work queued (housekeeping is skipped then). An error `fn` throws goes to
 * the queue's error handler (a bug), never to the caller.
 */
export function housekeep(queue: KeyedQueue, key: string, fn: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const outcome = queue.enqueue(key, {
      kind: 'housekeeping',
      run: async () => {
        try {
          await fn();
        } finally {
          resolve();
        }
      },
    });
    if (outcome === 'skipped' || outcome === 'full') resolve();
  });
}

/**
 * A latch for bugs found off the main path (in a bus handler's work): the agent's main promise
 * rejects with the first one, so the process fails loudly instead of limping on.
 */
export class Fatal {
  private fail: (error: unknown) => void = () => undefined;
  readonly promise: Promise<never>;

  constructor() {
    this.promise = new Promise<never>((_resolve, reject) => {
      this.fail = reject;
    });
    // The rejection is observed through `race`; this keeps an unobserved one from being reported.
    this.promise.catch(() => undefined);
  }

  raise(error: unknown): void {
    this.fail(error);
  }
}

/** Options of a service's life cycle. */
export interface LifeOptions {
  /** Period of the service's tick, in ms (> 0). */
  readonly intervalMs: number;
  /** First delay before re-trying a failed subscribe, in ms (> 0); doubles up to the interval. */
  readonly subscribeRetryMs: number;
}

/** What a service's life cycle runs: a handler subscribed to a channel, until a signal aborts. */
export interface ServiceLife {
  readonly runtime: Runtime;
  readonly bus: Bus;
  readonly channel: string;
  readonly handler: BusHandler;
  /** Raised by a bug found in the handler's work; ends the life with that error. */
  readonly fatal: Fatal;
  readonly signal?: AbortSignal | undefined;
}

/**
 * Runs a bus-driven service (an agent, the background): subscribes `handler` to `channel`,
 * retrying with back-off while the bus is unavailable, then runs `tick` at once and every
 * `intervalMs` until `signal` aborts. `tick` must not throw except for bugs. Rejects if `fatal` is
 * raised (a bug found in the handler's work); resolves after unsubscribing once stopped.
 */
export async function runServiceLife(
  deps: ServiceLife,
  options: LifeOptions,
  tick: () => Promise<void>,
): Promise<void> {
  assert(options.intervalMs > 0, 'intervalMs must be > 0');
  assert(options.subscribeRetryMs > 0, 'subscribeRetryMs must be > 0');
  return Promise.race([life(deps, options, tick), deps.fatal.promise]);
}

async function life(
  deps: ServiceLife,
  options: LifeOptions,
  tick: () => Promise<void>,
): Promise<void> {
  const { runtime, bus, channel, handler, signal } = deps;
  const stopped = (): boolean => signal?.aborted === true;
  let subscription: Subscription | null = null;
  let retryMs = options.subscribeRetryMs;
  while (subscription === null && !stopped()) {
    try {
      subscription = await bus.subscribe(channel, handler);
    } catch (error) {
      runtime.log.warn('service.subscribe-failed', { channel, error: describe(error), retryMs });
      await runtime.clock.sleep(retryMs);
      retryMs = Math.min(retryMs * 2, options.intervalMs);
    }
  }
  while (!stopped()) {
    await tick();
    if (stopped()) break;
    await runtime.clock.sleep(options.intervalMs);
  }
  if (subscription !== null) {
    try {
      await subscription.unsubscribe();
    } catch {
      // Stopping anyway; the connection is closed by whoever owns the bus.
    }
  }
}

/** Tunables every bus-driven service has (agents and the background). */
export interface ServiceOptions {
  /** Longest wait for one port or store call before it counts as failed (`timeout`), ms. Default 30 000. */
  readonly operationTimeoutMs: number;
  /** First delay before re-trying a failed bus subscribe, ms (doubles). Default 500. */
  readonly subscribeRetryMs: number;
  /**
   * Most resources with work queued at once; further work is dropped (the main loop re-sends
   * commands, agents report again). Default 10 000.
   */
  readonly queueResourcesMax: number;
}

/** Defaults of {@link ServiceOptions}. */
export const SERVICE_DEFAULTS: ServiceOptions = {
  operationTimeoutMs: 30_000,
  subscribeRetryMs: 500,
  queueResourcesMax: 10_000,
};

/** What every bus-driven service needs. */
export interface ServiceDeps<Options> {
  readonly runtime: Runtime;
  readonly bus: Bus;
  /** Agents only read it (fences, rows to tell orphans); the background appends to it. */
  readonly store: EventStore;
  readonly options?: Partial<Options>;
  /** Stops the service when aborted (tests, graceful shutdown). Without it the service runs forever. */
  readonly signal?: AbortSignal;
}

/**
 * The skeleton of a bus-driven service: its options over the defaults, the per-resource work queue
 * whose bugs raise the fatal latch, bounded port and store calls, and the life cycle.
 */
export class Service<Options extends ServiceOptions> {
  readonly options: Options;
  readonly fatal = new Fatal();
  readonly queue: KeyedQueue;

  constructor(
    protected readonly deps: ServiceDeps<Options>,
    defaults: Options,
  ) {
    this.options = { ...defaults, ...deps.options };
    this.queue = new KeyedQueue({
      resourcesMax: this.options.queueResourcesMax,
      onError: (error) => this.fatal.raise(error),
    });
  }

  /** `promise` bounded by `operationTimeoutMs`: a {@link TimeoutError} names `operation`. */
  bounded<T>(promise: Promise<T>, operation: string): Promise<T> {
    return withTimeout(
      this.deps.runtime.clock,
      promise,
      this.options.operationTimeoutMs,
      operation,
    );
  }

  /** The store's row of `stream`, or null; bounded. */
  projection(stream: string): Promise<Projection | null> {
    return this.bounded(this.deps.store.get(stream), 'store.get');
  }

  /** The store's rows of `type` on `host` (placed or last seen there); bounded. */
  rowsOn(type: string, host: string): Promise<readonly Projection[]> {
    return this.bounded(this.deps.store.list({ type, host }), 'store.list');
  }

  /** Runs `handler` on `channel` and `tick` every `intervalMs` (see {@link runServiceLife}). */
  run(
    channel: string,
    handler: BusHandler,
    intervalMs: number,
    tick: () => Promise<void>,
  ): Promise<void> {
    const { runtime, bus, signal } = this.deps;
    return runServiceLife(
      { runtime, bus, channel, handler, fatal: this.fatal, signal },
      { intervalMs, subscribeRetryMs: this.options.subscribeRetryMs },
      tick,
    );
  }
}
