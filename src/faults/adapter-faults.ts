/**
 * Adapter faults: decorators over the Hypervisor and Storage port handles an agent uses. While the
 * fault phase is active each operation may fail at once (`unavailable`, no effect), hang and time
 * out (no effect), start late, or take effect while its reply is lost (the caller sees
 * `unavailable` although the domain was started or the dataset created) — what libvirt and the
 * `zfs` commands do under load, restarts and broken connections. Once healed, every call passes
 * straight through. Draws come from one PRNG fork shared by every handle, in the global step order.
 */
import { assertProbability, assert } from '../lib/assert.ts';
import type { Prng } from '../lib/prng.ts';
import { TimeoutError } from '../ports/errors.ts';
import { HypervisorError, type Hypervisor } from '../ports/hypervisor.ts';
import type { Clock } from '../ports/runtime.ts';
import { StorageError, type Storage } from '../ports/storage.ts';
import { flip, type AdapterFaults, type FaultPhase, type RecordFault } from './plan.ts';

/** What an adapter-fault decorator needs besides the handle it wraps. */
export interface AdapterFaultContext {
  readonly options: AdapterFaults;
  readonly phase: FaultPhase;
  readonly random: Prng;
  /** The caller's clock: waits end (or never end) with the caller's incarnation. */
  readonly clock: Clock;
  readonly record: RecordFault;
  /** The caller, for the trace (an incarnation label). */
  readonly who: string;
}

/** Asserts that the options are usable. */
export function assertAdapterFaults(options: AdapterFaults): void {
  assertProbability(options.failProbability, 'failProbability');
  assertProbability(options.timeoutProbability, 'timeoutProbability');
  assertProbability(options.slowProbability, 'slowProbability');
  assertProbability(options.lostReplyProbability, 'lostReplyProbability');
  assert(options.timeoutMs >= 0 && options.slowMsMax >= 0, 'timeoutMs and slowMsMax must be >= 0');
}

/** A Hypervisor whose operations fail as {@link AdapterFaults} says while the phase is active. */
export function faultyHypervisor(inner: Hypervisor, context: AdapterFaultContext): Hypervisor {
  const run = injector(context, 'hypervisor', HypervisorError);
  return {
    // Closing the handle is not an operation on the host: never faulted.
    close: () => inner.close(),
    capacity: () => run('capacity', '', () => inner.capacity()),
    listDomains: () => run('list', '', () => inner.listDomains()),
    getDomain: (name) => run('get', name, () => inner.getDomain(name)),
    define: (spec) => run('define', spec.name, () => inner.define(spec)),
    start: (name) => run('start', name, () => inner.start(name)),
    shutdown: (name) => run('shutdown', name, () => inner.shutdown(name)),
    destroy: (name) => run('destroy', name, () => inner.destroy(name)),
    undefine: (name) => run('undefine', name, () => inner.undefine(name)),
  };
}

/** A Storage whose operations fail as {@link AdapterFaults} says while the phase is active. */
export function faultyStorage(inner: Storage, context: AdapterFaultContext): Storage {
  const run = injector(context, 'storage', StorageError);
  return {
    // A disk path is computed, not asked of the node, and closing the handle is not an operation
    // on it: neither is faulted.
    diskPath: (volume) => inner.diskPath(volume),
    close: () => inner.close(),
    pool: () => run('pool', '', () => inner.pool()),
    list: () => run('list', '', () => inner.list()),
    get: (name) => run('get', name, () => inner.get(name)),
    createVolume: (name, size) => run('create', name, () => inner.createVolume(name, size)),
    resizeVolume: (name, size) => run('resize', name, () => inner.resizeVolume(name, size)),
    snapshot: (volume, snapshot) =>
      run('snapshot', `${volume}@${snapshot}`, () => inner.snapshot(volume, snapshot)),
    clone: (snapshot, target) => run('clone', target, () => inner.clone(snapshot, target)),
    rollback: (snapshot) => run('rollback', snapshot, () => inner.rollback(snapshot)),
    destroy: (name) => run('destroy', name, () => inner.destroy(name)),
  };
}

/** Latency of a refused call, ms: a broken connection fails fast. */
const REFUSED_MS = 0.5;

type Run = <T>(op: string, target: string, call: () => Promise<T>) => Promise<T>;

/** The port's error class ({@link HypervisorError}, {@link StorageError}): refusals are `unavailable`. */
type PortErrorClass = new (
  reason: 'unavailable',
  message: string,
  options: { retryable: boolean },
) => Error;

/** Runs a port's operations through the faults of `context`; checks its options first. */
function injector(
  context: AdapterFaultContext,
  port: 'hypervisor' | 'storage',
  ErrorClass: PortErrorClass,
): Run {
  assertAdapterFaults(context.options);
  const { options, random, clock, record, who } = context;
  const unavailable = (message: string): Error =>
    new ErrorClass('unavailable', message, { retryable: true });
  return async (op, target, call) => {
    if (!context.phase.active) return call();
    // Every draw on every call, so one probability does not shift the others' streams.
    const fail = flip(random, options.failProbability);
    const timeout = flip(random, options.timeoutProbability);
    const slow = flip(random, options.slowProbability);
    const slowMs = Math.round(random.float() * options.slowMsMax * 1000) / 1000;
    const lostReply = flip(random, options.lostReplyProbability);
    const where = { port, op, target, who };
    if (fail) {
      record({ kind: 'fault.adapter', fault: 'fail', ...where });
      await clock.sleep(REFUSED_MS);
      throw unavailable(`${port}.${op} ${target}: injected failure`);
    }
    if (timeout) {
      record({ kind: 'fault.adapter', fault: 'timeout', ...where, timeoutMs: options.timeoutMs });
      await clock.sleep(options.timeoutMs);
      throw new TimeoutError(`${port}.${op} ${target}`, options.timeoutMs);
    }
    if (slow) {
      record({ kind: 'fault.adapter', fault: 'slow', ...where, delayMs: slowMs });
      await clock.sleep(slowMs);
    }
    if (!lostReply) return call();
    record({ kind: 'fault.adapter', fault: 'lost-reply', ...where });
    // The operation runs to completion (or fails on its own); the caller learns nothing of it.
    await call().catch(() => undefined);
    throw unavailable(`${port}.${op} ${target}: connection reset before the reply`);
  };
}
