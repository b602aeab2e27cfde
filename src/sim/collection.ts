// A collection of resources kept in creation order: O(1) lookup by id, and
// pages that walk from a marker without copying the whole collection (the
// benchmarks list 10,000 volumes in pages of 500).

export interface Stored {
  id: string;
  /** Monotonic creation number: the order Cinder's default sort (created_at desc) yields. */
  seq: number;
}

export class Collection<T extends Stored> {
  private readonly byId = new Map<string, T>();
  /** Ascending by seq; removal splices (cheap at the sizes we serve). */
  private readonly ordered: T[] = [];

  get size(): number {
    return this.byId.size;
  }

  get(id: string): T | undefined {
    return this.byId.get(id);
  }

  add(item: T): void {
    this.byId.set(item.id, item);
    this.ordered.push(item); // seq only grows, so the array stays sorted
  }

  remove(id: string): T | undefined {
    const item = this.byId.get(id);
    if (!item) return undefined;
    this.byId.delete(id);
    const i = this.indexOfSeq(item.seq);
    if (i >= 0) this.ordered.splice(i, 1);
    return item;
  }

  values(): IterableIterator<T> {
    return this.byId.values();
  }

  /**
   * Items in creation order, newest first when `descending`, starting after
   * the item `afterId` (exclusive). The caller has checked that afterId exists.
   */
  *walk(descending: boolean, afterId?: string): Generator<T> {
    let start = descending ? this.ordered.length - 1 : 0;
    if (afterId !== undefined) {
      const marker = this.byId.get(afterId);
      if (marker) {
        const i = this.indexOfSeq(marker.seq);
        start = descending ? i - 1 : i + 1;
      }
    }
    if (descending) {
      for (let i = start; i >= 0; i--) yield this.ordered[i];
    } else {
      for (let i = start; i < this.ordered.length; i++) yield this.ordered[i];
    }
  }

  private indexOfSeq(seq: number): number {
    let lo = 0;
    let hi = this.ordered.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.ordered[mid].seq;
      if (s === seq) return mid;
      if (s < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}
