// Test support: drive a Simulation until one promise settles, failing fast on a crash verdict, a
// livelock, an idle world or a run past the horizon. Shared by the contract runs on simulated ports.
import { quiesce } from '../../src/sim/quiesce.ts';
import type { Simulation } from '../../src/sim/simulation.ts';

/** Most events one settle may run: a livelock (events at one instant forever) fails instead of hanging. */
const SETTLE_STEPS_MAX = 200_000;

/** Records errors the simulation would turn into a crash verdict, so a test fails on them. */
export function trackFailures(sim: Simulation): unknown[] {
  const failures: unknown[] = [];
  const fail = sim.fail.bind(sim);
  sim.fail = (error: unknown, where: string): void => {
    failures.push(error);
    fail(error, where);
  };
  return failures;
}

/** Steps the scheduler until `promise` settles, at most `horizonMs` of virtual time past now. */
export async function settleIn<T>(
  sim: Simulation,
  failures: unknown[],
  promise: Promise<T>,
  horizonMs: number,
): Promise<T> {
  let done = false;
  const markDone = (): void => {
    done = true;
  };
  promise.then(markDone, markDone);
  await quiesce();
  const deadline = sim.scheduler.now + horizonMs;
  for (let steps = 0; !done; steps++) {
    if (steps >= SETTLE_STEPS_MAX) throw new Error(`not settled within ${SETTLE_STEPS_MAX} events`);
    if (failures.length > 0) throw failures[0];
    const next = sim.scheduler.peekTime();
    if (next === undefined) throw new Error('the simulation went idle before the promise settled');
    if (next > deadline) throw new Error(`not settled within ${horizonMs} virtual ms`);
    await sim.scheduler.step();
  }
  if (failures.length > 0) throw failures[0];
  return promise;
}
