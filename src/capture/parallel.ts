/**
 * `flowtap read --threads N`: a capture decoded by N threads, with the output of one, byte for byte.
 *
 * This thread reads the file, parses packets, reassembles TCP and tells clients from servers (the same
 * FlowTable as in one thread: ~11% of a one-thread read of the bench's capture, measured with decoding
 * made a no-op). Each connection is decoded in one of N worker threads (read-worker.ts) by the same
 * Conversation, and its records come back serialised; decoding and JSON are the rest.
 *
 * The order is the one thread's: every op this thread hands out has a number, a record carries the number
 * of the op that made it, and each point where one thread would release records (a mark, sent to every
 * worker) releases the same ones here, once every worker has reported its oldest open exchange there.
 */
import { Worker } from 'node:worker_threads';
import type { Side } from '../pipeline/session.js';
import { builtScript } from '../worker-script.js';
import { FlowTable, type FlowBackend, type FlowConversation } from './flows.js';
import {
  CLOSE, END, EXPIRE, GAP, MARK, META, OPEN, SECRETS, STRIDE, WRITE,
  type LaneBatch, type LaneOpen, type LaneOptions, type LaneReply,
} from './lane-protocol.js';
import type { CaptureFileReader } from './pcap.js';
import { flowReader, type CaptureSummary } from './read.js';
import { TimeHeap } from './time-heap.js';

export type ParallelReadOptions = LaneOptions & {
  threads: number;
  /** As `FlowOptions`: the reading thread's flow table applies them (forced protocols, timeouts). */
  decode?: Record<number, string>;
  timeout?: number;
};

/**
 * A batch goes when its bytes or ops are full, and at the end of a `write` once it holds a quarter of
 * either (a caller writing small pieces does not make a message of each).
 */
const BATCH_BYTES = 1 << 20;
const BATCH_OPS = 1 << 13;
/** Batches a thread may have unanswered before `write`'s caller is asked to wait (`ready()`). */
const MAX_IN_FLIGHT = 3;
const OUT_BYTES = 1 << 18;

interface Line { text: Buffer; at: number; len: number }

/** A reply's records not yet admitted to the heap. */
interface Pending { meta: Float64Array; text: Buffer; i: number }

/** A side as ops carry it (the worker's SIDES[code]). */
const sideCode = (side: Side): number => (side === 'client' ? 0 : 1);

/** The numbers ops are given, in the order this thread makes them, across all lanes. */
interface OpClock { next: number }

/** One decoding thread: the batch being filled for it, and what it answered and was not yet released. */
class Lane {
  readonly worker: Worker;
  ops = new Float64Array(BATCH_OPS * STRIDE);
  count = 0;
  bytes = Buffer.allocUnsafeSlow(BATCH_BYTES);
  used = 0;
  extras: unknown[] = [];
  inFlight = 0;
  readonly pending: Pending[] = [];
  /** Oldest open exchange this thread reported at each mark not yet released, in mark order. */
  mins: number[] = [];
  stats: LaneReply['stats'] | null = null;

  constructor(private readonly clock: OpClock, options: LaneOptions, onReply: (lane: Lane, r: LaneReply) => void,
    onFail: (message: string) => void) {
    this.worker = new Worker(builtScript('read-worker.js'), { workerData: options });
    this.worker.on('message', (r: LaneReply) => onReply(this, r));
    this.worker.on('error', (e) => onFail(`decoding thread failed: ${e.message}`));
    // Terminated once its last reply is in; before that, an exit is a failure (out of memory, say).
    this.worker.on('exit', (code) => { if (!this.stats) onFail(`decoding thread exited (code ${code}) before the end of the capture`); });
  }

  op(code: number, id: number, side: number, a: number, b: number, time: number, extra?: unknown): void {
    if (this.count === BATCH_OPS) this.post(false);
    const o = this.ops;
    const i = this.count++ * STRIDE;
    o[i] = code; o[i + 1] = this.clock.next++; o[i + 2] = id; o[i + 3] = side; o[i + 4] = a; o[i + 5] = b; o[i + 6] = time;
    if (extra !== undefined) this.extras.push(extra);
  }

  /** The chunk is copied into the batch (the caller's bytes are not kept). */
  write(id: number, side: Side, chunk: Uint8Array, time: number): void {
    if (this.used + chunk.length > this.bytes.length) {
      this.post(false);
      if (chunk.length > this.bytes.length) this.bytes = Buffer.allocUnsafeSlow(chunk.length);
    }
    this.bytes.set(chunk, this.used);
    this.op(WRITE, id, sideCode(side), this.used, chunk.length, time);
    this.used += chunk.length;
  }

