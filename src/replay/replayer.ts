/**
 * Replay: recorded requests sent again to a target, on the original timeline (scaled, capped) or as fast
 * as the connections allow, through filters, rewrites and middleware, answers decoded by flowtap's own
 * decoders into records and type-3 payloads, and a summary of what happened, what was held back and why.
 */
import { EventEmitter } from 'eventemitter3';
import type { ProtoRegistry } from '../codecs/grpc/schemas.js';
import type { AnyRecord } from '../records/types.js';
import { parseTarget, type SendResult, type Target } from './connection.js';
import { RecordingWriter, readRecordingBatches, type ReadOptions } from './files.js';
import { Http2Target } from './http2-client.js';
import { Middleware } from './middleware.js';
import { msToNs, nsToMs, type Payload } from './payload.js';
import { TargetPool } from './pool.js';
import { Http1Request, Http2Request, requestView, type RequestView } from './request.js';
import { rewrite, verdict, type Selection } from './select.js';

export interface ReplayOptions {
  /** Where to send: `http://host:port` (a path there is put in front of every request path). */
  target: string;
  /**
   * More targets that get every request at the same moment as `target` (a diff's secondary and candidate).
   * Their answers come as `record`/`failure` events with their side (1, 2, ...); the summary and `out` are
   * the main target's.
   */
  also?: readonly string[];
  /** 1 = as recorded, 2 = twice as fast, 'max' = no waiting. Default 1. */
  speed?: number | 'max';
  /** Start again from the first file when the last is done (until `stop()`). */
  loop?: boolean;
  /** No single wait longer than this, ms. */
  maxWait?: number;
  /** Connections to the target (HTTP/2: concurrent streams on one connection). Default 8. */
  workers?: number;
  /** Reproduce the original connections: each one's requests on one connection of its own, in order. */
  sessions?: boolean;
  /** Send the recorded Host / :authority instead of the target's. */
  keepHost?: boolean;
  /** At most this many requests a second (they wait their turn; none is dropped). */
  rate?: number;
  selection?: Selection;
  /** A GoReplay middleware command. */
  middleware?: string;
  /** A typed hook for embedders: edit the request in place; return false to drop it. */
  transform?: (request: RequestView, payload: Payload) => boolean | void;
  /** No answer within this long is a failure, ms. Default 10 000. */
  timeout?: number;
  /** Bytes kept of each replayed answer, for the output file. Default 1 MiB. */
  keepRaw?: number;
  /** Body bytes the replayed records keep (default 4096). */
  bodyCapture?: number;
  /** Dubbo: decode return values and exceptions into the records. */
  decodeValues?: boolean;
  /** gRPC: schemas to decode the answers' messages with. */
  protos?: ProtoRegistry;
  /** Write the requests sent (1), the recorded answers (2) and the replayed ones (3) here. */
  out?: string;
  read?: ReadOptions;
}

export interface ReplaySummary {
  /** Requests read from the files. */
  requests: number;
  sent: number;
  answered: number;
  failed: number;
  filtered: number;
  heldBack: number;
  sampledOut: number;
  droppedByMiddleware: number;
  /** Requests that could not be read as their protocol (skipped). */
  malformed: number;
  /** Answers by class: `2xx`, `4xx`, `grpc 0`, `dubbo 20`, ... */
  byCode: Record<string, number>;
  /** Failures by reason. */
  errors: Record<string, number>;
  latency: { p50: number | null; p99: number | null };
  /** The same percentiles of the recorded answers' latency, for the requests sent. */
  originalLatency: { p50: number | null; p99: number | null };
  elapsedMs: number;
  /** The middleware exited: why (the replay stopped there). */
  stoppedBy: string | null;
  /** `out` could not be written (why), and how many payloads it lost; null when it was written whole. */
  outFailure: { message: string; lost: number } | null;
}

