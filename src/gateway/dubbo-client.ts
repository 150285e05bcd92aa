/**
 * A Dubbo 2 client for gateways: a small pool of connections to one provider, u64 request ids unique per
 * connection, answers paired by id (in any order), a per-call timeout (a late answer is discarded), the
 * provider's heartbeats answered and our own sent when a connection is idle, reconnection with backoff,
 * one-way calls, attachments, and one typed error per failure.
 */
import net from 'node:net';
import { EventEmitter } from 'eventemitter3';
import { DubboDecoder, type DubboMessage } from '../codecs/dubbo/decoder.js';
import { encodeHeartbeat, encodeRequest } from '../codecs/dubbo/encoder.js';
import { DUBBO_STATUS_NAMES } from '../records/status.js';

export interface DubboClientOptions {
  host: string;
  port: number;
  /** Connections to the provider. Default 4. */
  connections?: number;
  /** Default per-call timeout, ms. Default 3000. */
  timeout?: number;
  /** Send a heartbeat when a connection was idle this long, ms. Default 30 000. */
  heartbeat?: number;
  /** Reconnect backoff, ms: from `min`, doubling to `max`. Default 100 to 5000. */
  reconnect?: { min: number; max: number };
  /** Connect timeout, ms. Default 3000. */
  connectTimeout?: number;
}

export interface InvokeSpec {
  service: string;
  /** The service version (`v1`), or null. */
  version?: string | null;
  method: string;
  /** JVM descriptor of the parameter types, e.g. `Ljava/lang/String;` (see `descriptor()`). */
  parameterTypes: string;
  /** Arguments as hessian.js values (`toJava()` makes them from JSON). */
  args: unknown[];
  attachments?: Record<string, string>;
  /** This call's timeout, ms. */
  timeout?: number;
  /** A one-way call: resolves once written, with no answer. */
  oneWay?: boolean;
}

export interface DubboAnswer {
  /** The response status byte (20: OK). */
  status: number;
  statusName: string;
  kind: 'value' | 'null' | 'exception' | 'error';
  /** The return value (hessian.js, plain): present when kind is 'value'. */
  value?: unknown;
  /** kind 'exception': the Java exception's class and message. */
  exception?: { class: string | null; message: string | null };
  /** kind 'error' (a non-20 status): the provider's error string. */
  error?: string | null;
  attachments: Record<string, unknown>;
  requestId: string;
}

export type DubboFailure = 'timeout' | 'unavailable' | 'closed' | 'encode';

/** A call that got no answer: `kind` says why. */
export class DubboCallError extends Error {
  override name = 'DubboCallError';
  constructor(readonly kind: DubboFailure, message: string) {
    super(message);
  }
}

export interface DubboClientEvents {
  connect: (connection: number) => void;
  disconnect: (connection: number, why: string) => void;
}

interface Call { resolve: (a: DubboAnswer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }

class Connection {
  socket: net.Socket | null = null;
  up = false;
  nextId = 1n;
  readonly calls = new Map<string, Call>();
  lastActivity = Date.now();
  backoff: number;
  retry: NodeJS.Timeout | null = null;
  constructor(readonly index: number, min: number) { this.backoff = min; }
}

export class DubboClient extends EventEmitter<DubboClientEvents> {
  readonly stats = {
    calls: 0, answered: 0, timeouts: 0, lateAnswers: 0, failures: 0, reconnects: 0, heartbeatsSent: 0, heartbeatsAnswered: 0,
    /** Answers that overtook an earlier call on the same connection (paired by id all the same). */
    outOfOrder: 0,
  };
  private readonly conns: Connection[];
  private readonly opts: Required<DubboClientOptions>;
  private next = 0;
  private closed = false;
  private readonly ticker: NodeJS.Timeout;

  constructor(options: DubboClientOptions) {
    super();
    this.opts = { connections: 4, timeout: 3000, heartbeat: 30_000, reconnect: { min: 100, max: 5000 }, connectTimeout: 3000, ...options };
    this.conns = Array.from({ length: this.opts.connections }, (_, i) => new Connection(i, this.opts.reconnect.min));
    for (const c of this.conns) this.connect(c);
    this.ticker = setInterval(() => this.heartbeats(), Math.max(100, Math.min(this.opts.heartbeat / 2, 5000)));
    this.ticker.unref();
  }

  /** Connections up now. */
  get connected(): number {
    return this.conns.filter((c) => c.up).length;
  }