  /** The batch goes to the thread (its buffers transferred); the next one starts empty. */
  post(last: boolean): void {
    if (this.count === 0 && !last) return;
    const batch: LaneBatch = { ops: this.ops, count: this.count, bytes: this.bytes.buffer as ArrayBuffer, extras: this.extras, last };
    this.worker.postMessage(batch, [this.ops.buffer as ArrayBuffer, batch.bytes]);
    this.inFlight++;
    this.ops = new Float64Array(BATCH_OPS * STRIDE);
    this.count = 0;
    this.bytes = Buffer.allocUnsafeSlow(BATCH_BYTES);
    this.used = 0;
    this.extras = [];
  }

  /** Op index of the next record not yet admitted (Infinity when none has arrived). */
  headOp(): number {
    const p = this.pending[0];
    return p === undefined ? Infinity : p.meta[p.i * META + 1];
  }
}

/** A connection decoded in a lane: every call is an op in the lane's next batch. */
class RemoteConversation implements FlowConversation {
  constructor(private readonly lane: Lane, private readonly id: number) {}
  write(side: Side, chunk: Uint8Array, time: number): void { this.lane.write(this.id, side, chunk, time); }
  gap(side: Side, length: number, time: number): void { this.lane.op(GAP, this.id, sideCode(side), length, 0, time); }
  end(side: Side, time: number): void { this.lane.op(END, this.id, sideCode(side), 0, 0, time); }
  close(time: number): void { this.lane.op(CLOSE, this.id, 0, 0, 0, time); }
  expire(before: number): void { this.lane.op(EXPIRE, this.id, 0, 0, 0, before); }
  /** The lane reports it at each mark. */
  oldestPending(): number { return Infinity; }
  /** Counted in the lane. */
  undecoded(): boolean { return false; }
}

/**
 * A capture file's bytes in (`write`), its records out as lines (`onOutput`), in the order one thread gives.
 * Call `ready()` after each write (it resolves when the threads have caught up), and `end()` once.
 */
export class ParallelCaptureReader {
  private readonly reader: CaptureFileReader;
  private readonly flows: FlowTable;
  private readonly lanes: Lane[];
  private readonly clock: OpClock = { next: 0 };
  private connections = 0;
  /** Every mark: the op index it was given at, and this thread's watermark then. */
  private marks: { op: number; w: number }[] = [];
  private readonly heap = new TimeHeap<Line>();
  private out = Buffer.allocUnsafe(OUT_BYTES);
  private outUsed = 0;
  private records = 0;
  private waiting: (() => void) | null = null;
  private finals = 0;
  private ending = false;
  /** A decoding thread failed: nothing more is released. */
  private broken: string | null = null;
  /** The file could not be read further (what was read before is still decoded and released). */
  private unreadable: string | null = null;

  /** Why reading stopped, if it did: the capture's fault, or a decoding thread's. */
  get error(): string | null {
    return this.unreadable ?? this.broken;
  }

  constructor(options: ParallelReadOptions, private readonly onOutput: (bytes: Buffer) => void) {
    const { threads, decode, timeout, ...lane } = options;
    const onReply = (l: Lane, r: LaneReply) => this.reply(l, r);
    const onFail = (m: string) => this.fail(m);
    this.lanes = Array.from({ length: Math.max(1, threads) }, () => new Lane(this.clock, lane, onReply, onFail));
    const backend: FlowBackend = {
      open: (o) => this.open(o),
      release: (w) => this.release(w),
      // After every connection's last op: the last batches go.
      end: () => { for (const l of this.lanes) l.post(true); },
    };
    this.flows = new FlowTable({ decode, timeout }, () => {}, backend);
    this.reader = flowReader(this.flows,
      // Secrets reach every thread between the ops before and after them, as they would one thread's key log.
      (text) => { for (const l of this.lanes) l.op(SECRETS, 0, 0, 0, 0, 0, text); },
      (message) => { this.unreadable ??= message; });
  }

  write(chunk: Uint8Array): void {
    this.reader.write(chunk);
    for (const l of this.lanes) if (l.used >= BATCH_BYTES / 4 || l.count >= BATCH_OPS / 4) l.post(false);
  }

  /** Resolves when no thread is more than a few batches behind (or one failed). */
  ready(): Promise<void> | null {
    if (this.broken !== null || this.lanes.every((l) => l.inFlight < MAX_IN_FLIGHT)) return null;
    return new Promise((r) => { this.waiting = r; });
  }