export interface ReplayerEvents {
  /** A replayed exchange, with its payloads' id and the side that answered (0: the target, 1...: `also`). */
  record: (record: AnyRecord, id: string, side: number) => void;
  failure: (error: string, id: string, side: number) => void;
  progress: (s: ReplaySummary) => void;
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Replayer extends EventEmitter<ReplayerEvents> {
  readonly summary: ReplaySummary = {
    requests: 0, sent: 0, answered: 0, failed: 0, filtered: 0, heldBack: 0, sampledOut: 0, droppedByMiddleware: 0, malformed: 0,
    byCode: {}, errors: {}, latency: { p50: null, p99: null }, originalLatency: { p50: null, p99: null }, elapsedMs: 0, stoppedBy: null, outFailure: null,
  };
  /** The target, then the `also` ones: where each is, its path prefix, its Host. */
  private readonly sides: { target: Target; prefix: string; host: string }[];
  private readonly opts: Required<Pick<ReplayOptions, 'workers' | 'timeout' | 'keepRaw'>> & ReplayOptions;
  private readonly pools = new Map<string, TargetPool | Http2Target>();
  private readonly sessions = new Map<string, { pool: TargetPool | Http2Target; chain: Promise<void> }>();
  /** Requests sent and not yet answered, and who waits for one of them to finish. */
  private inFlight = 0;
  private readonly slotWaiters: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private readonly latencies: number[] = [];
  private readonly originals = new Map<string, number>();
  private readonly sentIds = new Set<string>();
  private writer: RecordingWriter | null = null;
  private middleware: Middleware | null = null;
  private readonly atMiddleware = new Map<string, Payload>();
  private stopped = false;
  private endingMiddleware = false;

  constructor(options: ReplayOptions) {
    super();
    this.sides = [options.target, ...(options.also ?? [])].map((t) => parseTarget(t, 'the target'));
    this.opts = { workers: 8, timeout: 10_000, keepRaw: 1 << 20, ...options };
  }

  /** Stop after what is in flight (a loop too). */
  stop(): void {
    this.stopped = true;
  }

  async run(files: readonly string[]): Promise<ReplaySummary> {
    const t0 = now();
    if (this.opts.out) this.writer = new RecordingWriter(this.opts.out);
    if (this.opts.middleware) this.startMiddleware(this.opts.middleware);
    try {
      do {
        await this.pass(files);
      } while (this.opts.loop && !this.stopped && !this.summary.stoppedBy);
      await this.idle();
      if (this.middleware && !this.middleware.exited) {
        this.endingMiddleware = true; // its exit now is the end we asked for, not a failure
        await this.middleware.end();
        await this.idle();
      }
      this.summary.droppedByMiddleware += this.atMiddleware.size;
    } finally {
      for (const p of this.pools.values()) p.close();
      for (const s of this.sessions.values()) s.pool.close();
      await this.writer?.close();
    }
    if (this.writer?.failure) this.summary.outFailure = { message: this.writer.failure.message, lost: this.writer.lost };
    this.summary.elapsedMs = now() - t0;
    this.summary.latency = percentiles(this.latencies);
    this.summary.originalLatency = percentiles([...this.sentIds].map((id) => this.originals.get(id)).filter((x): x is number => x !== undefined));
    return this.summary;
  }

  /** One pass over the files, on their timeline. */
  private async pass(files: readonly string[]): Promise<void> {
    let prevTs: bigint | null = null;
    let due = now();
    let lastSlot = 0;
    const speed = this.opts.speed ?? 1;
    for await (const batch of readRecordingBatches(files, this.opts.read)) for (const p of batch) {
      if (this.stopped || this.summary.stoppedBy) return;
      if (p.type !== 1) {
        if (p.type === 2 && p.latency >= 0n) this.originals.set(p.id, nsToMs(p.latency));
        if (p.type === 2) { this.writer?.write(p); if (this.middleware) this.middleware.send(p); }
        continue;
      }
      this.summary.requests++;
      if (speed !== 'max') {
        // Out-of-order timestamps never wait backwards (nor stall): the clock only moves forward.
        let gap = prevTs === null || p.timestamp <= prevTs ? 0 : nsToMs(p.timestamp - prevTs) / speed;
        if (this.opts.maxWait !== undefined) gap = Math.min(gap, this.opts.maxWait);
        if (prevTs === null || p.timestamp > prevTs) prevTs = p.timestamp;
        due += gap;
        const wait = due - now();
        if (wait > 1) await sleep(wait);
      }
      if (this.opts.rate) {
        const slot = Math.max(now(), lastSlot + 1000 / this.opts.rate);
        lastSlot = slot;
        const wait = slot - now();
        if (wait > 1) await sleep(wait);
      }
      // Awaited only when there is something to wait for: most requests go out without a pause.
      const wait = this.dispatch(p);
      if (wait) await wait;
      if (this.writer?.needsDrain) await this.writer.drained();
      this.emit('progress', this.summary);
    }
  }

  /** Filter, rewrite, and send one request (or hand it to the middleware). */
  private dispatch(p: Payload): Promise<void> | void {
    let view: RequestView;
    try {
      view = requestView(p);
    } catch {
      this.summary.malformed++;
      return;
    }
    const v = verdict(this.opts.selection ?? {}, view);
    if (v === 'filtered') { this.summary.filtered++; return; }
    if (v === 'side-effect') { this.summary.heldBack++; return; }
    if (v === 'sampled-out') { this.summary.sampledOut++; return; }
    if (this.middleware && p.protocol === 'http1') {
      this.atMiddleware.set(p.id, p);
      this.middleware.send(p);
      return;
    }
    return this.sendView(p, view);
  }

  /** Send (without waiting for the answer); a promise only when the replay must wait for a free slot. */
  private sendView(p: Payload, view: RequestView): Promise<void> | void {
    if (this.opts.transform && this.opts.transform(view, p) === false) { this.summary.filtered++; return; }
    // Each side gets its own copy of the request (its own Host and prefix), all sent at the same moment.
    const views = this.sides.map((side, i) => {
      const v = i === 0 ? view : this.copyView(p, view);
      rewrite(this.opts.keepHost ? this.opts.selection ?? {} : { ...this.opts.selection, host: side.host }, v);
      if (side.prefix && v.protocol !== 'dubbo') v.setTarget(side.prefix + v.target());
      return v;
    });
    this.inFlight++;
    const sent = views.length === 1 ? this.send(p, views[0], 0) : Promise.all(views.map((v, i) => this.send(p, v, i)));
    void sent.finally(() => this.slotFreed());
    // Bounded: as many requests in flight as connections can carry, plus a queue as deep.
    if (this.inFlight >= this.opts.workers * 2) return new Promise<void>((r) => this.slotWaiters.push(r));
  }

  private slotFreed(): void {
    this.inFlight--;
    this.slotWaiters.shift()?.();
    if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when nothing is in flight. */
  private idle(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((r) => this.idleWaiters.push(r));
  }

  /** Another side's copy of a request: as recorded, through the same hook (the first view may be edited). */
  private copyView(p: Payload, view: RequestView): RequestView {
    const copy = requestView(view instanceof Http1Request ? { ...p, raw: view.bytes() }
      : view instanceof Http2Request ? { ...p, http2: { ...view.half, headers: view.half.headers.map((h) => [h[0], h[1]] as [string, string]) } } : p);
    return copy;
  }

  private async send(p: Payload, view: RequestView, side: number): Promise<void> {
    const main = side === 0;
    if (main) {
      this.summary.sent++;
      this.sentIds.add(p.id);
    }
    const request: Payload = { ...p, timestamp: msToNs(now()) };
    let result: SendResult;
    if (view instanceof Http1Request) {
      request.raw = view.bytes();
      const method = view.method();
      result = await this.via(p, side, 'http1', (pool) => (pool as TargetPool).send(request.raw!, method));
    } else if (p.protocol === 'dubbo') {
      result = await this.via(p, side, 'dubbo', (pool) => (pool as TargetPool).send(p.raw!));
    } else {
      const proto = p.protocol as 'http2' | 'grpc';
      const half = (view as Http2Request).half;
      result = await this.via(p, side, 'http2', (pool) => (pool as Http2Target).send(proto, half));
    }
    if (!main) {
      if (result.answer !== null || result.code !== null) { const r = result.record(); if (r) this.emit('record', r, p.id, side); }
      else this.emit('failure', result.error ?? 'no answer', p.id, side);
      return;
    }
    this.writer?.write(request);
    if (result.answer !== null || result.code !== null) {
      this.summary.answered++;
      this.latencies.push(result.latency);
      const key = codeClass(p.protocol, result.code);
      this.summary.byCode[key] = (this.summary.byCode[key] ?? 0) + 1;
      // The record is built only for someone who wants it (an HTTP/1 one decodes the request again).
      if (this.listenerCount('record') > 0) { const r = result.record(); if (r) this.emit('record', r, p.id, 0); }
      const replayed = answerPayload(p, result);
      if (replayed && (this.writer || this.middleware)) {
        this.writer?.write(replayed);
        if (this.middleware && replayed.raw) this.middleware.send(replayed);
      }
    } else {
      const why = result.error ?? 'no answer';
      this.summary.failed++;
      this.summary.errors[why] = (this.summary.errors[why] ?? 0) + 1;
      this.emit('failure', why, p.id, 0);
    }
  }

  /** Send on the shared pool, or on the request's own session connection, in its order. */
  private async via(p: Payload, side: number, kind: 'http1' | 'dubbo' | 'http2', fn: (pool: TargetPool | Http2Target) => Promise<SendResult>): Promise<SendResult> {
    const target = this.sides[side].target;
    if (!this.opts.sessions || !p.connection) return fn(this.pool(target, `${side} ${kind}`, kind, this.opts.workers));
    const key = `${side} ${kind} ${p.connection}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = { pool: kind === 'http2' ? new Http2Target(target, 1, this.opts) : new TargetPool(target, kind, 1, this.opts), chain: Promise.resolve() };
      this.sessions.set(key, s);
    }
    const session = s;
    const run = session.chain.then(() => fn(session.pool));
    session.chain = run.then(() => {}, () => {});
    return run;
  }

  private pool(target: Target, key: string, kind: 'http1' | 'dubbo' | 'http2', size: number): TargetPool | Http2Target {
    let pool = this.pools.get(key);
    if (!pool) {
      pool = kind === 'http2' ? new Http2Target(target, size * 16, this.opts) : new TargetPool(target, kind, size, this.opts);
      this.pools.set(key, pool);
    }
    return pool;
  }

  private startMiddleware(command: string): void {
    const mw = new Middleware(command);
    this.middleware = mw;
    mw.on('payload', (back) => {
      if (back.type !== 1) return;
      const orig = this.atMiddleware.get(back.id);
      if (!orig) return;
      this.atMiddleware.delete(back.id);
      let view: RequestView;
      try {
        view = requestView({ ...orig, raw: back.raw });
      } catch {
        this.summary.malformed++;
        return;
      }
      void this.sendView({ ...orig, raw: back.raw }, view);
    });
    mw.on('exit', (why) => { if (!this.stopped && !this.endingMiddleware) this.summary.stoppedBy = why; });
  }
}

/** The replayed answer as a type-3 payload. */
function answerPayload(request: Payload, r: SendResult): Payload | null {
  if (!r.answer) return null;
  return {
    type: 3, id: request.id, timestamp: msToNs(now()), latency: msToNs(r.latency), protocol: request.protocol,
    ...(r.answer.raw ? { raw: r.answer.raw } : { http2: r.answer.http2 }), ...(r.answer.cut ? { cut: true } : {}),
  };
}

function codeClass(protocol: Payload['protocol'], code: number | null): string {
  if (protocol === 'http1' || protocol === 'http2') return code === null ? 'no status' : `${Math.floor(code / 100)}xx`;
  return `${protocol} ${code ?? 'none'}`;
}

function percentiles(xs: number[]): { p50: number | null; p99: number | null } {
  if (xs.length === 0) return { p50: null, p99: null };
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] * 1000) / 1000;
  return { p50: at(0.5), p99: at(0.99) };
}
