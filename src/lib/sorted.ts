/** Helpers for lists kept sorted by a string key. */

/**
 * Two lists sorted by `key` (code-unit order), with no key in both, as one sorted list: what a
 * list kept sorted costs to take in a batch of new entries, instead of an insertion (half the list
 * moved) per entry or a sort of the whole.
 */
export function mergeSorted<T>(a: readonly T[], b: readonly T[], key: (item: T) => string): T[] {
  const out = new Array<T>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length)
    out[k++] = key(a[i] as T) < key(b[j] as T) ? (a[i++] as T) : (b[j++] as T);
  while (i < a.length) out[k++] = a[i++] as T;
  while (j < b.length) out[k++] = b[j++] as T;
  return out;
}
