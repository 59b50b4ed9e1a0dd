// Goal: the quiescence wait ends exactly when Node's queues are empty — never while a microtask,
// tick or immediate chain that a step set off is still running, from whatever context the wait
// starts — and its counting of ticks and immediates survives code that swaps the globals for a
// while and puts back what it read, as test runners do around their own I/O.
// Method: random programs of nested chains (microtasks, process.nextTick, setImmediate, in any mix
// and depth) are started, then one wait; every chain must have finished when the wait ends. The
// property runs with the wait started from a microtask, a tick and an immediate. A broken variant
// — a wait that trusts a single tick, as if ticks could not queue microtasks behind it — must fail
// the same property: the property has teeth.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Quiescence, quiesce } from '../../../src/sim/quiesce.ts';

type Hop = 'micro' | 'tick' | 'immediate';

/** Runs `hops` one after another, each queued by the one before; calls `done` at the end. */
function chain(hops: readonly Hop[], done: () => void): void {
  const [hop, ...rest] = hops;
  if (hop === undefined) {
    done();
    return;
  }
  const next = (): void => chain(rest, done);
  if (hop === 'micro') queueMicrotask(next);
  else if (hop === 'tick') process.nextTick(next);
  else setImmediate(next);
}

const hopArb = fc.constantFrom<Hop>('micro', 'tick', 'immediate');
const programArb = fc.array(fc.array(hopArb, { maxLength: 8 }), { minLength: 1, maxLength: 6 });

/** Starts the program's chains and a wait from `context`; resolves to the chains still running. */
function unfinishedAfterWait(
  program: readonly (readonly Hop[])[],
  context: Hop,
  wait: () => Promise<void>,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = (): void => {
      let running = program.length;
      for (const hops of program) chain(hops, () => running--);
      wait().then(() => resolve(running), reject);
    };
    if (context === 'micro') queueMicrotask(start);
    else if (context === 'tick') process.nextTick(start);
    else setImmediate(start);
  });
}

/** A wait that believes the queues are empty once one tick of its own has run. */
function naiveWait(): Promise<void> {
  return new Promise((resolve) => queueMicrotask(() => process.nextTick(resolve)));
}

describe('quiescence', () => {
  it('waits for every chain of microtasks, ticks and immediates, from any context', async () => {
    await quiesce(); // installs the counting wrappers
    await fc.assert(
      fc.asyncProperty(programArb, hopArb, async (program, context) => {
        expect(await unfinishedAfterWait(program, context, quiesce)).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('has teeth: a wait that trusts one tick leaves chains running', async () => {
    const outcome = await fc.check(
      fc.asyncProperty(programArb, hopArb, async (program, context) => {
        expect(await unfinishedAfterWait(program, context, naiveWait)).toBe(0);
      }),
      { numRuns: 300, seed: 1 },
    );
    expect(outcome.failed).toBe(true);
  });

  it('keeps counting when the globals are swapped and put back', async () => {
    await quiesce();
    const wrapped = process.nextTick;
    const wrappedImmediate = setImmediate;
    // A runner's guard: real functions in for a moment, then back what it read.
    const realTick = (callback: () => void): void => void Promise.resolve().then(callback);
    process.nextTick = realTick as typeof process.nextTick;
    globalThis.setImmediate = ((cb: () => void) =>
      setTimeout(cb, 0)) as unknown as typeof setImmediate;
    expect(process.nextTick).toBe(wrapped);
    process.nextTick = wrapped;
    globalThis.setImmediate = wrappedImmediate;
    expect(setImmediate).toBe(wrappedImmediate);
    expect(
      await unfinishedAfterWait([['tick', 'micro', 'immediate', 'tick']], 'micro', quiesce),
    ).toBe(0);
  });

  it('refuses a second wait while one is pending', () => {
    const waiter = new Quiescence(() => {});
    waiter.wait(() => {});
    expect(() => waiter.wait(() => {})).toThrow(/already pending/);
  });
});
