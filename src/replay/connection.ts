/**
 * One connection to a replay or mirror target for HTTP/1 or Dubbo. Answers are decoded by flowtap's own
 * decoders. HTTP/1: a response decoder only — what we send is already known, so it is not decoded again
 * unless someone asks for the exchange's record (built then, on first use). Dubbo: a Conversation, which
 * pairs answers by request id; every frame gets a fresh id on this connection, and a provider's heartbeats
 * are answered.
 */
import net from 'node:net';
import type { ProtoRegistry } from '../codecs/grpc/schemas.js';
import { DubboDecoder } from '../codecs/dubbo/decoder.js';
import { encodeHeartbeat } from '../codecs/dubbo/encoder.js';
import { Http1Decoder, type Http1Message } from '../codecs/http1/decoder.js';
import { Conversation } from '../pipeline/conversation.js';
import { http1Record } from '../records/http1.js';
import type { AnyRecord, Peer } from '../records/types.js';
import { attachWire, wireOf, type Http2Half } from '../records/wire.js';

export interface Target { host: string; port: number }

/** A target URL (`http://host:port/prefix`): where to connect, the Host to send, the path prefix. */
export function parseTarget(t: string, what = 'a target'): { target: Target; host: string; prefix: string } {
  let url: URL;
  try { url = new URL(t); } catch { throw new Error(`${what} must be a URL like http://127.0.0.1:8080, not "${t}"`); }
  if (url.protocol !== 'http:') throw new Error(`${what} must be http:// (h2c and Dubbo too), not ${url.protocol}`);
  return { target: { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 80) }, host: url.host,
    prefix: url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '') };
}

/** How a target's answers are read: the limits, and how much of them the records keep. */
export interface TargetOptions {
  /** No answer within this long is a failure, ms. */
  timeout: number;
  /** Bytes of each answer kept as its wire (type-3 payloads). */
  keepRaw: number;
  /** Body bytes the answer's record keeps (default 4096; a diff wants whole bodies). */
  bodyCapture?: number;
  /** Dubbo: decode return values and exceptions (a diff compares them). */
  decodeValues?: boolean;
  /** gRPC: schemas to decode the answers' messages with (else a schema-less dump). */
  protos?: ProtoRegistry;
  connectTimeout?: number;
}

export interface SendResult {
  /** HTTP status, grpc-status, Dubbo status byte of the answer; null when none came. */
  code: number | null;
  /** The answer as it crossed the wire (for type-3 payloads); null when none came. */
  answer: { raw?: Buffer; http2?: Http2Half; cut: boolean } | null;
  /** Why there is no answer: refused, reset, timed out. */
  error: string | null;
  /** ms from the first byte sent to the answer (or the failure). */
  latency: number;
  /** The replayed exchange as a record (built on first call), or null without an answer. */
  record(): AnyRecord | null;
}

interface InFlight {
  /** The socket it was written to: that socket's end fails it, no other's. */
  socket: net.Socket;
  request: Buffer;
  method: string;
  key: string;
  sent: number;
  deadline: number;
  interim: number[];
  done: (r: SendResult) => void;
}

const now = () => performance.timeOrigin + performance.now();
const none = () => null;
let nextConnection = 1;

export function failed(error: string, latency: number): SendResult {
  return { code: null, answer: null, error, latency, record: none };
}

export class TargetConnection {
  private socket: net.Socket | null = null;
  private connecting: Promise<void> | null = null;
  private readonly inFlight: InFlight[] = [];
  private nextId = 1n;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly peer: Peer;
  private readonly local: Peer = { ip: '', port: 0 };
  private connectionId = '';
  // Per socket: the answer decoder (HTTP/1) or conversation (Dubbo).
  private responses: Http1Decoder | null = null;
  private conversation: Conversation | null = null;

  constructor(
    private readonly target: Target,
    private readonly protocol: 'http1' | 'dubbo',
    private readonly opts: TargetOptions,
  ) {
    this.peer = { ip: target.host, port: target.port };
  }