  async end(): Promise<CaptureSummary> {
    const warning = this.reader.end();
    this.ending = true;
    this.flows.end();
    if (this.broken === null) await new Promise<void>((r) => { this.waiting = r; this.wake(); });
    if (this.broken === null) {
      this.admit(Infinity);
      this.heap.drainAll(this.emit);
      this.flushOut();
    }
    await Promise.all(this.lanes.map((l) => l.worker.terminate()));
    const tls = { decrypted: 0, noKeys: 0, badKeys: 0 };
    let undecoded = this.flows.stats.undecoded;
    for (const l of this.lanes) {
      if (!l.stats) continue;
      undecoded += l.stats.undecoded;
      for (const k of ['decrypted', 'noKeys', 'badKeys'] as const) tls[k] += l.stats.tls[k];
    }
    return {
      packets: this.reader.packets, segments: this.flows.stats.segments, connections: this.flows.stats.connections,
      undecoded, records: this.records, userErrors: 0, warning, tls,
    };
  }

  // What the flow table asks for.

  private open(o: LaneOpen): FlowConversation {
    const lane = this.lanes[this.connections % this.lanes.length];
    const id = this.connections++;
    lane.op(OPEN, id, 0, 0, 0, 0, o);
    return new RemoteConversation(lane, id);
  }

  private release(watermark: number): void {
    this.marks.push({ op: this.clock.next, w: watermark });
    for (const l of this.lanes) l.op(MARK, 0, 0, 0, 0, 0);
  }

  // Replies: records in, released at each mark in the one thread's order.

  private reply(l: Lane, r: LaneReply): void {
    l.inFlight--;
    if (r.error) { this.fail(r.error); return; }
    if (r.meta.length > 0) l.pending.push({ meta: r.meta, text: Buffer.from(r.text), i: 0 });
    for (const min of r.marks) l.mins.push(min);
    if (r.stats) { l.stats = r.stats; this.finals++; }
    this.advance();
    this.wake();
  }

  /** Release at every mark all lanes have passed. */
  private advance(): void {
    while (this.marks.length > 0 && this.lanes.every((l) => l.mins.length > 0)) {
      const m = this.marks.shift()!;
      this.admit(m.op);
      let w = m.w;
      for (const l of this.lanes) {
        const min = l.mins.shift()!;
        if (min < w) w = min;
      }
      this.heap.drainBefore(w, this.emit);
    }
    this.flushOut();
  }

  /**
   * Records made before op `limit` go into the heap, in the order one thread would have pushed them: by the
   * op that made them (an op that makes records goes to one lane, and a lane's come in its own order).
   */
  private admit(limit: number): void {
    for (;;) {
      let best: Lane | null = null;
      let bestOp = limit;
      for (const l of this.lanes) {
        const op = l.headOp();
        if (op < bestOp) { best = l; bestOp = op; }
      }
      if (best === null) return;
      const p = best.pending[0];
      const j = p.i * META;
      this.heap.push(p.meta[j], { text: p.text, at: p.meta[j + 2], len: p.meta[j + 3] });
      if (++p.i * META >= p.meta.length) best.pending.shift();
    }
  }

  private readonly emit = (line: Line): void => {
    this.records++;
    if (this.outUsed + line.len > this.out.length) {
      this.flushOut();
      if (line.len > this.out.length) { this.hand(line.text.subarray(line.at, line.at + line.len)); return; }
    }
    line.text.copy(this.out, this.outUsed, line.at, line.at + line.len);
    this.outUsed += line.len;
  };

  private flushOut(): void {
    if (this.outUsed === 0) return;
    const done = this.out.subarray(0, this.outUsed);
    this.out = Buffer.allocUnsafe(OUT_BYTES);
    this.outUsed = 0;
    this.hand(done);
  }

  /** The caller's callback: if it throws, that is the caller's error, and the read stops with it. */
  private hand(bytes: Buffer): void {
    if (this.broken !== null) return;
    try {
      this.onOutput(bytes);
    } catch (e) {
      this.fail(`the onOutput callback threw: ${(e as Error).message}`);
    }
  }

  private fail(message: string): void {
    this.broken ??= message;
    this.wake();
  }

  /** Wake `ready()` or `end()` when what they wait for holds. */
  private wake(): void {
    const w = this.waiting;
    if (w === null) return;
    const done = this.ending ? this.finals === this.lanes.length : this.lanes.every((l) => l.inFlight < MAX_IN_FLIGHT);
    if (this.broken !== null || done) {
      this.waiting = null;
      w();
    }
  }
}
