/**
 * SQL `LIKE` matching without a regular expression: `%` matches any run of characters, `_` exactly
 * one, and `\` makes the next character literal (a trailing `\` is itself). Compiled once per
 * pattern, then matched against any number of values.
 *
 * A backtracking regex (`^.*a.*a.*…$`) takes time exponential in the number of `%` on a value that
 * almost matches, so one query string could stall a server. Here the pattern is split at its `%`
 * into segments of literals and `_`: the first segment must match at the start, the last at the
 * end, and each one between is found at its leftmost place after the previous one. Leftmost is
 * always right — a `%` absorbs whatever a later placement would skip — so nothing is ever
 * retried: matching costs at most (value length × pattern length) character comparisons, and
 * usually the value's length. Callers bound the pattern's length.
 */

/** One segment between two `%`: characters to match, `null` standing for `_` (any one). */
type Segment = readonly (string | null)[];

/** A compiled `LIKE` pattern. */
export class LikePattern {
  /** Segments between `%`s; `segments.length - 1` is the number of `%` runs. */
  private readonly segments: readonly Segment[];

  constructor(readonly pattern: string) {
    const segments: (string | null)[][] = [[]];
    for (let i = 0; i < pattern.length; i++) {
      const c = pattern[i] as string;
      const current = segments[segments.length - 1] as (string | null)[];
      if (c === '\\' && i + 1 < pattern.length) current.push(pattern[++i] as string);
      else if (c === '%') segments.push([]);
      else if (c === '_') current.push(null);
      else current.push(c);
    }
    this.segments = segments;
  }

  /** True when `value` matches the whole pattern. */
  test(value: string): boolean {
    const segments = this.segments;
    const first = segments[0] as Segment;
    if (segments.length === 1) return first.length === value.length && at(first, value, 0);
    const last = segments[segments.length - 1] as Segment;
    // The first segment is anchored at the start, the last at the end, and they must not overlap.
    if (first.length + last.length > value.length) return false;
    if (!at(first, value, 0) || !at(last, value, value.length - last.length)) return false;
    let from = first.length;
    const end = value.length - last.length;
    for (let k = 1; k < segments.length - 1; k++) {
      const segment = segments[k] as Segment;
      const found = find(segment, value, from, end);
      if (found < 0) return false;
      from = found + segment.length;
    }
    return true;
  }

  /** Character comparisons made by every pattern so far: a cost counter for tests. */
  static comparisons = 0;
}

/** True when `segment` matches `value` at `offset` (the caller checked the length). */
function at(segment: Segment, value: string, offset: number): boolean {
  for (let j = 0; j < segment.length; j++) {
    LikePattern.comparisons++;
    const c = segment[j];
    if (c !== null && c !== value[offset + j]) return false;
  }
  return true;
}

/** The leftmost offset in [from, end - segment.length] where `segment` matches, or -1. */
function find(segment: Segment, value: string, from: number, end: number): number {
  for (let offset = from; offset + segment.length <= end; offset++)
    if (at(segment, value, offset)) return offset;
  return -1;
}
