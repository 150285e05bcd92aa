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
  const bytes = b.buf ? Buffer.from(b.buf, 0, b.len) : null;
  let acked = 0;
  for (const op of b.ops) {
    switch (op[0]) {
      case 0: open(op[1], op[2], op[3], op[4]); break;
      case 1: {
        // Per chunk: the conversation directly, no closure.
        const [, id, side, at, len, time] = op;
        acked += len;
        const c = live.get(id);
        if (c) try { c.write(SIDES[side], bytes!.subarray(at, at + len), time); } catch (e) { drop(id, e); }
        break;
      }
      case 2: { const [, id, side, len, time] = op; guarded(id, (c) => c.gap(SIDES[side], len, time)); break; }
      case 3: { const [, id, side, time] = op; guarded(id, (c) => c.end(SIDES[side], time)); break; }
      case 4: { const [, id, time, reason] = op; guarded(id, (c) => c.close(time, reason ?? undefined)); live.delete(id); break; }
    }
  }
  reply(b.seq, acked);
});

setInterval(() => {
  const before = now() - (opts.timeout ?? 60_000);
  for (const [id] of live) guarded(id, (c) => c.expire(before));
  if (records.length > 0 || errors.length > 0 || made > 0) reply(-1, 0);
}, 1000).unref();

parentPort!.postMessage({ ready: true });
