/**
 * Decoding off the forwarding thread (a tap proxy's `decodeIn: 'worker'`). Forwarding stays on the main
 * loop as plain pipes; each chunk the tap sees is copied once into the tick's batch buffer, and the batch
 * (connection events + one transferred ArrayBuffer) is posted once per tick — a per-chunk postMessage costs
 * more than the decode. Records come back in batches. When the bytes posted and not yet decoded pass
 * `maxBacklog`, new chunks are not copied: the decoder is told they are missing (a gap, so it reports the
 * loss and resynchronises) and they are counted as shed — except a direction's first chunk, which
 * detection needs. Forwarding never waits for any of it.
 */
import { Worker } from 'node:worker_threads';
import { builtScript } from '../worker-script.js';
import type { Peer, TlsInfo } from '../records/types.js';
import type { SinkStats } from '../sinks/batching.js';
import type { SinkSpec } from '../sinks/spec.js';
import type { MaskOptions } from './stages.js';
import type { SessionOptions, Side } from './session.js';

/** What the worker needs: plain data only (functions and registries cannot cross threads). */
export interface WorkerDecodeOptions {
  session: Pick<SessionOptions, 'bodyCapture' | 'maxHeaderSize' | 'decodeValues' | 'traceKeys' | 'spanKeys'>;
  /** Mask records in the thread, before they are serialised (the `mask()` stage's options). */
  mask?: MaskOptions;
  protocol?: string;
  timeout?: number;
  connectionIdPrefix?: string;
  /** Sinks the thread opens and writes itself; then records do not come back. */
  sinks?: SinkSpec[];
}

export type Op =
  | [0, number, Peer, Peer, TlsInfo | null] // open(id, client, server, tls)
  | [1, number, 0 | 1, number, number, number] // write(id, side, offset, length, time)
  | [2, number, 0 | 1, number, number] // gap(id, side, length, time)
  | [3, number, 0 | 1, number] // end(id, side, time)
  | [4, number, number, string | null]; // close(id, time, reason)

export interface Batch { seq: number; ops: Op[]; buf: ArrayBuffer | null; len: number }
/**
 * Records travel as JSON lines, in parts (each `text` ends with a newline): records are JSON by design, a
 * JSONL sink writes the lines as they are, and JSON.parse (for `record` listeners) costs the forwarding
 * thread less than structured clone's deserialisation (measured: 3.6 vs 4.0–4.9 µs a record).
 */
export interface Reply {
  seq: number; acked: number;
  /** Records the thread's own sinks took since the last reply (they do not come back). */
  made: number;
  records: { text: string; count: number }[]; errors: { id: number; message: string }[];
  sinks: SinkReport | null;
}

/** The thread's own sinks: their counts, and the errors they reported since the last report. */
export interface SinkReport { stats: SinkStats[]; errors: { sink: number; message: string }[] }

/**
 * Records per part of a reply. The forwarding thread parses and delivers one part per turn of its event
 * loop, so a batch that made thousands of records (a pipelined flood) never holds up forwarding for the
 * time all of them take.
 */
export const RECORDS_PER_PART = 256;

/**
 * How long chunks gather before they go to the thread. Each batch costs a message both ways, and on a VM
 * each wake of the thread costs more than its messages: the first exchanges after a sleep decode at half
 * speed or worse (in one thread, 32 exchanges every 4 ms cost 13.8–16.9 µs each, 128 every 4 ms 10.0–11.9,
 * back to back 7.5–10.6). Measured through the tap, CPU per 10k requests, five rounds each: at 8k/s 4 ms
 * gave 583–713 ms and 16 ms 561–641 (lower in every round); at 3k/s 955–1370 and 814–1133. Per tick
 * (before 4 ms) it was 911–933 at 8k/s. wrk -c16 throughput did not tell 4, 16 and 32 ms apart. A full
 * batch buffer goes at once. Forwarding never waits for it; records arrive up to this much later.
 */
const BATCH_MS = 16;

export interface WorkerDecodingEvents {
  /** Records as JSON lines (`text` ends with a newline), a part at a time. */
  lines(text: string, count: number): void;
  /** Decoding failed for a connection (switched off for it; forwarding went on); id -1: the whole thread. */
  error(id: number, message: string): void;
  /** Bytes forwarded but not decoded: the backlog was full, or the thread is gone. */
  shed(bytes: number): void;
  /** Records made and handed to the thread's own sinks (they do not come as `lines`). */
  made(count: number): void;
  /** The thread's own sinks reported. */
  sinks(report: SinkReport): void;
}

export interface RemoteConversation {
  write(side: Side, chunk: Buffer, time: number): void;
  end(side: Side, time: number): void;
  close(time: number, reason?: string): void;
  expire(before: number): void;
}


const side = (s: Side): 0 | 1 => (s === 'client' ? 0 : 1);

export class WorkerDecoding {
  private readonly worker: Worker;
  private ops: Op[] = [];
  private buf: Buffer = Buffer.allocUnsafeSlow(256 * 1024);
  private used = 0;
  private scheduled = false;
  private seq = 0;
  private acked = -1;
  /** Bytes posted (or batched) and not yet decoded. */
  private backlog = 0;
  private readonly ready: Promise<void>;
  private idle: (() => void)[] = [];
  /** Connection directions (id * 2 + side) whose first chunk was batched. */
  private readonly started = new Set<number>();
  /** The thread died (a bug, or out of memory): decoding is off, forwarding goes on. */
  private dead = false;

