// Goal: the event queue's heap gives items out in comparator order whatever was pushed, popped and
// dropped before, and the scheduler's compaction of cancelled events never changes which event
// runs next or when.
// Method: random operation sequences against a sorted-array model (pushes, pops, and `retain`
// with random predicates); a scheduler run with thousands of cancelled timeouts, compared event by
// event with the order the events were due in.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MinHeap } from '../../../src/lib/heap.ts';
import { Scheduler } from '../../../src/sim/scheduler.ts';

type Op = { kind: 'push'; value: number } | { kind: 'pop' } | { kind: 'retain'; modulus: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.integer({ min: 0, max: 1000 }).map((value) => ({ kind: 'push', value }) as const),
  },
  { weight: 3, arbitrary: fc.constant({ kind: 'pop' } as const) },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 2, max: 5 })
      .map((modulus) => ({ kind: 'retain', modulus }) as const),
  },
);

describe('MinHeap', () => {
  it('pops in order, also after retain', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 300 }), (ops) => {
        // Unique keys (value, order pushed): a total order, as the heap requires.
        const heap = new MinHeap<[number, number]>((a, b) => a[0] - b[0] || a[1] - b[1]);
        let model: [number, number][] = [];
        ops.forEach((op, i) => {
          if (op.kind === 'push') {
            heap.push([op.value, i]);
            model.push([op.value, i]);
            model.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
          } else if (op.kind === 'pop') {
            expect(heap.pop()).toEqual(model.shift());
          } else {
            const keep = (item: [number, number]): boolean => item[0] % op.modulus !== 0;
            heap.retain(keep);
            model = model.filter(keep);
          }
          expect(heap.size).toBe(model.length);
          expect(heap.peek()).toEqual(model[0]);
        });
        const rest: [number, number][] = [];
        for (let item = heap.pop(); item !== undefined; item = heap.pop()) rest.push(item);
        expect(rest).toEqual(model);
      }),
    );
  });
});

describe('Scheduler compaction', () => {
  it('runs the live events in order when most queued events were cancelled', () => {
    const ran: number[] = [];
    const scheduler = new Scheduler(0);
    // 5,000 events at pseudo-random times; every event whose number is not a multiple of 7 is
    // cancelled (enough cancels to compact the queue several times) before anything runs.
    const due: { at: number; n: number }[] = [];
    let x = 12345;
    for (let n = 0; n < 5000; n++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      const at = x % 10_000;
      const handle = scheduler.schedule({ delayMs: at, label: 'test', run: () => ran.push(n) });
      if (n % 7 !== 0) handle.cancel();
      else due.push({ at, n });
    }
    expect(scheduler.queued).toBeLessThan(5000);
    while (scheduler.runNext());
    due.sort((a, b) => a.at - b.at || a.n - b.n);
    expect(ran).toEqual(due.map((d) => d.n));
  });
});
