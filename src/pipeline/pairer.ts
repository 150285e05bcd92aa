/**
 * Pairing, once for every protocol: requests and responses become exchanges, and exchanges become records.
 * Decoders decode; sessions tell the pairer what each message is; the pairer owns when a record leaves.
 *
 * - `ordered` (HTTP/1): answers come in request order; records leave in that order.
 * - keyed (HTTP/2 by stream id, Dubbo by request id, plugins by their key): answers in any order.
 *
 * One policy for all:
 * - An exchange leaves when both its messages are whole (`reqDone && resDone`), or at once via `emitNow`.
 * - Timeout: `expire(before)` turns exchanges that began before `before` and whose response has not begun
 *   into `timeout` records. Their late answer is absorbed, never reported as a second exchange: ordered, the
 *   slot stays in the queue until its answer has gone by; keyed, the key is remembered (bounded).
 * - `close(time, reason)`: every exchange still open leaves now, with `closedAt` set and `reason` (upstream
 *   unreachable, connection reset) as its `failure`; the builder decides what that means for its protocol.
 * - A second request under a key still open leaves the first as it stands (nothing is silently replaced).
 */

export interface Exchange<Q, A, D> {
  /** The pairing key ('' when ordered). */
  readonly key: string;
  start: number;
  req: Q | null;
  res: A | null;
  reqDone: boolean;
  resDone: boolean;
  /** What could not be decoded: the record is a `parse_error` saying this. */
  error: string | null;
  /** Why no answer can come (given to `close`): the upstream was unreachable, the connection reset. */
  failure: string | null;
  /** Time the connection closed with this exchange still open; 0 when it left normally. */
  closedAt: number;
  /** A timeout record was emitted; only the late answer is still awaited, to be absorbed. */
  expired: boolean;
  /** The protocol's own per-exchange state. */
  readonly data: D;
}

export interface PairerOptions<Q, A, D, R> {
  ordered: boolean;
  /** Fresh protocol state for a new exchange. */
  data: () => D;
  /** The record of an exchange (a pure function of it). */
  build: (x: Exchange<Q, A, D>) => R;
  emit: (record: R) => void;
}

/** Keys of expired exchanges remembered so a late answer is absorbed, not reported as an orphan. */
const LATE_MEMORY = 10_000;

export class Pairer<Q, A, D, R> {
  private readonly queue: Exchange<Q, A, D>[] = [];
  private readonly byKey = new Map<string, Exchange<Q, A, D>>();
  private readonly late = new Set<string>();

  constructor(private readonly opts: PairerOptions<Q, A, D, R>) {}

  /** A request began (or a response with no request seen, `req` null). */
  open(start: number, req: Q | null, key = ''): Exchange<Q, A, D> {
    const x: Exchange<Q, A, D> = {
      key, start, req, res: null, reqDone: false, resDone: false, error: null, failure: null, closedAt: 0, expired: false,
      data: this.opts.data(),
    };
    if (this.opts.ordered) this.queue.push(x);
    else {
      const prev = this.byKey.get(key);
      if (prev) { this.byKey.delete(key); this.opts.emit(this.opts.build(prev)); }
      this.byKey.set(key, x);
      this.late.delete(key);
    }
    return x;
  }

  /** Keyed: the open exchange under `key`. */
  get(key: string): Exchange<Q, A, D> | undefined {
    return this.byKey.get(key);
  }

  /** Ordered: the first exchange in the queue that `match` accepts (timed-out slots included). */
  first(match: (x: Exchange<Q, A, D>) => boolean): Exchange<Q, A, D> | undefined {
    return this.queue.find(match);
  }

  /** Ordered: the newest exchange. */
  last(): Exchange<Q, A, D> | undefined {
    return this.queue[this.queue.length - 1];
  }

  /** Keyed: whether `key` timed out and this is its late answer (absorbed once). */
  absorbLate(key: string): boolean {
    return this.late.delete(key);
  }

  /** Flags changed: let out whatever is complete. */
  settle(x?: Exchange<Q, A, D>): void {
    if (!this.opts.ordered) {
      if (x && x.reqDone && x.resDone && this.byKey.get(x.key) === x) { this.byKey.delete(x.key); this.opts.emit(this.opts.build(x)); }
      return;
    }
    while (this.queue.length > 0) {
      const h = this.queue[0];
      if (h.expired && h.resDone) { this.queue.shift(); continue; } // the late answer has gone by
      if (!(h.reqDone && h.resDone) || h.expired) return;
      this.queue.shift();
      this.opts.emit(this.opts.build(h));
    }
  }

  /** Keyed: the exchange leaves now, as it stands (a reset stream, a decode error). */
  emitNow(x: Exchange<Q, A, D>): void {
    if (this.byKey.get(x.key) === x) this.byKey.delete(x.key);
    this.opts.emit(this.opts.build(x));
  }

  /** Every open exchange, oldest first (keyed: in arrival order). */
  pending(): Exchange<Q, A, D>[] {
    return this.opts.ordered ? this.queue.filter((x) => !x.expired) : [...this.byKey.values()];
  }

  expire(before: number): void {
    if (this.opts.ordered) {
      for (const x of this.queue) {
        if (x.start >= before) break;
        if (x.res === null && !x.expired && x.error === null) {
          this.opts.emit(this.opts.build(x));
          x.expired = true;
        }
      }
      this.settle();
      return;
    }
    for (const [key, x] of this.byKey) {
      if (x.start >= before || x.res !== null || x.error !== null) continue;
      this.byKey.delete(key);
      this.opts.emit(this.opts.build(x));
      this.late.add(key);
      if (this.late.size > LATE_MEMORY) this.late.delete(this.late.values().next().value!);
    }
  }

  close(time: number, reason?: string): void {
    const open = this.opts.ordered ? this.queue.splice(0) : [...this.byKey.values()];
    this.byKey.clear();
    for (const x of open) {
      if (x.expired) continue;
      x.closedAt = time;
      if (reason) x.failure = reason;
      this.opts.emit(this.opts.build(x));
    }
  }

  /** startTime of the oldest exchange not yet emitted, or Infinity. */
  oldestPending(): number {
    let t = Infinity;
    if (this.opts.ordered) {
      for (const x of this.queue) if (!x.expired) return x.start;
      return t;
    }
    for (const x of this.byKey.values()) if (x.start < t) t = x.start;
    return t;
  }
}
