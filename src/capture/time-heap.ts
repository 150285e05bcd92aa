/** Min-heap by time, stable for equal times (push order): how a capture's records leave in startTime order. */
interface Entry<T> { t: number; n: number; item: T }

export class TimeHeap<T> {
  private items: Entry<T>[] = [];
  private seq = 0;

  get size(): number {
    return this.items.length;
  }

  push(t: number, item: T): void {
    const a = this.items;
    a.push({ t, n: this.seq++, item });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(a[i], a[p])) break;
      const x = a[i]; a[i] = a[p]; a[p] = x;
      i = p;
    }
  }

  /** Hands out, in order, every item whose time is at or before `t`. */
  drainBefore(t: number, out: (item: T) => void): void {
    while (this.items.length > 0 && this.items[0].t <= t) out(this.pop());
  }

  drainAll(out: (item: T) => void): void {
    while (this.items.length > 0) out(this.pop());
  }

  private pop(): T {
    const a = this.items;
    const top = a[0].item;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && less(a[l], a[m])) m = l;
        if (r < a.length && less(a[r], a[m])) m = r;
        if (m === i) break;
        const x = a[i]; a[i] = a[m]; a[m] = x;
        i = m;
      }
    }
    return top;
  }
}

function less<T>(x: Entry<T>, y: Entry<T>): boolean {
  return x.t < y.t || (x.t === y.t && x.n < y.n);
}
