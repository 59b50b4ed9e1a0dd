/**
 * Runs the process to quiescence between two simulation steps.
 *
 * In-process libraries the simulator hosts resolve their work on Node's own queues: the in-memory
 * Redis server (src/adapters/memory-pubsub.ts) pushes messages with `process.nextTick`, pg-mem
 * resolves queries with `setImmediate`, and every `await` is a microtask. A step is complete only
 * when all of that has settled; otherwise its tail would run inside the next step, after the
 * virtual clock moved.
 *
 * Node offers no way to ask whether its queues are empty, so this module counts what it cannot see:
 * on first use it wraps `process.nextTick`, `setImmediate` and `clearImmediate` so that every tick
 * and immediate queued through them is counted while pending. Then a quiescence wait is, in the
 * common case, one tick of its own (a *probe*), queued from inside a microtask:
 * - Node drains the whole microtask queue before it runs any tick queued from a microtask, so the
 *   probe runs after every microtask queued so far, and every microtask those queue in turn;
 * - ticks queued before the probe run before it, and may queue microtasks that run after it: so if
 *   any counted tick ran between queueing the probe and running it, or any is still pending, the
 *   probe tries again (queued from a microtask once more);
 * - a probe that finds no tick run since it was queued, none pending and no immediate pending has
 *   proved the queues empty: the wait resolves, and its continuation is the only work left.
 * Only when an immediate is pending (pg-mem's query results, say) does the wait fall back to
 * macrotask rounds: an immediate of its own, repeated until no counted immediate is pending (each
 * immediate's ticks and microtasks run right after it), then a probe as above. That costs a turn
 * of the event loop, so the cheap path runs only where nothing but promises and ticks is at work.
 *
 * A simulation that never needs an immediate would never let the event loop turn, starving
 * signals, timers and I/O of the host process (a test runner's heartbeat, Ctrl-C): every
 * {@link YIELD_EVERY_WAITS} waits, a wait takes the macrotask path anyway. That adds no work to the
 * simulation and changes no order within it: by then its own queues are empty.
 *
 * This is the one module of src/sim allowed to touch `setImmediate` and `process` (see
 * eslint.config.js): it observes Node's queues and never reads time or entropy, so it adds no
 * nondeterminism. The order of nextTicks, microtasks and immediates is FIFO and fully determined by
 * the program, and the wrappers keep it: they count, and call through.
 */
import { AssertionError } from '../lib/assert.ts';

/** Upper bound on macrotask rounds per step: an endless `setImmediate` loop is a bug, not a workload. */
export const QUIESCE_ROUNDS_MAX = 100_000;

/** Upper bound on probes per wait: an endless `nextTick` loop is a bug too. */
export const QUIESCE_PROBES_MAX = 1_000_000;

/** Every this many waits, one takes a macrotask round so the host's event loop can turn. */
export const YIELD_EVERY_WAITS = 1_024;

const nextTick = process.nextTick.bind(process);
const setImmediateOriginal = setImmediate;
const clearImmediateOriginal = clearImmediate;

/**
 * Microtasks are queued as reactions to this settled promise: the same queue as queueMicrotask's,
 * without the async resource and bound function Node's queueMicrotask makes for each one.
 */
const RESOLVED = Promise.resolve();

/** Counted ticks queued and not yet run. */
let pendingTicks = 0;
/** Counted ticks run so far. */
let ticksRun = 0;
/** Counted immediates queued and neither run nor cleared. */
const pendingImmediates = new Set<NodeJS.Immediate>();
let installed = false;
let waits = 0;

/**
 * Replaces `process.nextTick`, `setImmediate` and `clearImmediate` with counting wrappers.
 * Idempotent. Each becomes an accessor whose getter always answers the wrapper and whose setter
 * replaces what the wrapper calls through to (setting the wrapper itself restores the original):
 * code that swaps the globals for a while and puts back what it read (test runners guard their own
 * I/O so) can never uninstall the counting, and a tick queued in the meantime is still seen.
 */