  /** Send one request (`method`: its HTTP method, for framing the answer to HEAD). */
  async send(request: Buffer, method = 'GET'): Promise<SendResult> {
    const started = now();
    if (!this.socket || this.connecting || this.socket.destroyed) {
      try {
        await this.connect();
      } catch (e) {
        return failed((e as Error).message, now() - started);
      }
    }
    let bytes = request;
    let key = '';
    if (this.protocol === 'dubbo') {
      // The recorded id may clash with another connection's: a fresh one, paired by it.
      bytes = Buffer.from(request);
      const id = this.nextId++;
      bytes.writeBigUInt64BE(id, 4);
      key = String(id);
    }
    return new Promise<SendResult>((done) => {
      const socket = this.socket!;
      this.inFlight.push({ socket, request: bytes, method, key, sent: started, deadline: started + this.opts.timeout, interim: [], done });
      this.arm();
      this.conversation?.write('client', bytes, now());
      socket.write(bytes);
      // A request that asks the target to close after answering ends this socket's use: the next one
      // connects anew instead of being pipelined behind it and lost when the target closes.
      if (this.protocol === 'http1' && closesAfter(bytes)) this.retire(socket);
    });
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket?.destroy();
    this.fail('the replay ended');
  }

  /** One timer per connection, for the oldest request in flight (not one per request). */
  private arm(): void {
    const head = this.inFlight[0];
    if (!head || this.timer) return;
    const ms = Math.max(1, head.deadline - now());
    this.timer = setTimeout(() => this.expire(), ms);
    this.timer.unref();
  }

  private expire(): void {
    this.timer = null;
    const t = now() + 1; // timers may fire a little early
    let expired: net.Socket | null = null;
    for (const e of [...this.inFlight]) {
      if (e.deadline > t) continue;
      expired = e.socket;
      this.finish(e, failed(`no answer within ${this.opts.timeout} ms`, t - e.sent));
    }
    // An HTTP/1 connection that missed an answer cannot pair the next one: the next send starts afresh.
    if (expired && this.protocol === 'http1') this.drop(expired);
    this.arm();
  }

  private connect(): Promise<void> {
    if (this.connecting) return this.connecting;
    if (this.closed) return Promise.reject(new Error('connection closed'));
    const s = net.connect({ host: this.target.host, port: this.target.port });
    s.setNoDelay(true);
    this.socket = s;
    this.connectionId = `replay-${nextConnection++}`;
    if (this.protocol === 'http1') {
      const decoder = new Http1Decoder({
        type: 'response', keepRaw: this.opts.keepRaw, bodyCapture: this.opts.bodyCapture ?? 4096,
        requestMethod: () => this.oldest(s)?.method,
        onMessage: (m) => this.answered(m, s),
        onError: (e) => { const head = this.oldest(s); if (head) this.finish(head, failed(`answer ${e.code}: ${e.reason}`, now() - head.sent)); },
      });
      this.responses = decoder;
      s.on('data', (d: Buffer) => decoder.write(d, now()));
      s.on('end', () => decoder.end(now()));
      // A retired socket keeps its decoder for the answers it owes; its close frees it (llhttp's memory).
      s.on('close', () => decoder.close());
    } else {
      const conversation = new Conversation({
        client: this.local, server: this.peer, connectionId: this.connectionId, protocol: 'dubbo', keepRaw: this.opts.keepRaw,
        decodeValues: this.opts.decodeValues,
        onRecord: (r) => this.answeredDubbo(r),
      });
      this.conversation = conversation;
      // Heartbeats are not exchanges (no record carries them): a decoder of their own finds them.
      const heartbeats = new DubboDecoder({
        onMessage: (m) => { if (m.event && m.type === 'request' && m.twoWay) s.write(encodeHeartbeat(BigInt(m.requestId), true)); },
      });
      s.on('data', (d: Buffer) => { conversation.write('server', d, now()); heartbeats.write(d); });
      s.on('close', () => conversation.close(now(), 'the target closed the connection'));
    }
    this.connecting = new Promise<void>((resolve, reject) => {
      let settled = false; // this socket's attempt, whatever the connection does later
      const t = setTimeout(() => s.destroy(new Error(`connect timed out after ${this.opts.connectTimeout ?? 5000} ms`)), this.opts.connectTimeout ?? 5000);
      s.once('connect', () => {
        settled = true;
        clearTimeout(t);
        this.local.ip = s.localAddress ?? '';
        this.local.port = s.localPort ?? 0;
        this.connecting = null;
        resolve();
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(t);
        if (settled) return;
        settled = true;
        this.connecting = null;
        reject(new Error(`${this.target.host}:${this.target.port}: ${e.code === 'ECONNREFUSED' ? 'connection refused' : e.code ?? e.message}`));
      });
      s.once('close', () => {
        clearTimeout(t);
        if (settled) return;
        settled = true;
        this.connecting = null;
        reject(new Error(`${this.target.host}:${this.target.port}: closed before connecting`));
      });
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (this.socket === s) this.drop(s);
      this.fail('the target closed the connection', s);
    });
    return this.connecting;
  }

