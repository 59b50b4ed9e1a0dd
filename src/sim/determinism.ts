/**
 * The nondeterminism detector: run the same seed twice and compare traces. If the hashes differ,
 * the first divergent entry is reported with both versions, which usually names the culprit (a
 * wall-clock read, an unseeded random draw, iteration over an unordered structure).
 */

/** Where two traces first differ. */
export interface Divergence {
  /** 0-based index of the first differing entry. */
  readonly index: number;
  /** The entry in the first run, or undefined if that run ended earlier. */
  readonly first: string | undefined;
  /** The entry in the second run, or undefined if that run ended earlier. */
  readonly second: string | undefined;
}

/** The first index where two traces differ, or undefined if they are equal. */
export function findDivergence(
  first: readonly string[],
  second: readonly string[],
): Divergence | undefined {
  const length = Math.max(first.length, second.length);
  for (let index = 0; index < length; index++) {
    if (first[index] !== second[index])
      return { index, first: first[index], second: second[index] };
  }
  return undefined;
}

/** A trace line shortened for display. */
export function clip(line: string | undefined, max = 400): string {
  if (line === undefined) return '(the run had ended)';
  return line.length > max ? `${line.slice(0, max)}…` : line;
}
