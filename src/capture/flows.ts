import type { AnyRecord, Peer } from '../records/types.js';
import { Conversation } from '../pipeline/conversation.js';
import { withOptions } from '../pipeline/options.js';
import { deliver, type UserErrorHandler } from '../pipeline/deliver.js';
import { detect, DETECT_BYTES } from '../pipeline/detect.js';
import { protocols as builtin } from '../pipeline/protocols.js';
import type { ProtocolModule, SessionOptions, Side } from '../pipeline/session.js';
import type { TcpSegment } from './packet.js';
import { TcpStream } from './reassembly.js';
import { TimeHeap } from './time-heap.js';

export interface FlowOptions extends SessionOptions {
  /** Force a protocol for connections to a server port: `{ 3550: 'http2' }`. */
  decode?: Record<number, string>;
  /** A request unanswered this long (ms, capture time) becomes a `timeout` record. Default 60 000. */
  timeout?: number;
  /** The record callback threw (the error says which record). Default: counted in `stats.userErrors` only. */
  onUserError?: UserErrorHandler;
}

interface Direction { stream: TcpStream }

/** What the flow table asks of a connection's decoding: a `Conversation` here, or one in a worker thread. */
export interface FlowConversation {
  write(side: Side, chunk: Uint8Array, time: number): void;
  gap(side: Side, length: number, time: number): void;
  end(side: Side, time: number): void;
  close(time: number): void;
  expire(before: number): void;
  /** Start time of the oldest exchange still open (Infinity when none, or when another thread knows it). */
  oldestPending(): number;
  /** After close: whether it counts as undecoded here (a worker counts its own). */
  undecoded(): boolean;
}

/**
 * Where connections are decoded and records wait for their turn. The default decodes in this thread and
 * keeps records in a heap by startTime; `flowtap read --threads` decodes in worker threads (parallel.ts).
 */
export interface FlowBackend {
  open(o: { client: Peer; server: Peer; connectionId: string; protocol: string; midStream: boolean }): FlowConversation;
  /** Release every record no open exchange can precede: `watermark` is what this table knows of that. */
  release(watermark: number): void;
  /** End of capture: every record is released. */
  end(): void;
}

/** One TCP connection seen in a capture. */
class Flow {
  /** Endpoint key of the side that opened (or is judged to have opened) the connection. */
  clientKey: string | null = null;
  conversation: FlowConversation | null = null;
  /** Bytes that arrived before client and server could be told apart. */
  early: { key: string; chunk: Buffer | null; gap: number; time: number }[] = [];
  earlyBytes = 0;
  readonly dirs = new Map<string, Direction>();
  lastSeen = 0;
  closed = false;
  sawSyn = false;

  constructor(readonly a: Peer, readonly b: Peer) {}
}

const keyOf = (ip: string, port: number) => `${ip}|${port}`;

interface TupleKeys { srcIp: string; dstIp: string; src: string; dst: string; id: string }

/**
 * Turns TCP segments into exchange records: a connection table with reassembly per direction, a conversation
 * per connection, timeouts in capture time, and records released in `startTime` order.
 */
export class FlowTable {
  private readonly flows = new Map<string, Flow>();
  private readonly tuples = new Map<number, TupleKeys>();
  private readonly backend: FlowBackend;
  private nextId = 1;
  private now = 0;
  private lastSweep = 0;
  private packetsSinceRelease = 0;
  readonly stats = { connections: 0, undecoded: 0, segments: 0, userErrors: 0 };
  private readonly modules: readonly ProtocolModule[];

  constructor(private readonly opts: FlowOptions, onRecord: (r: AnyRecord) => void, backend?: FlowBackend) {
    this.modules = opts.protocols ?? builtin;
    const report: UserErrorHandler = (e) => { this.stats.userErrors++; opts.onUserError?.(e); };
    const emit = (r: AnyRecord) => deliver(onRecord, r, report);
    this.backend = backend ?? localBackend(opts, emit);
  }