  /** Resolves once at least one connection is up (or rejects after `ms`). */
  ready(ms = this.opts.connectTimeout): Promise<void> {
    if (this.connected > 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.off('connect', on); reject(new DubboCallError('unavailable', `no connection to ${this.opts.host}:${this.opts.port} within ${ms} ms`)); }, ms);
      const on = () => { clearTimeout(t); this.off('connect', on); resolve(); };
      this.on('connect', on);
    });
  }

  invoke(spec: InvokeSpec): Promise<DubboAnswer> {
    this.stats.calls++;
    const c = this.pick();
    if (!c) {
      this.stats.failures++;
      return Promise.reject(new DubboCallError('unavailable', `no connection to the provider ${this.opts.host}:${this.opts.port}`));
    }
    const id = c.nextId++;
    let frame: Buffer;
    try {
      // Dubbo providers route by these attachments (path, interface, version); the caller's come after.
      const attachments = { path: spec.service, interface: spec.service, version: spec.version ?? '0.0.0', ...spec.attachments };
      frame = encodeRequest({ requestId: id, service: spec.service, serviceVersion: spec.version ?? null, method: spec.method,
        parameterTypes: spec.parameterTypes, args: spec.args, attachments, twoWay: !spec.oneWay });
    } catch (e) {
      this.stats.failures++;
      return Promise.reject(new DubboCallError('encode', `the arguments do not encode as Hessian: ${(e as Error).message}`));
    }
    c.lastActivity = Date.now();
    if (spec.oneWay) {
      c.socket!.write(frame);
      return Promise.resolve({ status: 20, statusName: 'OK', kind: 'null', attachments: {}, requestId: String(id) });
    }
    const timeout = spec.timeout ?? this.opts.timeout;
    return new Promise<DubboAnswer>((resolve, reject) => {
      const key = String(id);
      const timer = setTimeout(() => {
        c.calls.delete(key); // its late answer is discarded
        this.stats.timeouts++;
        reject(new DubboCallError('timeout', `no answer from ${spec.service}.${spec.method} within ${timeout} ms`));
      }, timeout);
      c.calls.set(key, { resolve, reject, timer });
      c.socket!.write(frame);
    });
  }

  close(): void {
    this.closed = true;
    clearInterval(this.ticker);
    for (const c of this.conns) {
      if (c.retry) clearTimeout(c.retry);
      this.fail(c, new DubboCallError('closed', 'the client was closed'));
      c.socket?.destroy();
    }
  }

  /** Round robin over the connections that are up. */
  private pick(): Connection | null {
    for (let i = 0; i < this.conns.length; i++) {
      const c = this.conns[(this.next + i) % this.conns.length];
      if (c.up) { this.next = (c.index + 1) % this.conns.length; return c; }
    }
    return null;
  }

  private connect(c: Connection): void {
    if (this.closed) return;
    const s = net.connect({ host: this.opts.host, port: this.opts.port });
    s.setNoDelay(true);
    c.socket = s;
    const t = setTimeout(() => s.destroy(new Error('connect timed out')), this.opts.connectTimeout);
    const decoder = new DubboDecoder({ decodeValues: true, onMessage: (m) => this.message(c, m) });
    s.on('connect', () => {
      clearTimeout(t);
      c.up = true;
      c.backoff = this.opts.reconnect.min;
      c.lastActivity = Date.now();
      this.emit('connect', c.index);
    });
    s.on('data', (d: Buffer) => { c.lastActivity = Date.now(); decoder.write(d); });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      const was = c.up;
      c.up = false;
      c.socket = null;
      this.fail(c, new DubboCallError('unavailable', `the connection to ${this.opts.host}:${this.opts.port} closed before the answer came`));
      if (was) this.emit('disconnect', c.index, 'closed');
      if (this.closed) return;
      this.stats.reconnects++;
      c.retry = setTimeout(() => { c.retry = null; this.connect(c); }, c.backoff);
      c.retry.unref();
      c.backoff = Math.min(c.backoff * 2, this.opts.reconnect.max);
    });
  }

  private message(c: Connection, m: DubboMessage): void {
    if (m.event) {
      // The provider's heartbeat: answered; the answer to ours: nothing to do.
      if (m.type === 'request' && m.twoWay) { c.socket?.write(encodeHeartbeat(BigInt(m.requestId), true)); this.stats.heartbeatsAnswered++; }
      return;
    }
    if (m.type !== 'response') return;
    const call = c.calls.get(m.requestId);
    if (!call) { this.stats.lateAnswers++; return; } // timed out already: discarded
    // Calls wait in id order: an earlier one still waiting means this answer overtook it.
    if (c.calls.keys().next().value !== m.requestId) this.stats.outOfOrder++;
    c.calls.delete(m.requestId);
    clearTimeout(call.timer);
    this.stats.answered++;
    const body = m.response;
    const kind = body?.kind ?? (m.status === 20 ? 'value' : 'error');
    const answer: DubboAnswer = {
      status: m.status, statusName: DUBBO_STATUS_NAMES[m.status] ?? 'UNKNOWN', kind, attachments: body?.attachments ?? {}, requestId: m.requestId,
    };
    if (kind === 'value') answer.value = m.values?.value ?? null;
    if (kind === 'exception') answer.exception = { class: body?.exceptionClass ?? null, message: body?.errorMessage ?? null };
    if (kind === 'error') answer.error = body?.errorMessage ?? null;
    call.resolve(answer);
  }

  private heartbeats(): void {
    const now = Date.now();
    for (const c of this.conns) {
      if (!c.up || now - c.lastActivity < this.opts.heartbeat) continue;
      c.lastActivity = now;
      c.socket?.write(encodeHeartbeat(c.nextId++));
      this.stats.heartbeatsSent++;
    }
  }

  private fail(c: Connection, e: Error): void {
    for (const call of c.calls.values()) { clearTimeout(call.timer); this.stats.failures++; call.reject(e); }
    c.calls.clear();
  }
}