  private readonly hasSinks: boolean;

  constructor(options: WorkerDecodeOptions, private readonly maxBacklog: number, private readonly on: WorkerDecodingEvents) {
    this.hasSinks = (options.sinks?.length ?? 0) > 0;
    this.worker = new Worker(builtScript('decode-worker.js'), { workerData: options });
    this.ready = new Promise((resolve, reject) => {
      this.worker.once('message', () => resolve());
      this.worker.once('error', reject);
    });
    this.worker.on('message', (m: Reply | { ready: true } | { closed: true; sinks: SinkReport | null }) => {
      if ('ready' in m) return;
      if ('closed' in m) {
        if (m.sinks) this.on.sinks(m.sinks);
        this.sinksClosed?.();
        return;
      }
      this.backlog -= m.acked;
      if (m.made) this.on.made(m.made);
      if (m.sinks) this.on.sinks(m.sinks);
      if (m.seq >= 0) this.acked = m.seq;
      for (const e of m.errors) this.on.error(e.id, e.message);
      if (m.records.length) {
        for (const part of m.records) this.parts.push(part);
        if (!this.delivering) { this.delivering = true; setImmediate(this.deliverPart); }
      }
      this.settle();
    });
    this.worker.on('error', (e) => { this.on.error(-1, `decoding thread failed: ${e.message}`); });
    this.worker.on('exit', () => {
      this.dead = true;
      for (const f of this.idle.splice(0)) f();
      this.sinksClosed?.();
    });
  }

  start(): Promise<void> {
    return this.ready;
  }

  /** Record parts waiting to be delivered (a part per turn of the event loop). */
  private parts: { text: string; count: number }[] = [];
  private partsHead = 0;
  private delivering = false;

  private readonly deliverPart = (): void => {
    const part = this.parts[this.partsHead++];
    if (this.partsHead === this.parts.length) { this.parts = []; this.partsHead = 0; }
    this.on.lines(part.text, part.count);
    if (this.partsHead < this.parts.length) setImmediate(this.deliverPart);
    else { this.delivering = false; this.settle(); }
  };

  /** Everything posted has been decoded and every record delivered: wake those waiting for it. */
  private settle(): void {
    if (this.acked === this.seq - 1 && this.ops.length === 0 && !this.delivering) for (const f of this.idle.splice(0)) f();
  }

  /** A connection's decoding, with the calls the tap proxy makes on an inline Conversation. */
  open(id: number, client: Peer, server: Peer, tls: TlsInfo | null): RemoteConversation {
    this.push([0, id, client, server, tls]);
    return {
      write: (s, chunk, time) => this.write(id, s, chunk, time),
      end: (s, time) => this.end(id, s, time),
      close: (time, reason) => this.close(id, time, reason),
      expire: () => {}, // the worker expires its own
    };
  }

  private write(id: number, s: Side, chunk: Buffer, time: number): void {
    if (this.dead) { this.on.shed(chunk.length); return; }
    // A direction's first chunk is never shed: protocol detection needs it, and it holds the first head.
    const key = id * 2 + side(s);
    const first = !this.started.has(key);
    if (first) this.started.add(key);
    if (!first && this.backlog + chunk.length > this.maxBacklog) {
      this.on.shed(chunk.length);
      this.push([2, id, side(s), chunk.length, time]);
      return;
    }
    if (this.used + chunk.length > this.buf.length) this.grow(chunk.length);
    chunk.copy(this.buf, this.used);
    this.push([1, id, side(s), this.used, chunk.length, time]);
    this.used += chunk.length;
    this.backlog += chunk.length;
  }

  private end(id: number, s: Side, time: number): void {
    this.push([3, id, side(s), time]);
  }

  private close(id: number, time: number, reason?: string): void {
    this.started.delete(id * 2);
    this.started.delete(id * 2 + 1);
    this.push([4, id, time, reason ?? null]);
  }

  private sinksClosed: (() => void) | null = null;

  /** Everything posted is decoded, its records delivered and the thread's sinks closed; then the thread ends. */
  async stop(): Promise<void> {
    this.flush();
    if (!this.dead && (this.acked !== this.seq - 1 || this.delivering)) await new Promise<void>((r) => this.idle.push(r));
    if (!this.dead && this.hasSinks) {
      await new Promise<void>((r) => {
        this.sinksClosed = r;
        this.worker.postMessage({ close: true });
      });
    }
    await this.worker.terminate();
  }

  private push(op: Op): void {
    if (this.dead) return;
    this.ops.push(op);
    if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(() => this.flush(), BATCH_MS);
    }
  }

  private grow(need: number): void {
    // The bytes batched so far go now; the next batch starts in a buffer big enough.
    this.flush();
    if (need > this.buf.length) this.buf = Buffer.allocUnsafeSlow(need);
  }

  private flush(): void {
    this.scheduled = false;
    if (this.ops.length === 0) return;
    let buf: ArrayBuffer | null = null;
    const len = this.used;
    if (len > 0) {
      // The batch's bytes leave by transfer (no copy): the worker owns them, the next batch gets a new
      // buffer sized by this one's use.
      buf = this.buf.buffer as ArrayBuffer;
      this.buf = Buffer.allocUnsafeSlow(Math.min(4 << 20, Math.max(64 * 1024, 2 * len)));
      this.used = 0;
    }
    const batch: Batch = { seq: this.seq++, ops: this.ops, buf, len };
    this.ops = [];
    this.worker.postMessage(batch, buf ? [buf] : []);
  }
}