  segment(s: TcpSegment, time: number): void {
    this.stats.segments++;
    if (time > this.now) this.now = time;
    const { src, dst, id } = this.keys(s);
    let flow = this.flows.get(id);
    if (flow && flow.closed && s.syn && !s.ackFlag) { this.finishFlow(id, flow, time); flow = undefined; } // port reuse
    if (!flow) {
      if (s.rst) return;
      flow = new Flow({ ip: s.srcIp, port: s.srcPort }, { ip: s.dstIp, port: s.dstPort });
      this.flows.set(id, flow);
      this.stats.connections++;
    }
    flow.lastSeen = time;
    const dir = this.direction(flow, src);
    // The ACK says what the peer had received before it sent this segment: apply it first, so a hole the
    // capture missed is declared before this segment's own data (say, the answer to the lost bytes).
    if (s.ackFlag) this.direction(flow, dst).stream.acked(s.ack, time);
    if (s.syn) {
      flow.sawSyn = true;
      dir.stream.syn(s.seq);
      if (!flow.clientKey) this.setClient(flow, s.ackFlag ? dst : src);
    } else {
      dir.stream.segment(s.seq, s.payload, s.fin, time);
    }
    if (s.rst || this.bothFinished(flow)) {
      flow.closed = true;
      this.finishFlow(id, flow, time);
    }
    // release() walks every open flow: every 256 packets, or once per open flow's worth of packets when there
    // are more (at 1000 open connections it was 4% of the read and grew with their number), so its cost per
    // packet stays flat.
    if (++this.packetsSinceRelease >= Math.max(256, this.flows.size)) this.release();
    if (time - this.lastSweep >= 1000) this.sweep(time);
  }

  /**
   * The segment's endpoint keys and connection id. Every packet needs them, so they are kept per port pair
   * (checked against the addresses, whose strings repeat: see packet.ts), not joined again per packet.
   */
  private keys(s: TcpSegment): TupleKeys {
    const n = s.srcPort * 65536 + s.dstPort;
    const k = this.tuples.get(n);
    if (k !== undefined && k.srcIp === s.srcIp && k.dstIp === s.dstIp) return k;
    const src = keyOf(s.srcIp, s.srcPort);
    const dst = keyOf(s.dstIp, s.dstPort);
    const made: TupleKeys = { srcIp: s.srcIp, dstIp: s.dstIp, src, dst, id: src < dst ? `${src}>${dst}` : `${dst}>${src}` };
    // Live flows' keys (a finished flow's are dropped): the bound only guards against floods of new ones.
    if (this.tuples.size >= 1 << 16) this.tuples.clear();
    this.tuples.set(n, made);
    return made;
  }

  /** End of capture: every connection's pending exchanges become records; all records are released. */
  end(): void {
    for (const [id, flow] of this.flows) this.finishFlow(id, flow, this.now);
    this.backend.end();
  }

  private direction(flow: Flow, key: string): Direction {
    let d = flow.dirs.get(key);
    if (!d) {
      d = {
        stream: new TcpStream({
          onData: (chunk, time) => this.data(flow, key, chunk, 0, time),
          onGap: (length, time) => this.data(flow, key, null, length, time),
        }),
      };
      flow.dirs.set(key, d);
    }
    return d;
  }

  private bothFinished(flow: Flow): boolean {
    if (flow.dirs.size < 2) return false;
    for (const d of flow.dirs.values()) if (!d.stream.finished) return false;
    return true;
  }

  private data(flow: Flow, key: string, chunk: Uint8Array | null, gap: number, time: number): void {
    if (flow.conversation) { this.feed(flow, key, chunk, gap, time); return; }
    flow.early.push({ key, chunk: chunk ? Buffer.from(chunk) : null, gap, time });
    flow.earlyBytes += chunk?.length ?? 0;
    if (!flow.clientKey) this.judgeRoles(flow, false);
  }

  private feed(flow: Flow, key: string, chunk: Uint8Array | null, gap: number, time: number): void {
    const side: Side = key === flow.clientKey ? 'client' : 'server';
    if (chunk) flow.conversation!.write(side, chunk, time);
    else flow.conversation!.gap(side, gap, time);
  }

