/**
 * Runs the process to quiescence between two simulation steps.
 *
 * In-process libraries the simulator hosts resolve their work on Node's own queues: ioredis-mock
 * delivers with `process.nextTick`, pg-mem resolves queries with `setImmediate`, and every `await`
 * is a microtask. A step is complete only when all of that has settled; otherwise its tail would
 * run inside the next step, after the virtual clock moved.
 *
 * This is the one module of src/sim allowed to touch `setImmediate` and `process` (see
 * eslint.config.js): it observes Node's queues and never reads time or entropy, so it adds no
 * nondeterminism. The order of nextTicks, microtasks and immediates is FIFO and fully determined by
 * the program, so draining them is deterministic too.
 */
import { AssertionError } from '../lib/assert.ts';

/** Upper bound on macrotask rounds per step: an endless `setImmediate` loop is a bug, not a workload. */
export const QUIESCE_ROUNDS_MAX = 100_000;

/**
 * Resolves once no microtask, nextTick or immediate queued so far (or queued by those) is pending.
 * Inside an immediate callback, every earlier microtask and nextTick has already run; if no other
 * immediate is pending at that moment, nothing else can run before the caller resumes.
 */
export function quiesce(): Promise<void> {
  return new Promise((resolve, reject) => {
    let rounds = 0;
    const check = (): void => {
      rounds++;
      if (!hasPendingImmediate()) {
        resolve();
      } else if (rounds >= QUIESCE_ROUNDS_MAX) {
        reject(
          new AssertionError(
            `no quiescence after ${rounds} macrotask rounds: an endless setImmediate loop`,
          ),
        );
      } else {
        setImmediate(check);
      }
    };
    setImmediate(check);
  });
}

function hasPendingImmediate(): boolean {
  // The running immediate is not listed; any other entry means more work is queued.
  for (const resource of process.getActiveResourcesInfo())
    if (resource === 'Immediate') return true;
  return false;
}
