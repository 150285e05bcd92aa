/**
 * A decoding thread of `flowtap read --threads` (parallel.ts is the reading thread's side). The reading
 * thread parses packets, reassembles TCP and tells clients from servers; the connections it hands here are
 * decoded by the same Conversations, with the same options, as in one thread. Records go back as lines,
 * each with the op it was made in, which puts them back in the one thread's order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ProtoRegistry } from '../codecs/grpc/schemas.js';
import { formatTableRow } from '../cli/table.js';
import { Conversation } from '../pipeline/conversation.js';
import { withOptions } from '../pipeline/options.js';
import { protocols as builtin } from '../pipeline/protocols.js';
import type { AnyRecord } from '../records/types.js';
import { CLOSE, END, EXPIRE, GAP, MARK, OPEN, SECRETS, STRIDE, WRITE, type LaneBatch, type LaneOpen, type LaneOptions, type LaneReply } from './lane-protocol.js';
import { KeyLog } from './tls/keylog.js';
import { tlsProtocol, type TlsStats } from './tls/session.js';

const o = workerData as LaneOptions;
const keylog = new KeyLog();
if (o.keylog) keylog.add(o.keylog);
const tls: TlsStats = { decrypted: 0, noKeys: 0, badKeys: 0 };
// What a conversation's options hold in one thread, but forced protocols and timeouts: the reading thread
// applies those (OPEN's protocol, EXPIRE ops).
const base = {
  bodyCapture: o.bodyCapture, traceKeys: o.traceKeys, spanKeys: o.spanKeys,
  decodeValues: o.decodeValues, protos: o.protoDir !== undefined ? ProtoRegistry.load(o.protoDir) : undefined,
  protocols: [...builtin, tlsProtocol(keylog, tls)],
};
const line = o.format === 'table' ? formatTableRow : (r: AnyRecord) => JSON.stringify(r);
const SIDES = ['client', 'server'] as const;
const live = new Map<number, Conversation>();
let undecoded = 0;

// The reply being built.
let text = Buffer.allocUnsafeSlow(1 << 20);
let used = 0;
let meta: number[] = [];
let marks: number[] = [];
/** The op running now: a record's place in one thread's order. */
let op = 0;

function keep(r: AnyRecord): void {
  const s = line(r) + '\n';
  if (used + 3 * s.length > text.length) {
    const bigger = Buffer.allocUnsafeSlow(Math.max(2 * text.length, used + 3 * s.length));
    text.copy(bigger, 0, 0, used);
    text = bigger;
  }
  const n = text.write(s, used);
  meta.push(r.startTime, op, used, n);
  used += n;
}

function run(b: LaneBatch): void {
  const ops = b.ops;
  const bytes = Buffer.from(b.bytes);
  let x = 0;
  for (let i = 0; i < b.count * STRIDE; i += STRIDE) {
    op = ops[i + 1];
    const id = ops[i + 2];
    const code = ops[i];
    if (code === WRITE) {
      const at = ops[i + 4];
      live.get(id)!.write(SIDES[ops[i + 3]], bytes.subarray(at, at + ops[i + 5]), ops[i + 6]);
      continue;
    }
    switch (code) {
      case OPEN: {
        const e = b.extras[x++] as LaneOpen;
        live.set(id, new Conversation(withOptions(base, {
          client: e.client, server: e.server, connectionId: e.connectionId, protocol: e.protocol, midStream: e.midStream,
          onRecord: keep, onUserError: undefined,
        })));
        break;
      }
      case GAP: live.get(id)!.gap(SIDES[ops[i + 3]], ops[i + 4], ops[i + 6]); break;
      case END: live.get(id)!.end(SIDES[ops[i + 3]], ops[i + 6]); break;
      case CLOSE: {
        const c = live.get(id)!;
        c.close(ops[i + 6]);
        if (c.undecoded()) undecoded++;
        live.delete(id);
        break;
      }
      case EXPIRE: live.get(id)!.expire(ops[i + 6]); break;
      case SECRETS: keylog.add(b.extras[x++] as string); break;
      case MARK: {
        let oldest = Infinity;
        for (const c of live.values()) { const p = c.oldestPending(); if (p < oldest) oldest = p; }
        marks.push(oldest);
        break;
      }
    }
  }
}

parentPort!.on('message', (b: LaneBatch) => {
  let error: string | undefined;
  try {
    run(b);
  } catch (e) {
    error = `decoding thread failed: ${(e as Error).stack ?? e}`;
  }
  // The buffer itself goes (its first `used` bytes are the lines); the next reply gets a new one.
  const reply: LaneReply = {
    text: text.buffer as ArrayBuffer, meta: Float64Array.from(meta), marks: Float64Array.from(marks), error,
    stats: b.last ? { undecoded, tls } : undefined,
  };
  text = Buffer.allocUnsafeSlow(used > text.length / 2 ? text.length : Math.max(1 << 16, 2 * used));
  used = 0;
  meta = [];
  marks = [];
  parentPort!.postMessage(reply, [reply.text, reply.meta.buffer as ArrayBuffer, reply.marks.buffer as ArrayBuffer]);
});