  /** Forget a socket at once (its close event comes later), so the next send connects anew. */
  private drop(s: net.Socket): void {
    if (this.socket !== s) return;
    this.socket = null;
    this.responses?.close();
    this.responses = null;
    this.conversation = null;
    s.destroy();
  }

  /**
   * Send nothing more on `s` (it stays open for the answers it owes; its close comes from the target):
   * the next send connects anew.
   */
  private retire(s: net.Socket): void {
    if (this.socket !== s) return;
    this.socket = null;
    this.responses = null;
  }

  /** The oldest request in flight on `s`: HTTP/1 answers come in the order of their requests, per socket. */
  private oldest(s: net.Socket): InFlight | undefined {
    for (const e of this.inFlight) if (e.socket === s) return e;
    return undefined;
  }

  private answered(m: Http1Message, s: net.Socket): void {
    const head = this.oldest(s);
    if (!head) return;
    if (m.interim) { head.interim.push(m.statusCode!); return; }
    // The target will close after this answer: nothing more goes on this socket.
    if (/(?:^|,)\s*close\s*(?:,|$)/i.test(String(m.headers?.connection ?? ''))) this.retire(s);
    const latency = now() - head.sent;
    const ctx = { client: this.local, server: this.peer, connectionId: this.connectionId, options: {} };
    let built: AnyRecord | null = null;
    const record = () => {
      if (built) return built;
      const req = decodeRequest(head.request, head.sent);
      built = attachWire(http1Record(ctx, {
        req, res: m, resDone: true, interim: head.interim, error: null, failure: null, expired: false, closedAt: 0, start: head.sent,
      }), { protocol: 'http1', request: head.request, response: m.raw ?? null, requestCut: false, responseCut: m.rawCut ?? false });
      return built;
    };
    this.finish(head, { code: m.statusCode ?? null, answer: m.raw ? { raw: m.raw, cut: m.rawCut ?? false } : null, error: null, latency, record });
  }

  private answeredDubbo(r: AnyRecord): void {
    const i = this.inFlight.findIndex((x) => x.key === r.requestId);
    if (i < 0) return; // a record of a request we did not send
    const e = this.inFlight[i];
    const w = wireOf(r);
    const answer = r.response !== null && w && w.protocol === 'dubbo' && w.response ? { raw: w.response, cut: w.responseCut } : null;
    this.finish(e, { code: r.code, answer, error: r.response === null ? r.error ?? 'no answer' : null, latency: now() - e.sent, record: () => r });
  }

  private finish(entry: InFlight, r: SendResult): void {
    const i = this.inFlight.indexOf(entry);
    if (i < 0) return;
    this.inFlight.splice(i, 1);
    entry.done(r);
  }

  /** Fail what is in flight (on `socket` only, when given). */
  private fail(why: string, socket?: net.Socket): void {
    for (const e of [...this.inFlight]) if (!socket || e.socket === socket) this.finish(e, failed(why, now() - e.sent));
  }
}

/** Does this HTTP/1 request ask for the connection to close after its answer (RFC 9112 §9.3)? */
export function closesAfter(request: Buffer): boolean {
  const end = request.indexOf('\r\n\r\n');
  const head = request.toString('latin1', 0, end < 0 ? Math.min(request.length, 65536) : end);
  const firstLine = head.indexOf('\r\n');
  const http10 = (firstLine < 0 ? head : head.slice(0, firstLine)).endsWith('HTTP/1.0');
  const tokens: string[] = [];
  for (const m of head.matchAll(/\r\nconnection[ \t]*:([^\r]*)/gi)) for (const t of m[1].split(',')) tokens.push(t.trim().toLowerCase());
  return tokens.includes('close') || (http10 && !tokens.includes('keep-alive'));
}

/** The request we sent, decoded only when its record is wanted. */
function decodeRequest(bytes: Buffer, time: number): Http1Message | null {
  let out: Http1Message | null = null;
  const d = new Http1Decoder({ type: 'request', onMessage: (m) => { out ??= m; } });
  d.write(bytes, time);
  d.end(time);
  d.close();
  return out;
}
