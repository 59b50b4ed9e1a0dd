// Goal: the in-memory store keeps exactly what a JSON column would give back — the value after
// JSON.stringify and JSON.parse — whatever an event or row carries.
// Method: fast-check's anything (null prototypes, boxed values, dates, maps, sets, sparse arrays,
// -0, NaN, undefined members, "__proto__" keys) compared with the round trip, key order included;
// the cases a careless copy gets wrong, one by one.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toStoredJson } from '../../../src/adapters/memory-event-store.ts';

const roundTrip = (value: unknown): unknown => JSON.parse(JSON.stringify(value)) as unknown;

/** The value's JSON text, and every object's key order, which the text alone also shows. */
const shape = (value: unknown): string => JSON.stringify(value);

describe('toStoredJson', () => {
  it('gives what a JSON round trip gives', () => {
    fc.assert(
      fc.property(
        fc.object({
          values: [
            fc.anything({
              withNullPrototype: true,
              withBoxedValues: true,
              withDate: true,
              withMap: true,
              withSet: true,
              withSparseArray: true,
              withObjectString: true,
            }),
            fc.constantFrom(-0, NaN, Infinity, undefined, '__proto__'),
          ],
        }),
        (value) => {
          const expected = roundTrip(value);
          const actual = toStoredJson(value);
          expect(actual).toStrictEqual(expected);
          expect(shape(actual)).toBe(shape(expected));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('turns -0 into 0, drops undefined members and nulls undefined items, as JSON does', () => {
    const value = { a: -0, b: undefined, c: [undefined, 1, NaN], d: { e: new Date(0) } };
    expect(Object.is((toStoredJson(value) as { a: number }).a, 0)).toBe(true);
    expect(toStoredJson(value)).toStrictEqual({
      a: 0,
      c: [null, 1, null],
      d: { e: '1970-01-01T00:00:00.000Z' },
    });
  });

  it('keeps a "__proto__" key as an own member, as JSON.parse does', () => {
    const value = JSON.parse('{"__proto__": {"x": 1}, "y": 2}') as Record<string, unknown>;
    const stored = toStoredJson(value);
    expect(Object.keys(stored)).toEqual(['__proto__', 'y']);
    expect(Object.getPrototypeOf(stored)).toBe(Object.prototype);
  });

  it('refuses a cycle as JSON does', () => {
    const value: Record<string, unknown> = {};
    value['self'] = value;
    expect(() => toStoredJson(value)).toThrow(TypeError);
  });

  it('is a copy', () => {
    const value = { nested: { list: ['a'] } };
    const stored = toStoredJson(value);
    expect(stored).not.toBe(value);
    expect(stored.nested).not.toBe(value.nested);
    expect(stored.nested.list).not.toBe(value.nested.list);
  });
});
