/**
 * The decoding thread of a tap proxy in `decodeIn: 'worker'` mode (`worker-decoding.ts` is the main
 * thread's side): batches of connection events and the bytes they carry come in, records go back. The
 * conversations here are the same as inline; only the thread differs.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { Conversation } from './conversation.js';
import { withOptions } from './options.js';
import { masker } from './stages.js';
import type { AnyRecord, Peer, TlsInfo } from '../records/types.js';
import { openSink } from '../sinks/spec.js';
import { RECORDS_PER_PART, type Batch, type Reply, type SinkReport, type WorkerDecodeOptions } from './worker-decoding.js';

const opts = workerData as WorkerDecodeOptions;

// Decoding yields the CPU to forwarding: where cores are fewer than busy threads, the kernel runs the
// forwarding loop first (Linux: a thread's own nice value, through its thread id). Elsewhere: as is.
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (tid > 0) setPriority(tid, 10);
} catch { /* not Linux, or not allowed: the same priority as forwarding */ }
const live = new Map<number, Conversation>();
let records: AnyRecord[] = [];
let errors: { id: number; message: string }[] = [];
/** Records the thread's own sinks took since the last reply (records that travel are counted on arrival). */
let made = 0;
const masked = opts.mask ? masker(opts.mask) : null;
/**
 * Sinks of this thread's own (`TapProxyOptions.sinks`): records are written here and never go back to the
 * forwarding thread, whose share of the tap is then only the hand-off.
 */
const sinks = (opts.sinks ?? []).map(openSink);
let sinkErrors: SinkReport['errors'] = [];
let reportDue = false;
/** A batch written changes the counts: they go soon after, so the proxy's `sinkStats` stay current. */
const reportSoon = () => {
  if (reportDue) return;
  reportDue = true;
  setImmediate(() => { reportDue = false; reply(-1, 0); });
};
sinks.forEach((s, i) => {
  s.on('error', (e: Error) => { sinkErrors.push({ sink: i, message: e.message }); reportSoon(); });
  s.on('written', reportSoon);
});
const out = sinks.length === 0 ? (r: AnyRecord) => { records.push(r); }
  : sinks.length === 1 ? (r: AnyRecord) => { made++; sinks[0].write(r); }
  : (r: AnyRecord) => { made++; for (const s of sinks) s.write(r); };
/** A record made here: masked first when asked, then kept for the next reply or written. */
const keep = masked ? (r: AnyRecord) => { out(masked(r)); } : out;
const now = () => performance.timeOrigin + performance.now();
const SIDES = ['client', 'server'] as const;

function open(id: number, client: Peer, server: Peer, tls: TlsInfo | null): void {
  try {
    live.set(id, new Conversation(withOptions(opts.session, {
      client, server, connectionId: (opts.connectionIdPrefix ?? '') + id,
      protocol: opts.protocol ?? (tls?.alpn === 'h2' ? 'http2' : 'auto'),
      onRecord: tls ? (r: AnyRecord) => { r.tls = tls; keep(r); } : keep,
      onUserError: () => {}, // pushing to an array does not throw
    })));
  } catch (e) {
    errors.push({ id, message: (e as Error).message });
  }
}

/** A conversation that threw is dropped (decoding off for that connection, as inline). */
function guarded(id: number, f: (c: Conversation) => void): void {
  const c = live.get(id);
  if (!c) return;
  try {
    f(c);
  } catch (e) {
    drop(id, e);
  }
}

function drop(id: number, e: unknown): void {
  live.delete(id);
  errors.push({ id, message: (e as Error).message });
}

/** Records and errors made since the last reply, with the batch they answer (-1: none, the sweep's). */
function reply(seq: number, acked: number): void {
  const parts: { text: string; count: number }[] = [];
  // JSON lines, serialised here: the forwarding thread hands them on as they are (a JSONL sink writes them).
  for (let i = 0; i < records.length; i += RECORDS_PER_PART) {
    let text = '';
    const end = Math.min(records.length, i + RECORDS_PER_PART);
    for (let k = i; k < end; k++) text += JSON.stringify(records[k]) + '\n';
    parts.push({ text, count: end - i });
  }
  const r: Reply = { acked, made, records: parts, errors, seq, sinks: sinkReport() };
  made = 0;
  records = [];
  errors = [];
  parentPort!.postMessage(r);
}

/** The sinks' counts now, and their errors since the last report. */
function sinkReport(): SinkReport | null {
  if (sinks.length === 0) return null;
  const report = { stats: sinks.map((s) => ({ ...s.stats })), errors: sinkErrors };
  sinkErrors = [];
  return report;
}

