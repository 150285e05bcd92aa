/**
 * One connection to a replay or mirror target for HTTP/1 or Dubbo. What it sends and what comes back are
 * fed to a flowtap Conversation, so answers are decoded by flowtap's own decoders and paired by its
 * pairer; each send resolves with the record of its exchange (its wire kept, for type-3 payloads).
 */
import net from 'node:net';
import { Conversation } from '../pipeline/conversation.js';
import type { AnyRecord } from '../records/types.js';
import { DubboDecoder } from '../codecs/dubbo/decoder.js';
import { encodeHeartbeat } from '../codecs/dubbo/encoder.js';

export interface Target { host: string; port: number }

export interface SendResult {
  /** The replayed exchange (its response null when none came). */
  record: AnyRecord | null;
  /** Why there is no answer: refused, reset, timed out. */
  error: string | null;
  /** ms from the first byte sent to the answer (or the failure). */
  latency: number;
}

interface InFlight { key: string; sent: number; done: (r: SendResult) => void; timer: NodeJS.Timeout }

const now = () => performance.timeOrigin + performance.now();
let nextConnection = 1;

export class TargetConnection {
  private socket: net.Socket | null = null;
  private conversation: Conversation | null = null;
  private connecting: Promise<void> | null = null;
  private readonly inFlight: InFlight[] = [];
  private nextId = 1n;
  private closed = false;

  constructor(
    private readonly target: Target,
    private readonly protocol: 'http1' | 'dubbo',
    private readonly opts: { timeout: number; keepRaw: number; connectTimeout?: number },
  ) {}

  get busy(): number {
    return this.inFlight.length;
  }

  /**
   * Send one request. HTTP/1 answers come in order; a Dubbo frame gets a fresh id for this connection
   * (the recorded one may clash with another connection's) and is paired by it.
   */
  async send(request: Buffer): Promise<SendResult> {
    const started = now();
    try {
      await this.connect();
    } catch (e) {
      return { record: null, error: (e as Error).message, latency: now() - started };
    }
    let bytes = request;
    let key = '';
    if (this.protocol === 'dubbo') {
      bytes = Buffer.from(request);
      const id = this.nextId++;
      bytes.writeBigUInt64BE(id, 4);
      key = String(id);
    }
    return new Promise<SendResult>((resolve) => {
      const timer = setTimeout(() => this.finish(entry, { record: null, error: `no answer within ${this.opts.timeout} ms`, latency: now() - started }),
        this.opts.timeout);
      const entry: InFlight = { key, sent: started, done: resolve, timer };
      this.inFlight.push(entry);
      this.conversation!.write('client', bytes, now());
      this.socket!.write(bytes);
    });
  }

  close(): void {
    this.closed = true;
    this.socket?.destroy();
    this.fail('the replay ended');
  }

  private connect(): Promise<void> {
    if (this.socket && !this.socket.destroyed && !this.connecting) return Promise.resolve();
    if (this.connecting) return this.connecting;
    if (this.closed) return Promise.reject(new Error('connection closed'));
    const s = net.connect({ host: this.target.host, port: this.target.port });
    s.setNoDelay(true);
    this.socket = s;
    const local = { ip: '', port: 0 };
    this.conversation = new Conversation({
      client: local, server: { ip: this.target.host, port: this.target.port }, connectionId: `replay-${nextConnection++}`,
      protocol: this.protocol, keepRaw: this.opts.keepRaw, onRecord: (r) => this.answered(r),
    });
    this.connecting = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => s.destroy(new Error(`connect timed out after ${this.opts.connectTimeout ?? 5000} ms`)), this.opts.connectTimeout ?? 5000);
      s.once('connect', () => { clearTimeout(t); local.ip = s.localAddress ?? ''; local.port = s.localPort ?? 0; this.connecting = null; resolve(); });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(t);
        this.connecting = null;
        reject(new Error(`${this.target.host}:${this.target.port}: ${e.code === 'ECONNREFUSED' ? 'connection refused' : e.code ?? e.message}`));
      });
    });
    const conversation = this.conversation;
    // A provider's heartbeat requests get their answer, as a consumer would give (found at frame
    // boundaries by a decoder of their own: heartbeats are not exchanges, so no record carries them).
    const heartbeats = this.protocol === 'dubbo' ? new DubboDecoder({
      onMessage: (m) => { if (m.event && m.type === 'request' && m.twoWay) s.write(encodeHeartbeat(BigInt(m.requestId), true)); },
    }) : null;
    s.on('data', (d: Buffer) => {
      conversation.write('server', d, now());
      heartbeats?.write(d);
    });
    s.on('error', () => {});
    s.on('close', () => {
      conversation.end('server', now());
      conversation.close(now(), 'the target closed the connection');
      if (this.socket === s) this.socket = null;
      this.fail('the target closed the connection');
    });
    return this.connecting;
  }


  private answered(r: AnyRecord): void {
    let i = 0;
    if (this.protocol === 'dubbo') i = this.inFlight.findIndex((x) => x.key === (r as { requestId?: string }).requestId);
    const entry = this.inFlight[i];
    if (!entry || i < 0) return; // a record of a request we did not send (a heartbeat is not one)
    this.finish(entry, { record: r, error: r.response === null ? r.error ?? 'no answer' : null, latency: now() - entry.sent });
  }

  private finish(entry: InFlight, r: SendResult): void {
    const i = this.inFlight.indexOf(entry);
    if (i < 0) return;
    this.inFlight.splice(i, 1);
    clearTimeout(entry.timer);
    entry.done(r);
  }

  private fail(why: string): void {
    for (const e of [...this.inFlight]) this.finish(e, { record: null, error: why, latency: now() - e.sent });
  }
}
