/**
 * Goal: `LIKE` matching agrees with its definition and stays cheap on hostile patterns.
 * Method: fast-check compares LikePattern with a regular expression built from the same pattern
 * (the definition: `%` any run, `_` one character, `\` escapes) on values drawn from a small
 * alphabet, so matches and near misses are both common; then counts the character comparisons on
 * patterns that make a backtracking matcher explode (many `%` and a value that almost matches) and
 * requires them within value length × pattern length.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { LikePattern } from '../../../src/lib/like.ts';

/** The definition, as a backtracking regex: right, and slow on hostile input. */
function reference(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    const literal = (x: string): string => x.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
    if (c === '\\' && i + 1 < pattern.length) source += literal(pattern[++i]!);
    else if (c === '%') source += '.*';
    else if (c === '_') source += '.';
    else source += literal(c);
  }
  return new RegExp(`^${source}$`, 's');
}

const alphabet = (chars: string[]) => fc.string({ unit: fc.constantFrom(...chars), maxLength: 12 });

describe('LikePattern', () => {
  test.prop(
    [
      alphabet(['a', 'b', '%', '_', '\\', '.', '\n']),
      alphabet(['a', 'b', '%', '_', '\\', '.', '\n']),
    ],
    {
      numRuns: 5000,
    },
  )('matches exactly what the definition matches', (pattern, value) => {
    expect(new LikePattern(pattern).test(value)).toBe(reference(pattern).test(value));
  });

  it('matches the examples of the API docs', () => {
    expect(new LikePattern('vol-_').test('vol-1')).toBe(true);
    expect(new LikePattern('vol-_').test('vol-10')).toBe(false);
    expect(new LikePattern('%-9').test('vol-9')).toBe(true);
    expect(new LikePattern('100\\%').test('100%')).toBe(true);
    expect(new LikePattern('100\\%').test('1000')).toBe(false);
    expect(new LikePattern('a\\').test('a\\')).toBe(true);
    expect(new LikePattern('').test('')).toBe(true);
    expect(new LikePattern('%').test('')).toBe(true);
  });

  test.prop(
    [
      fc.integer({ min: 1, max: 60 }),
      fc.integer({ min: 1, max: 1024 }),
      fc.constantFrom('%a', '%_', '%ab', '%a_', '%%'),
    ],
    { numRuns: 200 },
  )('costs at most value length × pattern length comparisons', (repeats, length, unit) => {
    // `%a%a%a…%a!` against `aaaa…a`: the classic exponential case for a backtracking matcher.
    const pattern = `${unit.repeat(repeats)}!`;
    const value = 'a'.repeat(length);
    const before = LikePattern.comparisons;
    expect(new LikePattern(pattern).test(value)).toBe(false);
    expect(LikePattern.comparisons - before).toBeLessThanOrEqual((length + 1) * pattern.length);
  });

  it('answers the pattern that stalled the API at once', () => {
    // `%%%%%%%%%%%%!` made the regex take 32 s on a 67-character name; here it is a few passes.
    const before = LikePattern.comparisons;
    expect(new LikePattern('%'.repeat(64) + '!').test('x'.repeat(67))).toBe(false);
    expect(LikePattern.comparisons - before).toBeLessThanOrEqual(67 * 65);
  });
});