function install(): void {
  if (installed) return;
  installed = true;
  let tickThrough = nextTick;
  const countedNextTick = function nextTick(
    callback: (...args: unknown[]) => void,
    ...args: unknown[]
  ): void {
    pendingTicks++;
    tickThrough(() => {
      pendingTicks--;
      ticksRun++;
      callback(...args);
    });
  };
  let immediateThrough = setImmediateOriginal;
  const countedSetImmediate = Object.assign(
    function setImmediate(
      callback: (...args: unknown[]) => void,
      ...args: unknown[]
    ): NodeJS.Immediate {
      const immediate = immediateThrough(() => {
        pendingImmediates.delete(immediate);
        callback(...args);
      });
      pendingImmediates.add(immediate);
      return immediate;
    },
    { __promisify__: setImmediateOriginal.__promisify__ },
  );
  let clearThrough = clearImmediateOriginal;
  const countedClearImmediate = function clearImmediate(
    immediate: NodeJS.Immediate | string | number | undefined,
  ): void {
    if (typeof immediate === 'object') pendingImmediates.delete(immediate);
    clearThrough(immediate as NodeJS.Immediate);
  };
  // Setting the wrapper back (what a getter answered) restores the original underneath.
  const sticky = <F>(
    target: object,
    name: string,
    wrapper: F,
    original: F,
    through: (f: F) => void,
  ): void => {
    Object.defineProperty(target, name, {
      configurable: true,
      enumerable: true,
      get: () => wrapper,
      set: (value: F) => through(value === wrapper ? original : value),
    });
  };
  sticky(process, 'nextTick', countedNextTick, nextTick, (f) => (tickThrough = f.bind(process)));
  sticky(
    globalThis,
    'setImmediate',
    countedSetImmediate,
    setImmediateOriginal as typeof countedSetImmediate,
    (f) => {
      immediateThrough = f as unknown as typeof setImmediate;
    },
  );
  sticky(
    globalThis,
    'clearImmediate',
    countedClearImmediate,
    clearImmediateOriginal,
    (f) => (clearThrough = f),
  );
}

/**
 * Waits for quiescence and then calls back, any number of times in sequence; one waiter serves a
 * whole run, so a wait allocates nothing. {@link Quiescence.wait} may be called from anywhere (a
 * macrotask, a tick, a microtask); the callback runs inside a tick or an immediate with Node's
 * queues empty, so whatever it starts is the next step's work.
 */
export class Quiescence {
  private callback: (() => void) | null = null;
  private probes = 0;
  private rounds = 0;
  private ticksAtQueue = 0;

  /** @param onError receives the assertion when a wait can never end (an endless tick or immediate loop) */
  constructor(private readonly onError: (error: AssertionError) => void) {
    install();
  }

  /** Calls `callback` once no microtask, tick or immediate queued so far (or by those) is pending. */
  wait(callback: () => void): void {
    if (this.callback !== null) throw new AssertionError('quiescence: a wait is already pending');
    this.callback = callback;
    this.probes = 0;
    this.rounds = 0;
    if (++waits % YIELD_EVERY_WAITS === 0) setImmediateOriginal(this.round);
    else void RESOLVED.then(this.queueProbe);
  }

  // Queued from a microtask, so the probe runs after the microtask queue has drained.
  private readonly queueProbe = (): void => {
    this.ticksAtQueue = ticksRun;
    nextTick(this.probe);
  };

  private readonly probe = (): void => {
    if (pendingImmediates.size > 0) {
      setImmediateOriginal(this.round);
    } else if (ticksRun === this.ticksAtQueue && pendingTicks === 0) {
      this.done();
    } else if (++this.probes >= QUIESCE_PROBES_MAX) {
      this.fail(`no quiescence after ${this.probes} probes: an endless nextTick loop`);
    } else {
      void RESOLVED.then(this.queueProbe);
    }
  };

  // Inside an immediate, every earlier immediate has run with its ticks and microtasks.
  private readonly round = (): void => {
    this.rounds++;
    if (pendingImmediates.size === 0) {
      void RESOLVED.then(this.queueProbe);
    } else if (this.rounds >= QUIESCE_ROUNDS_MAX) {
      this.fail(
        `no quiescence after ${this.rounds} macrotask rounds: an endless setImmediate loop`,
      );
    } else {
      setImmediateOriginal(this.round);
    }
  };

  private done(): void {
    const callback = this.callback as () => void;
    this.callback = null;
    callback();
  }

  private fail(message: string): void {
    this.callback = null;
    this.onError(new AssertionError(message));
  }
}

/**
 * Resolves once no microtask, nextTick or immediate queued so far (or queued by those) is pending.
 * Ticks and immediates queued before the wrappers were installed (the first wait of the process)
 * are not seen; nothing the simulator runs queues any before its first step.
 */
export function quiesce(): Promise<void> {
  return new Promise((resolve, reject) => new Quiescence(reject).wait(resolve));
}