  /**
   * No SYN seen: the side whose first bytes open a request is the client (or the other one, if they open a
   * response); failing that, a forced `--decode` port or the lower port marks the server.
   */
  private judgeRoles(flow: Flow, final: boolean): void {
    const [ka, kb] = [keyOf(flow.a.ip, flow.a.port), keyOf(flow.b.ip, flow.b.port)];
    const forcedA = this.opts.decode?.[flow.a.port];
    const forcedB = this.opts.decode?.[flow.b.port];
    if (forcedA && !forcedB) return this.setClient(flow, kb);
    if (forcedB && !forcedA) return this.setClient(flow, ka);
    const firstOf = (k: string) => {
      const parts = flow.early.filter((e) => e.key === k && e.chunk).map((e) => e.chunk!);
      return parts.length ? Buffer.concat(parts).subarray(0, DETECT_BYTES) : null;
    };
    const firsts = [firstOf(ka), firstOf(kb)];
    const found = detect(this.modules, firsts);
    if (found !== null && found !== 'wait') {
      const opener = found.index === 0 ? ka : kb;
      return this.setClient(flow, found.role === 'request' ? opener : opener === ka ? kb : ka);
    }
    const bothSpoke = firsts[0] !== null && firsts[1] !== null;
    if (final || flow.earlyBytes > 64 * 1024 || (bothSpoke && found === null)) {
      this.setClient(flow, flow.a.port > flow.b.port ? ka : flow.a.port < flow.b.port ? kb : ka);
    }
  }

  private setClient(flow: Flow, clientKey: string): void {
    flow.clientKey = clientKey;
    const [client, server] = keyOf(flow.a.ip, flow.a.port) === clientKey ? [flow.a, flow.b] : [flow.b, flow.a];
    const forced = this.opts.decode?.[server.port];
    flow.conversation = this.backend.open({
      client, server, connectionId: String(this.nextId++), protocol: forced ?? 'auto', midStream: !flow.sawSyn,
    });
    const early = flow.early;
    flow.early = [];
    flow.earlyBytes = 0;
    for (const e of early) this.feed(flow, e.key, e.chunk, e.gap, e.time);
  }

  private finishFlow(id: string, flow: Flow, time: number): void {
    for (const d of flow.dirs.values()) d.stream.flush(time);
    if (!flow.conversation && flow.early.length > 0) this.judgeRoles(flow, true);
    const c = flow.conversation;
    if (c) {
      if (flow.closed) {
        // FIN/RST: EOF on both sides (close-delimited bodies complete), then whatever is open is reported.
        c.end('client', time);
        c.end('server', time);
      }
      c.close(time);
      if (c.undecoded()) this.stats.undecoded++;
    }
    this.flows.delete(id);
    this.forgetKeys(flow.a, flow.b);
    this.forgetKeys(flow.b, flow.a);
  }

  /** Drop the cached keys of one direction of a finished flow (if that port pair still names it). */
  private forgetKeys(src: Peer, dst: Peer): void {
    const n = src.port * 65536 + dst.port;
    const k = this.tuples.get(n);
    if (k !== undefined && k.srcIp === src.ip && k.dstIp === dst.ip) this.tuples.delete(n);
  }

  /** Once a second of capture time: expire unanswered requests, forget idle connections. */
  private sweep(now: number): void {
    this.lastSweep = now;
    const timeout = this.opts.timeout ?? 60_000;
    for (const [id, flow] of this.flows) {
      flow.conversation?.expire(now - timeout);
      if (now - flow.lastSeen > 2 * timeout) this.finishFlow(id, flow, now);
    }
    this.release();
  }

  /** Release every record that no open exchange can precede any more. */
  private release(): void {
    this.packetsSinceRelease = 0;
    let watermark = this.now;
    for (const flow of this.flows.values()) {
      const p = flow.conversation ? flow.conversation.oldestPending()
        : flow.early.length > 0 ? flow.early[0].time : Infinity;
      if (p < watermark) watermark = p;
    }
    this.backend.release(watermark);
  }
}

/** Decoding in this thread: a Conversation per connection, records held in a heap until their turn. */
function localBackend(opts: FlowOptions, emit: (r: AnyRecord) => void): FlowBackend {
  const heap = new TimeHeap<AnyRecord>();
  // Records wait in the heap; the user's callback is called (behind the boundary) when they leave it.
  const onRecord = (r: AnyRecord) => heap.push(r.startTime, r);
  return {
    open(o) {
      return new Conversation(withOptions(opts, { ...o, onRecord, onUserError: undefined }));
    },
    release(watermark) { heap.drainBefore(watermark, emit); },
    end() { heap.drainAll(emit); },
  };
}
