/**
 * Database faults: a decorator over one process's EventStore handle. While the fault phase is
 * active an append may abort (a serialization failure: retryable, nothing written), any operation
 * may lose its connection (the caller gets `store.unavailable`; an append was committed before the
 * drop half of the time — the caller cannot tell which, exactly as with a real connection reset
 * after COMMIT was sent), and queries may be slow. Independently of the phase, a handle whose link
 * is cut (an isolated host) fails every operation with `store.unavailable`.
 */
import { assert, assertProbability } from '../lib/assert.ts';
import type { Prng } from '../lib/prng.ts';
import { PortError, UnavailableError } from '../ports/errors.ts';
import type { EventStore } from '../ports/event-store.ts';
import type { Clock } from '../ports/runtime.ts';
import { flip, type DatabaseFaults, type FaultPhase, type RecordFault } from './plan.ts';

/** What a database-fault decorator needs besides the handle it wraps. */
export interface StoreFaultContext {
  /** Per-operation faults while the phase is active; undefined: none. */
  readonly options: DatabaseFaults | undefined;
  readonly phase: FaultPhase;
  readonly random: Prng;
  /** The caller's clock: waits end (or never end) with the caller's incarnation. */
  readonly clock: Clock;
  readonly record: RecordFault;
  /** The caller, for the trace (an incarnation label). */
  readonly who: string;
  /** True while the caller's link to the database is cut. Default: never. */
  readonly isCut?: () => boolean;
}

/** The code of an aborted transaction (PostgreSQL's serialization_failure, 40001). */
export const STORE_ABORTED = 'store.aborted';

/** Latency of a failed round trip, ms. */
const FAILED_MS = 0.5;

/** Asserts that the options are usable. */
export function assertDatabaseFaults(options: DatabaseFaults): void {
  assertProbability(options.abortProbability, 'abortProbability');
  assertProbability(options.connectionLossProbability, 'connectionLossProbability');
  assertProbability(options.slowProbability, 'slowProbability');
  assert(options.slowMsMax >= 0, 'slowMsMax must be >= 0');
}

/** An EventStore handle that fails as `context` says. */
export function faultyStore(inner: EventStore, context: StoreFaultContext): EventStore {
  if (context.options !== undefined) assertDatabaseFaults(context.options);
  const { random, clock, record, who } = context;

  async function run<T>(op: string, call: () => Promise<T>): Promise<T> {
    if (context.isCut?.() === true) {
      record({ kind: 'fault.db', fault: 'unreachable', op, who });
      await clock.sleep(FAILED_MS);
      throw new UnavailableError('store', `${op}: the database is unreachable`);
    }
    const options = context.options;
    if (options === undefined || !context.phase.active) return call();
    const abort = flip(random, options.abortProbability);
    const lost = flip(random, options.connectionLossProbability);
    const applied = flip(random, 0.5);
    const slow = flip(random, options.slowProbability);
    const slowMs = Math.round(random.float() * options.slowMsMax * 1000) / 1000;
    if (slow) {
      record({ kind: 'fault.db', fault: 'slow', op, who, delayMs: slowMs });
      await clock.sleep(slowMs);
    }
    if (abort && op === 'append') {
      record({ kind: 'fault.db', fault: 'abort', op, who });
      await clock.sleep(FAILED_MS);
      throw new PortError(STORE_ABORTED, `${op}: transaction aborted (serialization failure)`, {
        retryable: true,
      });
    }
    if (!lost) return call();
    if (applied) {
      record({ kind: 'fault.db', fault: 'connection-lost-after', op, who });
      // The operation completes at the database; only the reply is lost.
      await call().catch(() => undefined);
    } else {
      record({ kind: 'fault.db', fault: 'connection-lost-before', op, who });
      await clock.sleep(FAILED_MS);
    }
    throw new UnavailableError('store', `${op}: connection to the database lost`);
  }

  return {
    append: (batch) => run('append', () => inner.append(batch)),
    readStream: (stream, fromVersion) => run('read', () => inner.readStream(stream, fromVersion)),
    readAll: (after, limit) => run('read', () => inner.readAll(after, limit)),
    get: (stream) => run('get', () => inner.get(stream)),
    list: (query) => run('list', () => inner.list(query)),
    fenceOf: (resource) => run('fence', () => inner.fenceOf(resource)),
    close: () => inner.close(),
  };
}
