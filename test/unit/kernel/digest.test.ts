// Goal: the trace digest identifies a trace by its values: equal data digests equally whatever the
// key order (as canonical JSON serialises equally), different data digests differently — types,
// nesting and string boundaries included — and the kernel's step records, whose labels go in as
// dictionary codes, still tell apart traces whose labels differ in any order.
// Method: properties over random JSON values (shuffled keys; pairs of different values), a few
// cases that a careless encoding would confuse, and traces built entry by entry.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toCanonicalJson } from '../../../src/lib/canonical-json.ts';
import { Digest128 } from '../../../src/lib/digest.ts';
import { Trace } from '../../../src/sim/trace.ts';

const digestOf = (value: unknown): string => {
  const digest = new Digest128();
  digest.value(value);
  return digest.hex();
};

/** A copy of `value` with every object's keys in reverse order. */
function reversed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reversed);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value)
        .reverse()
        .map(([k, v]) => [k, reversed(v)]),
    );
  return value;
}

const jsonArb = fc.jsonValue({ maxDepth: 3 });

describe('Digest128', () => {
  it('digests equal data equally, whatever the key order', () => {
    fc.assert(
      fc.property(jsonArb, (value) => {
        expect(digestOf(reversed(value))).toBe(digestOf(value));
      }),
      { numRuns: 500 },
    );
  });

  it('digests different data differently', () => {
    fc.assert(
      fc.property(jsonArb, jsonArb, (a, b) => {
        fc.pre(toCanonicalJson(a) !== toCanonicalJson(b));
        expect(digestOf(a)).not.toBe(digestOf(b));
      }),
      { numRuns: 500 },
    );
  });

  it('tells apart what a careless encoding would confuse', () => {
    const cases: unknown[] = [
      1,
      '1',
      1.5,
      true,
      null,
      [],
      {},
      [[]],
      [1],
      { a: 1 },
      { a: [1] },
      ['ab', 'c'],
      ['a', 'bc'],
      { ab: 'c' },
      { a: 'bc' },
      2 ** 31,
      -(2 ** 31) - 1,
      'é',
      '\u00e9\u0000',
    ];
    const digests = cases.map(digestOf);
    expect(new Set(digests).size).toBe(cases.length);
    expect(digestOf(-0)).toBe(digestOf(0));
    expect(digestOf({ a: 1, b: undefined })).toBe(digestOf({ a: 1 }));
  });

  it('feeds four words at once exactly as one at a time, at any point of a block', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }), { maxLength: 7 }),
        fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }), { minLength: 4, maxLength: 4 }),
        (before, four) => {
          const one = new Digest128();
          const batched = new Digest128();
          for (const w of before) {
            one.word(w);
            batched.word(w);
          }
          for (const w of four) one.word(w);
          batched.words4(four[0]!, four[1]!, four[2]!, four[3]!);
          expect(batched.hex()).toBe(one.hex());
        },
      ),
    );
  });

  it('reads the digest without disturbing the stream', () => {
    const digest = new Digest128();
    digest.value({ a: 1 });
    const first = digest.hex();
    expect(digest.hex()).toBe(first);
    digest.value('more');
    expect(digest.hex()).not.toBe(first);
  });
});

describe('Trace', () => {
  const traceOf = (entries: readonly (readonly [string, string | undefined])[]): Trace => {
    const trace = new Trace({ keepEntries: true });
    entries.forEach(([ev, proc], index) => trace.appendStep(index * 1.5, ev, proc));
    return trace;
  };

  it('tells apart step traces whose labels differ, in whatever order they first appear', () => {
    // Both use codes 0, 1, 0: only the labels' definitions in the stream separate them.
    const ab = traceOf([
      ['a', undefined],
      ['b', undefined],
      ['a', undefined],
    ]);
    const ba = traceOf([
      ['b', undefined],
      ['a', undefined],
      ['b', undefined],
    ]);
    expect(ab.digest()).not.toBe(ba.digest());
    expect(traceOf([['a', 'p#1']]).digest()).not.toBe(traceOf([['a', undefined]]).digest());
    expect(traceOf([['a', 'p#1']]).digest()).not.toBe(traceOf([['p#1', 'a']]).digest());
  });

  it('digests the same entries the same way, and keeps them as canonical JSON lines', () => {
    const build = (): Trace => {
      const trace = traceOf([['timer', 'mainloop-1#1']]);
      trace.append(3, { kind: 'db.commit', events: ['vm-1/1/vm.created'] });
      return trace;
    };
    expect(build().digest()).toBe(build().digest());
    expect(build().entries().lines).toEqual([
      '{"ev":"timer","i":0,"kind":"step","proc":"mainloop-1#1","t":0}',
      '{"events":["vm-1/1/vm.created"],"i":1,"kind":"db.commit","t":3}',
    ]);
    const other = traceOf([['timer', 'mainloop-1#1']]);
    other.append(3, { kind: 'db.commit', events: ['vm-1/2/vm.created'] });
    expect(other.digest()).not.toBe(build().digest());
  });
});