parentPort!.on('message', (b: Batch | { close: true }) => {
  if ('close' in b) {
    // Everything posted was decoded (the proxy waited for it): write what the sinks hold, then say so.
    void Promise.all(sinks.map((s) => s.close())).then(() => parentPort!.postMessage({ closed: true, sinks: sinkReport() }));
    return;
  }
  if (sinks.length === 0) {
    const w: Work = { b, at: 0, acked: 0, off: 0 };
    decode(w, b.ops.length, Infinity);
    reply(b.seq, w.acked);
    return;
  }
  // With sinks here, a slice of ops per turn of the event loop, so the sinks write between slices: a port
  // delivers every message waiting in one turn, and a thread catching up on a backlog would otherwise put
  // tens of thousands of records into the sinks' queues before they could write any (measured with
  // flowtap dump's default 10 000-record queue: a quarter of the records dropped at wrk -c256; one batch
  // per turn still dropped 5%, a batch can hold 4 MiB of traffic; slices, 0.65%). And while a sink's queue
  // is half full, decoding waits (up to PATIENCE_MS at a time): the batch's bytes wait instead of records,
  // within the proxy's decode backlog, past which it sheds and counts.
  waiting.push({ b, at: 0, acked: 0, off: 0 });
  if (waiting.length === 1) setImmediate(next);
});

/** A batch being decoded: the next op, and the bytes decoded so far (its reply acks them). */
interface Work { b: Batch; at: number; acked: number; /** Bytes of op `at`'s chunk already decoded. */ off: number }

/**
 * What is decoded per turn when the thread writes sinks: up to 512 ops and 16 KiB of their bytes (a chunk
 * of pipelined requests is cut into pieces: the decoders take any chunking), a few hundred exchanges at
 * most, less than a sink's batch.
 */
const SLICE_OPS = 512;
const SLICE_BYTES = 16 * 1024;
const waiting: Work[] = [];
/**
 * How long decoding waits for a sink that does not drain (a dead store). Past it, that sink is not waited
 * for again until its queue is back under the limit: its queue drops, counted, and the other sinks and the
 * decoding go on.
 */
const PATIENCE_MS = 200;
const stuck = sinks.map(() => false);
let pausedAt = 0;
function next(): void {
  let full = false;
  // A busy sink (its queue half full) makes decoding wait, so bursts wait as bytes, not as records.
  sinks.forEach((s, i) => {
    if (!s.busy) stuck[i] = false;
    else if (!stuck[i]) full = true;
  });
  if (full) {
    const t = performance.now();
    if (pausedAt === 0) pausedAt = t;
    if (t - pausedAt < PATIENCE_MS) { setTimeout(next, 1); return; }
    sinks.forEach((s, i) => { if (s.busy) stuck[i] = true; });
  }
  pausedAt = 0;
  const w = waiting[0];
  decode(w, Math.min(w.b.ops.length, w.at + SLICE_OPS), SLICE_BYTES);
  if (w.at === w.b.ops.length) { waiting.shift(); reply(w.b.seq, w.acked); }
  if (waiting.length > 0) setImmediate(next);
}

/** A batch's ops up to `to`, and of their chunks' bytes about `budget` (a chunk may stop part-way). */
function decode(w: Work, to: number, budget: number): void {
  const b = w.b;
  const bytes = b.buf ? Buffer.from(b.buf, 0, b.len) : null;
  for (; w.at < to && budget > 0; w.at++) {
    const op = b.ops[w.at];
    switch (op[0]) {
      case 0: open(op[1], op[2], op[3], op[4]); break;
      case 1: {
        // Per chunk: the conversation directly, no closure.
        const [, id, side, at, len, time] = op;
        const n = Math.min(len - w.off, budget);
        budget -= n;
        w.acked += n;
        const c = live.get(id);
        if (c) try { c.write(SIDES[side], bytes!.subarray(at + w.off, at + w.off + n), time); } catch (e) { drop(id, e); }
        if (w.off + n < len) { w.off += n; return; } // the rest of this chunk next turn
        w.off = 0;
        break;
      }
      case 2: { const [, id, side, len, time] = op; guarded(id, (c) => c.gap(SIDES[side], len, time)); break; }
      case 3: { const [, id, side, time] = op; guarded(id, (c) => c.end(SIDES[side], time)); break; }
      case 4: { const [, id, time, reason] = op; guarded(id, (c) => c.close(time, reason ?? undefined)); live.delete(id); break; }
    }
  }
}

setInterval(() => {
  const before = now() - (opts.timeout ?? 60_000);
  for (const [id] of live) guarded(id, (c) => c.expire(before));
  if (records.length > 0 || errors.length > 0 || made > 0) reply(-1, 0);
}, 1000).unref();

parentPort!.postMessage({ ready: true });
