/**
 * A binary min-heap with a caller-supplied comparator. The scheduler keeps its event queue here; the
 * comparator must define a total order (return 0 only for equal keys), or equal keys would come out
 * in an order that depends on the heap's history. With a total order the items come out in the
 * same order whatever the heap's history, so {@link MinHeap.retain} (which rebuilds the heap) never
 * changes what comes out next.
 */
export class MinHeap<T> {
  private items: T[] = [];

  constructor(private readonly compare: (a: T, b: T) => number) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    // Sift up with a hole: parents move down until the item's place is found, then it goes in.
    let i = items.length;
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = items[parent] as T;
      if (this.compare(item, above) >= 0) break;
      items[i] = above;
      i = parent;
    }
    items[i] = item;
  }

  pop(): T | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0] as T;
    const last = items.pop() as T;
    if (items.length > 0) this.siftDown(last, 0);
    return top;
  }

  /**
   * Keeps only the items `keep` accepts and restores the heap order in O(n) (Floyd's bottom-up
   * construction). For dropping items that were marked dead in place — cancelled events — before
   * they pile up.
   */
  retain(keep: (item: T) => boolean): void {
    this.items = this.items.filter(keep);
    for (let i = (this.items.length >> 1) - 1; i >= 0; i--) this.siftDown(this.items[i] as T, i);
  }

  /** Puts `item` at `i` or below, moving smaller children up into the hole. */
  private siftDown(item: T, i: number): void {
    const items = this.items;
    const n = items.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let child = l;
      let smallest = items[l] as T;
      if (r < n && this.compare(items[r] as T, smallest) < 0) {
        child = r;
        smallest = items[r] as T;
      }
      if (this.compare(smallest, item) >= 0) break;
      items[i] = smallest;
      i = child;
    }
    items[i] = item;
  }
}
